"""Tests of the getSMS/getMMS sweep that backfills messages a webhook missed."""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from freezegun import freeze_time

from sms.inbound.poll import poll_account, poll_accounts_enqueue
from sms.inbound.process import inbound_message_ingest
from sms.models import (
    MediaStatus,
    Message,
    MessageMedia,
    MessageStatus,
    SmsConfiguration,
    Source,
)
from tests.factories import World
from tests.sms.helpers import API_PASSWORD, make_configuration
from trunks.voipms.webhooks import InboundMessage

API_URL = "https://voip.ms/api/v1/rest.php"
EASTERN = ZoneInfo("America/New_York")
ROW = {
    "id": "15601",
    "date": "2026-09-07 10:20:46",
    "type": "1",
    "did": "2125550101",
    "contact": "8457231213",
    "message": "Are you open on Sunday?",
    "carrier_status": "received",
}
MMS_ROW = {
    "id": 15601,
    "date": "2026-09-07 10:22:44",
    "type": 1,
    "did": "2125550102",
    "contact": "8457231213",
    "message": "",
    "col_media1": "https://voip.ms/media/MTc4ODc5/media.png",
    "col_media2": "",
    "col_media3": "",
    "media": "https://voip.ms/media/MTc4ODc5/media.png",
}
NO_MESSAGES = {"status": "no_sms", "message": "There are no SMS messages"}

Answer = dict[str, Any]


@pytest.fixture(autouse=True)
def voipms_url(settings: object) -> None:
    settings.VOIPMS_API_URL = API_URL


