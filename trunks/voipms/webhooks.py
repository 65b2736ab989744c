"""Turn VoIP.ms inbound webhooks (JSON POST) and URL callbacks (GET) into typed messages."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trunks.numbers import MAX_DID_LENGTH, MAX_SENDER_LENGTH, normalize_number
from trunks.voipms.formats import VOIPMS_TIMEZONE

MESSAGE_RECEIVED = "message.received"
SOURCE_WEBHOOK = "webhook"
SOURCE_CALLBACK = "callback"
KIND_SMS = "sms"
KIND_MMS = "mms"


# Provider ids are stored in 64-bit integer columns.
_MAX_PROVIDER_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_PLACEHOLDER = re.compile(r"\{[A-Za-z_]+\}")
_CALLBACK_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
)
# PostgreSQL text cannot hold NUL, and a lone surrogate (JSON "\ud800") cannot be written as
# UTF-8: a string with either could be acknowledged but never stored (ARCHITECTURE.md, Inbound
# flow), so both become U+FFFD at the door.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_DID = re.compile(r"\+?[0-9]+")
# Besides letters and digits, what senders write: "+1 (845) 555-0101", "Dr. Who", "AT&T".
_SENDER_PUNCTUATION = frozenset(" +-.()&@_'!?,:/#")
# VoIP.ms started in the 2000s and stamps a message when it arrives there: a time outside this
# window is a bug or a placeholder, and the arrival time serves better (ARCHITECTURE.md).
EARLIEST_SENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_SENT_TIME_AHEAD = timedelta(days=1)


class WebhookError(ValueError):
    """Raised when an inbound VoIP.ms request is malformed; str() gives a one-line reason."""

    def __init__(self, reason: str) -> None:
        """Keep the human reason."""
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class InboundMessage:
    """A message VoIP.ms delivered to one of our DIDs."""

    kind: str
    provider_id: int
    from_number: str
    to_number: str
    text: str
    media_urls: tuple[str, ...]
    received_at: datetime | None
    received_at_raw: str
    event_type: str
    source: str
    # Why received_at is None although VoIP.ms sent a time; empty when nothing was set aside.
    time_note: str = ""


@dataclass(frozen=True)
class IgnoredEvent:
    """An authentic webhook event that is acknowledged but not handled."""

    event_type: str
    reason: str


# Values shared by both forms --------------------------------------------------------------


def clean_text(value: str) -> str:
    """Return the text with NUL characters and lone surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def _did(raw: str, path: str) -> str:
    """Return our DID normalised, or raise WebhookError if it cannot be a phone number."""
    number = normalize_number(clean_text(raw))
    if not number:
        raise WebhookError(f"{path} is empty")
    # VoIP.ms DIDs are US and Canadian numbers (DOMAIN.md §2); short codes pass as digits.
    if not _DID.fullmatch(number):
        raise WebhookError(f'{path} is not a phone number: only digits and a leading "+"')
    if len(number) > MAX_DID_LENGTH:
        raise WebhookError(f"{path} is longer than {MAX_DID_LENGTH} characters")
    return number


def _sender(raw: str, path: str) -> str:
    """Return the sender normalised, or raise WebhookError if it is no number or sender ID."""
    number = normalize_number(clean_text(raw))
    if not number:
        raise WebhookError(f"{path} is empty")
    if len(number) > MAX_SENDER_LENGTH:
        raise WebhookError(f"{path} is longer than {MAX_SENDER_LENGTH} characters")
    for char in number:
        # Control and format characters (NUL, line breaks, right-to-left overrides) are how a
        # sender would be forged or garbled on screen; no real number or sender ID has them.
        if not (char.isalnum() or char in _SENDER_PUNCTUATION):
            raise WebhookError(
                f"{path} holds U+{ord(char):04X}, which no phone number or sender name has"
            )
    if not any(char.isalnum() for char in number):
        raise WebhookError(f"{path} has no letter or digit")
    return number


def _media_url(raw: str, path: str) -> str:
    """Return a media link stripped, or raise WebhookError if it is not an http(s) URL."""
    url = clean_text(raw).strip()
    if not url:
        raise WebhookError(f"{path} is empty")
    try:
        parts = urlsplit(url)
        web_link = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed host, such as "http://[bad"
        web_link = False
    # Media links are downloaded later (DOMAIN.md §3): anything but a web link cannot be.
    if not web_link:
        raise WebhookError(f"{path} is not an http or https URL")
    return url


def _plausible(parsed: datetime | None, now: datetime | None) -> tuple[datetime | None, str]:
    """Return the time and no note, or no time and why, when VoIP.ms cannot have meant it."""
    if parsed is None:
        return None, ""
    latest = (now or datetime.now(UTC)) + MAX_SENT_TIME_AHEAD
    if EARLIEST_SENT_TIME <= parsed <= latest:
        return parsed, ""
    return None, (
        f"VoIP.ms gave the sent time {parsed.isoformat()}, which cannot be right; "
        "the arrival time is used instead."
    )


# JSON webhook ------------------------------------------------------------------------------


