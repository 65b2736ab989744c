"""The story of a sent message: each status change is recorded, and POSTed where it was asked.

Every place that changes an outbound message's status calls `status_record` (or
`statuses_record` for several) after the change took effect. A message with a status callback
URL also gets a StatusCallback row for the change, delivered by its own task after commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from django.db import connection
from django.utils import timezone

from core.tasks import enqueue
from sms.models import EventKind, Message, MessageEvent, StatusCallback

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
    _events_insert(messages, at=now, status=status, code=code, detail=detail)
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


EVENT_COLUMNS = ("tenant", "message", "at", "kind", "status", "code", "detail")
EVENTS_PER_STATEMENT = 100


@lru_cache(maxsize=8)
def _events_insert_sql(rows: int) -> str:
    quote = connection.ops.quote_name
    column = {field.name: quote(field.column) for field in MessageEvent._meta.concrete_fields}
    table = quote(MessageEvent._meta.db_table)
    row = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
    return " ".join(
        [
            f"INSERT INTO {table} ({', '.join(column[name] for name in EVENT_COLUMNS)})",
            "VALUES " + ", ".join([row] * rows),
        ]
    )


def _events_insert(
    messages: list[Message], *, at: datetime, status: str, code: str, detail: str
) -> None:
    # Every send records two or three of these: written as one plain INSERT, the rows
    # bulk_create would write, without compiling a query each time.
    moment = connection.ops.adapt_datetimefield_value(at)
    # Plain strings: a raw statement would not turn a choices enum into its value.
    kind, status, code, detail = str(EventKind.STATUS), str(status), str(code), str(detail)
    with connection.cursor() as cursor:
        for start in range(0, len(messages), EVENTS_PER_STATEMENT):
            chunk = messages[start : start + EVENTS_PER_STATEMENT]
            params = [
                value
                for m in chunk
                for value in (m.tenant_id, m.pk, moment, kind, status, code, detail)
            ]
            cursor.execute(_events_insert_sql(len(chunk)), params)


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
