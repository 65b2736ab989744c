"""Extensions, webhook deliveries and inbound rules' signing secrets in the API; the tenant's
default STOP, HELP and START replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from sms.inbound.store import webhook_delivery_store
from sms.models import (
    DeliveryStatus,
    Direction,
    InboundRule,
    Message,
    SmsCallerId,
    SmsConfiguration,
    WebhookDelivery,
)
from tenants.models import AuditEvent, Extension, SmsPermission, User
from tenants.services import tenant_settings_update
from tests.factories import World, make_messaging_objects, shared_trunk
from tests.sms.helpers import make_configuration, make_rule
from tests.sms.test_inbox import receive

ClientFor = Callable[[User | None], Client]

EXTENSIONS = "/api/v1/extensions/"
DELIVERIES = "/api/v1/webhook-deliveries/"
RULES = "/api/v1/inbound-rules/"


def post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, body or {}, content_type="application/json")


def patch(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.patch(url, body, content_type="application/json")


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- extensions ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_creates_an_extension_with_caller_ids(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)
    member = world.objects_a[User]

    created = post(
        client,
        EXTENSIONS,
        {
            "number": "300",
            "name": "Sales desk",
            "user": member.pk,
            "email": "sales@a.example",
            "email_notify": True,
            "sms_enabled": True,
            "caller_ids": [
                {"did": "(212) 555-0101"},
                {"did": "+12125550102", "description": "Main"},
            ],
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    url = f"{EXTENSIONS}{body['id']}/"
    extension = Extension.objects.get(pk=body["id"])

    assert body["name"] == "Sales desk"
    assert body["user"] == member.pk
    assert body["email_notify"] is True
    assert body["sms_enabled"] is True
    assert body["sms_permission"] == SmsPermission.ALLOW
    assert body["caller_ids"] == [
        {"did": "+12125550101", "trunk": shared_trunk().pk, "description": ""},
        {"did": "+12125550102", "trunk": shared_trunk().pk, "description": "Main"},
    ]
    assert extension.tenant == world.tenant_a
    assert extension.notify_by_email

    changed = patch(client, url, {"sms_enabled": False, "caller_ids": [{"did": "12125550102"}]})
    assert changed.status_code == 200, changed.content
    assert changed.json()["sms_permission"] == SmsPermission.DISABLE
    assert [c["did"] for c in changed.json()["caller_ids"]] == ["+12125550102"]
    assert SmsCallerId.objects.filter(extension=extension).count() == 1
    assert client.delete(url).status_code == 204
    assert not Extension.objects.filter(pk=extension.pk).exists()
    assert {"created", "changed", "deleted"} <= set(
        AuditEvent.objects.filter(object_type="tenants.extension").values_list("action", flat=True)
    )


@pytest.mark.django_db
def test_an_extension_refuses_numbers_outside_the_pool_and_other_tenants_users(
    world: World, client_for: ClientFor
) -> None:
    client = client_for(world.admin_a)

    foreign_did = post(
        client, EXTENSIONS, {"number": "301", "caller_ids": [{"did": "12125550110"}]}
    )
    garbage_did = post(
        client, EXTENSIONS, {"number": "301", "caller_ids": [{"did": "not a number"}]}
    )
    twice = post(
        client,
        EXTENSIONS,
        {"number": "301", "caller_ids": [{"did": "12125550101"}, {"did": "2125550101"}]},
    )
    foreign_user = post(client, EXTENSIONS, {"number": "301", "user": world.user_b.pk})
    taken_number = post(client, EXTENSIONS, {"number": "200"})
    bad_number = post(client, EXTENSIONS, {"number": "12ab"})
    contradiction = post(
        client, EXTENSIONS, {"number": "301", "sms_enabled": True, "sms_permission": "disable"}
    )

    assert foreign_did.status_code == 400
    assert foreign_did.json()["field"] == "caller_ids[0]"
    assert foreign_did.json()["code"] == "did_not_in_pool"
    assert garbage_did.status_code == 400
    assert twice.status_code == 400
    assert twice.json()["field"] == "caller_ids[1]"
    assert foreign_user.status_code == 400
    assert "user" in foreign_user.json()["errors"]
    assert taken_number.status_code == 400
    assert taken_number.json()["field"] == "number"
    assert bad_number.status_code == 400
    assert contradiction.status_code == 400
    assert "sms_enabled" in contradiction.json()["errors"]
    assert not Extension.objects.filter(number="301").exists()


@pytest.mark.django_db
def test_tenant_a_extensions_are_404_and_unlisted_for_tenant_b(
    world: World, client_for: ClientFor
) -> None:
    extension = world.objects_a[Extension]
    intruder = client_for(world.admin_b)
    url = f"{EXTENSIONS}{extension.pk}/"

    assert extension.pk not in ids(intruder.get(EXTENSIONS))
    assert intruder.get(url).status_code == 404
    assert patch(intruder, url, {"name": "Taken"}).status_code == 404
    assert intruder.delete(url).status_code == 404
    assert client_for(world.admin_a).get(url).json()["name"] == "Reception"
    assert client_for(world.user_a).get(EXTENSIONS).status_code == 403
    assert post(client_for(world.user_a), EXTENSIONS, {"number": "555"}).status_code == 403


# --- webhook deliveries ----------------------------------------------------------------------


@pytest.fixture
def messaging(world: World) -> World:
    world.objects_a.update(make_messaging_objects(world.tenant_a, world.objects_a))
    world.objects_b.update(make_messaging_objects(world.tenant_b, world.objects_b))
    return world


@pytest.mark.django_db
def test_a_tenant_admin_reads_his_deliveries_with_the_messages_they_became(
    messaging: World, client_for: ClientFor
) -> None:
    world = messaging
    delivery = world.objects_a[WebhookDelivery]
    message = world.objects_a[Message]
    Message.objects.filter(pk=message.pk).update(delivery=delivery)
    client = client_for(world.admin_a)

    listed = ids(client.get(DELIVERIES))
    processed = ids(client.get(DELIVERIES, {"status": "processed"}))
    failed = ids(client.get(DELIVERIES, {"status": "failed"}))
    bad_status = client.get(DELIVERIES, {"status": "exploded"})
    bad_configuration = client.get(DELIVERIES, {"configuration": "x"})
    one = client.get(f"{DELIVERIES}{delivery.pk}/").json()

    assert listed == {delivery.pk}
    assert processed == {delivery.pk}
    assert failed == set()
    assert bad_status.status_code == 400
    assert "status" in bad_status.json()["errors"]
    assert bad_configuration.status_code == 400
    assert one["body"] == '{"data": {}}'
    assert one["status"] == "processed"
    assert one["messages"] == [message.pk]
    assert one["configuration"] == world.objects_a[SmsConfiguration].pk


@pytest.mark.django_db
def test_reprocessing_a_delivery_queues_it_again_and_is_audited(
    messaging: World, client_for: ClientFor
) -> None:
    world = messaging
    delivery = world.objects_a[WebhookDelivery]
    duplicate = webhook_delivery_store(
        configuration=world.objects_a[SmsConfiguration],
        method="POST",
        body=b"{}",
        query="",
        content_type="application/json",
        remote_addr="127.0.0.1",
        headers={},
        status=DeliveryStatus.DUPLICATE,
    )
    client = client_for(world.admin_a)

    again = post(client, f"{DELIVERIES}{delivery.pk}/reprocess/")
    refused = post(client, f"{DELIVERIES}{duplicate.pk}/reprocess/")

    assert again.status_code == 202, again.content
    assert again.json()["status"] == "received"
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.RECEIVED
    assert refused.status_code == 409
    event = AuditEvent.objects.get(action="reprocessed")
    assert event.tenant == world.tenant_a
    assert event.detail["webhook_deliveries"] == [delivery.pk]


@pytest.mark.django_db
def test_tenant_a_deliveries_are_404_unlisted_and_not_reprocessed_for_tenant_b(
    messaging: World, client_for: ClientFor
) -> None:
    world = messaging
    delivery = world.objects_a[WebhookDelivery]
    intruder = client_for(world.admin_b)

    assert delivery.pk not in ids(intruder.get(DELIVERIES))
    assert intruder.get(f"{DELIVERIES}{delivery.pk}/").status_code == 404
    assert post(intruder, f"{DELIVERIES}{delivery.pk}/reprocess/").status_code == 404
    assert client_for(world.user_a).get(DELIVERIES).status_code == 403
    assert (
        post(client_for(world.user_a), f"{DELIVERIES}{delivery.pk}/reprocess/").status_code == 403
    )
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PROCESSED
    assert not AuditEvent.objects.filter(action="reprocessed").exists()


# --- an inbound rule's signing secret --------------------------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_reads_and_rotates_a_rules_signing_secret(
    messaging: World, client_for: ClientFor
) -> None:
    world = messaging
    rule = world.objects_a[InboundRule]
    client = client_for(world.admin_a)
    url = f"{RULES}{rule.pk}/"

    before = client.get(url).json()
    rotated = post(client, f"{url}rotate-secret/")
    after = client.get(url).json()
    listed = client.get(RULES).json()["results"]

    assert before["webhook_secret"] is None
    assert rotated.status_code == 200, rotated.content
    secret = rotated.json()["webhook_secret"]
    assert len(secret) >= 32
    assert after["webhook_secret"] == secret
    assert all("webhook_secret" not in row for row in listed)
    assert InboundRule.objects.get(pk=rule.pk).webhook_secret == secret
    event = AuditEvent.objects.get(action="secret_changed", object_id=str(rule.pk))
    assert event.detail == {"field": "webhook_secret"}
    assert event.actor == world.admin_a


@pytest.mark.django_db
def test_tenant_b_cannot_read_or_rotate_tenant_a_rules_secret(
    messaging: World, client_for: ClientFor
) -> None:
    world = messaging
    rule = world.objects_a[InboundRule]
    InboundRule.objects.filter(pk=rule.pk).update(webhook_secret="a-secret-never-shared")
    intruder = client_for(world.admin_b)

    assert intruder.get(f"{RULES}{rule.pk}/").status_code == 404
    assert post(intruder, f"{RULES}{rule.pk}/rotate-secret/").status_code == 404
    assert b"a-secret-never-shared" not in intruder.get(RULES).content
    assert post(client_for(world.user_a), f"{RULES}{rule.pk}/rotate-secret/").status_code == 403
    assert InboundRule.objects.get(pk=rule.pk).webhook_secret == "a-secret-never-shared"


# --- the tenant's default keyword replies ----------------------------------------------------


def _configuration(tenant: Any, name: str, **replies: str) -> SmsConfiguration:
    configuration = make_configuration(tenant, name=name)
    SmsConfiguration.objects.filter(pk=configuration.pk).update(**replies)
    configuration.refresh_from_db()
    return configuration


def _replies(configuration: SmsConfiguration) -> list[str]:
    return list(
        Message.objects.filter(configuration=configuration, direction=Direction.OUT)
        .order_by("id")
        .values_list("body", flat=True)
    )


@pytest.mark.django_db
def test_the_tenant_replies_when_the_configuration_has_no_reply_of_its_own(world: World) -> None:
    configuration = _configuration(world.tenant_a, "Main", stop_reply="", help_reply="")
    make_rule(world.tenant_a, did_range="12125550101", extension=world.objects_a[Extension])
    tenant_settings_update(
        tenant=world.tenant_a,
        actor=world.admin_a,
        stop_reply="Tenant: unsubscribed",
        help_reply="Tenant: help",
        start_reply="Tenant: welcome back",
    )
    world.tenant_a.refresh_from_db()
    remote = "+13125550123"

    receive(configuration, did="+12125550101", remote=remote, text="HELP")
    receive(configuration, did="+12125550101", remote=remote, text="STOP")
    receive(configuration, did="+12125550101", remote=remote, text="START")
    receive(configuration, did="+12125550101", remote=remote, text="START")

    assert _replies(configuration) == [
        "Tenant: help",
        "Tenant: unsubscribed",
        "Tenant: welcome back",
    ]


@pytest.mark.django_db
def test_a_configurations_own_reply_wins_and_empty_everywhere_sends_nothing(world: World) -> None:
    own = _configuration(world.tenant_a, "Own", stop_reply="Own: bye")
    make_rule(world.tenant_a, did_range="12125550101", extension=world.objects_a[Extension])
    tenant_settings_update(tenant=world.tenant_a, actor=world.admin_a, stop_reply="Tenant: bye")
    silent = _configuration(world.tenant_b, "Silent", stop_reply="", help_reply="")
    make_rule(world.tenant_b, did_range="12125550111", extension=world.objects_b[Extension])

    receive(own, did="+12125550101", remote="+13125550124", text="STOP")
    receive(silent, did="+12125550111", remote="+13125550124", text="STOP")
    receive(silent, did="+12125550111", remote="+13125550124", text="HELP")
    receive(silent, did="+12125550111", remote="+13125550124", text="START")

    assert _replies(own) == ["Own: bye"]
    assert _replies(silent) == []
