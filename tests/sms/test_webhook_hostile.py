"""Hostile webhooks at the door: what is acknowledged becomes one message every page can show."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote_plus

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sms.models import DeliveryStatus, Direction, Message, SmsConfiguration, WebhookDelivery
from sms.tasks import process_webhook
from tenants.models import Extension, User
from tenants.services import tenant_update
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule
from trunks.voipms.webhooks import EARLIEST_SENT_TIME, MAX_SENT_TIME_AHEAD

MESSAGES_API = "/api/v1/messages/"
MESSAGES = "/tenant/sms/message/"
EXPORT = "/tenant/sms/message/export/"
DELIVERIES = "/tenant/sms/webhookdelivery/"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "voipms"
LONG_URL = "https://voip.ms/media/" + "A" * 2_500 + "/media.png"
# Characters PostgreSQL cannot store as text, or UTF-8 cannot encode.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

ClientFor = Callable[[User | None], Client]


@dataclass(frozen=True)
class Door:
    """The configuration hostile requests are sent to, and the clients that read the result."""

    configuration: SmsConfiguration
    webhooks: Client
    admin: Client


@dataclass(frozen=True)
class Hostile:
    """One generated request: a JSON POST body or a GET callback query string."""

    method: str
    body: bytes
    query: str
    text: str | None
    zone: str


@pytest.fixture
def door(world: World, client_for: ClientFor) -> Door:
    """Return tenant A's configuration, with a rule for its whole pool, and two clients."""
    configuration = make_configuration(world.tenant_a)
    extension = Extension.objects.for_tenant(world.tenant_a).get(number="101")
    make_rule(world.tenant_a, did_range="12125550100-12125550109", extension=extension)
    return Door(configuration, client_for(None), client_for(world.admin_a))


@pytest.fixture
def no_tasks() -> Iterator[None]:
    """Let on-commit callbacks run without a broker: every task they enqueue is a mock."""
    with mock.patch("core.tasks.publish"):
        yield


# Strategies ---------------------------------------------------------------------------------

SPECIAL = [
    "\x00",
    "\ud800",
    "\udfff",
    "\udc00\ud800",
    "\ufffd",
    "\u202e",  # right-to-left override
    "\u200f",
    "\ufeff",
    "שלום",
    "مرحبا",
    "👍🏽",
    "👨\u200d👩\u200d👧\u200d👦",
    "é",
    "\r\n",
    "\t",
    "{FROM}",
    "STOP",
    "HELP",
    "%00",
    "&",
    "=",
    "+",
    " ",
]
special = st.sampled_from(SPECIAL)
short_hostile_text = st.text(max_size=200) | st.lists(
    special | st.text(max_size=3), max_size=12
).map("".join)
hostile_text = st.one_of(
    short_hostile_text,
    # Huge: some fit in the 256 KiB body, some do not.
    st.tuples(special | st.just("x"), st.integers(1_000, 80_000)).map(lambda t: t[0] * t[1]),
)


def _mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    """Return a strategy drawing a valid value three times in four."""
    return st.one_of(valid, valid, valid, other)


