"""Sending: the checks of message_send, and what each VoIP.ms answer makes of a queued message."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
import requests
import responses
from django.utils import timezone
from urllib3.exceptions import NewConnectionError

from core import limits as portal_limits
from core.errors import ApplicationError, NotAllowed
from sms.models import (
    DeliveryAttempt,
    Kind,
    Message,
    MessageStatus,
    OptOut,
    SmsConfiguration,
)
from sms.outbound import deliver as deliver_module
from sms.outbound.deliver import DeliveryOutcome, message_deliver
from sms.outbound.reconcile import carrier_status_update, message_reconcile
from sms.outbound.rules import outbound_rule_save, sms_caller_id_save
from sms.outbound.send import message_send
from sms.sweep import outbox_sweep, outbox_unstick
from tenants.models import Extension, SmsPermission, Tenant, User
from tests.factories import POOLS, World, shared_trunk
from tests.sms.helpers import API_PASSWORD, make_configuration
from trunks.models import Trunk
from trunks.services import trunk_assignment_save

API_URL = "https://voip.ms/api/v1/rest.php"
EASTERN = ZoneInfo("America/New_York")
SENDER = "+12125550100"  # first DID of tenant A's pool on the shared trunk
CONTACT = "3125550199"
CONTACT_E164 = "+13125550199"
SECOND_ROUTE_DID = "+16465550100"  # first DID of tenant A's pool on its own trunk
NO_SMS = {"status": "no_sms", "message": "There are no SMS messages"}

# Every status of DOMAIN.md §2 that VoIP.ms may answer to sendSMS, by what it must lead to.
TRANSIENT_CODES = [
    "method_maintenance",
    "unavailable_info",
    "tls_error",
    "api_limit_exceeded",
    "sms_wait_message",
]
WAIT_A_MINUTE_CODES = {"api_limit_exceeded", "sms_wait_message"}
# Failures of the DID or the account: another route (trunk, account, DID) may still succeed.
ROUTE_LEVEL_CODES = {
    "invalid_credentials": "username or API password",
    "missing_credentials": "username or API password is missing",
    "api_not_enabled": "API is not enabled",
    "ip_not_enabled": "allow-list",
    "missing_did": "No DID",
    "invalid_did": "not on this VoIP.ms account",
    "sms_failed": "SMS is enabled on this DID",
    "limit_reached": "daily sending limit",
    "invalid_media": "media",
}
# Failures of the message itself (or of our request): no route can help, nothing is retried.
MESSAGE_LEVEL_CODES = {
    "missing_method": "bug in the portal",
    "invalid_method": "bug in the portal",
    "missing_params": "bug in the portal",
    "invalid_dst": "10-digit",
    "message_empty": "empty",
    "sms_toolong": "160 bytes",
    "invalid_date": "date",
    "invalid_daterange": "92 days",
    "invalid_date_from": "date",
    # Empty-result statuses of reads make no sense for a send: a failure, never a success.
    "no_sms": "no_sms",
    "no_did": "no_did",
}
PERMANENT_CODES = {**ROUTE_LEVEL_CODES, **MESSAGE_LEVEL_CODES}

CLOUDFLARE_BLOCK = (
    "<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    "<body><h1>Sorry, you have been blocked</h1></body></html>"
)

Answer = dict[str, Any] | tuple[int, str, str] | BaseException


def form_fields(request: requests.PreparedRequest) -> dict[str, str]:
    """Return the fields of the multipart form the VoIP.ms client posted."""
    assert request.headers["Content-Type"].startswith("multipart/form-data")
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True).decode()
        for part in message.iter_parts()
    }


class FakeVoipms:
    """Answer API calls from queues of answers per method (and account); the last one repeats."""

    def __init__(self, mocked: responses.RequestsMock) -> None:
        self.calls: list[dict[str, str]] = []
        self.answers: dict[tuple[str, str | None], list[Answer]] = {}
        mocked.add_callback(responses.POST, API_URL, callback=self._respond)

    def answer(self, method: str, *answers: Answer, account: str | None = None) -> None:
        self.answers.setdefault((method, account), []).extend(answers)

    def sends(self) -> list[dict[str, str]]:
        return [call for call in self.calls if call["method"] in ("sendSMS", "sendMMS")]

    def reads(self) -> list[dict[str, str]]:
        return [call for call in self.calls if call["method"] in ("getSMS", "getMMS")]

    def _respond(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        fields = form_fields(request)
        self.calls.append(fields)
        # VoIP.ms usernames are e-mail addresses: the case does not matter.
        account = fields["api_username"].lower()
        queue = self.answers.get((fields["method"], account)) or self.answers.get(
            (fields["method"], None)
        )
        assert queue, f"unexpected VoIP.ms call {fields['method']}"
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, dict):
            return 200, {"Content-Type": "application/json"}, json.dumps(answer)
        status, content_type, body = answer
        return status, {"Content-Type": content_type}, body


@pytest.fixture(autouse=True)
def _outbound_settings(settings: Any) -> None:
    settings.VOIPMS_API_URL = API_URL
    settings.VOIPMS_REQUESTS_PER_SECOND = 1000
    settings.SMS_MAX_ATTEMPTS = 3
    settings.SMS_RETRY_BASE_SECONDS = 30.0
    settings.SMS_RETRY_MAX_SECONDS = 600.0
    settings.SMS_UNKNOWN_GRACE_SECONDS = 600
    settings.SMS_SENDING_STUCK_SECONDS = 900


@pytest.fixture(autouse=True)
def _fresh_limits(fresh_limits: None) -> None:
    """Every test starts with no send counted and no request slot taken."""


@pytest.fixture
def voipms() -> Iterator[FakeVoipms]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield FakeVoipms(mocked)


@pytest.fixture
def configuration(world: World) -> SmsConfiguration:
    """Return tenant A's configuration on the shared trunk (the factory's)."""
    return world.objects_a[SmsConfiguration]


@pytest.fixture
def second_route(world: World) -> SmsConfiguration:
    """Give tenant A a rule with two routes: the shared trunk, then its own trunk and account."""
    own_trunk = world.objects_a[Trunk]
    second = make_configuration(
        world.tenant_a, name="Own trunk", trunk=own_trunk, username="own@a.example"
    )
    outbound_rule_save(
        tenant=world.tenant_a,
        actor=None,
        name="Two routes",
        lengths="10;11",
        routes=[
            {"trunk": shared_trunk()},
            {"trunk": own_trunk, "caller_id": SECOND_ROUTE_DID.removeprefix("+")},
        ],
    )
    return second


@pytest.fixture
def send(
    world: World, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., list[Message]]:
    """Return a function that sends as tenant A's admin and checks a delivery was enqueued."""

    def run(body: str = "Your table is ready", *, did: str | None = SENDER, **kwargs: Any):
        kwargs.setdefault("user", world.admin_a)
        kwargs.setdefault("to", CONTACT)
        with django_capture_on_commit_callbacks() as callbacks:
            messages = message_send(tenant=world.tenant_a, body=body, did=did, **kwargs)
        assert len(callbacks) == 1, "the delivery task is enqueued once, after commit"
        return messages

    return run