def _object(value: Any, path: str) -> dict[str, Any]:
    """Return the value if it is a JSON object, or raise WebhookError naming its path."""
    if value is None:
        raise WebhookError(f"{path} is missing")
    if not isinstance(value, dict):
        raise WebhookError(f"{path} must be an object")
    return value


def _provider_id(value: Any, path: str) -> int:
    """Return an id given as a JSON integer or a string of digits."""
    # bool is an int in Python; `true` is never an id.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    else:
        raise WebhookError(f"{path} must be an integer")
    if not 0 < number <= _MAX_PROVIDER_ID:
        raise WebhookError(f"{path} is out of range")
    return number


def _phone_number(container: Mapping[str, Any], path: str) -> str:
    """Return the phone_number string of a JSON object, not yet checked or normalised."""
    value = container.get("phone_number")
    if value is None:
        raise WebhookError(f"{path}.phone_number is missing")
    # Numbers sometimes come back from VoIP.ms as JSON numbers rather than strings (DOMAIN.md §2).
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise WebhookError(f"{path}.phone_number must be a string")
    return value


def _to_number(payload: Mapping[str, Any]) -> str:
    """Return our DID: the first recipient of the payload."""
    recipients = payload.get("to")
    if recipients is None:
        raise WebhookError("data.payload.to is missing")
    if not isinstance(recipients, list) or not recipients:
        raise WebhookError("data.payload.to must be a non-empty list")
    first = recipients[0]
    if not isinstance(first, dict):
        raise WebhookError("data.payload.to[0] must be an object")
    return _did(_phone_number(first, "data.payload.to[0]"), "data.payload.to[0].phone_number")


def _from_number(payload: Mapping[str, Any]) -> str:
    """Return the sender of the payload."""
    sender = payload.get("from")
    if sender is None:
        raise WebhookError("data.payload.from.phone_number is missing")
    if not isinstance(sender, dict):
        raise WebhookError("data.payload.from must be an object")
    return _sender(_phone_number(sender, "data.payload.from"), "data.payload.from.phone_number")


def _kind(payload: Mapping[str, Any]) -> str:
    """Return "sms" or "mms" from the payload type."""
    value = payload.get("type")
    if value is None:
        raise WebhookError("data.payload.type is missing")
    # SMS and MMS ids come from separate counters, so the kind is part of the identity: never
    # guess it (DOMAIN.md §2, sendMMS).
    if not isinstance(value, str) or value.lower() not in (KIND_SMS, KIND_MMS):
        raise WebhookError("data.payload.type must be SMS or MMS")
    return value.lower()


def _text(payload: Mapping[str, Any]) -> str:
    """Return the text of the payload; an MMS may carry none."""
    value = payload.get("text")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebhookError("data.payload.text must be a string")
    return clean_text(value)


