"""Tests of parsing VoIP.ms webhooks and URL callbacks, one per captured or crafted fixture."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trunks.voipms.webhooks import (
    IgnoredEvent,
    InboundMessage,
    WebhookError,
    parse_callback_query,
    parse_callback_query_string,
    parse_webhook_json,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "voipms"
NEW_YORK = ZoneInfo("America/New_York")
SENDER = "+18457231213"
DID = "+18455577768"
RECEIVED_RAW = "2026-09-07T14:20:46.000000+00:00"
RECEIVED = datetime(2026, 9, 7, 14, 20, 46, tzinfo=UTC)
MEDIA = "https://voip.ms/media/{}/media.{}"


@dataclass(frozen=True)
class Rejected:
    """The WebhookError reason a fixture must be refused with."""

    reason: str


def _webhook(
    provider_id: int,
    text: str,
    *,
    kind: str = "sms",
    media_urls: tuple[str, ...] = (),
    from_number: str = SENDER,
    received_at: datetime = RECEIVED,
    received_at_raw: str = RECEIVED_RAW,
) -> InboundMessage:
    """Return the message a JSON webhook fixture must parse to."""
    return InboundMessage(
        kind=kind,
        provider_id=provider_id,
        from_number=from_number,
        to_number=DID,
        text=text,
        media_urls=media_urls,
        received_at=received_at,
        received_at_raw=received_at_raw,
        event_type="message.received",
        source="webhook",
    )


EXPECTED: dict[str, InboundMessage | IgnoredEvent | Rejected] = {
    "sms.json": _webhook(110997718, "Connect webhook test 14:20:19"),
    "mms_one_media.json": _webhook(
        10239205,
        "Connect webhook MMS test",
        kind="mms",
        media_urls=(
            MEDIA.format("MTc4ODc5MDk2MzZhOWVjOGIzMmQ3MTc2YTllYzhiMzJkNzU3fDF8cG5nfE1NUw==", "png"),
        ),
        received_at=datetime(2026, 9, 7, 14, 22, 44, tzinfo=UTC),
        received_at_raw="2026-09-07T14:22:44.000000+00:00",
    ),
    "mms_three_media.json": _webhook(
        10239210,
        "Three pictures",
        kind="mms",
        media_urls=(
            MEDIA.format("MTc4ODc5MTAwMWE=", "jpg"),
            MEDIA.format("MTc4ODc5MTAwMmI=", "png"),
            MEDIA.format("MTc4ODc5MTAwM2M=", "amr"),
        ),
        received_at=datetime(2026, 9, 7, 14, 25, 1, tzinfo=UTC),
        received_at_raw="2026-09-07T14:25:01.000000+00:00",
    ),
    "mms_empty_text.json": _webhook(
        10239211, "", kind="mms", media_urls=(MEDIA.format("MTc4ODc5MTAwNGQ=", "png"),)
    ),
    "mms_null_text.json": _webhook(
        10239212, "", kind="mms", media_urls=(MEDIA.format("MTc4ODc5MTAwNWU=", "png"),)
    ),
    "sms_e164_numbers.json": _webhook(110997720, "E.164 mode"),
    "sms_11_digit_numbers.json": _webhook(110997721, "11 digits"),
    "sms_short_code.json": _webhook(110997722, "Your code is 482913", from_number="72975"),
    "sms_emoji_accents.json": _webhook(
        110997723,
        "Caf\u00e9 d\u00e9j\u00e0 vu \u00e0 Montr\u00e9al \U0001f44d\U0001f3fd "
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 \u00f1",
    ),
    "sms_unicode_escapes.json": _webhook(
        110997724,
        "Cr\u00e8me br\u00fbl\u00e9e \U0001f382 "
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    ),
    "sms_minimal_string_ids.json": InboundMessage(
        kind="sms",
        provider_id=110997726,
        from_number=SENDER,
        to_number=DID,
        text="minimal",
        media_urls=(),
        received_at=None,
        received_at_raw="",
        event_type="message.received",
        source="webhook",
    ),
    "unknown_event.json": IgnoredEvent(
        event_type="message.finalized",
        reason='event type "message.finalized" is not handled; only "message.received" is',
    ),
    "malformed_not_json.json": Rejected("body is not JSON"),
    "malformed_array.json": Rejected("body is not a JSON object"),
    "malformed_missing_data.json": Rejected("data is missing"),
    "malformed_missing_payload.json": Rejected("data.payload is missing"),
    "malformed_missing_id.json": Rejected("data.payload.id is missing"),
    "malformed_missing_from.json": Rejected("data.payload.from.phone_number is missing"),
    "malformed_missing_to.json": Rejected("data.payload.to is missing"),
    "malformed_to_empty.json": Rejected("data.payload.to must be a non-empty list"),
    "malformed_to_without_phone_number.json": Rejected(
        "data.payload.to[0].phone_number is missing"
    ),
    "malformed_id_letters.json": Rejected("data.payload.id must be an integer"),
    "malformed_media_not_list.json": Rejected("data.payload.media must be a list"),
    "malformed_media_url_not_string.json": Rejected("data.payload.media[1].url must be a string"),
    "malformed_type_unknown.json": Rejected("data.payload.type must be SMS or MMS"),
    "malformed_received_at.json": Rejected("data.payload.received_at is not an ISO 8601 time"),
    "callback_sms.txt": InboundMessage(
        kind="sms",
        provider_id=15601,
        from_number=SENDER,
        to_number=DID,
        text="Hello from the callback! Caf\u00e9 & cr\u00e8me 50% off \U0001f44d",
        media_urls=(),
        received_at=datetime(2026, 9, 7, 10, 20, 46, tzinfo=NEW_YORK),
        received_at_raw="2026-09-07 10:20:46",
        event_type="message.received",
        source="callback",
    ),
    "callback_mms.txt": InboundMessage(
        kind="mms",
        provider_id=10456720,
        from_number=SENDER,
        to_number=DID,
        text="Two pictures",
        media_urls=(
            MEDIA.format("MTc4ODc5MTAwOGg=", "jpg"),
            MEDIA.format("MTc4ODc5MTAwOWk=", "png"),
        ),
        received_at=datetime(2026, 9, 7, 10, 22, 44, tzinfo=NEW_YORK),
        received_at_raw="2026-09-07 10:22:44",
        event_type="message.received",
        source="callback",
    ),
    "callback_upper_case_keys.txt": InboundMessage(
        kind="sms",
        provider_id=15604,
        from_number=SENDER,
        to_number=DID,
        text="Upper case keys",
        media_urls=(),
        received_at=None,
        received_at_raw="1788790963",
        event_type="message.received",
        source="callback",
    ),
    "callback_missing_id.txt": Rejected('query parameter "id" is missing'),
    "callback_placeholder_from.txt": Rejected(
        'query parameter "from" holds an unsubstituted placeholder {FROM}'
    ),
}


def _parse_fixture(name: str) -> InboundMessage | IgnoredEvent:
    """Parse a fixture file the way the webhook view will: JSON body or raw query string."""
    path = FIXTURES / name
    if path.suffix == ".txt":
        return parse_callback_query_string(path.read_text(encoding="utf-8").rstrip("\n"))
    return parse_webhook_json(path.read_bytes())


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_fixture_parses_to_its_expected_outcome(
    name: str, expected: InboundMessage | IgnoredEvent | Rejected
) -> None:
    if isinstance(expected, Rejected):
        with pytest.raises(WebhookError) as caught:
            _parse_fixture(name)
        assert str(caught.value) == expected.reason
        assert caught.value.reason == expected.reason
    else:
        assert _parse_fixture(name) == expected


def test_every_fixture_file_has_an_expected_outcome() -> None:
    on_disk = {path.name for path in FIXTURES.iterdir() if path.is_file()}
    assert on_disk == set(EXPECTED)


# JSON webhook details --------------------------------------------------------------------


def _body(**payload_changes: Any) -> dict[str, Any]:
    """Return the captured SMS webhook with some payload fields replaced (None removes one)."""
    document = json.loads((FIXTURES / "sms.json").read_bytes())
    for key, value in payload_changes.items():
        if value is None:
            document["data"]["payload"].pop(key, None)
        else:
            document["data"]["payload"][key] = value
    return document


def _parse(document: Any) -> InboundMessage | IgnoredEvent:
    """Parse a JSON value as a webhook body."""
    return parse_webhook_json(json.dumps(document).encode())


def _reason(document: Any) -> str:
    """Return the reason the webhook body is refused."""
    with pytest.raises(WebhookError) as caught:
        _parse(document)
    return str(caught.value)


def test_webhook_error_is_a_value_error() -> None:
    assert issubclass(WebhookError, ValueError)


def test_webhook_prefers_the_payload_id_over_the_data_id() -> None:
    document = _body()
    document["data"]["id"] = 1
    message = _parse(document)
    assert isinstance(message, InboundMessage)
    assert message.provider_id == 110997718


def test_webhook_falls_back_to_the_data_id_when_the_payload_has_none() -> None:
    document = _body(id=None)
    document["data"]["id"] = "42"
    message = _parse(document)
    assert isinstance(message, InboundMessage)
    assert message.provider_id == 42


def test_webhook_names_a_bad_data_id() -> None:
    document = _body(id=None)
    document["data"]["id"] = 4.2
    assert _reason(document) == "data.id must be an integer"


@pytest.mark.parametrize(
    ("provider_id", "reason"),
    [
        (True, "data.payload.id must be an integer"),
        (1.5, "data.payload.id must be an integer"),
        ("12a", "data.payload.id must be an integer"),
        (" 12", "data.payload.id must be an integer"),
        ("-12", "data.payload.id must be an integer"),
        ("\u0661\u0662", "data.payload.id must be an integer"),
        ([12], "data.payload.id must be an integer"),
        (0, "data.payload.id is out of range"),
        (-5, "data.payload.id is out of range"),
        (2**63, "data.payload.id is out of range"),
        ("9" * 20, "data.payload.id must be an integer"),
    ],
)
def test_webhook_refuses_an_id_that_is_not_a_positive_64_bit_integer(
    provider_id: object, reason: str
) -> None:
    assert _reason(_body(id=provider_id)) == reason


def test_webhook_accepts_the_largest_64_bit_id() -> None:
    message = _parse(_body(id=str(2**63 - 1)))
    assert isinstance(message, InboundMessage)
    assert message.provider_id == 2**63 - 1


@pytest.mark.parametrize("kind", ["SMS", "sms", "Sms"])
def test_webhook_reads_the_type_case_insensitively(kind: str) -> None:
    message = _parse(_body(type=kind))
    assert isinstance(message, InboundMessage)
    assert message.kind == "sms"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"type": None}, "data.payload.type is missing"),
        ({"type": 1}, "data.payload.type must be SMS or MMS"),
        ({"text": 5}, "data.payload.text must be a string"),
        ({"from": "8457231213"}, "data.payload.from must be an object"),
        ({"from": {"phone_number": ""}}, "data.payload.from.phone_number is empty"),
        ({"from": {"phone_number": "  "}}, "data.payload.from.phone_number is empty"),
        ({"from": {"phone_number": True}}, "data.payload.from.phone_number must be a string"),
        ({"from": {"phone_number": ["1"]}}, "data.payload.from.phone_number must be a string"),
        ({"to": {"phone_number": "8455577768"}}, "data.payload.to must be a non-empty list"),
        ({"to": ["8455577768"]}, "data.payload.to[0] must be an object"),
        (
            {"media": ["https://voip.ms/media/x/media.png"]},
            "data.payload.media[0] must be an object",
        ),
        ({"media": [{"type": "image/png"}]}, "data.payload.media[0].url is missing"),
        ({"media": [{"url": " "}]}, "data.payload.media[0].url is empty"),
        ({"received_at": 1788790963}, "data.payload.received_at is not an ISO 8601 time"),
        (
            {"received_at": "2026-13-07T14:20:46Z"},
            "data.payload.received_at is not an ISO 8601 time",
        ),
    ],
)
def test_webhook_names_the_malformed_field(changes: dict[str, Any], reason: str) -> None:
    assert _reason(_body(**changes)) == reason


def test_webhook_accepts_numbers_sent_as_json_numbers() -> None:
    document = _body(to=[{"phone_number": 18455577768}])
    document["data"]["payload"]["from"] = {"phone_number": 8457231213}
    message = _parse(document)
    assert isinstance(message, InboundMessage)
    assert (message.from_number, message.to_number) == (SENDER, DID)


def test_webhook_uses_the_first_recipient_as_the_did() -> None:
    message = _parse(_body(to=[{"phone_number": "8455577768"}, {"phone_number": "8455577769"}]))
    assert isinstance(message, InboundMessage)
    assert message.to_number == DID


def test_webhook_without_media_has_no_media_urls() -> None:
    message = _parse(_body(media=None))
    assert isinstance(message, InboundMessage)
    assert message.media_urls == ()


def test_webhook_without_text_has_empty_text() -> None:
    message = _parse(_body(text=None))
    assert isinstance(message, InboundMessage)
    assert message.text == ""


def test_webhook_keeps_text_whitespace_as_sent() -> None:
    message = _parse(_body(text="  two spaces\nand a line  "))
    assert isinstance(message, InboundMessage)
    assert message.text == "  two spaces\nand a line  "


def test_webhook_without_received_at_leaves_the_time_to_the_caller() -> None:
    message = _parse(_body(received_at=None))
    assert isinstance(message, InboundMessage)
    assert (message.received_at, message.received_at_raw) == (None, "")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-09-07T14:20:46Z", RECEIVED),
        ("2026-09-07T14:20:46", RECEIVED),
        (
            "2026-09-07T10:20:46.5-04:00",
            datetime(2026, 9, 7, 10, 20, 46, 500000, tzinfo=timezone(timedelta(hours=-4))),
        ),
    ],
)
def test_webhook_reads_received_at_as_an_aware_time(raw: str, expected: datetime) -> None:
    message = _parse(_body(received_at=raw))
    assert isinstance(message, InboundMessage)
    assert message.received_at == expected
    assert message.received_at is not None
    assert message.received_at.tzinfo is not None
    assert message.received_at_raw == raw


def test_webhook_ignores_fields_it_does_not_know() -> None:
    document = _body(carrier="X", to=[{"phone_number": "8455577768", "line_type": "Wireless"}])
    document["meta"] = {"attempt": 2}
    document["data"]["occurred_at"] = "2026-09-07T14:20:46Z"
    assert _parse(document) == EXPECTED["sms.json"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("a string", "body is not a JSON object"),
        (None, "body is not a JSON object"),
        ({"data": None}, "data is missing"),
        ({"data": []}, "data must be an object"),
        ({"data": {"payload": {}}}, "data.event_type is missing"),
        ({"data": {"event_type": 7}}, "data.event_type must be a string"),
        ({"data": {"event_type": "message.received"}}, "data.payload is missing"),
        (
            {"data": {"event_type": "message.received", "payload": "x"}},
            "data.payload must be an object",
        ),
    ],
)
def test_webhook_names_a_malformed_envelope(document: Any, reason: str) -> None:
    assert _reason(document) == reason


def test_webhook_ignores_an_unknown_event_without_reading_its_payload() -> None:
    result = _parse({"data": {"event_type": "message.sent", "payload": "not an object"}})
    assert isinstance(result, IgnoredEvent)
    assert result.event_type == "message.sent"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body is not JSON"),
        (b"ok", "body is not JSON"),
        (b"\xff\xfe{}", "body is not UTF-8"),
        (b'{"data": "caf\xe9"}', "body is not UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "body is nested too deeply"),
        (b'{"data": {"id": ' + b"9" * 5000 + b"}}", "body is not JSON"),
    ],
)
def test_webhook_refuses_bodies_that_are_not_json_text(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_webhook_json(body)
    assert str(caught.value) == reason


def test_webhook_tolerates_a_byte_order_mark() -> None:
    body = b"\xef\xbb\xbf" + (FIXTURES / "sms.json").read_bytes()
    assert parse_webhook_json(body) == EXPECTED["sms.json"]


# Property tests ------------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["", "SMS", "MMS", "message.received", "8455577768", "+1", "{FROM}"])
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def _mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Return a strategy drawing a valid value three times in four, any JSON value otherwise."""
    return st.one_of(valid, valid, valid, json_values)


