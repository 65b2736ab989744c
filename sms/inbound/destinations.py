"""Hand received messages to an e-mail address or a signed HTTP POST, recording every try."""

from __future__ import annotations

import json
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.utils import timezone

from core.clock import time_display
from core.http import HttpError, backoff_delay, post_json, signature
from sms.inbound.rules import inbound_rule_secret
from sms.models import (
    Action,
    DestinationAttempt,
    DestinationDelivery,
    DestinationStatus,
    InboundRule,
    Message,
)
from tenants.access import messaging_refusal

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Seed-Signature"
TIMESTAMP_HEADER = "X-Seed-Timestamp"


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    retry: bool = False
    status_code: int | None = None
    error: str = ""


def _setting(name: str, default: float) -> float:
    return getattr(settings, name, default)


def destination_target(*, destination: DestinationDelivery) -> str:
    """Return the address to deliver to, read from the rule or extension when it is tried."""
    if destination.extension is not None:
        return destination.extension.email
    if destination.rule is not None and destination.period in ("office", "after_hours", "holiday"):
        return getattr(destination.rule, f"{destination.period}_target")
    return ""


def destination_delivery_run(*, destination_id: int) -> float | None:
    """Try a pending destination once and record the outcome; return seconds until a retry."""
    destination = (
        DestinationDelivery.objects.select_related("rule", "extension")
        .filter(pk=destination_id, status=DestinationStatus.PENDING)
        .first()
    )
    if destination is None:
        return None
    target = destination_target(destination=destination)
    attempt = destination.attempts + 1
    retry_in = None
    if target:
        retry_in = destination_deliver(
            message_id=destination.message_id,
            action=destination.action,
            target=target,
            rule_id=destination.rule_id,
            attempt=attempt,
        )
    if retry_in is not None:
        status = DestinationStatus.PENDING
    elif (
        target
        and DestinationAttempt.objects.filter(
            message_id=destination.message_id,
            action=destination.action,
            target=target[:500],
            ok=True,
        ).exists()
    ):
        status = DestinationStatus.DELIVERED
    else:
        status = DestinationStatus.FAILED
    DestinationDelivery.objects.filter(pk=destination.pk).update(
        status=status,
        attempts=attempt,
        next_try_at=timezone.now() + timedelta(seconds=retry_in or 0),
    )
    return retry_in


def destination_deliver(
    *, message_id: int, action: str, target: str, rule_id: int | None, attempt: int
) -> float | None:
    """Try once to hand a message to its destination; return seconds until a retry, or None."""
    message = Message.objects.select_related("tenant").filter(pk=message_id).first()
    if message is None:
        return None
    done = DestinationAttempt.objects.filter(
        message=message, action=action, target=target[:500], ok=True
    ).exists()
    if done:
        # A task delivered twice (acks_late after a lost worker) must not mail or POST twice.
        return None
    refusal = messaging_refusal(message.tenant)
    if refusal:
        outcome = _Outcome(ok=False, error=refusal)
    elif action == Action.EMAIL:
        outcome = _email(message, target)
    elif action == Action.HTTP:
        outcome = _http(message, target, rule_id)
    else:
        outcome = _Outcome(ok=False, error=f"{action!r} is not an e-mail or HTTP destination")
    DestinationAttempt.objects.create(
        tenant_id=message.tenant_id,
        message=message,
        action=action[:12],
        target=target[:500],
        attempt=attempt,
        ok=outcome.ok,
        status_code=outcome.status_code,
        error=outcome.error[:300],
    )
    max_attempts = int(_setting("DESTINATION_MAX_ATTEMPTS", 6))
    if outcome.ok or not outcome.retry or attempt >= max_attempts:
        logger.info(
            "Destination %s of message %s, try %d: %s",
            action,
            message.pk,
            attempt,
            "delivered" if outcome.ok else f"failed for good (HTTP {outcome.status_code})",
        )
        return None
    delay = backoff_delay(
        attempt=attempt,
        base=_setting("DESTINATION_RETRY_BASE_SECONDS", 30.0),
        cap=_setting("DESTINATION_RETRY_MAX_SECONDS", 1800.0),
    )
    logger.info(
        "Destination %s of message %s, try %d failed (HTTP %s); next try in %d s",
        action,
        message.pk,
        attempt,
        outcome.status_code,
        delay,
    )
    return delay


def _one_line(text: str) -> str:
    """Return the text without line breaks, which a mail header must not hold."""
    return " ".join(text.split())


def _email(message: Message, address: str) -> _Outcome:
    """Send the message by e-mail."""
    try:
        validate_email(address)
    except ValidationError:
        return _Outcome(ok=False, error="not a valid e-mail address")
    subject = (
        f"{message.get_kind_display()} from {_one_line(message.remote)} to {_one_line(message.did)}"
    )
    lines = [message.body]
    if message.media_urls:
        lines += ["", "Media:", *message.media_urls]
    if message.received_at:
        # The tenant's clock, as its pages show it: a mail reader has no other zone to go by.
        lines += ["", f"Received {time_display(message.received_at, message.tenant.zone)}"]
    try:
        send_mail(
            subject, "\n".join(lines), settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False
        )
    except smtplib.SMTPRecipientsRefused:
        return _Outcome(ok=False, error="the mail server refused the address")
    except (smtplib.SMTPException, OSError) as error:
        return _Outcome(ok=False, retry=True, error=f"mail not sent ({type(error).__name__})")
    return _Outcome(ok=True)


def webhook_payload(message: Message) -> bytes:
    """Return the JSON body POSTed to HTTP destinations for a message."""
    document = {
        "id": message.pk,
        "direction": message.direction,
        "kind": message.kind,
        "did": message.did,
        "remote": message.remote,
        "body": message.body,
        "media": list(message.media_urls),
        "received_at": message.received_at.isoformat() if message.received_at else None,
        "tenant": message.tenant.slug,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """Return the X-Seed-Signature value: HMAC-SHA256 over "<timestamp>.<body>"."""
    return signature(secret=secret, timestamp=timestamp, body=body)


def _http(message: Message, url: str, rule_id: int | None) -> _Outcome:
    """POST the message, signed with the rule's secret, to the URL."""
    rule = (
        InboundRule.objects.for_tenant(message.tenant).filter(pk=rule_id).first()
        if rule_id is not None
        else None
    )
    if rule is None:
        return _Outcome(ok=False, error="the inbound rule was deleted")
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return _Outcome(ok=False, error="not an http(s) URL")
    body = webhook_payload(message)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: webhook_signature(
            secret=inbound_rule_secret(rule=rule), timestamp=timestamp, body=body
        ),
    }
    try:
        status = post_json(
            url, body, headers, timeout=_setting("DESTINATION_HTTP_TIMEOUT_SECONDS", 15.0)
        )
    except HttpError as error:
        # A URL that is not usable, or leads to an internal address, stays so however often tried.
        retry = error.code not in ("invalid_url", "address_refused")
        return _Outcome(ok=False, retry=retry, error=error.message)
    if 200 <= status < 300:
        return _Outcome(ok=True, status_code=status)
    return _Outcome(ok=False, retry=True, status_code=status, error=f"answered HTTP {status}")
