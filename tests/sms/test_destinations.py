"""Tests of handing received messages to e-mail addresses and signed HTTP endpoints."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import responses
from django.core import mail
from django.db import connection
from django.utils import timezone

from core.http import USER_AGENT
from sms.inbound.destinations import destination_deliver
from sms.inbound.process import inbound_message_ingest
from sms.models import (
    Action,
    DestinationAttempt,
    DestinationDelivery,
    DestinationStatus,
    InboundRule,
    Message,
    Source,
)
from tenants.models import Extension
from tests.factories import World
from tests.sms.helpers import make_configuration, make_rule
from trunks.voipms.webhooks import InboundMessage

HOOK_URL = "https://crm.example.com/hooks/sms?team=7"
MEDIA_URL = "https://voip.ms/media/MTc4ODc5/media.png"


@pytest.fixture(autouse=True)
def locmem_email(settings: object) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "portal@pbx.example.com"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def rule(world: World) -> InboundRule:
    extension = world.objects_a[Extension]
    return make_rule(
        world.tenant_a,
        did_range="12125550101",
        extension=extension,
        name="To the CRM",
        office_action=Action.HTTP,
        office_target=HOOK_URL,
        after_hours_action=Action.HTTP,
        after_hours_target=HOOK_URL,
        holiday_action=Action.HTTP,
        holiday_target=HOOK_URL,
    )


@pytest.fixture
def message(world: World, rule: InboundRule) -> Message:
    configuration = make_configuration(world.tenant_a)
    result = inbound_message_ingest(
        configuration=configuration,
        inbound=InboundMessage(
            kind="mms",
            provider_id=10239205,
            from_number="+18457231213",
            to_number="+12125550101",
            text="Photo of the leak 📷",
            media_urls=(MEDIA_URL,),
            received_at=datetime(2026, 9, 7, 14, 22, 44, tzinfo=UTC),
            received_at_raw="2026-09-07T14:22:44.000000+00:00",
            event_type="message.received",
            source="webhook",
        ),
        source=Source.WEBHOOK,
    )
    assert result.message is not None
    assert result.message.routed_to == f"http {HOOK_URL}"
    return result.message


def deliver(
    message: Message, action: str, target: str, rule_id: int | None, attempt: int = 1
) -> float | None:
    return destination_deliver(
        message_id=message.pk, action=action, target=target, rule_id=rule_id, attempt=attempt
    )


def test_email_destination_sends_the_text_and_media_links(message: Message) -> None:
    assert deliver(message, Action.EMAIL, "desk@a.example", None) is None

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.subject == "MMS from +18457231213 to +12125550101"
    assert sent.from_email == "portal@pbx.example.com"
    assert sent.to == ["desk@a.example"]
    assert "Photo of the leak 📷" in sent.body
    assert MEDIA_URL in sent.body
    # The tenant's clock (America/New_York), with the zone's abbreviation.
    assert "Received Sept. 7, 2026, 10:22 a.m. EDT" in sent.body
    attempt = DestinationAttempt.objects.get(message=message)
    assert (attempt.action, attempt.target, attempt.attempt, attempt.ok) == (
        Action.EMAIL,
        "desk@a.example",
        1,
        True,
    )
    assert attempt.tenant_id == message.tenant_id


def test_email_subject_of_an_sms_names_the_sender_and_the_did(world: World) -> None:
    sms = Message.objects.create(
        tenant=world.tenant_a,
        direction="in",
        kind="sms",
        status="routed",
        did="+12125550101",
        remote="+18457231213",
        body="Hi",
    )

    deliver(sms, Action.EMAIL, "desk@a.example", None)

    assert mail.outbox[0].subject == "SMS from +18457231213 to +12125550101"


def test_email_to_an_invalid_address_fails_without_retry(message: Message) -> None:
    assert deliver(message, Action.EMAIL, "not an address", None) is None

    assert mail.outbox == []
    attempt = DestinationAttempt.objects.get(message=message)
    assert not attempt.ok
    assert attempt.error == "not a valid e-mail address"


def test_http_destination_posts_json_signed_with_the_rules_secret(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock
) -> None:
    mocked.post(HOOK_URL, status=204)
    assert rule.webhook_secret == ""

    assert deliver(message, Action.HTTP, HOOK_URL, rule.pk) is None

    request = mocked.calls[0].request
    rule.refresh_from_db()
    secret = rule.webhook_secret
    assert len(secret) >= 43
    # Verify as a receiver would: HMAC-SHA256 over "<timestamp>.<raw body>".
    timestamp = request.headers["X-Seed-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert request.headers["X-Seed-Signature"] == f"sha256={expected}"
    assert abs(int(timestamp) - time.time()) < 60
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert json.loads(request.body) == {
        "id": message.pk,
        "direction": "in",
        "kind": "mms",
        "did": "+12125550101",
        "remote": "+18457231213",
        "body": "Photo of the leak 📷",
        "media": [MEDIA_URL],
        "received_at": "2026-09-07T14:22:44+00:00",
        "tenant": "a.example",
    }
    attempt = DestinationAttempt.objects.get(message=message)
    assert (attempt.action, attempt.ok, attempt.status_code, attempt.attempt) == (
        Action.HTTP,
        True,
        204,
        1,
    )


def test_http_destination_secret_is_stored_encrypted_and_reused(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock
) -> None:
    mocked.post(HOOK_URL, status=200)
    deliver(message, Action.HTTP, HOOK_URL, rule.pk)
    rule.refresh_from_db()
    first_secret = rule.webhook_secret
    DestinationAttempt.objects.all().delete()

    deliver(message, Action.HTTP, HOOK_URL, rule.pk)

    rule.refresh_from_db()
    assert rule.webhook_secret == first_secret
    request = mocked.calls[1].request
    expected = hmac.new(
        first_secret.encode(),
        request.headers["X-Seed-Timestamp"].encode() + b"." + request.body,
        hashlib.sha256,
    ).hexdigest()
    assert request.headers["X-Seed-Signature"] == f"sha256={expected}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM sms_inboundrule WHERE id = %s", [rule.pk])
        (raw,) = cursor.fetchone()
    assert raw and first_secret not in raw


def test_http_destination_retries_a_server_error_then_succeeds(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock
) -> None:
    mocked.post(HOOK_URL, status=502)
    mocked.post(HOOK_URL, status=200)

    delay = deliver(message, Action.HTTP, HOOK_URL, rule.pk, attempt=1)

    assert delay is not None
    assert 15 <= delay <= 30
    assert deliver(message, Action.HTTP, HOOK_URL, rule.pk, attempt=2) is None
    attempts = list(
        DestinationAttempt.objects.filter(message=message)
        .order_by("attempt")
        .values_list("attempt", "ok", "status_code", "error")
    )
    assert attempts == [(1, False, 502, "answered HTTP 502"), (2, True, 200, "")]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (requests.ReadTimeout("slow"), "the endpoint did not answer in time"),
        (requests.ConnectionError("refused"), "could not reach the endpoint (ConnectionError)"),
    ],
)
def test_http_destination_retries_a_timeout_or_a_refused_connection(
    message: Message,
    rule: InboundRule,
    mocked: responses.RequestsMock,
    failure: Exception,
    error: str,
) -> None:
    mocked.post(HOOK_URL, body=failure)

    assert deliver(message, Action.HTTP, HOOK_URL, rule.pk) is not None

    attempt = DestinationAttempt.objects.get(message=message)
    assert (attempt.ok, attempt.status_code, attempt.error) == (False, None, error)


def test_http_destination_gives_up_after_the_sixth_attempt(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock
) -> None:
    mocked.post(HOOK_URL, status=503)

    assert deliver(message, Action.HTTP, HOOK_URL, rule.pk, attempt=5) is not None
    assert deliver(message, Action.HTTP, HOOK_URL, rule.pk, attempt=6) is None

    assert DestinationAttempt.objects.filter(message=message, ok=False).count() == 2


def test_a_destination_already_reached_is_not_reached_twice(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock
) -> None:
    mocked.post(HOOK_URL, status=200)
    deliver(message, Action.HTTP, HOOK_URL, rule.pk)

    assert deliver(message, Action.HTTP, HOOK_URL, rule.pk) is None

    assert len(mocked.calls) == 1
    assert DestinationAttempt.objects.filter(message=message).count() == 1


def test_http_destination_never_logs_the_secret(
    message: Message,
    rule: InboundRule,
    mocked: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mocked.post(HOOK_URL, status=500)
    caplog.set_level(logging.DEBUG)

    deliver(message, Action.HTTP, HOOK_URL, rule.pk)

    rule.refresh_from_db()
    assert rule.webhook_secret
    assert rule.webhook_secret not in caplog.text
    assert "team=7" not in caplog.text
    assert rule.webhook_secret not in DestinationAttempt.objects.get(message=message).error


def test_http_destination_will_not_sign_with_another_tenants_rule(
    world: World, message: Message, mocked: responses.RequestsMock
) -> None:
    other = make_rule(
        world.tenant_b,
        did_range="12125550111",
        extension=world.objects_b[Extension],
        name="B's hook",
    )
    InboundRule.objects.filter(pk=other.pk).update(webhook_secret="b-secret-never-shared")

    assert deliver(message, Action.HTTP, HOOK_URL, other.pk) is None

    assert len(mocked.calls) == 0
    attempt = DestinationAttempt.objects.get(message=message)
    assert (attempt.ok, attempt.error) == (False, "the inbound rule was deleted")


def test_deliver_destination_task_tries_once_and_schedules_the_next_attempt(
    message: Message,
    rule: InboundRule,
    mocked: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sms import tasks

    scheduled: list[tuple[tuple[object, ...], float]] = []
    monkeypatch.setattr(
        tasks.deliver_destination,
        "apply_async",
        lambda args, countdown: scheduled.append((args, countdown)),
    )
    mocked.post(HOOK_URL, status=500)
    destination = DestinationDelivery.objects.create(
        tenant=message.tenant, message=message, action=Action.HTTP, rule=rule, period="office"
    )

    tasks.deliver_destination(destination.pk)

    # The URL is read from the rule: it never travels in the task's arguments.
    assert [args for args, _ in scheduled] == [(destination.pk,)]
    assert mocked.calls[0].request.url == HOOK_URL
    destination.refresh_from_db()
    assert (destination.status, destination.attempts) == (DestinationStatus.PENDING, 1)
    assert destination.next_try_at > timezone.now()


def test_a_destination_that_fails_for_good_is_marked_failed_and_not_tried_again(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock
) -> None:
    from sms import tasks

    # An internal address stays refused however often it is tried.
    InboundRule.objects.filter(pk=rule.pk).update(office_target="http://localhost:6379/")
    destination = DestinationDelivery.objects.create(
        tenant=message.tenant, message=message, action=Action.HTTP, rule=rule, period="office"
    )

    tasks.deliver_destination(destination.pk)
    tasks.deliver_destination(destination.pk)  # a repeated task: the row is no longer pending

    destination.refresh_from_db()
    assert (destination.status, destination.attempts) == (DestinationStatus.FAILED, 1)
    assert DestinationAttempt.objects.filter(message=message).count() == 1
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            'the address of "169.254.169.254" is not public (169.254.169.254)',
        ),
        ("http://localhost:6379/", 'the address of "localhost" is not public (127.0.0.1)'),
        ("https://[fd00::7]/hook", 'the address of "fd00::7" is not public (fd00::7)'),
    ],
)
def test_http_destination_to_a_private_address_is_refused_without_a_request_or_retry(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock, url: str, reason: str
) -> None:
    mocked.post(url, status=204)

    assert deliver(message, Action.HTTP, url, rule.pk) is None

    assert len(mocked.calls) == 0
    attempt = DestinationAttempt.objects.get(message=message)
    assert (attempt.ok, attempt.status_code, attempt.error) == (False, None, reason)


def test_http_destination_on_an_allowed_network_is_posted_to(
    message: Message, rule: InboundRule, mocked: responses.RequestsMock, settings: object
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    url = "http://10.0.0.5/hooks/sms"
    mocked.post(url, status=204)

    assert deliver(message, Action.HTTP, url, rule.pk) is None

    assert len(mocked.calls) == 1
    assert DestinationAttempt.objects.get(message=message).ok


def test_http_destination_retries_a_host_that_does_not_resolve(
    message: Message,
    rule: InboundRule,
    mocked: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unresolvable(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    mocked.post(HOOK_URL, status=204)

    assert deliver(message, Action.HTTP, HOOK_URL, rule.pk) is not None

    assert len(mocked.calls) == 0
    attempt = DestinationAttempt.objects.get(message=message)
    assert (attempt.ok, attempt.error) == (False, 'could not resolve "crm.example.com"')