def _media_urls(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the media URLs of the payload."""
    media = payload.get("media")
    if media is None:
        return ()
    if not isinstance(media, list):
        raise WebhookError("data.payload.media must be a list")
    urls = []
    for index, item in enumerate(media):
        path = f"data.payload.media[{index}]"
        if not isinstance(item, dict):
            raise WebhookError(f"{path} must be an object")
        url = item.get("url")
        if url is None:
            raise WebhookError(f"{path}.url is missing")
        if not isinstance(url, str):
            raise WebhookError(f"{path}.url must be a string")
        urls.append(_media_url(url, f"{path}.url"))
    return tuple(urls)


def _received_at(payload: Mapping[str, Any]) -> tuple[datetime | None, str]:
    """Return the parsed and the verbatim time of receipt; None when VoIP.ms sent none."""
    raw = payload.get("received_at")
    if raw is None:
        return None, ""
    if not isinstance(raw, str):
        raise WebhookError("data.payload.received_at is not an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise WebhookError("data.payload.received_at is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        # Every captured webhook time is UTC ("+00:00"); read a bare time the same way.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed, clean_text(raw)


def _decode_json(body: bytes) -> Any:
    """Return the JSON value of a request body."""
    try:
        # utf-8-sig: a byte-order mark is harmless and some HTTP clients add one.
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WebhookError("body is not UTF-8") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise WebhookError("body is nested too deeply") from None
    except ValueError:
        # Also covers integers longer than Python's int/str conversion limit.
        raise WebhookError("body is not JSON") from None


def parse_webhook_json(
    body: bytes, *, now: datetime | None = None
) -> InboundMessage | IgnoredEvent:
    """Return the message in a VoIP.ms JSON webhook body, or the event to acknowledge and ignore.

    `now` is the arrival time that judges whether the sent time is plausible (default: now).
    """
    document = _decode_json(body)
    if not isinstance(document, dict):
        raise WebhookError("body is not a JSON object")
    data = _object(document.get("data"), "data")
    event_type = data.get("event_type")
    if event_type is None:
        raise WebhookError("data.event_type is missing")
    if not isinstance(event_type, str):
        raise WebhookError("data.event_type must be a string")
    event_type = clean_text(event_type)
    if event_type != MESSAGE_RECEIVED:
        # Only message.received has ever been seen; anything else is answered 200 so VoIP.ms
        # stops retrying, and kept for a human to read (DOMAIN.md §3).
        return IgnoredEvent(
            event_type=event_type,
            reason=f'event type "{event_type}" is not handled; only "{MESSAGE_RECEIVED}" is',
        )
    payload = _object(data.get("payload"), "data.payload")
    if payload.get("id") is not None:
        provider_id = _provider_id(payload["id"], "data.payload.id")
    elif data.get("id") is not None:
        provider_id = _provider_id(data["id"], "data.id")
    else:
        raise WebhookError("data.payload.id is missing")
    parsed, received_at_raw = _received_at(payload)
    received_at, time_note = _plausible(parsed, now)
    return InboundMessage(
        kind=_kind(payload),
        provider_id=provider_id,
        from_number=_from_number(payload),
        to_number=_to_number(payload),
        text=_text(payload),
        media_urls=_media_urls(payload),
        received_at=received_at,
        received_at_raw=received_at_raw,
        event_type=event_type,
        source=SOURCE_WEBHOOK,
        time_note=time_note,
    )


# Legacy URL callback -----------------------------------------------------------------------


def _single_values(query: Mapping[str, Any]) -> dict[str, str]:
    """Return the query with lower-case keys and one string value per key."""
    values: dict[str, str] = {}
    for key, value in query.items():
        if isinstance(value, Sequence) and not isinstance(value, str):
            # Django's QueryDict answers the last value of a repeated key; do the same.
            value = value[-1] if value else None
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        name = key.lower()
        # An exact lower-case key wins over an upper-case spelling of the same parameter.
        if name not in values or key == name:
            values[name] = value
    return values


def _required(values: Mapping[str, str], name: str) -> str:
    """Return a required callback parameter, stripped."""
    value = values.get(name, "").strip()
    if not value:
        raise WebhookError(f'query parameter "{name}" is missing')
    if _PLACEHOLDER.fullmatch(value):
        raise WebhookError(f'query parameter "{name}" holds an unsubstituted placeholder {value}')
    return value


def _callback_time(raw: str) -> datetime | None:
    """Return the callback timestamp if it is an ISO or "YYYY-MM-DD HH:MM:SS" time."""
    # {TIMESTAMP}'s format is undocumented: read only the shapes we know, else the caller falls
    # back to the arrival time (DOMAIN.md §3).
    if not _CALLBACK_TIME.fullmatch(raw):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VOIPMS_TIMEZONE)
    return parsed


def parse_callback_query(
    query: Mapping[str, str] | Mapping[str, list[str]], *, now: datetime | None = None
) -> InboundMessage:
    """Return the message in the decoded query parameters of a VoIP.ms URL callback.

    `now` is the arrival time that judges whether the sent time is plausible (default: now).
    """
    values = _single_values(query)
    from_number = _sender(_required(values, "from"), 'query parameter "from"')
    to_number = _did(_required(values, "to"), 'query parameter "to"')
    provider_id = _provider_id(_required(values, "id"), 'query parameter "id"')
    media = values.get("media", "")
    # {TIMESTAMP} and {MEDIA} come from the wiki only: an unsubstituted one means "none".
    if _PLACEHOLDER.fullmatch(media.strip()):
        media = ""
    entries = [entry for entry in media.split(",") if entry.strip()]
    media_urls = tuple(
        _media_url(entry, f'query parameter "media" entry {position}')
        for position, entry in enumerate(entries, start=1)
    )
    received_at_raw = clean_text(values.get("date", ""))
    received_at, time_note = _plausible(_callback_time(received_at_raw.strip()), now)
    return InboundMessage(
        # A callback carries no type: an MMS without media reads as SMS, a known limit of GET.
        kind=KIND_MMS if media_urls else KIND_SMS,
        provider_id=provider_id,
        from_number=from_number,
        to_number=to_number,
        text=clean_text(values.get("message", "")),
        media_urls=media_urls,
        received_at=received_at,
        received_at_raw=received_at_raw,
        event_type=MESSAGE_RECEIVED,
        source=SOURCE_CALLBACK,
        time_note=time_note,
    )


def _wsgi_text(qs: str) -> str:
    """Return a query string as Django reads it: WSGI bytes as UTF-8, else as Latin-1."""
    # WSGI hands the query string over as bytes spelled in Latin-1; a client that put raw UTF-8
    # into the URL means UTF-8, and Django's request.GET reads it so. Text that is not Latin-1,
    # or not UTF-8 once encoded, is kept as it is.
    try:
        return qs.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return qs


def parse_callback_query_string(qs: str, *, now: datetime | None = None) -> InboundMessage:
    """Return the message in the raw query string of a VoIP.ms URL callback ("+" is a space).

    The webhook view judges a callback and the worker processes it with this same function on
    the same stored string, so what was acknowledged is what gets stored.
    """
    query = parse_qs(_wsgi_text(qs).removeprefix("?"), keep_blank_values=True)
    return parse_callback_query(query, now=now)