pool_dids = st.sampled_from(["2125550101", "12125550105", "+12125550109", "212-555-0102"])
dids = _mostly(
    pool_dids,
    st.sampled_from(["2125550115", "8455577768", "72975", "+442079460958"])
    | st.from_regex(r"\+?[0-9]{15,30}", fullmatch=True)
    | short_hostile_text,
)
senders = _mostly(
    st.from_regex(r"\+?1?[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True)
    | st.from_regex(r"[0-9]{3,8}", fullmatch=True)
    | st.from_regex(r"[A-Za-z][A-Za-z0-9 .&-]{0,10}", fullmatch=True),
    st.from_regex(r"[0-9]{30,60}", fullmatch=True)
    | st.lists(special, min_size=1, max_size=50).map("".join)
    | st.text(max_size=60),
)
# Years 1 to 9999 (the defaults), naive or in any zone.
sent_times = st.datetimes(timezones=st.none() | st.timezones())
extreme_times = st.sampled_from(
    [
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59+00:00",
        "9999-12-31T23:59:59-12:00",
        "1999-12-31T23:59:59Z",
    ]
)
media_urls = _mostly(
    st.from_regex(r"https://voip\.ms/media/[A-Za-z0-9=]{1,40}/media\.(png|jpg|amr)", fullmatch=True)
    | st.integers(1, 3).map(lambda n: "https://voip.ms/media/" + "A" * 2_500 * n + "/m.png"),
    st.sampled_from(["javascript:alert(1)", "http://[bad", "file:///etc/passwd", " "])
    | short_hostile_text,
)
zones = st.sampled_from(["America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"])


@st.composite
def json_webhooks(draw: st.DrawFn) -> Hostile:
    """Draw a JSON POST shaped like VoIP.ms's, with hostile values in its fields."""
    text = draw(hostile_text)
    sender: Any = draw(senders | st.integers())
    received_at = draw(extreme_times | sent_times.map(datetime.isoformat))
    kind = draw(_mostly(st.sampled_from(["SMS", "MMS", "mms"]), st.sampled_from(["RCS", ""])))
    payload = {
        "id": draw(st.integers(1, 2**63 - 1)),
        "to": [{"status": "webhook_delivered", "phone_number": draw(dids)}],
        "from": {"phone_number": sender},
        "text": text,
        "type": kind,
        "media": [{"url": url} for url in draw(st.lists(media_urls, max_size=3))],
        "received_at": received_at,
        "record_type": "message",
    }
    document = {"data": {"id": payload["id"], "payload": payload, "event_type": "message.received"}}
    # Escaped (\u0000, \ud800) or raw; a raw lone surrogate is not UTF-8 and must be refused.
    ascii_only = draw(st.booleans())
    body = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    # The text VoIP.ms meant: JSON joins escaped surrogate pairs into one character.
    meant = json.loads(json.dumps(text))
    return Hostile("POST", body, "", meant, draw(zones))


def _encode(value: str, raw: bool) -> str:
    """Return a value percent-encoded, or with its non-ASCII characters left raw in the URL."""
    if not raw:
        return quote_plus(value, safe="", errors="surrogatepass")
    return "".join(
        char
        if ord(char) > 127 and not UNSTORABLE.match(char)
        else quote_plus(char, safe="", errors="surrogatepass")
        for char in value
    )


@st.composite
def callbacks(draw: st.DrawFn) -> Hostile:
    """Draw a GET URL callback with hostile values, raw bytes and broken percent-encodings."""
    raw = draw(st.booleans())
    text = draw(short_hostile_text)
    date = draw(extreme_times | sent_times.map(lambda t: t.replace(tzinfo=None).isoformat(" ")))
    values = {
        "from": draw(senders),
        "to": draw(dids),
        "message": text,
        "id": str(draw(st.integers(1, 2**63 - 1))),
        "date": date,
        "media": ",".join(draw(st.lists(media_urls, max_size=3))),
    }
    parts = [f"{key}={_encode(value, raw)}" for key, value in values.items()]
    odd = st.sampled_from(["%00", "%", "%ZZ", "%C3", "%FF%FE", "%ED%A0%80", "%2", "+%00+"])
    parts[2] += "".join(draw(st.lists(odd, max_size=3)))
    return Hostile("GET", b"", "&".join(parts), None, draw(zones))


# The property -------------------------------------------------------------------------------


def _send(door: Door, hostile: Hostile) -> Any:
    path = f"/hooks/voipms/{door.configuration.webhook_token}/"
    if hostile.method == "POST":
        return door.webhooks.post(path, hostile.body, content_type="application/json")
    return door.webhooks.get(f"{path}?{hostile.query}")


def _shown(client: Client, url: str) -> None:
    """Assert that a page answers 200, reading a streamed answer to its end."""
    response = client.get(url)
    assert response.status_code == 200, url
    if response.streaming:
        b"".join(response.streaming_content)


def _check_acknowledged(door: Door, hostile: Hostile, delivery: WebhookDelivery) -> None:
    """Assert that an acknowledged delivery became exactly one message every page shows."""
    message = Message.objects.get(direction=Direction.IN)
    assert message.delivery_id == delivery.pk
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason) == (DeliveryStatus.PROCESSED, "")
    for value in (message.body, message.remote, message.did, *message.media_urls):
        assert not UNSTORABLE.search(value)
    if hostile.text is not None:
        assert len(message.body) == len(hostile.text)  # kept whole, however long
    assert message.received_at is not None
    assert EARLIEST_SENT_TIME <= message.received_at <= delivery.received_at + MAX_SENT_TIME_AHEAD
    if message.received_at_note:
        assert message.received_at == delivery.received_at
    for url in (
        MESSAGES_API,
        f"{MESSAGES_API}{message.pk}/",
        MESSAGES,
        f"{MESSAGES}{message.pk}/change/",
        EXPORT,
        f"{DELIVERIES}{delivery.pk}/change/",
    ):
        _shown(door.admin, url)