def deliver(message: Message, *, slot_reserved: bool = False) -> DeliveryOutcome | None:
    outcome = message_deliver(message_id=message.pk, slot_reserved=slot_reserved)
    message.refresh_from_db()
    return outcome


def attempts(message: Message) -> list[tuple[str, str]]:
    return [(a.outcome, a.code) for a in DeliveryAttempt.objects.filter(message=message)]


def eastern(moment: datetime) -> str:
    return moment.astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S")


def sent_row(provider_id: int | str, text: str, at: datetime, **extra: str) -> dict[str, Any]:
    row = {
        "id": str(provider_id),
        "date": eastern(at),
        "type": "0",
        "did": SENDER.removeprefix("+1"),
        "contact": CONTACT,
        "message": text,
        "carrier_status": "Message sent",
    }
    row.update(extra)
    return row


# Success ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("provider_id", [112275629, "112275629"])
def test_a_success_marks_the_message_sent_with_the_provider_id(
    send: Callable[..., list[Message]], voipms: FakeVoipms, provider_id: int | str
) -> None:
    (message,) = send("Your table is ready")
    assert message.status == MessageStatus.QUEUED
    voipms.answer("sendSMS", {"status": "success", "sms": provider_id})

    outcome = deliver(message)

    assert outcome == DeliveryOutcome(MessageStatus.SENT)
    assert message.status == MessageStatus.SENT
    assert message.provider_id == 112275629
    assert message.provider_account == "factory@a.example"
    assert message.sent_at is not None
    assert message.attempt_count == 1
    assert (message.error_code, message.error_message) == ("", "")
    assert attempts(message) == [("sent", "")]
    (call,) = voipms.calls
    assert call["method"] == "sendSMS"
    assert call["api_username"] == "factory@a.example"
    assert (call["did"], call["dst"], call["message"]) == ("2125550100", CONTACT, message.body)


