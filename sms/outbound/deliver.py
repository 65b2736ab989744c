"""Deliver one outbox row to VoIP.ms at most once per attempt decision: claim, call, record."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.limits import limits
from core.tasks import publish_quietly
from sms.models import (
    DeliveryAttempt,
    Direction,
    Kind,
    Message,
    MessageStatus,
    SmsConfiguration,
)
from sms.providers import voipms_client_for
from tenants.access import messaging_refusal
from trunks.numbers import format_for_voipms
from trunks.voipms.errors import VoipmsError, VoipmsOutcomeUnknown

EASTERN = ZoneInfo("America/New_York")


LIMITS_RETRY_SECONDS = 5.0


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one delivery attempt decided."""

    status: str
    retry_in: float | None = None
    slot_reserved: bool = False


def _backoff(attempt: int) -> float:
    base = settings.SMS_RETRY_BASE_SECONDS * (2 ** (attempt - 1))
    capped = min(base, settings.SMS_RETRY_MAX_SECONDS)
    return capped / 2 + random.uniform(0, capped / 2)  # noqa: S311 - jitter, not security


def _claim(message_id: int) -> Message | None:
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, direction=Direction.OUT, status=MessageStatus.QUEUED)
            .first()
        )
        if message is None:
            return None
        if message.part_index > 0:
            previous = (
                Message.objects.filter(
                    part_group=message.part_group, part_index=message.part_index - 1
                )
                .values_list("status", flat=True)
                .first()
            )
            if previous in (MessageStatus.FAILED, MessageStatus.BLOCKED):
                _fail_later_parts(message, include_self=True)
                return None
            if previous not in (MessageStatus.SENT, MessageStatus.DELIVERED):
                return None  # its turn comes when the part before it is sent
        now = timezone.now()
        Message.objects.filter(pk=message.pk).update(
            status=MessageStatus.SENDING,
            attempt_count=F("attempt_count") + 1,
            last_attempt_at=now,
            next_attempt_at=None,
        )
        message.attempt_count += 1
        return message


def _record(
    message: Message, outcome: str, code: str = "", detail: str = "", elapsed: float | None = None
) -> None:
    DeliveryAttempt.objects.create(
        tenant_id=message.tenant_id,
        message=message,
        outcome=outcome,
        code=code[:50],
        detail=detail[:300],
        elapsed_ms=int(elapsed * 1000) if elapsed is not None else None,
    )


def _finish(message: Message, status: str, **fields: object) -> None:
    Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
        status=status, **fields
    )
    if message.part_group is None:
        return
    if status == MessageStatus.FAILED:
        _fail_later_parts(message, include_self=False)
    elif status == MessageStatus.SENT:
        following = Message.objects.filter(
            part_group=message.part_group,
            part_index=message.part_index + 1,
            status=MessageStatus.QUEUED,
        ).values_list("pk", flat=True)
        for pk in following:
            publish_quietly("sms.deliver_message", pk)


def _fail_later_parts(message: Message, *, include_self: bool) -> None:
    later = Message.objects.filter(part_group=message.part_group, status=MessageStatus.QUEUED)
    later = later.filter(
        part_index__gte=message.part_index if include_self else message.part_index + 1
    )
    later.update(
        status=MessageStatus.FAILED,
        error_code="earlier_part_failed",
        error_message="An earlier part of this text was not sent, so this part was not either.",
    )


def _eastern_day() -> str:
    return timezone.now().astimezone(EASTERN).strftime("%Y-%m-%d")


def _route(message: Message) -> tuple[int | None, str, str]:
    plan = message.route_plan or []
    if message.route_index < len(plan):
        step = plan[message.route_index]
        return int(step["configuration_id"]), str(step["did"]), str(step["dst"])
    return message.configuration_id, message.did, message.remote


def _requeue(
    message: Message, delay: float, *, rate_wait: bool, **fields: object
) -> DeliveryOutcome:
    if rate_wait:
        fields["attempt_count"] = F("attempt_count") - 1
    _finish(
        message,
        MessageStatus.QUEUED,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
        **fields,
    )
    return DeliveryOutcome(MessageStatus.QUEUED, retry_in=delay, slot_reserved=rate_wait)


def _next_route(message: Message, error: VoipmsError) -> DeliveryOutcome | None:
    plan = message.route_plan or []
    if not error.route_level or message.route_index + 1 >= len(plan):
        return None
    step = plan[message.route_index + 1]
    _record(message, "next_route", error.code, error.message)
    _finish(
        message,
        MessageStatus.QUEUED,
        route_index=message.route_index + 1,
        configuration_id=int(step["configuration_id"]),
        did=str(step["did"]),
        error_code=error.code,
        error_message=f"Route {message.route_index + 1} failed ({error.message}); trying the next.",
    )
    return DeliveryOutcome(MessageStatus.QUEUED, retry_in=0.0)


