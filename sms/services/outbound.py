"""Outbound messages: queue them as outbox rows, then deliver each to VoIP.ms at most once."""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from portal.errors import ApplicationError
from portal.limits import limits
from sms.models import (
    Conversation,
    DeliveryAttempt,
    Direction,
    Kind,
    LongMessagePolicy,
    Message,
    MessageStatus,
    SmsConfiguration,
    Source,
)
from sms.providers import voipms_client_for
from sms.selectors import is_opted_out
from sms.splitting import MMS_MAX_CHARS, split_sms, utf8_len
from trunks.numbers import InvalidNumber, format_for_voipms, parse_nanp
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


def _enqueue(messages: list[Message]) -> None:
    from sms.tasks import deliver_message

    # Parts of a split text go in order: each later part is enqueued when the one before it
    # is sent (see message_deliver).
    ids = [m.pk for m in messages if m.part_index == 0]
    transaction.on_commit(lambda: [deliver_message.delay(pk) for pk in ids])


def message_build_parts(
    *, configuration: SmsConfiguration, body: str, media_urls: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """Return (kind, text) for each message to send: one MMS, or SMS parts of ≤160 bytes."""
    if media_urls or (
        utf8_len(body) > 160 and configuration.long_message_policy == LongMessagePolicy.MMS
    ):
        if len(body) > MMS_MAX_CHARS:
            raise ApplicationError(
                f"An MMS holds at most {MMS_MAX_CHARS} characters.", code="too_long", field="body"
            )
        return [(Kind.MMS, body)]
    if not body.strip():
        raise ApplicationError("Write a message.", code="message_empty", field="body")
    # A part of only white space would be refused by VoIP.ms (message_empty) and leave the
    # text half sent: leave it out.
    return [(Kind.SMS, part) for part in split_sms(body) if part.strip()]


@transaction.atomic
def message_queue(
    *,
    configuration: SmsConfiguration,
    conversation: Conversation | None,
    did: str,
    to: str,
    body: str,
    media_urls: tuple[str, ...] = (),
    source: str,
    extension: object | None = None,
    ignore_opt_out: bool = False,
    route_plan: list[dict[str, object]] | None = None,
) -> list[Message]:
    """Create the outbox rows of a text (one per part) and enqueue them after commit."""
    tenant = configuration.tenant
    if not ignore_opt_out and is_opted_out(tenant=tenant, did=did, remote=to):
        raise ApplicationError(
            f"{to} opted out of messages from {did} (texted STOP).", code="opted_out", field="to"
        )
    parts = message_build_parts(configuration=configuration, body=body, media_urls=media_urls)
    group = uuid.uuid4() if len(parts) > 1 else None
    plan = route_plan or [{"configuration_id": configuration.pk, "did": did, "dst": to}]
    messages = [
        Message.objects.create(
            tenant=tenant,
            configuration=configuration,
            conversation=conversation,
            direction=Direction.OUT,
            kind=kind,
            status=MessageStatus.QUEUED,
            source=source,
            did=did,
            remote=to,
            body=text,
            media_urls=list(media_urls) if kind == Kind.MMS else [],
            segments=len(parts),
            route_plan=plan,
            part_group=group,
            part_index=index,
            extension=extension,
        )
        for index, (kind, text) in enumerate(parts)
    ]
    if conversation is not None:
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=timezone.now(), last_message_text=body[:200] or "[media]"
        )
    _enqueue(messages)
    return messages


def message_queue_automatic(
    *,
    conversation: Conversation,
    body: str,
    to: str | None = None,
    ignore_opt_out: bool = False,
) -> list[Message]:
    """Queue an automatic reply (or a forward to `to`) from the conversation's DID."""
    configuration = conversation.configuration
    if configuration is None:
        return []
    try:
        destination = parse_nanp(to) if to else conversation.remote
    except InvalidNumber:
        logger.warning("automatic message: %r is not a valid destination", to)
        return []
    target = conversation
    if to:
        target, _ = Conversation.objects.get_or_create(
            tenant=conversation.tenant,
            did=conversation.did,
            remote=destination,
            defaults={"configuration": configuration},
        )
    try:
        return message_queue(
            configuration=configuration,
            conversation=target,
            did=conversation.did,
            to=destination,
            body=body,
            source=Source.SYSTEM,
            ignore_opt_out=ignore_opt_out,
        )
    except ApplicationError as error:
        logger.info("automatic message not queued: %s", error.code)
        return []


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
        from sms.tasks import deliver_message

        following = Message.objects.filter(
            part_group=message.part_group,
            part_index=message.part_index + 1,
            status=MessageStatus.QUEUED,
        ).values_list("pk", flat=True)
        for pk in following:
            deliver_message.delay(pk)


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
    elif not configuration.tenant.enabled or not configuration.tenant.message_channels_enabled:
        refusal = ("channels_off", "Message Channels are off for this tenant.")
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
        if error.nothing_sent:
            # Refused by VoIP.ms, or before the request went out: no send to count.
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