@pytest.mark.django_db
def test_a_sent_message_is_never_sent_again_by_a_second_delivery(
    send: Callable[..., list[Message]], voipms: FakeVoipms
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", {"status": "success", "sms": 1})
    deliver(message)

    assert deliver(message) is None
    assert len(voipms.calls) == 1


@pytest.mark.django_db
def test_an_e164_configuration_sends_both_numbers_with_plus_one(
    send: Callable[..., list[Message]], voipms: FakeVoipms, configuration: SmsConfiguration
) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(number_format="e164")
    (message,) = send()
    voipms.answer("sendSMS", {"status": "success", "sms": 7})

    deliver(message)

    (call,) = voipms.calls
    assert (call["did"], call["dst"]) == (SENDER, CONTACT_E164)


@pytest.mark.django_db
def test_a_long_text_is_queued_as_parts_of_one_group_each_sent_as_an_sms(
    send: Callable[..., list[Message]], voipms: FakeVoipms
) -> None:
    body = "Please confirm your appointment tomorrow at nine. " * 5  # 250 bytes

    messages = send(body)
    voipms.answer("sendSMS", {"status": "success", "sms": 10}, {"status": "success", "sms": 11})
    for message in messages:
        deliver(message)

    assert len(messages) == 2
    assert {m.part_group for m in messages} != {None}
    assert len({m.part_group for m in messages}) == 1
    assert [(m.part_index, m.segments, m.kind) for m in messages] == [
        (0, 2, Kind.SMS),
        (1, 2, Kind.SMS),
    ]
    assert "".join(call["message"] for call in voipms.calls) == body
    assert all(len(call["message"].encode()) <= 160 for call in voipms.calls)


@pytest.mark.django_db
def test_the_second_part_of_a_split_text_is_not_sent_before_the_first(
    send: Callable[..., list[Message]], voipms: FakeVoipms
) -> None:
    # Parts are separate tasks; a worker with many threads may pick the second first, and the
    # contact would read the text out of order.
    first, second = send("Please confirm your appointment tomorrow at nine. " * 5)
    voipms.answer("sendSMS", {"status": "success", "sms": 10}, {"status": "success", "sms": 11})

    deliver(second)

    assert second.status == MessageStatus.QUEUED
    assert voipms.sends() == []

    deliver(first)
    deliver(second)

    assert [call["message"] for call in voipms.sends()] == [first.body, second.body]
    assert (first.status, second.status) == (MessageStatus.SENT, MessageStatus.SENT)


# Temporary failures: retried with backoff, then failed ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("code", TRANSIENT_CODES)
def test_a_temporary_voipms_error_queues_the_message_again_with_a_backoff(
    send: Callable[..., list[Message]], voipms: FakeVoipms, code: str
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", {"status": code, "message": "Try later"})
    before = timezone.now()

    outcome = deliver(message)

    assert outcome is not None
    assert outcome.status == MessageStatus.QUEUED
    assert message.status == MessageStatus.QUEUED
    assert message.attempt_count == 1
    assert message.error_code == code
    assert attempts(message) == [("retry", code)]
    # The first backoff is between half and all of SMS_RETRY_BASE_SECONDS (30 s), jittered;
    # the per-minute limits wait a minute.
    low, high = (59, 61) if code in WAIT_A_MINUTE_CODES else (14, 31)
    assert low <= outcome.retry_in <= high
    assert before + timedelta(seconds=low) <= message.next_attempt_at
    assert message.next_attempt_at <= timezone.now() + timedelta(seconds=high)


@pytest.mark.django_db
@pytest.mark.parametrize("code", TRANSIENT_CODES)
def test_a_temporary_error_fails_the_message_after_the_last_attempt(
    send: Callable[..., list[Message]], voipms: FakeVoipms, code: str, settings: Any
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", {"status": code, "message": "Try later"})

    outcomes = [deliver(message) for _ in range(settings.SMS_MAX_ATTEMPTS)]

    assert [o.status for o in outcomes if o] == ["queued", "queued", "failed"]
    assert message.status == MessageStatus.FAILED
    assert message.error_code == code
    assert message.attempt_count == 3
    assert len(voipms.sends()) == 3
    assert attempts(message) == [("retry", code), ("retry", code), ("failed", code)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (403, "text/html", CLOUDFLARE_BLOCK),
        (522, "text/plain", "error code: 522"),
        (521, "text/html", "<html><title>521: Web server is down</title></html>"),
        (200, "text/html", ""),
        (502, "text/html", "<html><body>Bad gateway</body></html>"),
    ],
)
def test_an_answer_that_is_not_voipms_json_is_retried(
    send: Callable[..., list[Message]],
    voipms: FakeVoipms,
    status: int,
    content_type: str,
    body: str,
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", (status, content_type, body), {"status": "success", "sms": 99})

    first = deliver(message)
    second = deliver(message)

    assert first is not None and first.status == MessageStatus.QUEUED
    assert attempts(message)[0] == ("retry", "bad_response")
    assert second == DeliveryOutcome(MessageStatus.SENT)
    assert message.provider_id == 99


@pytest.mark.django_db
def test_a_refused_connection_is_retried_and_not_counted_against_the_daily_cap(
    send: Callable[..., list[Message]], voipms: FakeVoipms, configuration: SmsConfiguration
) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(daily_send_limit=1)
    (message,) = send()
    refused = requests.exceptions.ConnectionError(NewConnectionError(None, "Connection refused"))
    voipms.answer("sendSMS", refused, {"status": "success", "sms": 5})

    deliver(message)
    assert message.status == MessageStatus.QUEUED
    assert attempts(message) == [("retry", "connection_error")]

    deliver(message)
    assert message.status == MessageStatus.SENT


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        ({"status": "invalid_dst", "message": "Invalid destination"}, MessageStatus.FAILED),
        ({"status": "api_limit_exceeded", "message": "Too many"}, MessageStatus.QUEUED),
    ],
)
def test_a_send_voipms_refused_is_not_counted_against_the_daily_cap(
    send: Callable[..., list[Message]],
    voipms: FakeVoipms,
    configuration: SmsConfiguration,
    refusal: dict[str, str],
    status: str,
) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(daily_send_limit=1)
    (refused,) = send("First")
    (second,) = send("Second")
    voipms.answer("sendSMS", refusal, {"status": "success", "sms": 6})

    deliver(refused)
    assert refused.status == status
    deliver(second)  # the cap of one still has room: the refusal sent nothing
    assert second.status == MessageStatus.SENT


@pytest.mark.django_db
def test_a_transient_failure_does_not_count_against_the_daily_cap(
    send: Callable[..., list[Message]], voipms: FakeVoipms, configuration: SmsConfiguration
) -> None:
    # A transient answer (a Cloudflare page) is tried again later, and counted then.
    SmsConfiguration.objects.filter(pk=configuration.pk).update(daily_send_limit=1)
    (first,) = send("First")
    (second,) = send("Second")
    voipms.answer("sendSMS", (403, "text/html", "<html>Attention Required!</html>"))

    deliver(first)
    assert first.status == MessageStatus.QUEUED
    deliver(second)
    assert second.status == MessageStatus.QUEUED  # retried, not refused by the cap
    assert second.error_code != "limit_reached"


# Outcome unknown ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_read_timeout_leaves_the_message_unknown_and_never_resends_it_blindly(
    send: Callable[..., list[Message]], voipms: FakeVoipms
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", requests.exceptions.ReadTimeout())

    outcome = deliver(message)

    assert outcome == DeliveryOutcome(MessageStatus.UNKNOWN)
    assert message.status == MessageStatus.UNKNOWN
    assert message.error_code == "outcome_unknown"
    assert "checked against VoIP.ms" in message.error_message
    assert attempts(message) == [("unknown", "outcome_unknown")]
    assert deliver(message) is None
    assert len(voipms.calls) == 1


@pytest.mark.django_db
def test_a_cloudflare_524_leaves_the_message_unknown(
    send: Callable[..., list[Message]], voipms: FakeVoipms
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", (524, "text/html", "<html>A timeout occurred</html>"))

    deliver(message)

    assert message.status == MessageStatus.UNKNOWN


# Permanent failures ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "reason"), PERMANENT_CODES.items())
def test_a_permanent_voipms_error_fails_the_message_with_a_human_reason(
    send: Callable[..., list[Message]], voipms: FakeVoipms, code: str, reason: str
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", {"status": code, "message": "Something went wrong"})

    outcome = deliver(message)

    assert outcome == DeliveryOutcome(MessageStatus.FAILED)
    assert message.status == MessageStatus.FAILED
    assert message.error_code == code
    assert reason.lower() in message.error_message.lower()
    assert attempts(message) == [("failed", code)]
    assert len(voipms.calls) == 1
    assert deliver(message) is None


@pytest.mark.django_db
def test_sms_failed_tells_the_tenant_to_enable_sms_on_the_did(
    send: Callable[..., list[Message]], voipms: FakeVoipms
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", {"status": "sms_failed", "message": "SMS could not be sent"})

    deliver(message)

    assert message.error_message.startswith(
        "VoIP.ms did not send it; check that SMS is enabled on this DID in the VoIP.ms portal"
    )


# Failover to the next route -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("code", ROUTE_LEVEL_CODES)
def test_a_route_level_error_moves_the_message_to_the_next_route(
    send: Callable[..., list[Message]],
    voipms: FakeVoipms,
    second_route: SmsConfiguration,
    configuration: SmsConfiguration,
    code: str,
) -> None:
    (message,) = send()
    assert [step["did"] for step in message.route_plan] == [SENDER, SECOND_ROUTE_DID]
    voipms.answer("sendSMS", {"status": code, "message": "No"}, account="factory@a.example")
    voipms.answer("sendSMS", {"status": "success", "sms": 4242}, account="own@a.example")

    first = deliver(message)

    assert first == DeliveryOutcome(MessageStatus.QUEUED, retry_in=0.0)
    assert message.status == MessageStatus.QUEUED
    assert message.route_index == 1
    assert message.configuration_id == second_route.pk
    assert message.did == SECOND_ROUTE_DID
    assert attempts(message) == [("next_route", code)]

    deliver(message)

    assert message.status == MessageStatus.SENT
    assert (message.provider_id, message.provider_account) == (4242, "own@a.example")
    first_call, second_call = voipms.calls
    assert (first_call["api_username"], first_call["did"]) == ("factory@a.example", "2125550100")
    assert (second_call["api_username"], second_call["did"]) == ("own@a.example", "6465550100")
    assert second_call["dst"] == CONTACT


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["invalid_dst", "sms_toolong", "message_empty"])
def test_an_error_of_the_message_itself_fails_it_without_trying_the_next_route(
    send: Callable[..., list[Message]],
    voipms: FakeVoipms,
    second_route: SmsConfiguration,
    code: str,
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", {"status": code, "message": "No"})

    deliver(message)

    assert message.status == MessageStatus.FAILED
    assert message.route_index == 0
    assert len(voipms.calls) == 1


@pytest.mark.django_db
def test_a_temporary_error_retries_the_same_route(
    send: Callable[..., list[Message]], voipms: FakeVoipms, second_route: SmsConfiguration
) -> None:
    (message,) = send()
    voipms.answer("sendSMS", {"status": "method_maintenance", "message": "Later"})

    deliver(message)

    assert message.status == MessageStatus.QUEUED
    assert message.route_index == 0


@pytest.mark.django_db
def test_the_last_route_failing_fails_the_message(
    send: Callable[..., list[Message]], voipms: FakeVoipms, second_route: SmsConfiguration
) -> None:
    (message,) = send()
    voipms.answer(
        "sendSMS", {"status": "invalid_did", "message": "No"}, account="factory@a.example"
    )
    voipms.answer("sendSMS", {"status": "sms_failed", "message": "No"}, account="own@a.example")

    deliver(message)
    deliver(message)

    assert message.status == MessageStatus.FAILED
    assert message.error_code == "sms_failed"
    assert attempts(message) == [("next_route", "invalid_did"), ("failed", "sms_failed")]
    assert len(voipms.calls) == 2


@pytest.mark.django_db
def test_the_daily_cap_of_the_first_route_moves_to_the_next_without_calling_voipms(
    send: Callable[..., list[Message]],
    voipms: FakeVoipms,
    second_route: SmsConfiguration,
    configuration: SmsConfiguration,
) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(daily_send_limit=1)
    voipms.answer("sendSMS", {"status": "success", "sms": 1})
    first, second = send("one")[0], send("two")[0]
    deliver(first)

    deliver(second)
    assert (second.status, second.route_index) == (MessageStatus.QUEUED, 1)
    assert len(voipms.calls) == 1

    deliver(second)
    assert second.status == MessageStatus.SENT
    assert voipms.calls[-1]["api_username"] == "own@a.example"


# Checks before anything is queued -------------------------------------------------------------


@pytest.mark.django_db
def test_an_extension_without_sms_permission_may_not_send(world: World, voipms: FakeVoipms) -> None:
    Extension.objects.filter(user=world.user_a).update(sms_permission=SmsPermission.DISABLE)
    user = User.objects.get(pk=world.user_a.pk)  # as the next request loads him

    with pytest.raises(NotAllowed) as refused:
        message_send(user=user, tenant=world.tenant_a, to=CONTACT, body="Hi", did=SENDER)

    assert refused.value.code == "sms_not_allowed"
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_did_of_another_tenant_is_refused_and_nothing_is_queued(
    world: World, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    tenant_b_did = "+12125550110"

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError) as no:
        message_send(
            user=world.admin_a, tenant=world.tenant_a, to=CONTACT, body="Hi", did=tenant_b_did
        )

    assert no.value.code == "did_not_in_pool"
    assert no.value.field == "from"
    assert callbacks == []
    assert not Message.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("to", ["12345", "+442071234567", "5555555", "not a number"])
def test_an_invalid_destination_is_refused(world: World, to: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        message_send(user=world.admin_a, tenant=world.tenant_a, to=to, body="Hi", did=SENDER)

    assert refused.value.code == "invalid_destination"
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_opted_out_contact_gets_nothing(
    world: World, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    OptOut.objects.create(tenant=world.tenant_a, did=SENDER, remote=CONTACT_E164, keyword="STOP")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(ApplicationError) as no:
        message_send(user=world.admin_a, tenant=world.tenant_a, to=CONTACT, body="Hi", did=SENDER)

    assert no.value.code == "opted_out"
    assert callbacks == []
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_an_opt_out_from_another_did_does_not_block_this_one(
    send: Callable[..., list[Message]], world: World
) -> None:
    OptOut.objects.create(
        tenant=world.tenant_a, did="+12125550101", remote=CONTACT_E164, keyword="STOP"
    )

    (message,) = send(did=SENDER)

    assert message.status == MessageStatus.QUEUED


@pytest.mark.django_db
def test_an_extension_user_may_send_only_from_his_sms_caller_ids(
    world: World, send: Callable[..., list[Message]]
) -> None:
    extension = world.user_a.extension
    sms_caller_id_save(
        tenant=world.tenant_a, extension=extension, trunk=shared_trunk(), did="12125550101"
    )

    (message,) = send(user=world.user_a, did="+12125550101")
    assert message.did == "+12125550101"
    assert message.extension == extension

    with pytest.raises(NotAllowed) as refused:
        message_send(user=world.user_a, tenant=world.tenant_a, to=CONTACT, body="Hi", did=SENDER)
    assert refused.value.code == "from_not_allowed"


@pytest.mark.django_db
def test_an_extension_user_with_one_caller_id_may_leave_out_the_sender(
    world: World, send: Callable[..., list[Message]]
) -> None:
    sms_caller_id_save(
        tenant=world.tenant_a,
        extension=world.user_a.extension,
        trunk=shared_trunk(),
        did="12125550105",
    )

    (message,) = send(user=world.user_a, did=None)

    assert message.did == "+12125550105"


@pytest.mark.django_db
def test_an_extension_user_without_caller_id_may_not_send(world: World) -> None:
    with pytest.raises(ApplicationError) as refused:
        message_send(user=world.user_a, tenant=world.tenant_a, to=CONTACT, body="Hi", did=SENDER)

    assert refused.value.code == "from_not_allowed"


@pytest.mark.django_db
def test_a_tenant_admin_may_send_from_any_pooled_did_that_has_a_configuration(
    world: World, send: Callable[..., list[Message]]
) -> None:
    make_configuration(
        world.tenant_a, name="Own trunk", trunk=world.objects_a[Trunk], username="own@a.example"
    )

    for did in ("+12125550100", "+12125550109", "+16465550100", "+16465550104"):
        (message,) = send(did=did)
        assert message.did == did
        assert message.extension is None


@pytest.mark.django_db
def test_a_tenant_admin_may_send_from_a_did_beyond_the_first_two_hundred_of_a_large_pool(
    world: World, send: Callable[..., list[Message]]
) -> None:
    trunk_assignment_save(
        trunk=shared_trunk(),
        tenant=world.tenant_a,
        did_pool=f"{POOLS['a.example']};12125551000-12125551999",
    )

    (message,) = send(did="+12125551500")

    assert message.did == "+12125551500"


@pytest.mark.django_db
def test_no_message_is_sent_when_message_channels_are_off(world: World) -> None:
    type(world.tenant_a).objects.filter(pk=world.tenant_a.pk).update(message_channels_enabled=False)
    world.tenant_a.refresh_from_db()

    with pytest.raises(NotAllowed) as refused:
        message_send(user=world.admin_a, tenant=world.tenant_a, to=CONTACT, body="Hi", did=SENDER)

    assert refused.value.code == "message_channels_disabled"


@pytest.mark.django_db
def test_a_queued_message_fails_without_a_call_when_its_configuration_was_disabled(
    send: Callable[..., list[Message]], voipms: FakeVoipms, configuration: SmsConfiguration
) -> None:
    (message,) = send()
    SmsConfiguration.objects.filter(pk=configuration.pk).update(enabled=False)

    deliver(message)

    assert (message.status, message.error_code) == (MessageStatus.FAILED, "configuration_disabled")
    assert voipms.calls == []


# Daily cap and request rate -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_daily_cap_fails_the_third_message_before_any_call(
    send: Callable[..., list[Message]], voipms: FakeVoipms, configuration: SmsConfiguration
) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(daily_send_limit=2)
    voipms.answer("sendSMS", {"status": "success", "sms": 1}, {"status": "success", "sms": 2})
    messages = [send(f"Message {number}")[0] for number in range(3)]

    for message in messages:
        deliver(message)

    assert [m.status for m in messages] == ["sent", "sent", "failed"]
    assert messages[2].error_code == "limit_reached"
    assert "daily limit of 2 sends" in messages[2].error_message
    assert attempts(messages[2]) == [("failed", "limit_reached")]
    assert len(voipms.calls) == 2


@pytest.mark.django_db
def test_the_request_rate_queues_the_second_delivery_again_without_calling_voipms(
    send: Callable[..., list[Message]], voipms: FakeVoipms, settings: Any
) -> None:
    settings.VOIPMS_REQUESTS_PER_SECOND = 1
    voipms.answer("sendSMS", {"status": "success", "sms": 1}, {"status": "success", "sms": 2})
    first, second = send("one")[0], send("two")[0]

    assert deliver(first).status == MessageStatus.SENT
    waited = deliver(second)

    assert waited is not None
    assert waited.status == MessageStatus.QUEUED
    assert waited.slot_reserved is True
    assert 0.8 <= waited.retry_in <= 1.0
    assert second.status == MessageStatus.QUEUED
    assert second.attempt_count == 0
    assert second.next_attempt_at is not None
    assert len(voipms.calls) == 1
    assert attempts(second) == []

    # The task comes back with the slot it reserved and goes straight through.
    assert deliver(second, slot_reserved=True).status == MessageStatus.SENT
    assert second.attempt_count == 1
    assert len(voipms.calls) == 2


@pytest.mark.django_db
def test_a_limits_failure_before_the_call_puts_the_message_back_in_the_queue(
    send: Callable[..., list[Message]], voipms: FakeVoipms, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing reached VoIP.ms: the message must not wait in "sending" for the unstick sweep
    # (SMS_SENDING_STUCK_SECONDS, 15 minutes) and a reconciliation before it is sent.
    class BrokenLimits:
        def reserve_and_count(self, *args: object, **kwargs: object) -> tuple[float, bool]:
            raise redis.exceptions.MaxConnectionsError("Too many connections")

    (message,) = send()
    monkeypatch.setattr("sms.outbound.deliver.limits", BrokenLimits)

    try:
        deliver(message)
    except redis.exceptions.RedisError:
        message.refresh_from_db()

    assert message.status == MessageStatus.QUEUED
    assert voipms.calls == []


@pytest.mark.django_db
def test_the_limits_store_waits_for_a_redis_connection_when_a_hundred_threads_use_it(
    settings: Any,
) -> None:
    # An outbound worker runs hundreds of threads (ARCHITECTURE.md); redis-py 8's pool refuses
    # the 101st connection at once instead of waiting for one to come back.
    store = portal_limits.RedisLimits(settings.REDIS_URL)
    pool = store.client.connection_pool
    busy = [pool.get_connection() for _ in range(100)]
    returned = threading.Timer(0.3, pool.release, args=[busy.pop()])
    returned.start()
    try:
        assert store.reserve_request("bench@voipms.example", 1000) >= 0
    finally:
        returned.join()
        for connection in busy:
            pool.release(connection)
        store.client.close()


# Reconciling unknown outcomes with getSMS -----------------------------------------------------


@pytest.fixture
def unknown(send: Callable[..., list[Message]], voipms: FakeVoipms) -> Message:
    """Return a message whose sendSMS timed out."""
    (message,) = send("See you at 7")
    voipms.answer("sendSMS", requests.exceptions.ReadTimeout())
    deliver(message)
    assert message.status == MessageStatus.UNKNOWN
    return message


@pytest.mark.django_db
def test_an_unknown_message_found_in_the_history_is_marked_sent_with_its_id(
    unknown: Message, voipms: FakeVoipms
) -> None:
    now = timezone.now()
    voipms.answer(
        "getSMS",
        {
            "status": "success",
            "sms": [
                sent_row(3001, "Something else", now),
                sent_row(3002, "See you at 7", now - timedelta(hours=2)),
                sent_row(3003, "See you at 7", now + timedelta(seconds=2)),
            ],
        },
    )

    assert message_reconcile(message_id=unknown.pk) == "sent"

    unknown.refresh_from_db()
    assert unknown.status == MessageStatus.SENT
    assert unknown.provider_id == 3003
    assert unknown.provider_account == "factory@a.example"
    assert (unknown.error_code, unknown.error_message) == ("", "")
    assert attempts(unknown)[-1] == ("reconciled", "found")
    (read,) = voipms.reads()
    assert read["method"] == "getSMS"
    assert (read["type"], read["did"], read["contact"]) == ("0", "2125550100", CONTACT)
    assert len(voipms.sends()) == 1


@pytest.mark.django_db
def test_an_unknown_message_stays_unknown_within_the_grace_period(
    unknown: Message, voipms: FakeVoipms
) -> None:
    voipms.answer("getSMS", NO_SMS)

    assert message_reconcile(message_id=unknown.pk) == "unknown"

    unknown.refresh_from_db()
    assert unknown.status == MessageStatus.UNKNOWN
    assert len(voipms.sends()) == 1


@pytest.mark.django_db
def test_an_unknown_message_absent_after_the_grace_period_is_resent_once_and_then_failed(
    unknown: Message,
    voipms: FakeVoipms,
    settings: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.SMS_UNKNOWN_GRACE_SECONDS = 0
    voipms.answer("getSMS", NO_SMS)

    with django_capture_on_commit_callbacks() as callbacks:
        assert message_reconcile(message_id=unknown.pk) == "resent"

    unknown.refresh_from_db()
    assert (unknown.status, unknown.resend_count) == (MessageStatus.QUEUED, 1)
    assert len(callbacks) == 1
    assert attempts(unknown)[-1] == ("resend", "absent")

    deliver(unknown)  # times out again
    assert unknown.status == MessageStatus.UNKNOWN
    assert message_reconcile(message_id=unknown.pk) == "failed"

    unknown.refresh_from_db()
    assert unknown.status == MessageStatus.FAILED
    assert unknown.error_code == "outcome_unknown"
    assert len(voipms.sends()) == 2


@pytest.mark.django_db
def test_reconcile_does_not_take_the_history_row_of_an_earlier_identical_message(
    send: Callable[..., list[Message]], voipms: FakeVoipms, settings: Any
) -> None:
    settings.SMS_UNKNOWN_GRACE_SECONDS = 0
    voipms.answer("sendSMS", {"status": "success", "sms": 5001}, requests.exceptions.ReadTimeout())
    earlier, later = send("OK")[0], send("OK")[0]
    deliver(earlier)
    deliver(later)
    assert (earlier.status, later.status) == (MessageStatus.SENT, MessageStatus.UNKNOWN)
    # VoIP.ms's history holds only the first "OK": the second never arrived.
    voipms.answer("getSMS", {"status": "success", "sms": [sent_row(5001, "OK", timezone.now())]})

    message_reconcile(message_id=later.pk)

    later.refresh_from_db()
    assert later.provider_id != 5001
    assert later.status == MessageStatus.QUEUED
    assert later.resend_count == 1


@pytest.mark.django_db
def test_reconcile_keeps_the_message_unknown_when_voipms_cannot_answer(
    unknown: Message, voipms: FakeVoipms, settings: Any
) -> None:
    settings.SMS_UNKNOWN_GRACE_SECONDS = 0
    voipms.answer("getSMS", (522, "text/plain", "error code: 522"))

    assert message_reconcile(message_id=unknown.pk) == "voipms error"

    unknown.refresh_from_db()
    assert unknown.status == MessageStatus.UNKNOWN
    assert unknown.resend_count == 0


# Sweeps -----------------------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Record the task enqueues instead of sending them to the broker."""
    calls: dict[str, list[int]] = {"deliver": [], "reconcile": []}
    names = {"sms.deliver_message": "deliver", "sms.reconcile_message": "reconcile"}

    def publish(name: str, args: tuple[int, ...], kwargs: object, countdown: object) -> None:
        if name in names:
            calls[names[name]].append(args[0])

    monkeypatch.setattr("core.tasks.publish", publish)
    return calls


@pytest.mark.django_db
def test_the_sweep_enqueues_again_queued_messages_older_than_a_minute(
    send: Callable[..., list[Message]], enqueued: dict[str, list[int]]
) -> None:
    now = timezone.now()
    old, fresh, waiting, overdue, done = (send(f"m{n}")[0] for n in range(5))
    Message.objects.filter(pk__in=[old.pk, waiting.pk, overdue.pk, done.pk]).update(
        created_at=now - timedelta(minutes=5)
    )
    Message.objects.filter(pk=waiting.pk).update(next_attempt_at=now + timedelta(minutes=5))
    Message.objects.filter(pk=overdue.pk).update(next_attempt_at=now - timedelta(minutes=2))
    Message.objects.filter(pk=done.pk).update(status=MessageStatus.SENT)

    assert outbox_sweep() == 2

    assert sorted(enqueued["deliver"]) == sorted([old.pk, overdue.pk])
    assert fresh.pk not in enqueued["deliver"]


@pytest.mark.django_db
def test_unstick_takes_messages_sending_too_long_as_unknown_and_reconciles_them(
    send: Callable[..., list[Message]], enqueued: dict[str, list[int]]
) -> None:
    now = timezone.now()
    stuck, busy, unknown = (send(f"m{n}")[0] for n in range(3))
    Message.objects.filter(pk=stuck.pk).update(
        status=MessageStatus.SENDING, last_attempt_at=now - timedelta(minutes=20)
    )
    Message.objects.filter(pk=busy.pk).update(
        status=MessageStatus.SENDING, last_attempt_at=now - timedelta(minutes=1)
    )
    Message.objects.filter(pk=unknown.pk).update(status=MessageStatus.UNKNOWN)

    assert outbox_unstick() == 1

    stuck.refresh_from_db()
    busy.refresh_from_db()
    assert (stuck.status, stuck.error_code) == (MessageStatus.UNKNOWN, "outcome_unknown")
    assert busy.status == MessageStatus.SENDING
    assert sorted(enqueued["reconcile"]) == sorted([stuck.pk, unknown.pk])


# Carrier status -------------------------------------------------------------------------------


def _sent_message(
    configuration: SmsConfiguration, did: str, provider_id: int, *, kind: str = Kind.SMS
) -> Message:
    from sms.outbound.send import message_queue

    (message,) = message_queue(
        configuration=configuration,
        conversation=None,
        did=did,
        to=CONTACT_E164,
        body=f"Message {provider_id}",
        source="api",
    )
    Message.objects.filter(pk=message.pk).update(
        kind=kind,
        status=MessageStatus.SENT,
        provider_id=provider_id,
        provider_account=configuration.username.lower(),
        sent_at=timezone.now() - timedelta(minutes=5),
    )
    message.refresh_from_db()
    return message


@pytest.mark.django_db
def test_carrier_status_marks_messages_delivered_with_one_history_call_per_account(
    world: World, voipms: FakeVoipms
) -> None:
    own = make_configuration(
        world.tenant_a, name="Own trunk", trunk=world.objects_a[Trunk], username="Factory@A.example"
    )
    config_a = world.objects_a[SmsConfiguration]
    config_b = world.objects_b[SmsConfiguration]
    now = timezone.now()

    delivered_a = _sent_message(config_a, SENDER, 501)
    pending_a = _sent_message(own, "+16465550100", 502)
    delivered_b = _sent_message(config_b, "+12125550110", 501)  # the same id on another account
    handset = "Message delivered to handset."
    voipms.answer(
        "getSMS",
        {
            "status": "success",
            "sms": [
                sent_row(501, "Message 501", now, carrier_status=handset),
                sent_row(502, "Message 502", now, carrier_status="Message sent"),
            ],
        },
        account="factory@a.example",
    )
    voipms.answer(
        "getSMS",
        {"status": "success", "sms": [sent_row(501, "Message 501", now, carrier_status=handset)]},
        account="factory@b.example",
    )

    assert carrier_status_update() == 2

    assert sorted(call["api_username"].lower() for call in voipms.reads()) == [
        "factory@a.example",
        "factory@b.example",
    ]
    for message in (delivered_a, pending_a, delivered_b):
        message.refresh_from_db()
    assert (delivered_a.status, delivered_a.carrier_status) == (MessageStatus.DELIVERED, handset)
    assert delivered_a.delivered_at is not None
    assert (pending_a.status, pending_a.carrier_status) == (MessageStatus.SENT, "Message sent")
    assert delivered_b.status == MessageStatus.DELIVERED


@pytest.mark.django_db
def test_carrier_status_makes_no_call_without_recent_sends(
    world: World, voipms: FakeVoipms
) -> None:
    assert carrier_status_update() == 0
    assert voipms.calls == []


@pytest.mark.django_db
def test_carrier_status_reads_mms_sends_from_getmms(
    world: World, configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    handset = "Message delivered to handset."
    now = timezone.now()
    sms = _sent_message(configuration, SENDER, 700)
    mms = _sent_message(configuration, SENDER, 700, kind=Kind.MMS)  # MMS ids count apart
    voipms.answer("getSMS", {"status": "success", "sms": [sent_row(700, "Message 700", now)]})
    voipms.answer(
        "getMMS",
        {"status": "success", "sms": [sent_row(700, "Message 700", now, carrier_status=handset)]},
    )

    assert carrier_status_update() == 1

    assert sorted(call["method"] for call in voipms.reads()) == ["getMMS", "getSMS"]
    sms.refresh_from_db()
    mms.refresh_from_db()
    assert (sms.status, sms.carrier_status) == (MessageStatus.SENT, "Message sent")
    assert (mms.status, mms.carrier_status) == (MessageStatus.DELIVERED, handset)


@pytest.mark.django_db
def test_carrier_status_asks_did_by_did_when_the_answer_was_cut_short(
    world: World, configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    from sms.outbound.reconcile import HISTORY_LIMIT

    handset = "Message delivered to handset."
    now = timezone.now()
    late = _sent_message(configuration, "+12125550101", 9001)
    # A full answer of other sends: the one we look for may lie beyond it.
    full = [sent_row(100 + n, "other", now) for n in range(HISTORY_LIMIT)]
    voipms.answer(
        "getSMS",
        {"status": "success", "sms": full},
        {
            "status": "success",
            "sms": [sent_row(9001, "Message 9001", now, carrier_status=handset, did="2125550101")],
        },
    )

    assert carrier_status_update() == 1

    reads = voipms.reads()
    assert [call.get("did") for call in reads] == [None, "2125550101"]
    assert all(call["limit"] == str(HISTORY_LIMIT) for call in reads)
    late.refresh_from_db()
    assert (late.status, late.carrier_status) == (MessageStatus.DELIVERED, handset)


@pytest.mark.django_db
def test_carrier_status_makes_no_did_calls_when_the_answer_was_complete(
    world: World, configuration: SmsConfiguration, voipms: FakeVoipms
) -> None:
    missing = _sent_message(configuration, SENDER, 9002)
    voipms.answer("getSMS", {"status": "success", "sms": [sent_row(1, "other", timezone.now())]})

    assert carrier_status_update() == 0

    assert len(voipms.reads()) == 1
    missing.refresh_from_db()
    assert missing.status == MessageStatus.SENT


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("Message delivered to handset.", "delivered"),
        ("Delivered", "delivered"),
        ("Message failed", "failed"),
        ("Undeliverable: invalid destination", "failed"),
        ("Message not delivered", "failed"),
        ("Rejected by carrier", "failed"),
        ("Expired", "failed"),
        ("Message sent", "sent"),
        ("queued", "sent"),
        ("", "sent"),
    ],
)
def test_every_carrier_status_text_maps_to_delivered_failed_or_sent(text: str, state: str) -> None:
    from trunks.voipms.client import carrier_state

    assert carrier_state(text) == state


@pytest.mark.django_db
def test_carrier_status_marks_a_send_the_carrier_failed_as_failed_and_keeps_the_text(
    world: World, voipms: FakeVoipms
) -> None:
    configuration = world.objects_a[SmsConfiguration]
    message = _sent_message(configuration, SENDER, 601)
    text = "Message failed: undeliverable"
    voipms.answer(
        "getSMS",
        {
            "status": "success",
            "sms": [sent_row(601, "Message 601", timezone.now(), carrier_status=text)],
        },
    )

    assert carrier_status_update() == 1

    message.refresh_from_db()
    assert (message.status, message.carrier_status) == (MessageStatus.FAILED, text)
    assert message.error_code == "carrier_failed"
    assert text in message.error_message


@pytest.mark.django_db
def test_a_send_reads_its_configuration_and_tenant_as_the_orm_does(world: World) -> None:
    configuration = make_configuration(
        world.tenant_a, name="Loaded", username="loaded@a.example", daily_send_limit=7
    )
    tenant = world.tenant_a

    loaded = deliver_module._configuration_load(configuration.pk)

    assert loaded is not None
    stored = SmsConfiguration.objects.select_related("tenant").get(pk=configuration.pk)
    for model, ours, orms in ((SmsConfiguration, loaded, stored), (Tenant, loaded.tenant, tenant)):
        for field in model._meta.concrete_fields:
            assert getattr(ours, field.attname) == getattr(orms, field.attname), field.name
        assert (ours._state.adding, ours._state.db) == (False, "default")
    # Encrypted at rest, readable in the worker that sends with it.
    assert loaded.api_password == API_PASSWORD
    assert deliver_module._configuration_load(configuration.pk + 1000) is None