def _check_refused(door: Door, response: Any, delivery: WebhookDelivery) -> None:
    """Assert that a refused delivery is kept as rejected with its reason, and made nothing."""
    assert delivery.status == DeliveryStatus.REJECTED
    assert delivery.reason
    assert delivery.reason == response.content.decode()[:500]
    assert not Message.objects.exists()
    _shown(door.admin, f"{DELIVERIES}{delivery.pk}/change/")


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(hostile=json_webhooks() | callbacks())
def test_an_acknowledged_webhook_is_one_message_and_a_refused_one_is_kept_rejected(
    door: Door,
    world: World,
    no_tasks: None,
    django_capture_on_commit_callbacks: Any,
    hostile: Hostile,
) -> None:
    # Each example runs in a savepoint rolled back at its end: examples cannot see each other.
    with transaction.atomic():
        tenant_update(tenant=world.tenant_a, timezone=hostile.zone)
        response = _send(door, hostile)
        event(f"{hostile.method} answered {response.status_code}")
        delivery = WebhookDelivery.objects.get()
        if response.status_code == 200:
            assert response.content == b"ok"
            with django_capture_on_commit_callbacks(execute=True):
                process_webhook(delivery.pk)
            _check_acknowledged(door, hostile, delivery)
        else:
            assert 400 <= response.status_code < 500, response.content
            _check_refused(door, response, delivery)
        transaction.set_rollback(True)


# The requests that used to be acknowledged and then lost --------------------------------------


def _webhook(**payload: Any) -> Hostile:
    """Return the captured SMS webhook, to one of tenant A's DIDs, with payload fields replaced."""
    document = json.loads((FIXTURES / "sms.json").read_bytes())
    document["data"]["payload"]["to"][0]["phone_number"] = "2125550101"
    document["data"]["payload"].update(payload)
    return Hostile("POST", json.dumps(document).encode(), "", None, "America/New_York")


def _callback(query: str) -> Hostile:
    return Hostile("GET", b"", query, None, "America/New_York")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hostile", "body", "media"),
    [
        (_webhook(text="a\x00b"), "a\ufffdb", []),
        (_webhook(text="\ud800 lone"), "\ufffd lone", []),
        (
            _webhook(type="MMS", media=[{"url": LONG_URL}]),
            "Connect webhook test 14:20:19",
            [LONG_URL],
        ),
        (_callback("from=8457231213&to=2125550101&id=9&message=a%00b"), "a\ufffdb", []),
    ],
    ids=["nul", "lone surrogate", "2500-character media URL", "callback with %00"],
)
def test_text_and_media_that_could_not_be_stored_now_are(
    door: Door, hostile: Hostile, body: str, media: list[str]
) -> None:
    assert _send(door, hostile).status_code == 200
    process_webhook(WebhookDelivery.objects.get().pk)
    message = Message.objects.get()
    assert (message.body, message.media_urls) == (body, media)
    assert list(message.media.values_list("url", flat=True)) == media


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (
            _webhook(**{"from": {"phone_number": "8" * 41}}),
            "data.payload.from.phone_number is longer than 40 characters",
        ),
        (
            _webhook(to=[{"phone_number": "2" * 21}]),
            "data.payload.to[0].phone_number is longer than 20 characters",
        ),
        (
            _callback("from=8457231213&to=2125550101%00&id=9"),
            'query parameter "to" is not a phone number: only digits and a leading "+"',
        ),
    ],
    ids=["41-character sender", "21-character DID", "callback DID with %00"],
)
def test_numbers_no_column_could_hold_are_refused_with_the_reason(
    door: Door, hostile: Hostile, reason: str
) -> None:
    response = _send(door, hostile)
    assert (response.status_code, response.content.decode()) == (400, reason)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.reason) == (DeliveryStatus.REJECTED, reason)
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00"])
def test_an_impossible_sent_time_gives_way_to_the_arrival_time_with_a_note_shown(
    door: Door, sent: str
) -> None:
    assert _send(door, _webhook(received_at=sent)).status_code == 200
    delivery = WebhookDelivery.objects.get()
    process_webhook(delivery.pk)
    message = Message.objects.get()
    assert message.received_at == delivery.received_at
    assert message.received_at_note == (
        f"VoIP.ms gave the sent time {sent}, which cannot be right; "
        "the arrival time is used instead."
    )
    listed = door.admin.get(MESSAGES_API).json()["results"][0]
    detail = door.admin.get(f"{MESSAGES_API}{message.pk}/").json()
    assert listed["received_at_note"] == detail["received_at_note"] == message.received_at_note
    page = door.admin.get(f"{MESSAGES}{message.pk}/change/")
    assert page.status_code == 200
    assert "which cannot be right" in page.content.decode()
    _shown(door.admin, MESSAGES)
    _shown(door.admin, EXPORT)
