"""The story of a sent message: status changes and attempts are written as plain INSERTs, the
rows the ORM would have written."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from sms.models import DeliveryAttempt, EventKind, MessageEvent, MessageStatus
from sms.outbound import deliver
from sms.outbound.events import EVENTS_PER_STATEMENT, statuses_record
from tests.factories import World
from tests.sms.helpers import make_configuration
from tests.sms.test_outbound_worker import queue
from tests.tasks import TaskRecorder


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, EVENTS_PER_STATEMENT + 50])
def test_status_changes_are_stored_as_the_orm_stores_them(
    world: World, published: TaskRecorder, count: int
) -> None:
    configuration = make_configuration(world.tenant_a, daily_send_limit=1000)
    messages = queue(configuration, [f"Story text {n:03d}" for n in range(count)])
    before = timezone.now()

    statuses_record(messages, status=MessageStatus.FAILED, code="c" * 60, detail="é" * 400)

    events = list(
        MessageEvent.objects.filter(message__in=messages, status=MessageStatus.FAILED).order_by(
            "message_id"
        )
    )
    assert [event.message_id for event in events] == sorted(m.pk for m in messages)
    assert {event.tenant_id for event in events} == {world.tenant_a.pk}
    assert {(event.kind, event.status) for event in events} == {("status", "failed")}
    assert {(event.code, event.detail) for event in events} == {("c" * 50, "é" * 300)}
    # One moment for the whole change, stored aware and read back exactly.
    moments = {event.at for event in events}
    assert len(moments) == 1
    (moment,) = moments
    assert before <= moment <= timezone.now()
    assert moment.tzinfo is not None
    # The same row as a model instance saved through the ORM would hold.
    saved = MessageEvent.objects.create(
        tenant_id=world.tenant_a.pk,
        message=messages[0],
        at=moment,
        status=MessageStatus.FAILED,
        code="c" * 50,
        detail="é" * 300,
    )
    fields = ("tenant_id", "message_id", "at", "kind", "status", "code", "detail")
    stored: Any = MessageEvent.objects.filter(pk=saved.pk).values(*fields).get()
    raw: Any = MessageEvent.objects.filter(pk=events[0].pk).values(*fields).get()
    assert raw == stored
    assert stored["kind"] == EventKind.STATUS


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("outcome", "code", "detail", "elapsed"),
    [("sent", "", "", 8.0123), ("retry", "x" * 70, "ü" * 500, None)],
)
def test_an_attempt_is_stored_as_the_orm_stores_it(
    world: World,
    published: TaskRecorder,
    outcome: str,
    code: str,
    detail: str,
    elapsed: float | None,
) -> None:
    configuration = make_configuration(world.tenant_a, daily_send_limit=1000)
    (message,) = queue(configuration, ["Attempt text"])
    before = timezone.now()

    deliver._record(message, outcome, code, detail, elapsed)

    attempt = DeliveryAttempt.objects.get(message=message)
    assert before <= attempt.at <= timezone.now()
    saved = DeliveryAttempt.objects.create(
        tenant_id=message.tenant_id,
        message=message,
        outcome=outcome,
        code=code[:50],
        detail=detail[:300],
        elapsed_ms=int(elapsed * 1000) if elapsed is not None else None,
    )
    fields = ("tenant_id", "message_id", "outcome", "code", "detail", "elapsed_ms")
    raw: Any = DeliveryAttempt.objects.filter(pk=attempt.pk).values(*fields).get()
    stored: Any = DeliveryAttempt.objects.filter(pk=saved.pk).values(*fields).get()
    assert raw == stored
    assert attempt.at.tzinfo is not None
