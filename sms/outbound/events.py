"""The story of a sent message: each status change is recorded, and POSTed where it was asked.

Every place that changes an outbound message's status calls `status_record` (or
`statuses_record` for several) after the change took effect. A message with a status callback
URL also gets a StatusCallback row for the change, delivered by its own task after commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from core.tasks import enqueue
from sms.models import Message, MessageEvent, StatusCallback

CALLBACK_TASK = "sms.deliver_status_callback"


def callback_body(*, message_id: int, status: str, code: str, detail: str, at: datetime) -> str:
    """Return the JSON POSTed to a status callback for one status change."""
    document = {
        "id": message_id,
        "status": status,
        "error_code": code or None,
        "error_message": detail or None,
        "at": at.isoformat(),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def statuses_record(
    messages: Iterable[Message], *, status: str, code: str = "", detail: str = ""
) -> None:
    """Record that these messages (tenant_id, pk and status_callback loaded) took `status`."""
    messages = list(messages)
    if not messages:
        return
    now = timezone.now()
    code, detail = code[:50], detail[:300]
    MessageEvent.objects.bulk_create(
        [
            MessageEvent(
                tenant_id=m.tenant_id,
                message_id=m.pk,
                at=now,
                status=status,
                code=code,
                detail=detail,
            )
            for m in messages
        ]
    )
    called = [m for m in messages if m.status_callback]
    if not called:
        return
    rows = StatusCallback.objects.bulk_create(
        [
            StatusCallback(
                tenant_id=m.tenant_id,
                message_id=m.pk,
                body=callback_body(
                    message_id=m.pk, status=status, code=code, detail=detail, at=now
                ),
                next_try_at=now,
                created_at=now,
            )
            for m in called
        ]
    )
    for row in rows:
        # PostgreSQL returns the ids of bulk-created rows.
        enqueue(CALLBACK_TASK, row.pk)


def status_record(message: Message, *, status: str, code: str = "", detail: str = "") -> None:
    """Record one message's status change (and queue its status callback, if it has one)."""
    statuses_record([message], status=status, code=code, detail=detail)


def statuses_record_by_id(
    ids: Iterable[int], *, status: str, code: str = "", detail: str = ""
) -> None:
    """Record a status change of messages known by id only (one query to load them)."""
    ids = list(ids)
    if not ids:
        return
    messages = Message.objects.filter(pk__in=ids).only("pk", "tenant_id", "status_callback")
    statuses_record(messages, status=status, code=code, detail=detail)
