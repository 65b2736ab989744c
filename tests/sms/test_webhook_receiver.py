"""The webhook URL: stored before acknowledged, exact answers, nothing lost, nothing doubled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.test import Client

from sms.configurations import sms_configuration_rotate_webhook
from sms.models import DeliveryStatus, Message, MessageStatus, WebhookDelivery
from sms.tasks import process_webhook
from tenants.models import Extension
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule
from tests.worker import session_database_url

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

    monkeypatch.setattr("sms.inbound.receive.webhook_delivery_accept", broken)
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

    from sms.sweep import deliveries_sweep

    _post(client_for(None), setup, _body("sms.json"))
    delivery = WebhookDelivery.objects.get()
    sent: list[list[int]] = []
    monkeypatch.setattr(
        "core.tasks.publish",
        lambda name, args, kwargs, countdown: (
            sent.append(args[0]) if name == "sms.process_webhooks" else None
        ),
    )
    assert deliveries_sweep() == 0  # too recent: its own task may still come
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    assert deliveries_sweep() == 1
    assert sent == [[delivery.pk]]
    process_webhook(delivery.pk)
    assert deliveries_sweep() == 0  # processed now: nothing left to pick up
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_a_malformed_body_to_an_unknown_token_is_a_404_and_stores_nothing(
    setup: Any, client_for: Any
) -> None:
    body = (FIXTURES / "malformed_not_json.json").read_bytes()
    response = client_for(None).post(
        "/hooks/voipms/not-a-token/", body, content_type="application/json"
    )
    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_the_stored_request_keeps_what_arrived(setup: Any, client_for: Any) -> None:
    body = _body("sms.json")
    response = _post(
        client_for(None),
        setup,
        body,
        HTTP_USER_AGENT="VoIP.ms webhook",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        HTTP_COOKIE="sessionid=not-kept",
        REMOTE_ADDR="198.51.100.7",
    )
    assert response.status_code == 200
    delivery = WebhookDelivery.objects.get()
    assert (delivery.tenant_id, delivery.configuration_id) == (setup.tenant_id, setup.pk)
    assert (delivery.method, delivery.content_type) == ("POST", "application/json")
    assert bytes(delivery.body) == body
    assert delivery.remote_addr == "198.51.100.7"
    assert delivery.headers["User-Agent"] == "VoIP.ms webhook"
    assert delivery.headers["X-Forwarded-For"] == "203.0.113.9"
    assert "Cookie" not in delivery.headers
    assert (delivery.status, delivery.processed_at, delivery.attempts) == ("received", None, 0)
    assert delivery.received_at is not None


@pytest.mark.django_db
def test_a_webhook_costs_one_sql_statement_once_its_arrival_is_noted(
    setup: Any, client_for: Any
) -> None:
    from django.test.utils import CaptureQueriesContext

    client = client_for(None)
    with CaptureQueriesContext(connection) as first:
        assert _post(client, setup, _body("sms.json", id=1)).status_code == 200
    assert any("UPDATE" in query["sql"] for query in first.captured_queries)
    setup.refresh_from_db()
    noted = setup.last_webhook_at
    assert noted is not None
    with CaptureQueriesContext(connection) as second:
        assert _post(client, setup, _body("sms.json", id=2)).status_code == 200
    assert [query["sql"].split()[0] for query in second.captured_queries] == ["INSERT"]
    setup.refresh_from_db()
    assert setup.last_webhook_at == noted  # noted at most once a minute
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count() == 2


@pytest.mark.django_db
def test_another_process_does_not_rewrite_a_recent_last_webhook_time(
    setup: Any, client_for: Any
) -> None:
    from sms.inbound import store as deliveries

    client = client_for(None)
    _post(client, setup, _body("sms.json", id=1))
    setup.refresh_from_db()
    noted = setup.last_webhook_at
    deliveries._last_noted.clear()  # as a second web process, which has noted nothing yet
    _post(client, setup, _body("sms.json", id=2))
    setup.refresh_from_db()
    assert setup.last_webhook_at == noted


@pytest.mark.django_db
def test_stored_deliveries_reach_the_workers_in_batches_after_commit(
    setup: Any,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.batching import Batcher
    from sms.inbound import store as deliveries

    published: list[list[int]] = []
    # A batcher whose thread would wait an hour: only the explicit flush below hands on.
    batcher = Batcher("test", published.append, interval=lambda: 3600.0)
    monkeypatch.setattr(deliveries, "_handoff", batcher)
    client = client_for(None)
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(3):
            _post(client, setup, _body("sms.json", id=900 + number))
        assert batcher.pending() == 0  # nothing before commit
    assert (batcher.pending(), published) == (3, [])
    deliveries.webhook_deliveries_flush()
    ids = list(WebhookDelivery.objects.order_by("id").values_list("id", flat=True))
    assert published == [ids]


@pytest.mark.django_db
def test_with_no_hand_off_interval_each_delivery_is_published_at_commit(
    setup: Any,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    published: list[list[int]] = []
    monkeypatch.setattr(
        "core.tasks.publish",
        lambda name, args, kwargs, countdown: (
            published.append(args[0]) if name == "sms.process_webhooks" else None
        ),
    )
    settings.HANDOFF_INTERVAL_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        _post(client_for(None), setup, _body("sms.json"))
    assert published == [[WebhookDelivery.objects.get().pk]]


@pytest.mark.django_db
def test_rejected_and_ignored_deliveries_are_not_handed_to_the_workers(
    setup: Any,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    published: list[list[int]] = []
    monkeypatch.setattr(
        "core.tasks.publish",
        lambda name, args, kwargs, countdown: (
            published.append(args[0]) if name == "sms.process_webhooks" else None
        ),
    )
    settings.HANDOFF_INTERVAL_SECONDS = 0
    client = client_for(None)
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, setup, (FIXTURES / "malformed_not_json.json").read_bytes())
        type(setup).objects.filter(pk=setup.pk).update(enabled=False)
        _post(client, setup, _body("sms.json"))
    assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == [
        DeliveryStatus.IGNORED,
        DeliveryStatus.REJECTED,
    ]
    assert published == []


@pytest.mark.django_db
def test_a_batch_goes_on_past_a_delivery_that_fails(
    setup: Any, client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sms.inbound import process
    from sms.tasks import process_webhooks

    client = client_for(None)
    for number in range(3):
        _post(client, setup, _body("sms.json", id=700 + number))
    first, broken, last = WebhookDelivery.objects.order_by("id").values_list("id", flat=True)
    real = process._process_one

    def failing_once(delivery_id: int, **kwargs: Any) -> Any:
        if delivery_id == broken:
            raise RuntimeError("boom")
        return real(delivery_id, **kwargs)

    monkeypatch.setattr(process, "_process_one", failing_once)
    process_webhooks([first, broken, last])
    assert Message.objects.count() == 2
    statuses = dict(WebhookDelivery.objects.values_list("id", "status"))
    assert statuses[first] == statuses[last] == DeliveryStatus.PROCESSED
    assert statuses[broken] == DeliveryStatus.RECEIVED  # left for the sweeper

    monkeypatch.setattr(process, "_process_one", real)
    process_webhooks([first, broken, last])  # a repeated batch: only the missing one is made
    assert Message.objects.count() == 3


@pytest.mark.django_db
def test_the_webhook_insert_is_a_prepared_statement_on_postgresql(
    setup: Any, client_for: Any
) -> None:
    assert _post(client_for(None), setup, _body("sms.json")).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in cursor.fetchall()]
    assert any(
        statement.startswith('INSERT INTO "sms_webhookdelivery"') for statement in statements
    )
    assert WebhookDelivery.objects.get().status == DeliveryStatus.RECEIVED


@pytest.mark.django_db
def test_prepared_statements_can_be_switched_off_for_old_poolers(
    setup: Any, client_for: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a server-bound cursor was opened")

    settings.DATABASE_PREPARED_STATEMENTS = False
    monkeypatch.setattr(psycopg, "Cursor", refuse)
    assert _post(client_for(None), setup, _body("sms.json")).status_code == 200
    assert WebhookDelivery.objects.get().status == DeliveryStatus.RECEIVED


@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_stored_when_its_connection_broke_since_the_last_request(
    setup: Any, client_for: Any
) -> None:
    # The INSERT goes out without a health check first; a broken connection is replaced.
    client = client_for(None)
    assert _post(client, setup, _body("sms.json", id=9001)).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(session_database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])

    response = _post(client, setup, _body("sms.json", id=9002))

    assert (response.status_code, response.content) == (200, b"ok")
    assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == [
        DeliveryStatus.RECEIVED,
        DeliveryStatus.RECEIVED,
    ]
