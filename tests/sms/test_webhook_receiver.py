"""The webhook URL: stored before acknowledged, exact answers, nothing lost, nothing doubled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError
from django.test import Client

from sms.models import DeliveryStatus, Message, MessageStatus, WebhookDelivery
from sms.services.configurations import sms_configuration_rotate_webhook
from sms.tasks import process_webhook
from tenants.models import Extension
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voipms"


def _body(name: str, **changes: Any) -> bytes:
    payload = json.loads((FIXTURES / name).read_text())
    payload["data"]["payload"]["to"][0]["phone_number"] = changes.get("to", "2125550101")
    payload["data"]["payload"]["from"]["phone_number"] = changes.get("sender", "8457231213")
    if "id" in changes:
        payload["data"]["id"] = payload["data"]["payload"]["id"] = changes["id"]
    return json.dumps(payload).encode()


def _path(configuration: Any) -> str:
    return f"/hooks/voipms/{configuration.webhook_token}/"


@pytest.fixture
def setup(world: World) -> Any:
    configuration = make_configuration(world.tenant_a)
    extension = Extension.objects.for_tenant(world.tenant_a).get(number="101")
    make_rule(world.tenant_a, did_range="12125550100-12125550109", extension=extension)
    return configuration


def _post(client: Client, configuration: Any, body: bytes, **extra: Any) -> Any:
    return client.post(_path(configuration), body, content_type="application/json", **extra)


@pytest.mark.django_db
def test_a_webhook_is_stored_answered_ok_and_processed_after_commit(
    setup: Any, client_for: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(None)
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(client, setup, _body("sms.json"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.RECEIVED
    assert json.loads(bytes(delivery.body))["data"]["id"] == 110997718
    assert len(callbacks) == 1
    assert not Message.objects.exists()  # processing waits for the worker

    process_webhook(delivery.pk)
    message = Message.objects.get()
    assert message.status == MessageStatus.ROUTED
    assert (message.did, message.remote) == ("+12125550101", "+18457231213")
    assert message.routed_to == "extension 101"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    setup.refresh_from_db()
    assert setup.last_webhook_at is not None


@pytest.mark.django_db
def test_processing_the_same_delivery_twice_makes_one_message(setup: Any, client_for: Any) -> None:
    _post(client_for(None), setup, _body("sms.json"))
    delivery = WebhookDelivery.objects.get()
    process_webhook(delivery.pk)
    process_webhook(delivery.pk)
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_repeated_webhook_is_kept_as_a_duplicate_and_makes_no_second_message(
    setup: Any, client_for: Any
) -> None:
    client = client_for(None)
    for _ in range(2):
        assert _post(client, setup, _body("sms.json")).status_code == 200
    for delivery in WebhookDelivery.objects.order_by("id"):
        process_webhook(delivery.pk)
    assert Message.objects.count() == 1
    statuses = list(WebhookDelivery.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [DeliveryStatus.PROCESSED, DeliveryStatus.DUPLICATE]


@pytest.mark.django_db
def test_an_sms_and_an_mms_with_the_same_id_are_two_messages(setup: Any, client_for: Any) -> None:
    client = client_for(None)
    _post(client, setup, _body("sms.json", id=4242))
    _post(client, setup, _body("mms_one_media.json", id=4242))
    for delivery in WebhookDelivery.objects.order_by("id"):
        process_webhook(delivery.pk)
    assert sorted(Message.objects.values_list("kind", flat=True)) == ["mms", "sms"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("malformed_not_json.json", "not JSON"),
        ("malformed_missing_id.json", "data.payload.id is missing"),
        ("malformed_to_empty.json", "data.payload.to"),
    ],
)
def test_malformed_bodies_get_400_with_the_reason_and_are_kept(
    setup: Any, client_for: Any, fixture: str, reason: str
) -> None:
    body = (FIXTURES / fixture).read_bytes()
    response = _post(client_for(None), setup, body)
    assert response.status_code == 400
    assert reason in response.content.decode()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.REJECTED
    assert bytes(delivery.body) == body
    assert reason in delivery.reason


@pytest.mark.django_db
def test_an_oversized_body_gets_413_and_is_kept_truncated(setup: Any, client_for: Any) -> None:
    response = _post(client_for(None), setup, b"{" + b" " * (300 * 1024) + b"}")
    assert response.status_code == 413
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.REJECTED
    assert len(bytes(delivery.body)) == 256 * 1024


@pytest.mark.django_db
def test_an_unknown_token_is_a_bare_404_and_stores_nothing(setup: Any, client_for: Any) -> None:
    response = client_for(None).post(
        "/hooks/voipms/not-a-token/", _body("sms.json"), content_type="application/json"
    )
    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_other_methods_get_405(setup: Any, client_for: Any) -> None:
    response = client_for(None).put(_path(setup), b"{}", content_type="application/json")
    assert response.status_code == 405
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_disabled_configuration_stores_the_request_as_ignored_and_answers_ok(
    setup: Any, client_for: Any
) -> None:
    type(setup).objects.filter(pk=setup.pk).update(enabled=False)
    response = _post(client_for(None), setup, _body("sms.json"))
    assert (response.status_code, response.content) == (200, b"ok")
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


@pytest.mark.django_db
def test_message_channels_off_stores_the_request_as_ignored_and_answers_ok(
    setup: Any, client_for: Any, world: World
) -> None:
    type(world.tenant_a).objects.filter(pk=world.tenant_a.pk).update(message_channels_enabled=False)
    response = _post(client_for(None), setup, _body("sms.json"))
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.reason) == (
        DeliveryStatus.IGNORED,
        "Message Channels are off for this tenant",
    )


@pytest.mark.django_db
def test_a_database_outage_answers_503_so_the_sender_retries(
    setup: Any, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise DatabaseError("connection refused")

    monkeypatch.setattr("sms.webhooks.webhook_delivery_store", broken)
    response = _post(client_for(None), setup, _body("sms.json"))
    assert response.status_code == 503


@pytest.mark.django_db
def test_a_get_callback_is_stored_and_processed(setup: Any, client_for: Any) -> None:
    query = "from=8457231213&to=2125550102&message=Hi+there%21&id=777&date=2026-09-07+10%3A20%3A46"
    response = client_for(None).get(f"{_path(setup)}?{query}")
    assert (response.status_code, response.content) == (200, b"ok")
    process_webhook(WebhookDelivery.objects.get().pk)
    message = Message.objects.get()
    assert (message.body, message.did, message.source) == ("Hi there!", "+12125550102", "callback")


@pytest.mark.django_db
def test_a_rotated_url_is_dead_and_the_new_one_works(setup: Any, client_for: Any) -> None:
    client = client_for(None)
    old_path = _path(setup)
    sms_configuration_rotate_webhook(configuration=setup, actor=None)
    assert (
        client.post(old_path, _body("sms.json"), content_type="application/json").status_code == 404
    )
    setup.refresh_from_db()
    assert _post(client, setup, _body("sms.json")).status_code == 200


@pytest.mark.django_db
def test_a_did_outside_the_pool_is_unrouted_and_shown_in_health(
    setup: Any, client_for: Any
) -> None:
    # 2125550115 lies in tenant B's pool on the same trunk.
    _post(client_for(None), setup, _body("sms.json", to="2125550115"))
    process_webhook(WebhookDelivery.objects.get().pk)
    message = Message.objects.get()
    assert (message.status, message.routed_to) == (MessageStatus.UNROUTED, "DID not in pool")
    assert message.tenant_id == setup.tenant_id
    setup.refresh_from_db()
    assert "DID not in pool" in setup.last_error


@pytest.mark.django_db
def test_a_delivery_whose_task_was_lost_is_picked_up_by_the_sweeper(
    setup: Any, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from sms.services.outbox import deliveries_sweep

    _post(client_for(None), setup, _body("sms.json"))
    delivery = WebhookDelivery.objects.get()
    sent: list[int] = []
    monkeypatch.setattr("sms.tasks.process_webhook.delay", sent.append)
    assert deliveries_sweep() == 0  # too recent: its own task may still come
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    assert deliveries_sweep() == 1
    assert sent == [delivery.pk]
    process_webhook(delivery.pk)
    assert deliveries_sweep() == 0  # processed now: nothing left to pick up
    assert Message.objects.count() == 1
