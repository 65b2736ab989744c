"""Inbound processing in one transaction: all or nothing, failures kept and retried, Reprocess."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sms.inbound import process
from sms.models import (
    Conversation,
    DeliveryStatus,
    Message,
    MessageStatus,
    WebhookDelivery,
)
from sms.sweep import deliveries_sweep
from sms.tasks import process_webhook, process_webhooks
from tenants.models import Extension
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule
from tests.tasks import TaskRecorder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voipms"


def _body(message_id: int = 1, text: str = "Hello") -> bytes:
    payload = json.loads((FIXTURES / "sms.json").read_text())
    payload["data"]["id"] = payload["data"]["payload"]["id"] = message_id
    payload["data"]["payload"]["to"][0]["phone_number"] = "2125550101"
    payload["data"]["payload"]["from"]["phone_number"] = "8457231213"
    payload["data"]["payload"]["text"] = text
    return json.dumps(payload).encode()


@pytest.fixture
def configuration(world: World) -> Any:
    return make_configuration(world.tenant_a)


@pytest.fixture
def routed_to_101(world: World, configuration: Any) -> Extension:
    extension = Extension.objects.for_tenant(world.tenant_a).get(number="101")
    make_rule(world.tenant_a, did_range="12125550100-12125550109", extension=extension)
    return extension


def _deliver(client_for: Any, configuration: Any, body: bytes) -> WebhookDelivery:
    response = client_for(None).post(
        f"/hooks/voipms/{configuration.webhook_token}/", body, content_type="application/json"
    )
    assert response.status_code == 200
    return WebhookDelivery.objects.order_by("-pk").first()


@pytest.mark.django_db(transaction=True)
def test_a_routed_message_takes_at_most_eight_statements_and_one_commit(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    published: TaskRecorder,
) -> None:
    delivery = _deliver(client_for, configuration, _body(1))
    with CaptureQueriesContext(connection) as queries:
        assert process.webhook_delivery_process(delivery_id=delivery.pk) == "processed"
    sql = [q["sql"] for q in queries.captured_queries]
    statements = [text for text in sql if text not in ("BEGIN", "COMMIT")]
    assert len(statements) <= 8, "\n".join(statements)
    assert sql.count("COMMIT") == 1
    assert not any(text.startswith("SAVEPOINT") for text in sql)
    message = Message.objects.get()
    assert (message.status, message.extension) == (MessageStatus.ROUTED, routed_to_101)


def _body_to(message_id: int, did: str, text: str) -> bytes:
    payload = json.loads(_body(message_id, text))
    payload["data"]["payload"]["to"][0]["phone_number"] = did
    return json.dumps(payload).encode()


@pytest.mark.django_db(transaction=True)
def test_a_batch_reads_the_routing_inputs_once_and_routes_as_one_by_one(
    world: World,
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    published: TaskRecorder,
) -> None:
    dids = [f"212555010{n}" for n in range(6)] + ["2125550150"]  # the last: no rule, in no pool
    deliveries = [
        _deliver(client_for, configuration, _body_to(100 + n, did, f"Batch {n}"))
        for n, did in enumerate(dids)
    ]
    with CaptureQueriesContext(connection) as queries:
        process_webhooks([delivery.pk for delivery in deliveries])

    sql = [q["sql"] for q in queries.captured_queries]
    rule_reads = [text for text in sql if 'FROM "sms_inboundrule"' in text]
    configuration_reads = [text for text in sql if text.startswith('SELECT "sms_smsconfiguration"')]
    assert len(rule_reads) == 1, rule_reads
    assert len(configuration_reads) == 1, configuration_reads
    assert sql.count("COMMIT") == len(dids)  # still one transaction per delivery
    messages = {m.did: m for m in Message.objects.all()}
    for did in dids[:-1]:
        assert messages[f"+1{did}"].status == MessageStatus.ROUTED
        assert messages[f"+1{did}"].extension == routed_to_101
    assert messages["+12125550150"].status == MessageStatus.UNROUTED
    assert messages["+12125550150"].routed_to == "DID not in pool"
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}


def _backlog(client_for: Any, configuration: Any, count: int, *, waited: float) -> list[int]:
    """Store `count` deliveries received `waited` seconds ago; return their ids, oldest first."""
    ids = [
        _deliver(client_for, configuration, _body_to(200 + n, "2125550101", f"Backlog {n}")).pk
        for n in range(count)
    ]
    WebhookDelivery.objects.filter(pk__in=ids).update(
        received_at=timezone.now() - timedelta(seconds=waited)
    )
    return ids


def _statuses(ids: list[int]) -> list[str]:
    status = dict(WebhookDelivery.objects.filter(pk__in=ids).values_list("pk", "status"))
    return [status[pk] for pk in ids]


@pytest.mark.django_db(transaction=True)
def test_a_small_batch_that_waited_in_a_backlog_takes_the_waiting_deliveries_after_it_along(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    published: TaskRecorder,
) -> None:
    older, first, *rest = _backlog(client_for, configuration, 8, waited=5)
    with CaptureQueriesContext(connection) as queries:
        process_webhooks([first])

    # The deliveries stored after it, not the older one (a task of its own is on its way).
    assert _statuses([older, first, *rest]) == ["received"] + ["processed"] * 7
    sql = [q["sql"] for q in queries.captured_queries]
    assert len([text for text in sql if '"sms_webhookdelivery"."id" >' in text]) == 1
    assert sql.count("COMMIT") == 7  # still one transaction per delivery
    assert len([text for text in sql if 'FROM "sms_inboundrule"' in text]) == 1
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.ROUTED}

    # Their own tasks, when they come, find nothing left to do.
    process_webhooks(rest[:3])
    assert Message.objects.count() == 7


@pytest.mark.django_db(transaction=True)
def test_a_backlog_is_taken_along_up_to_a_full_batch(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    published: TaskRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "BATCH_SIZE", 4)
    ids = _backlog(client_for, configuration, 7, waited=5)
    process_webhooks(ids[:2])
    assert _statuses(ids) == ["processed"] * 4 + ["received"] * 3
    process_webhooks(ids[:4])  # a full batch takes nothing along
    assert _statuses(ids) == ["processed"] * 4 + ["received"] * 3


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_did_not_wait_takes_nothing_along_and_looks_for_nothing(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    published: TaskRecorder,
) -> None:
    ids = [
        _deliver(client_for, configuration, _body_to(300 + n, "2125550101", f"Fresh {n}")).pk
        for n in range(3)
    ]
    with CaptureQueriesContext(connection) as queries:
        process_webhooks([ids[0]])
    assert _statuses(ids) == ["processed", "received", "received"]
    sql = [q["sql"] for q in queries.captured_queries]
    assert not [text for text in sql if '"sms_webhookdelivery"."id" >' in text]
    statements = [text for text in sql if not text.startswith(("BEGIN", "COMMIT"))]
    assert len(statements) <= 8, "\n".join(statements)


@pytest.mark.django_db(transaction=True)
def test_taking_a_backlog_along_stops_at_a_delivery_another_worker_holds(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    published: TaskRecorder,
) -> None:
    ids = _backlog(client_for, configuration, 5, waited=5)
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        # Another worker in the middle of processing the third delivery: its row is locked.
        try:
            with transaction.atomic():
                WebhookDelivery.objects.select_for_update().get(pk=ids[2])
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(10)
        process_webhooks([ids[0]])  # would block on the lock if it waited for it
        assert _statuses(ids) == ["processed", "processed", "received", "received", "received"]
    finally:
        release.set()
        thread.join(10)


@pytest.mark.django_db
def test_an_error_while_routing_leaves_nothing_half_written_and_marks_the_delivery_failed(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    delivery = _deliver(client_for, configuration, _body(2))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("mailbox on fire")

    monkeypatch.setattr(process, "_keywords", broken)
    with pytest.raises(RuntimeError):
        process_webhook(delivery.pk)

    # The message and its conversation were written before the error: both rolled back.
    assert not Message.objects.exists()
    assert not Conversation.objects.exists()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.reason == "processing failed: RuntimeError: mailbox on fire"
    assert delivery.attempts == 1
    assert delivery.next_try_at is not None
    assert delivery.next_try_at > timezone.now()
    configuration.refresh_from_db()
    assert "RuntimeError" in configuration.last_error


@pytest.mark.django_db
def test_the_sweeper_retries_a_failed_delivery_when_due_until_it_is_routed(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    published: TaskRecorder,
) -> None:
    delivery = _deliver(client_for, configuration, _body(3))
    real = process._keywords
    monkeypatch.setattr(process, "_keywords", lambda **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        process_webhook(delivery.pk)

    assert deliveries_sweep() == 0  # its backoff has not run out yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_try_at=timezone.now() - timedelta(seconds=1)
    )
    published.reset_mock()
    assert deliveries_sweep() == 1
    assert published.args("sms.process_webhooks") == [([delivery.pk],)]
    assert deliveries_sweep() == 0  # published once per sweep interval, not at every sweep

    monkeypatch.setattr(process, "_keywords", real)
    process_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_try_at) == (
        DeliveryStatus.PROCESSED,
        2,
        None,
    )
    assert Message.objects.get().status == MessageStatus.ROUTED


@pytest.mark.django_db
def test_after_the_last_try_a_failed_delivery_stays_failed_and_is_not_retried(
    configuration: Any,
    routed_to_101: Extension,
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    published: TaskRecorder,
    settings: Any,
) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    delivery = _deliver(client_for, configuration, _body(4))
    monkeypatch.setattr(process, "_keywords", lambda **kwargs: 1 / 0)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            process_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_try_at) == (
        DeliveryStatus.FAILED,
        2,
        None,
    )
    published.reset_mock()
    assert deliveries_sweep() == 0
    assert published.calls == []


@pytest.mark.django_db
def test_reprocess_routes_the_deliverys_own_message_again_and_never_calls_it_a_duplicate(
    world: World, configuration: Any, client_for: Any, published: TaskRecorder
) -> None:
    delivery = _deliver(client_for, configuration, _body(5))
    process_webhook(delivery.pk)
    message = Message.objects.get()
    assert (message.status, message.routed_to) == (
        MessageStatus.UNROUTED,
        "no inbound rule matches",
    )

    extension = Extension.objects.for_tenant(world.tenant_a).get(number="101")
    make_rule(world.tenant_a, did_range="12125550100-12125550109", extension=extension)
    process.webhook_deliveries_reprocess(
        tenant=world.tenant_a,
        deliveries=WebhookDelivery.objects.filter(pk=delivery.pk),
        actor=world.admin_a,
    )
    process_webhook(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert Message.objects.count() == 1
    message.refresh_from_db()
    assert (message.status, message.extension) == (MessageStatus.ROUTED, extension)
    conversation = Conversation.objects.get()
    assert (conversation.extension, conversation.unread_count) == (extension, 1)


@pytest.mark.django_db
def test_a_second_delivery_of_the_same_message_is_a_duplicate(
    configuration: Any, routed_to_101: Extension, client_for: Any
) -> None:
    first = _deliver(client_for, configuration, _body(6))
    second = _deliver(client_for, configuration, _body(6))
    process_webhook(first.pk)
    process_webhook(second.pk)
    assert Message.objects.count() == 1
    second.refresh_from_db()
    assert (second.status, second.reason) == (DeliveryStatus.DUPLICATE, "already received")
    assert Conversation.objects.get().unread_count == 1


@pytest.mark.django_db
def test_a_message_for_a_disabled_tenant_is_ignored_with_the_reason(
    world: World, configuration: Any, routed_to_101: Extension, client_for: Any
) -> None:
    delivery = _deliver(client_for, configuration, _body(7))
    type(world.tenant_a).objects.filter(pk=world.tenant_a.pk).update(enabled=False)
    process_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason) == (
        DeliveryStatus.IGNORED,
        "the tenant is disabled",
    )
    assert not Message.objects.exists()