def form_fields(request: requests.PreparedRequest) -> dict[str, str]:
    """Return the fields of the multipart form the VoIP.ms client posted."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True).decode()
        for part in message.iter_parts()
    }


class FakeVoipms:
    """Answer getSMS and getMMS from lists of rows, and remember what was asked."""

    def __init__(self, mocked: responses.RequestsMock) -> None:
        self.answers: dict[str, Answer | str] = {
            "getSMS": NO_MESSAGES,
            "getMMS": NO_MESSAGES,
        }
        self.requests: list[dict[str, str]] = []
        mocked.add_callback(responses.POST, API_URL, callback=self.answer)

    def rows(self, method: str, *rows: dict[str, Any]) -> None:
        self.answers[method] = {"status": "success", "sms": list(rows)}

    def answer(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        fields = form_fields(request)
        self.requests.append(fields)
        # Match the method as the brief says: by looking at the raw multipart body.
        method = "getMMS" if b"getMMS" in request.body else "getSMS"
        assert fields["method"] == method
        answer = self.answers[method]
        if isinstance(answer, str):
            return 522, {"Content-Type": "text/plain"}, answer
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)


@pytest.fixture
def voipms() -> Iterator[FakeVoipms]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield FakeVoipms(mocked)


@pytest.fixture
def configuration(world: World) -> SmsConfiguration:
    return make_configuration(world.tenant_a, username="Owner@Example.com")


def inbound_messages() -> list[Message]:
    return list(
        Message.objects.filter(direction="in", provider_account="owner@example.com").order_by(
            "kind", "provider_id"
        )
    )


@freeze_time("2026-09-08 02:30:00")
def test_poll_asks_for_received_messages_of_yesterday_and_today_in_new_york(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    poll_account(configuration_id=configuration.pk)

    # 02:30 UTC on the 8th is still the 7th in New York.
    assert [fields["method"] for fields in voipms.requests] == ["getSMS", "getMMS"]
    for fields in voipms.requests:
        assert fields["from"] == "2026-09-06"
        assert fields["to"] == "2026-09-07"
        assert fields["type"] == "1"
        assert fields["api_username"] == "Owner@Example.com"
        assert fields["api_password"] == API_PASSWORD
        assert "timezone" not in fields


def test_poll_recovers_a_message_no_webhook_brought(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    voipms.rows("getSMS", ROW)

    result = poll_account(configuration_id=configuration.pk)

    assert result is not None
    assert (result.seen, result.recovered, result.duplicates) == (1, 1, 0)
    [message] = inbound_messages()
    assert message.source == Source.POLL
    assert message.get_source_display() == "Recovered by poll"
    assert message.tenant_id == configuration.tenant_id
    assert message.configuration_id == configuration.pk
    assert (message.kind, message.provider_id) == ("sms", 15601)
    assert message.provider_account == "owner@example.com"
    assert (message.did, message.remote) == ("+12125550101", "+18457231213")
    assert message.body == "Are you open on Sunday?"
    assert message.received_at == datetime(2026, 9, 7, 10, 20, 46, tzinfo=EASTERN)
    # No inbound rule in this test: the message is kept, unrouted, for the tenant to see.
    assert message.status == MessageStatus.UNROUTED
    assert message.routed_to == "no inbound rule matches"


def test_a_second_poll_of_the_same_answer_creates_nothing(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    voipms.rows("getSMS", ROW)
    voipms.rows("getMMS", MMS_ROW)
    poll_account(configuration_id=configuration.pk)
    before = list(Message.objects.values_list("pk", "status", "source", "routed_to"))

    result = poll_account(configuration_id=configuration.pk)

    assert result is not None
    assert (result.recovered, result.duplicates) == (0, 2)
    assert list(Message.objects.values_list("pk", "status", "source", "routed_to")) == before
    assert MessageMedia.objects.filter(message__provider_account="owner@example.com").count() == 1


def test_a_message_received_by_webhook_then_polled_stays_one_message(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    webhook = inbound_message_ingest(
        configuration=configuration,
        inbound=InboundMessage(
            kind="sms",
            provider_id=15601,
            from_number="+18457231213",
            to_number="+12125550101",
            text="Are you open on Sunday?",
            media_urls=(),
            received_at=datetime(2026, 9, 7, 14, 20, 46, tzinfo=ZoneInfo("UTC")),
            received_at_raw="2026-09-07T14:20:46.000000+00:00",
            event_type="message.received",
            source="webhook",
        ),
        source=Source.WEBHOOK,
    )
    voipms.rows("getSMS", ROW)

    result = poll_account(configuration_id=configuration.pk)

    assert result is not None
    assert (result.recovered, result.duplicates) == (0, 1)
    [message] = inbound_messages()
    assert message.pk == webhook.message.pk
    assert message.source == Source.WEBHOOK


def test_poll_recovers_an_mms_with_its_media_apart_from_an_sms_of_the_same_id(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    # SMS and MMS ids come from separate counters (DOMAIN.md §2): 15601 twice is two messages.
    voipms.rows("getSMS", ROW)
    voipms.rows("getMMS", MMS_ROW)

    poll_account(configuration_id=configuration.pk)

    mms, sms = inbound_messages()
    assert (mms.kind, mms.provider_id, sms.kind, sms.provider_id) == ("mms", 15601, "sms", 15601)
    assert mms.source == Source.POLL
    assert mms.did == "+12125550102"
    assert mms.media_urls == ["https://voip.ms/media/MTc4ODc5/media.png"]
    media = MessageMedia.objects.get(message=mms)
    assert (media.url, media.status) == (MMS_ROW["col_media1"], MediaStatus.PENDING)


def test_poll_files_a_message_under_the_configuration_whose_tenant_owns_the_did(
    world: World, configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    # Tenant B uses the same VoIP.ms account (spelt differently) for its own DIDs.
    configuration_b = make_configuration(world.tenant_b, username="owner@EXAMPLE.com")
    voipms.rows("getSMS", {**ROW, "did": "12125550111"})

    poll_account(configuration_id=configuration.pk)

    [message] = inbound_messages()
    assert message.tenant_id == world.tenant_b.pk
    assert message.configuration_id == configuration_b.pk
    assert message.did == "+12125550111"
    assert not Message.objects.for_tenant(world.tenant_a).filter(provider_id=15601).exists()


def test_poll_keeps_a_did_in_no_pool_unrouted_under_the_polled_configuration(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    voipms.rows("getSMS", {**ROW, "did": "8455577768"})

    poll_account(configuration_id=configuration.pk)

    [message] = inbound_messages()
    assert message.configuration_id == configuration.pk
    assert message.status == MessageStatus.UNROUTED
    assert message.routed_to == "DID not in pool"


def test_poll_leaves_a_did_whose_tenant_switched_messaging_off(
    world: World, configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    make_configuration(world.tenant_b, username="owner@example.com")
    world.tenant_b.message_channels_enabled = False
    world.tenant_b.save(update_fields=["message_channels_enabled"])
    voipms.rows("getSMS", {**ROW, "did": "12125550111"})

    result = poll_account(configuration_id=configuration.pk)

    assert result is not None
    assert result.skipped == 1
    assert inbound_messages() == []


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"status": "ip_not_enabled", "message": ""}, "ip_not_enabled"),
        ({"status": "invalid_credentials", "message": ""}, "invalid_credentials"),
    ],
)
def test_poll_records_a_voipms_error_on_the_configuration_without_raising(
    configuration: SmsConfiguration,
    voipms: FakeVoipms,
    caplog: pytest.LogCaptureFixture,
    answer: Answer,
    code: str,
) -> None:
    voipms.answers["getSMS"] = answer

    result = poll_account(configuration_id=configuration.pk)

    assert result is not None
    assert code in result.error
    configuration.refresh_from_db()
    assert configuration.last_error.startswith(f"Polling VoIP.ms failed: {code}: ")
    assert configuration.last_error_at is not None
    assert code in caplog.text
    assert API_PASSWORD not in caplog.text
    assert API_PASSWORD not in configuration.last_error


def test_poll_keeps_the_sms_it_got_when_getmms_fails(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    voipms.rows("getSMS", ROW)
    voipms.answers["getMMS"] = {"status": "method_maintenance", "message": ""}

    result = poll_account(configuration_id=configuration.pk)

    assert result is not None
    assert result.recovered == 1
    configuration.refresh_from_db()
    assert "method_maintenance" in configuration.last_error


def test_poll_survives_a_cloudflare_page(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    voipms.answers["getSMS"] = "error code: 522"

    result = poll_account(configuration_id=configuration.pk)

    assert result is not None
    configuration.refresh_from_db()
    assert "bad_response" in configuration.last_error


def test_poll_of_a_disabled_configuration_calls_nobody(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(poll_enabled=False)

    assert poll_account(configuration_id=configuration.pk) is None

    assert voipms.requests == []


def test_poll_accounts_enqueue_polls_each_account_once(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:

    first = make_configuration(world.tenant_a, name="Main", username="shared@example.com")
    same_account = make_configuration(world.tenant_b, name="Main", username="SHARED@example.com")
    own = make_configuration(world.tenant_a, name="Own account", username="own@a.example")
    never = [
        same_account,
        make_configuration(world.tenant_a, name="Off", username="off@a.example", enabled=False),
        make_configuration(
            world.tenant_a, name="No poll", username="quiet@a.example", poll_enabled=False
        ),
        make_configuration(world.tenant_b, name="Channels off", username="b-only@b.example"),
    ]
    world.tenant_b.message_channels_enabled = False
    world.tenant_b.save(update_fields=["message_channels_enabled"])
    enqueued: list[int] = []
    monkeypatch.setattr(
        "core.tasks.publish",
        lambda name, args, kwargs, countdown: (
            enqueued.append(args[0]) if name == "sms.poll_voipms_account" else None
        ),
    )

    with django_capture_on_commit_callbacks(execute=True):
        chosen = poll_accounts_enqueue()

    assert {first.pk, own.pk} <= set(chosen)
    assert not {configuration.pk for configuration in never} & set(chosen)
    accounts = SmsConfiguration.objects.filter(pk__in=chosen).values_list("username", flat=True)
    assert len({account.lower() for account in accounts}) == len(chosen)
    assert sorted(enqueued) == sorted(chosen)


def test_poll_voipms_account_task_polls_the_configuration(
    configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    from sms.tasks import poll_voipms_account

    voipms.rows("getSMS", ROW)

    poll_voipms_account(configuration.pk)

    assert [message.source for message in inbound_messages()] == [Source.POLL]


def test_polled_text_with_a_nul_or_a_lone_surrogate_is_stored_cleaned() -> None:
    from sms.inbound.poll import _inbound
    from trunks.voipms.client import SmsRecord

    record = SmsRecord(
        id=1,
        kind="sms",
        date=datetime.now(tz=UTC),
        type=1,
        did="2125550101",
        contact="8457231213",
        message="a\x00b\ud800c",
    )
    assert _inbound(record).text == "a\ufffdb\ufffdc"