def message_deliver(*, message_id: int, slot_reserved: bool = False) -> DeliveryOutcome | None:
    """Claim a queued message and send it to VoIP.ms once; None when another worker has it."""
    message = _claim(message_id)
    if message is None:
        return None
    configuration_id, did_e164, dst_e164 = _route(message)
    configuration = (
        SmsConfiguration.objects.select_related("tenant").filter(pk=configuration_id).first()
    )
    refusal = None
    if configuration is None:
        refusal = ("no_configuration", "The SMS/MMS configuration was deleted.")
    elif messaging_refusal(configuration.tenant):
        refusal = ("channels_off", messaging_refusal(configuration.tenant) + ".")
    elif not configuration.enabled:
        refusal = ("configuration_disabled", "The SMS/MMS configuration is disabled.")
    if refusal is not None:
        _record(message, "failed", *refusal)
        _finish(message, MessageStatus.FAILED, error_code=refusal[0], error_message=refusal[1])
        return DeliveryOutcome(MessageStatus.FAILED)

    account = configuration.username.lower()
    store = limits()
    day = _eastern_day()
    try:
        if not slot_reserved:
            wait = store.reserve_request(account, settings.VOIPMS_REQUESTS_PER_SECOND)
            if wait > 0.05:
                # Wait in the broker, not in a worker thread: the slot is reserved for then.
                return _requeue(message, wait, rate_wait=True)
        within_limit = store.count_send(account, day, configuration.daily_send_limit)
    except Exception as error:
        # The limits store (Redis) failed before anything reached VoIP.ms: try again soon.
        logger.warning(
            "limits unavailable (%s); message %s back in the queue",
            type(error).__name__,
            message.pk,
        )
        _record(message, "retry", "limits_unavailable", type(error).__name__)
        return _requeue(message, LIMITS_RETRY_SECONDS, rate_wait=True)
    if not within_limit:
        error = VoipmsError(
            "limit_reached",
            f"The daily limit of {configuration.daily_send_limit} sends for this VoIP.ms account "
            "is reached; sending resumes tomorrow (US Eastern time).",
            permanent=True,
        )
        outcome = _next_route(message, error)
        if outcome is not None:
            return outcome
        _record(message, "failed", error.code, error.message)
        _finish(message, MessageStatus.FAILED, error_code=error.code, error_message=error.message)
        return DeliveryOutcome(MessageStatus.FAILED)

    did = format_for_voipms(did_e164, configuration.number_format)
    dst = format_for_voipms(dst_e164, configuration.number_format)
    if configuration.prepend_plus and not dst.startswith("+"):
        dst = "+" + dst
    started = time.monotonic()
    # The HTTP call runs outside any transaction: no row lock is held for its 7-11 s. The
    # database connection is handed back for that time too, so hundreds of sends in flight do
    # not need hundreds of PostgreSQL connections.
    if not connection.in_atomic_block:
        connection.close()
    try:
        with voipms_client_for(configuration) as client:
            if message.kind == Kind.MMS:
                provider_id = client.send_mms(
                    did=did, dst=dst, message=message.body, media=message.media_urls
                )
            else:
                provider_id = client.send_sms(did=did, dst=dst, message=message.body)
    except VoipmsOutcomeUnknown as error:
        _record(message, "unknown", error.code, error.message, time.monotonic() - started)
        _finish(
            message,
            MessageStatus.UNKNOWN,
            error_code=error.code,
            error_message="VoIP.ms did not answer in time; the message may have been sent. "
            "It is checked against VoIP.ms before any resend.",
        )
        return DeliveryOutcome(MessageStatus.UNKNOWN)
    except VoipmsError as error:
        elapsed = time.monotonic() - started
        if error.nothing_sent or not error.permanent:
            # Refused by VoIP.ms, failed before the request went out, or a transient failure
            # (tried again later, and counted then): no send to count now.
            store.uncount_send(account, day)
        if not error.permanent and message.attempt_count < settings.SMS_MAX_ATTEMPTS:
            delay = max(_backoff(message.attempt_count), error.retry_after or 0)
            _record(message, "retry", error.code, error.message, elapsed)
            return _requeue(
                message,
                delay,
                rate_wait=False,
                error_code=error.code,
                error_message=error.message[:500],
            )
        outcome = _next_route(message, error)
        if outcome is not None:
            return outcome
        _record(message, "failed", error.code, error.message, elapsed)
        _finish(
            message, MessageStatus.FAILED, error_code=error.code, error_message=error.message[:500]
        )
        return DeliveryOutcome(MessageStatus.FAILED)
    _record(message, "sent", "", "", time.monotonic() - started)
    _finish(
        message,
        MessageStatus.SENT,
        provider_id=provider_id,
        provider_account=account,
        configuration_id=configuration.pk,
        sent_at=timezone.now(),
        error_code="",
        error_message="",
    )
    return DeliveryOutcome(MessageStatus.SENT)