def _object_with(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Return a strategy for an object with these fields, all present or each maybe absent."""
    return _mostly(st.fixed_dictionaries(fields) | st.fixed_dictionaries({}, optional=fields))


provider_ids = st.integers(-1, 2**64) | st.from_regex(r"[0-9]{1,22}", fullmatch=True)
phone_numbers = _mostly(st.from_regex(r"\+?1?[0-9]{3,11}", fullmatch=True))
webhook_like = _object_with(
    {
        "data": _object_with(
            {
                "id": _mostly(provider_ids),
                "event_type": _mostly(st.just("message.received")),
                "record_type": json_values,
                "payload": _object_with(
                    {
                        "id": _mostly(provider_ids),
                        "to": _mostly(
                            st.lists(_object_with({"phone_number": phone_numbers}), max_size=3)
                        ),
                        "from": _object_with({"phone_number": phone_numbers}),
                        "text": _mostly(st.text()),
                        "type": _mostly(st.sampled_from(["SMS", "MMS", "mms"])),
                        "media": _mostly(
                            st.lists(_object_with({"url": _mostly(st.text())}), max_size=3)
                        ),
                        "received_at": _mostly(
                            st.datetimes(timezones=st.none() | st.timezones()).map(
                                datetime.isoformat
                            )
                            | st.text(max_size=40)
                        ),
                    }
                ),
            }
        ),
    }
)


@given(st.binary())
def test_webhook_raises_only_webhook_error_on_any_bytes(body: bytes) -> None:
    try:
        result = parse_webhook_json(body)
    except WebhookError:
        return
    assert isinstance(result, InboundMessage | IgnoredEvent)


@given(json_values | webhook_like)
def test_webhook_raises_only_webhook_error_on_any_json_value(document: Any) -> None:
    try:
        result = parse_webhook_json(json.dumps(document).encode())
    except WebhookError:
        return
    assert isinstance(result, InboundMessage | IgnoredEvent)


@given(
    provider_id=st.integers(1, 2**63 - 1),
    # NUL and lone surrogates are the characters that are not kept (see the U+FFFD tests).
    text=st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"])),
    urls=st.lists(
        st.from_regex(r"https://voip\.ms/media/[A-Za-z0-9=]{1,20}/media\.png", fullmatch=True),
        max_size=3,
    ),
)
def test_webhook_keeps_id_text_and_media_of_any_message(
    provider_id: int, text: str, urls: list[str]
) -> None:
    body = _body(id=provider_id, text=text, type="MMS", media=[{"url": url} for url in urls])
    message = _parse(body)
    assert isinstance(message, InboundMessage)
    assert (message.provider_id, message.text, message.media_urls) == (
        provider_id,
        text,
        tuple(urls),
    )


# Legacy URL callback details ---------------------------------------------------------------

CALLBACK = {
    "from": "8457231213",
    "to": "8455577768",
    "message": "hi",
    "id": "15601",
    "date": "2026-09-07 10:20:46",
    "media": "",
}


def _callback(**changes: str | None) -> InboundMessage:
    """Parse the standard callback parameters with some replaced (None removes one)."""
    query = {key: value for key, value in {**CALLBACK, **changes}.items() if value is not None}
    return parse_callback_query(query)


def _callback_reason(**changes: str | None) -> str:
    """Return the reason the callback parameters are refused."""
    with pytest.raises(WebhookError) as caught:
        _callback(**changes)
    return str(caught.value)


def test_callback_reads_a_decoded_mapping() -> None:
    assert _callback() == InboundMessage(
        kind="sms",
        provider_id=15601,
        from_number=SENDER,
        to_number=DID,
        text="hi",
        media_urls=(),
        received_at=datetime(2026, 9, 7, 10, 20, 46, tzinfo=NEW_YORK),
        received_at_raw="2026-09-07 10:20:46",
        event_type="message.received",
        source="callback",
    )


def test_callback_takes_the_last_value_of_a_repeated_parameter_like_django() -> None:
    query = {key: [value] for key, value in CALLBACK.items()}
    query["message"] = ["first", "second"]
    query["media"] = []
    message = parse_callback_query(query)
    assert message.text == "second"
    assert message.media_urls == ()


def test_callback_prefers_the_lower_case_spelling_of_a_parameter() -> None:
    message = parse_callback_query({**CALLBACK, "MESSAGE": "upper"})
    assert message.text == "hi"
    upper_first = parse_callback_query({"MESSAGE": "upper", **CALLBACK})
    assert upper_first.text == "hi"


@pytest.mark.parametrize("name", ["from", "to", "id"])
def test_callback_names_a_missing_required_parameter(name: str) -> None:
    assert _callback_reason(**{name: None}) == f'query parameter "{name}" is missing'
    assert _callback_reason(**{name: " "}) == f'query parameter "{name}" is missing'


@pytest.mark.parametrize(
    ("name", "placeholder"), [("from", "{FROM}"), ("to", "{TO}"), ("id", "{ID}")]
)
def test_callback_refuses_an_unsubstituted_placeholder(name: str, placeholder: str) -> None:
    assert _callback_reason(**{name: placeholder}) == (
        f'query parameter "{name}" holds an unsubstituted placeholder {placeholder}'
    )


def test_callback_keeps_a_message_that_looks_like_a_placeholder() -> None:
    assert _callback(message="{MESSAGE}").text == "{MESSAGE}"


@pytest.mark.parametrize(
    ("provider_id", "reason"), [("abc", "must be an integer"), ("0", "is out of range")]
)
def test_callback_refuses_an_id_that_is_not_a_positive_integer(
    provider_id: str, reason: str
) -> None:
    assert _callback_reason(id=provider_id) == f'query parameter "id" {reason}'


def test_callback_without_message_has_empty_text() -> None:
    assert _callback(message=None).text == ""


def test_callback_splits_media_on_commas_and_skips_empty_entries() -> None:
    message = _callback(media=" https://a.example/1.png, ,https://a.example/2.jpg,")
    assert message.kind == "mms"
    assert message.media_urls == ("https://a.example/1.png", "https://a.example/2.jpg")


def test_callback_treats_an_unsubstituted_media_placeholder_as_no_media() -> None:
    message = _callback(media="{MEDIA}")
    assert (message.kind, message.media_urls) == ("sms", ())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-09-07 10:20:46", datetime(2026, 9, 7, 10, 20, 46, tzinfo=NEW_YORK)),
        ("2026-01-07 10:20:46", datetime(2026, 1, 7, 15, 20, 46, tzinfo=UTC)),
        ("2026-09-07T10:20:46", datetime(2026, 9, 7, 10, 20, 46, tzinfo=NEW_YORK)),
        ("2026-09-07T14:20:46Z", datetime(2026, 9, 7, 14, 20, 46, tzinfo=UTC)),
        ("2026-09-07T14:20:46.123+00:00", datetime(2026, 9, 7, 14, 20, 46, 123000, tzinfo=UTC)),
    ],
)
def test_callback_reads_iso_and_eastern_wall_clock_dates(raw: str, expected: datetime) -> None:
    message = _callback(date=raw)
    assert message.received_at == expected
    assert message.received_at_raw == raw


@pytest.mark.parametrize(
    "raw",
    ["", "1788790963", "{TIMESTAMP}", "09/07/2026 10:20", "2026-09-07", "2026-02-30 10:00:00"],
)
def test_callback_keeps_an_unknown_date_verbatim_without_a_time(raw: str) -> None:
    message = _callback(date=raw)
    assert message.received_at is None
    assert message.received_at_raw == raw


def test_callback_without_date_has_no_time() -> None:
    message = _callback(date=None)
    assert (message.received_at, message.received_at_raw) == (None, "")


def test_callback_query_string_reads_plus_as_a_space() -> None:
    message = parse_callback_query_string("?from=8457231213&to=8455577768&id=7&message=a+b%2Bc")
    assert message.text == "a b+c"


def test_callback_query_string_survives_an_unencoded_e164_plus() -> None:
    # An E.164 number put into the URL without percent-encoding reads back as " 1..." because
    # form encoding turns "+" into a space (DOMAIN.md §3).
    message = parse_callback_query_string("from=+18457231213&to=+18455577768&id=7")
    assert (message.from_number, message.to_number) == (SENDER, DID)


def test_callback_query_string_keeps_a_blank_message() -> None:
    message = parse_callback_query_string("from=8457231213&to=8455577768&id=7&message=")
    assert message.text == ""


@given(st.text())
def test_callback_query_string_raises_only_webhook_error_on_any_text(query: str) -> None:
    try:
        result = parse_callback_query_string(query)
    except WebhookError:
        return
    assert isinstance(result, InboundMessage)


@given(
    st.dictionaries(
        st.sampled_from(["from", "to", "id", "message", "date", "media", "FROM", "Id", "x"])
        | st.text(max_size=5),
        st.text() | st.lists(st.text(), max_size=3),
    )
)
def test_callback_raises_only_webhook_error_on_any_mapping(query: dict[str, Any]) -> None:
    try:
        result = parse_callback_query(query)
    except WebhookError:
        return
    assert isinstance(result, InboundMessage)


# What could not be stored is refused, or cleaned, at the door ------------------------------

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_webhook_turns_nul_and_lone_surrogates_into_replacement_characters() -> None:
    body = (
        (FIXTURES / "sms.json")
        .read_bytes()
        .replace(b'"Connect webhook test 14:20:19"', b'"a\\u0000b\\ud800c\\udc00\\ud83c\\udf82"')
    )
    message = parse_webhook_json(body)
    assert isinstance(message, InboundMessage)
    # A lone surrogate becomes U+FFFD; a proper pair is the character it encodes.
    assert message.text == "a\ufffdb\ufffdc\ufffd\U0001f382"


def test_webhook_cleans_an_unknown_event_type_it_quotes_in_its_reason() -> None:
    result = _parse({"data": {"event_type": "message.\x00sent\ud800"}})
    assert isinstance(result, IgnoredEvent)
    assert result.event_type == "message.\ufffdsent\ufffd"
    assert "\x00" not in result.reason


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("72975", "72975"),
        ("ACME Co.", "ACME Co."),
        ("AT&T", "AT&T"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("(845) 723-1213", SENDER),
        ("Montr\u00e9al", "Montr\u00e9al"),
        ("9" * 40, "9" * 40),
    ],
)
def test_webhook_keeps_short_codes_alphanumeric_and_foreign_senders(
    sender: str, expected: str
) -> None:
    message = _parse(_body(**{"from": {"phone_number": sender}}))
    assert isinstance(message, InboundMessage)
    assert message.from_number == expected


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("9" * 41, "is longer than 40 characters"),
        ("A" * 200, "is longer than 40 characters"),
        ("ACME\u202e", "holds U+202E, which no phone number or sender name has"),
        ("84572\x0031213", "holds U+FFFD, which no phone number or sender name has"),
        ("845\n7231213", "holds U+000A, which no phone number or sender name has"),
        ("\U0001f44d", "holds U+1F44D, which no phone number or sender name has"),
        ("+-.", "has no letter or digit"),
    ],
)
def test_webhook_refuses_a_sender_no_phone_or_sender_id_could_be(sender: str, reason: str) -> None:
    document = _body(**{"from": {"phone_number": sender}})
    assert _reason(document) == f"data.payload.from.phone_number {reason}"


@pytest.mark.parametrize(
    ("did", "reason"),
    [
        ("1" * 21, "is longer than 20 characters"),
        ("+" + "1" * 20, "is longer than 20 characters"),
        ("DID", 'is not a phone number: only digits and a leading "+"'),
        ("845557776\x00", 'is not a phone number: only digits and a leading "+"'),
        ("+44 20 7946 0958", 'is not a phone number: only digits and a leading "+"'),
    ],
)
def test_webhook_refuses_a_did_that_is_not_a_phone_number(did: str, reason: str) -> None:
    document = _body(to=[{"phone_number": did}])
    assert _reason(document) == f"data.payload.to[0].phone_number {reason}"


def test_webhook_accepts_a_did_of_exactly_twenty_characters() -> None:
    message = _parse(_body(to=[{"phone_number": "+" + "4" * 19}]))
    assert isinstance(message, InboundMessage)
    assert message.to_number == "+" + "4" * 19


def test_webhook_keeps_a_long_media_url_whole() -> None:
    url = "https://voip.ms/media/" + "A" * 2500 + "/media.png"
    message = _parse(_body(type="MMS", media=[{"url": f" {url} "}]))
    assert isinstance(message, InboundMessage)
    assert message.media_urls == (url,)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "voip.ms/media.png", "http://[bad", "x"]
)
def test_webhook_refuses_a_media_url_that_is_not_a_web_link(url: str) -> None:
    document = _body(type="MMS", media=[{"url": url}])
    assert _reason(document) == "data.payload.media[0].url is not an http or https URL"


@pytest.mark.parametrize(
    "raw",
    [
        "0001-01-01T00:00:00+00:00",
        "0001-01-01T00:00:00+14:00",
        "1999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-12:00",
        "2026-12-05T12:00:01+00:00",
    ],
)
def test_webhook_sets_an_impossible_time_aside_with_a_note(raw: str) -> None:
    message = parse_webhook_json(json.dumps(_body(received_at=raw)).encode(), now=NOW)
    assert isinstance(message, InboundMessage)
    assert message.received_at is None
    assert message.received_at_raw == raw
    assert "cannot be right; the arrival time is used instead" in message.time_note
    assert datetime.fromisoformat(raw).isoformat() in message.time_note


@pytest.mark.parametrize("raw", ["2000-01-01T00:00:00Z", "2026-12-05T12:00:00+00:00"])
def test_webhook_keeps_a_time_at_either_edge_of_the_plausible_window(raw: str) -> None:
    message = parse_webhook_json(json.dumps(_body(received_at=raw)).encode(), now=NOW)
    assert isinstance(message, InboundMessage)
    assert message.received_at == datetime.fromisoformat(raw)
    assert message.time_note == ""


def test_callback_sets_an_impossible_eastern_time_aside_with_a_note() -> None:
    message = parse_callback_query({**CALLBACK, "date": "9999-12-31 23:59:59"}, now=NOW)
    assert message.received_at is None
    assert message.time_note.startswith("VoIP.ms gave the sent time 9999-12-31T23:59:59-05:00")


def test_callback_query_string_turns_an_encoded_nul_into_a_replacement_character() -> None:
    message = parse_callback_query_string(
        "from=8457231213&to=8455577768&id=7&message=a%00b%ED%A0%80&date=%00"
    )
    assert message.text == "a\ufffdb\ufffd\ufffd\ufffd"
    assert message.received_at_raw == "\ufffd"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("from=%00&to=8455577768&id=7", 'query parameter "from" holds U+FFFD'),
        ("from=8457231213&to=845557776%00&id=7", 'query parameter "to" is not a phone number'),
        (
            "from=8457231213&to=8455577768&id=7&media=https%3A%2F%2Fa.example%2F1.png%2Cftp%3A%2F%2Fx",
            'query parameter "media" entry 2 is not an http or https URL',
        ),
    ],
)
def test_callback_query_string_refuses_numbers_and_media_that_cannot_be(
    query: str, reason: str
) -> None:
    with pytest.raises(WebhookError) as caught:
        parse_callback_query_string(query)
    assert str(caught.value).startswith(reason)


def test_callback_query_string_reads_raw_utf8_bytes_as_django_does() -> None:
    # WSGI spells the bytes of the query string as Latin-1 characters.
    raw = "from=8457231213&to=8455577768&id=7&message=Caf\u00e9 \U0001f44d"
    wsgi = raw.encode("utf-8").decode("latin-1")
    assert parse_callback_query_string(wsgi).text == "Caf\u00e9 \U0001f44d"
    # Bytes that are not UTF-8 are read as Latin-1, as Django's request.GET falls back to.
    latin = "from=8457231213&to=8455577768&id=7&message=caf\u00e9"
    assert parse_callback_query_string(latin).text == "caf\u00e9"
