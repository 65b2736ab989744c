"""The messages API: send with POST (202, Idempotency-Key), read with filters, tenants apart."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from sms.models import (
    Conversation,
    Direction,
    IdempotencyRecord,
    Message,
    MessageStatus,
    OptOut,
    Source,
)
from sms.outbound.rules import sms_caller_id_save
from tenants.models import Extension, Role, SmsPermission, Tenant, User
from tenants.services import user_create
from tests.factories import World, shared_trunk
from tests.tasks import TaskRecorder

URL = "/api/v1/messages/"
SENDER = "+12125550100"
CONTACT = "+13125550199"

ClientFor = Callable[[User | None], Client]


@pytest.fixture(autouse=True)
def _fresh_limits(fresh_limits: None) -> None:
    """Every test starts with no send counted and no request slot taken."""


@pytest.fixture
def post(
    client_for: ClientFor, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Any]:
    """Return a function that POSTs a send request as a user and counts enqueued deliveries."""

    def run(user: User, body: dict[str, Any], *, key: str | None = None, enqueued: int = 1):
        headers = {"Idempotency-Key": key} if key else {}
        with django_capture_on_commit_callbacks() as callbacks:
            response = client_for(user).post(
                URL, body, content_type="application/json", headers=headers
            )
        assert len(callbacks) == enqueued, response.content
        return response

    return run


def send_body(**fields: Any) -> dict[str, Any]:
    body = {"from": "2125550100", "to": "(312) 555-0199", "body": "Your order is ready"}
    body.update(fields)
    return {name: value for name, value in body.items() if value is not None}


def inbound(tenant: Tenant, *, did: str, remote: str, body: str, **fields: Any) -> Message:
    conversation, _ = Conversation.objects.get_or_create(tenant=tenant, did=did, remote=remote)
    if "extension" in fields:
        Conversation.objects.filter(pk=conversation.pk).update(extension=fields.pop("extension"))
    return Message.objects.create(
        tenant=tenant,
        conversation=conversation,
        direction=Direction.IN,
        status=MessageStatus.ROUTED,
        source=Source.WEBHOOK,
        did=did,
        remote=remote,
        body=body,
        received_at=timezone.now(),
        **fields,
    )


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# Sending --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_posting_a_message_answers_202_with_the_queued_message(
    world: World, post: Callable[..., Any]
) -> None:
    response = post(world.admin_a, send_body())

    assert response.status_code == 202, response.content
    answer = response.json()
    message = Message.objects.get()
    assert answer["id"] == message.pk
    assert answer["parts"] == [message.pk]
    assert answer["direction"] == "out"
    assert answer["kind"] == "sms"
    assert answer["status"] == "queued"
    assert (answer["did"], answer["remote"]) == (SENDER, CONTACT)
    assert answer["body"] == "Your order is ready"
    assert answer["segments"] == 1
    assert answer["provider_id"] is None
    assert answer["media"] == []
    assert message.source == Source.API
    assert message.tenant == world.tenant_a


@pytest.mark.django_db
def test_a_long_text_answers_with_every_part(world: World, post: Callable[..., Any]) -> None:
    response = post(world.admin_a, send_body(body="Please confirm tomorrow at nine. " * 8))

    assert response.status_code == 202, response.content
    answer = response.json()
    parts = list(Message.objects.order_by("part_index").values_list("pk", flat=True))
    assert len(parts) == 2
    assert answer["parts"] == parts
    assert answer["id"] == parts[0]
    assert answer["segments"] == 2


@pytest.mark.django_db
def test_from_may_be_left_out_when_the_extension_has_exactly_one_caller_id(
    world: World, post: Callable[..., Any]
) -> None:
    extension = Extension.objects.get(user=world.user_a)
    sms_caller_id_save(
        tenant=world.tenant_a, extension=extension, trunk=shared_trunk(), did="12125550103"
    )

    response = post(world.user_a, send_body(**{"from": None}))

    assert response.status_code == 202, response.content
    assert response.json()["did"] == "+12125550103"
    assert response.json()["extension"] == "101"


@pytest.mark.django_db
def test_from_is_required_when_the_extension_has_several_caller_ids(
    world: World, post: Callable[..., Any]
) -> None:
    Extension.objects.filter(user=world.user_a).update(
        sms_permission=SmsPermission.ALLOW_WITH_SENDER_ID
    )
    extension = Extension.objects.get(user=world.user_a)
    for did in ("12125550103", "12125550104"):
        sms_caller_id_save(
            tenant=world.tenant_a, extension=extension, trunk=shared_trunk(), did=did
        )

    response = post(world.user_a, send_body(**{"from": ""}), enqueued=0)

    assert response.status_code == 400
    assert response.json()["code"] == "from_required"
    assert not Message.objects.exists()


# Idempotency-Key --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_key_and_body_get_the_same_answer_and_no_second_message(
    world: World, post: Callable[..., Any]
) -> None:
    first = post(world.admin_a, send_body(), key="order-1234")
    again = post(world.admin_a, send_body(), key="order-1234", enqueued=0)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_refused(world: World, post: Callable[..., Any]) -> None:
    post(world.admin_a, send_body(), key="order-1234")

    response = post(world.admin_a, send_body(body="Something else"), key="order-1234", enqueued=0)

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert response.json()["detail"]
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_another_key_sends_another_message(world: World, post: Callable[..., Any]) -> None:
    post(world.admin_a, send_body(), key="order-1234")
    post(world.admin_a, send_body(), key="order-1235")

    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_an_idempotency_key_belongs_to_its_user(world: World, post: Callable[..., Any]) -> None:
    admin_two = user_create(
        username="alice-admin-2", password=None, role=Role.TENANT_ADMIN, tenant=world.tenant_a
    )

    post(world.admin_a, send_body(), key="order-1234")
    post(admin_two, send_body(), key="order-1234")

    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_a_refused_send_stores_no_answer_under_its_key(
    world: World, post: Callable[..., Any]
) -> None:
    OptOut.objects.create(tenant=world.tenant_a, did=SENDER, remote=CONTACT, keyword="STOP")

    refused = post(world.admin_a, send_body(), key="order-1234", enqueued=0)
    OptOut.objects.all().delete()
    accepted = post(world.admin_a, send_body(), key="order-1234")

    assert refused.status_code == 400
    assert refused.json()["code"] == "opted_out"
    assert accepted.status_code == 202
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_send_once_and_get_the_same_answer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client that times out retries with the same key while the first request still runs.
    from sms.api import messages as api_messages

    monkeypatch.setattr("core.tasks.publish", TaskRecorder())
    both_checked = threading.Barrier(2, timeout=10)
    real_send = api_messages.message_send

    def send_after_both_checked_the_key(**kwargs: Any) -> Any:
        both_checked.wait()
        return real_send(**kwargs)

    monkeypatch.setattr(api_messages, "message_send", send_after_both_checked_the_key)

    def request(_: int) -> tuple[int, Any]:
        client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
        client.force_login(world.admin_a)
        try:
            response = client.post(
                URL,
                send_body(),
                content_type="application/json",
                headers={"Idempotency-Key": "order-1234"},
            )
        finally:
            connection.close()
        is_json = response.get("Content-Type", "").startswith("application/json")
        return response.status_code, response.json() if is_json else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(request, range(2)))

    assert [status for status, _ in answers] == [202, 202], answers
    assert answers[0][1] == answers[1][1]
    assert Message.objects.count() == 1


# Tenants apart ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_tenant_can_neither_read_a_message_nor_find_it_in_its_list(
    world: World, post: Callable[..., Any], client_for: ClientFor
) -> None:
    message_id = post(world.admin_a, send_body()).json()["id"]
    outsider = client_for(world.admin_b)

    detail = outsider.get(f"{URL}{message_id}/")
    listed = outsider.get(URL)

    assert detail.status_code == 404
    assert detail.json()["code"] == "not_found"
    assert message_id not in ids(listed)
    assert client_for(world.admin_a).get(f"{URL}{message_id}/").status_code == 200


@pytest.mark.django_db
def test_another_tenant_cannot_send_from_a_did_of_this_tenant(
    world: World, post: Callable[..., Any]
) -> None:
    response = post(world.admin_b, send_body(), enqueued=0)

    assert response.status_code == 400
    assert response.json()["code"] == "did_not_in_pool"
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_another_tenants_slug_in_x_tenant_is_not_found(world: World, client_for: ClientFor) -> None:
    response = client_for(world.admin_b).get(URL, headers={"X-Tenant": "a.example"})

    assert response.status_code == 404


# Reading with filters ---------------------------------------------------------------------------


@pytest.fixture
def log(world: World, post: Callable[..., Any]) -> dict[str, int]:
    """Give tenant A an outbound queued, an outbound sent and an inbound message."""
    queued = post(world.admin_a, send_body(body="Your order is ready")).json()["id"]
    sent = post(world.admin_a, send_body(to="5145550123", body="Invoice attached")).json()["id"]
    Message.objects.filter(pk=sent).update(status=MessageStatus.SENT, sent_at=timezone.now())
    received = inbound(
        world.tenant_a, did="+12125550101", remote="+18457231213", body="Are you open Sunday?"
    ).pk
    Message.objects.filter(pk=received).update(created_at=timezone.now() - timedelta(days=3))
    return {"queued": queued, "sent": sent, "received": received}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"queued", "sent", "received"}),
        ({"direction": "in"}, {"received"}),
        ({"direction": "out"}, {"queued", "sent"}),
        ({"status": "sent"}, {"sent"}),
        ({"status": "queued"}, {"queued"}),
        ({"did": "+12125550101"}, {"received"}),
        ({"did": SENDER}, {"queued", "sent"}),
        ({"remote": "+15145550123"}, {"sent"}),
        ({"q": "invoice"}, {"sent"}),
        ({"q": "845723"}, {"received"}),
        ({"direction": "out", "q": "ready"}, {"queued"}),
    ],
)
def test_the_list_filters_by_direction_status_did_remote_and_text(
    world: World,
    client_for: ClientFor,
    log: dict[str, int],
    query: dict[str, str],
    expected: set[str],
) -> None:
    found = ids(client_for(world.admin_a).get(URL, query))

    assert sorted(found) == sorted(log[name] for name in expected)


@pytest.mark.django_db
def test_the_list_filters_by_time_since(
    world: World, client_for: ClientFor, log: dict[str, int]
) -> None:
    since = (timezone.now() - timedelta(days=1)).isoformat()

    found = ids(client_for(world.admin_a).get(URL, {"since": since}))

    assert sorted(found) == sorted([log["queued"], log["sent"]])


@pytest.mark.django_db
def test_a_malformed_since_is_a_json_error(world: World, client_for: ClientFor) -> None:
    response = client_for(world.admin_a).get(URL, {"since": "yesterday"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == ["since"]


@pytest.mark.django_db
def test_the_list_is_newest_first_and_paginated(
    world: World, client_for: ClientFor, log: dict[str, int]
) -> None:
    answer = client_for(world.admin_a).get(URL).json()

    assert answer["count"] == 3
    assert [row["id"] for row in answer["results"]] == [log["sent"], log["queued"], log["received"]]


# Extension users --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_extension_user_sees_only_the_messages_of_his_conversations(
    world: World, client_for: ClientFor
) -> None:
    extension = Extension.objects.get(user=world.user_a)
    his = inbound(
        world.tenant_a, did=SENDER, remote="+18457231213", body="For 101", extension=extension
    )
    other = inbound(world.tenant_a, did=SENDER, remote="+15145550123", body="For reception")
    client = client_for(world.user_a)

    assert ids(client.get(URL)) == [his.pk]
    assert client.get(f"{URL}{his.pk}/").status_code == 200
    assert client.get(f"{URL}{other.pk}/").status_code == 404
    assert sorted(ids(client_for(world.admin_a).get(URL))) == sorted([his.pk, other.pk])


@pytest.mark.django_db
def test_an_extension_user_can_read_the_message_he_just_sent(
    world: World, post: Callable[..., Any], client_for: ClientFor
) -> None:
    extension = Extension.objects.get(user=world.user_a)
    sms_caller_id_save(
        tenant=world.tenant_a, extension=extension, trunk=shared_trunk(), did="12125550103"
    )

    sent = post(world.user_a, send_body(**{"from": "2125550103"}))
    message_id = sent.json()["id"]

    client = client_for(world.user_a)
    assert client.get(f"{URL}{message_id}/").status_code == 200
    assert message_id in ids(client.get(URL))


@pytest.mark.django_db
def test_an_extension_without_sms_permission_gets_a_403(
    world: World, post: Callable[..., Any]
) -> None:
    Extension.objects.filter(user=world.user_a).update(sms_permission=SmsPermission.DISABLE)

    response = post(world.user_a, send_body(), enqueued=0)

    assert response.status_code == 403
    assert response.json()["code"] == "sms_not_allowed"


# Message Channels and errors --------------------------------------------------------------------


@pytest.mark.django_db
def test_message_channels_off_leaves_the_log_readable_and_refuses_sending(
    world: World, post: Callable[..., Any], client_for: ClientFor
) -> None:
    Tenant.objects.filter(pk=world.tenant_a.pk).update(message_channels_enabled=False)

    listed = client_for(world.admin_a).get(URL)
    sent = post(world.admin_a, send_body(), enqueued=0)

    assert listed.status_code == 200
    assert sent.status_code == 403
    assert sent.json()["code"] == "message_channels_disabled"
    assert sent.json()["detail"]
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"to": "12345"}, "invalid_destination", "to"),
        ({"to": "+442071234567"}, "invalid_destination", "to"),
        ({"from": "2125550110"}, "did_not_in_pool", "from"),
        ({"from": "12"}, "invalid_from", "from"),
        ({"body": ""}, "message_empty", "body"),
        ({"media_urls": ["https://example.com/a.jpg"]}, "mms_not_enabled", "media_urls"),
    ],
)
def test_a_refused_send_is_a_json_error_with_a_code_and_a_detail(
    world: World,
    post: Callable[..., Any],
    fields: dict[str, Any],
    code: str,
    field: str,
) -> None:
    response = post(world.admin_a, send_body(**fields), enqueued=0)

    assert response.status_code == 400
    answer = response.json()
    assert (answer["code"], answer["field"]) == (code, field)
    assert isinstance(answer["detail"], str)
    assert answer["detail"]
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_request_without_to_lists_the_field_errors(
    world: World, post: Callable[..., Any]
) -> None:
    response = post(world.admin_a, {"body": "Hi"}, enqueued=0)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "to" in response.json()["errors"]


@pytest.mark.django_db
def test_an_anonymous_request_is_refused_with_a_json_error(
    world: World, client_for: ClientFor
) -> None:
    response = client_for(None).get(URL)

    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
