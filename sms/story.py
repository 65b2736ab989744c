"""What became of a message, told the same way in the API, the message log and its CSV.

`routed_to` is where a received message went, `unrouted_reason` why it went nowhere, and
`events` every status change, call to VoIP.ms and status callback try, oldest first. Events are
read from `message.events` and `message.attempts` (prefetch both for lists); a received message's
one status change (received, then routed, unrouted or ignored) is told from the message itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from core.clock import time_export
from sms.models import Direction, Message, MessageStatus


@dataclass(frozen=True)
class Event:
    at: datetime
    type: str
    status: str
    code: str = ""
    detail: str = ""


def message_routed_to(message: Message) -> dict[str, Any] | None:
    """Return {"type", "id", "name"} of where a received message went, or None."""
    if message.direction != Direction.IN or not message.route_type:
        return None
    return {"type": message.route_type, "id": message.route_id, "name": message.route_name}


def message_unrouted_reason(message: Message) -> str | None:
    """Return why a received message was not routed, or None."""
    if message.direction == Direction.IN and message.status == MessageStatus.UNROUTED:
        return message.routed_to or "not routed"
    return None


def message_events(message: Message) -> list[Event]:
    """Return the message's status changes, VoIP.ms calls and callback tries, oldest first."""
    if message.direction == Direction.IN:
        at = message.received_at or message.created_at
        events = [Event(at=at, type="status", status=MessageStatus.RECEIVED)]
        if message.status != MessageStatus.RECEIVED:
            events.append(
                Event(at=at, type="status", status=message.status, detail=_routing_detail(message))
            )
        return events
    events = [
        Event(at=e.at, type=e.kind, status=e.status, code=e.code, detail=e.detail)
        for e in message.events.all()
    ]
    events += [
        Event(at=a.at, type="attempt", status=a.outcome, code=a.code, detail=a.detail)
        for a in message.attempts.all()
    ]
    # Stable: at one instant, a status change comes before the call that follows it.
    return sorted(events, key=lambda event: event.at)


def _routing_detail(message: Message) -> str:
    """Say where a received message went without its rule's target (a URL may hold a token)."""
    if message.status == MessageStatus.UNROUTED:
        return message.routed_to
    if not message.route_type:
        return f"rule {message.rule_name}" if message.rule_name else ""
    detail = f"{message.route_type} {message.route_name}".strip()
    if message.route_type == "ring_group" and message.extension_id:
        detail += f" → {message.extension.number}"
    return detail


def events_text(message: Message, *, zone: tzinfo | None = None) -> str:
    """Return the events as one line each, for a CSV cell, timed in ISO 8601 in `zone`."""
    lines = []
    for event in message_events(message):
        parts = [time_export(event.at, zone), event.type, event.status]
        parts += [part for part in (event.code, event.detail) if part]
        lines.append(" ".join(parts))
    return "\n".join(lines)
