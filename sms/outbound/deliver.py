"""Deliver one outbox row to VoIP.ms at most once per attempt decision, in three steps.

1. `delivery_prepare` (database and Redis): claim the queued row (`queued` -> `sending`), check the
   tenant and configuration, take a request slot and a daily-cap count, and build the call.
2. `delivery_call` (network only): one sendSMS/sendMMS. It touches no database connection, so a
   call that waits 7-11 s on VoIP.ms holds nothing but a socket.
3. `delivery_settle` (database): record the attempt and the message's next state.

`message_deliver` runs the three in one thread (the Celery task). `sms.outbound.sender` runs step 2
on many threads and steps 1 and 3 on a few, for throughput within a small connection budget.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone

from core.limits import limits
from core.tasks import enqueue
from sms.models import (
    DeliveryAttempt,
    Direction,
    Kind,
    Message,
    MessageStatus,
    SmsConfiguration,
)
from sms.outbound.attachments import outbound_media_data_urls
from sms.outbound.events import status_record, statuses_record_by_id
from sms.providers import voipms_client_for
from tenants.access import messaging_refusal
from tenants.models import Tenant
from trunks.voipms.errors import VoipmsError, VoipmsOutcomeUnknown
from trunks.voipms.formats import format_for_voipms, voipms_day

ModelT = TypeVar("ModelT", bound=models.Model)

LIMITS_RETRY_SECONDS = 5.0
# A request slot free within this many seconds is used at once rather than waited for.
RATE_WAIT_SLACK_SECONDS = 0.05


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one delivery attempt decided."""

    status: str
    retry_in: float | None = None
    slot_reserved: bool = False


@dataclass
class SendJob:
    """A claimed message and everything its VoIP.ms call needs, loaded before the call."""

    message: Message
    configuration: SmsConfiguration
    account: str
    day: str
    did: str
    dst: str
    # An MMS's media: its links, then its attached pictures as base64 data URLs.
    media: tuple[str, ...] = ()


@dataclass
class CallResult:
    """What one sendSMS/sendMMS call answered: a VoIP.ms id, or the error it raised."""

    provider_id: int | None = None
    error: VoipmsError | None = None
    elapsed: float = 0.0


def _backoff(attempt: int) -> float:
    base = settings.SMS_RETRY_BASE_SECONDS * (2 ** (attempt - 1))
    capped = min(base, settings.SMS_RETRY_MAX_SECONDS)
    return capped / 2 + random.uniform(0, capped / 2)  # noqa: S311 - jitter, not security


@cache
def _claim_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(Message._meta.db_table)
    columns = ", ".join(quote(field.column) for field in Message._meta.concrete_fields)
    return " ".join(
        [
            f"UPDATE {table}",
            "SET status = %s,",
            "attempt_count = attempt_count + 1, last_attempt_at = %s, next_attempt_at = NULL",
            "WHERE id = %s AND direction = %s AND status = %s AND part_index = 0",
            f"RETURNING {columns}",
        ]
    )


@cache
def _configuration_sql() -> str:
    quote = connection.ops.quote_name

    def columns(model: type[models.Model], alias: str) -> str:
        return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)

    return " ".join(
        [
            f"SELECT {columns(SmsConfiguration, 'c')}, {columns(Tenant, 't')}",
            f"FROM {quote(SmsConfiguration._meta.db_table)} c",
            f"JOIN {quote(Tenant._meta.db_table)} t ON t.{quote(Tenant._meta.pk.column)} =",
            f"c.{quote(SmsConfiguration._meta.get_field('tenant').column)}",
            f"WHERE c.{quote(SmsConfiguration._meta.pk.column)} = %s",
        ]
    )


@cache
def _converters(model: type[models.Model]) -> tuple[tuple[Any, tuple[Any, ...]], ...]:
    """Return each concrete field's column and database converters, as the ORM applies them."""
    table = model._meta.db_table
    found = []
    for field in model._meta.concrete_fields:
        column = field.get_col(table)
        found.append(
            (
                column,
                (
                    *connection.ops.get_db_converters(column),
                    *column.get_db_converters(connection),
                ),
            )
        )
    return tuple(found)


def _from_row(model: type[ModelT], values: Sequence[Any]) -> ModelT:
    """Build a model instance from its concrete columns' values, converted as the ORM does."""
    converted = []
    for (column, converters), value in zip(_converters(model), values, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(
        connection.alias, [field.attname for field in model._meta.concrete_fields], converted
    )


def _configuration_load(configuration_id: int | None) -> SmsConfiguration | None:
    """Return the configuration with its tenant: one statement, as every send makes it."""
    with connection.cursor() as cursor:
        cursor.execute(_configuration_sql(), [configuration_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(SmsConfiguration._meta.concrete_fields)
    configuration = _from_row(SmsConfiguration, row[:split])
    configuration.tenant = _from_row(Tenant, row[split:])
    return configuration


def _claim(message_id: int) -> Message | None:
    """Take a queued message for sending (`queued` -> `sending`); None if it is not to be sent.

    A single text (the common case) is taken by one statement, written without the ORM because
    it runs for every send; a later part of a long text waits for the part before it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _claim_sql(),
            [
                MessageStatus.SENDING,
                timezone.now(),
                message_id,
                Direction.OUT,
                MessageStatus.QUEUED,
            ],
        )
        row = cursor.fetchone()
    if row is not None:
        return _from_row(Message, row)
    return _claim_part(message_id)


def _claim_part(message_id: int) -> Message | None:
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


ATTEMPT_COLUMNS = ("tenant", "message", "at", "outcome", "code", "detail", "elapsed_ms")


@cache
def _attempt_insert_sql() -> str:
    quote = connection.ops.quote_name
    column = {field.name: quote(field.column) for field in DeliveryAttempt._meta.concrete_fields}
    table = quote(DeliveryAttempt._meta.db_table)
    return " ".join(
        [
            f"INSERT INTO {table} ({', '.join(column[name] for name in ATTEMPT_COLUMNS)})",
            "VALUES (" + ", ".join(["%s"] * len(ATTEMPT_COLUMNS)) + ")",
        ]
    )


def _record(
    message: Message, outcome: str, code: str = "", detail: str = "", elapsed: float | None = None
) -> None:
    """Record one attempt: the row `DeliveryAttempt.objects.create` would write, as one INSERT."""
    with connection.cursor() as cursor:
        cursor.execute(
            _attempt_insert_sql(),
            [
                message.tenant_id,
                message.pk,
                connection.ops.adapt_datetimefield_value(timezone.now()),
                str(outcome),
                str(code)[:50],
                str(detail)[:300],
                int(elapsed * 1000) if elapsed is not None else None,
            ],
        )


def _finish(message: Message, status: str, *, record: bool = True, **fields: object) -> None:
    changed = Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(
        status=status, **fields
    )
    if changed and record:
        status_record(
            message,
            status=status,
            code=str(fields.get("error_code", "")),
            detail=str(fields.get("error_message", "")),
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
            enqueue("sms.deliver_message", pk)


def _fail_later_parts(message: Message, *, include_self: bool) -> None:
    later = Message.objects.filter(part_group=message.part_group, status=MessageStatus.QUEUED)
    later = later.filter(
        part_index__gte=message.part_index if include_self else message.part_index + 1
    )
    ids = list(later.values_list("pk", flat=True))
    detail = "An earlier part of this text was not sent, so this part was not either."
    changed = Message.objects.filter(pk__in=ids, status=MessageStatus.QUEUED).update(
        status=MessageStatus.FAILED, error_code="earlier_part_failed", error_message=detail
    )
    if changed:
        statuses_record_by_id(
            ids, status=MessageStatus.FAILED, code="earlier_part_failed", detail=detail
        )


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
    # Waiting for a request slot is no status change worth telling: nothing was tried.
    _finish(
        message,
        MessageStatus.QUEUED,
        record=not rate_wait,
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


def _refusal(configuration: SmsConfiguration | None) -> tuple[str, str] | None:
    if configuration is None:
        return ("no_configuration", "The SMS/MMS configuration was deleted.")
    refusal = messaging_refusal(configuration.tenant)
    if refusal:
        return ("channels_off", refusal + ".")
    if not configuration.enabled:
        return ("configuration_disabled", "The SMS/MMS configuration is disabled.")
    return None


def _fail(message: Message, code: str, detail: str) -> DeliveryOutcome:
    _record(message, "failed", code, detail)
    _finish(message, MessageStatus.FAILED, error_code=code, error_message=detail[:500])
    return DeliveryOutcome(MessageStatus.FAILED)


def delivery_prepare(
    *, message_id: int, slot_reserved: bool = False
) -> SendJob | DeliveryOutcome | None:
    """Claim a queued message and get its call ready; an outcome when no call is to be made.

    None means another worker has the message (or it is not queued any more).
    """
    message = _claim(message_id)
    if message is None:
        return None
    configuration_id, did_e164, dst_e164 = _route(message)
    configuration = _configuration_load(configuration_id)
    refusal = _refusal(configuration)
    if refusal is not None:
        return _fail(message, *refusal)
    media: tuple[str, ...] = ()
    if message.kind == Kind.MMS:
        try:
            media = (*message.media_urls, *outbound_media_data_urls(message=message))
        except OSError:
            logger.exception("message %s: an attached picture cannot be read", message.pk)
            return _fail(
                message,
                "media_missing",
                "An attached picture is no longer stored; send the message again.",
            )

    account = configuration.username.lower()
    store = limits()
    day = voipms_day()
    try:
        if slot_reserved:
            within_limit = store.count_send(account, day, configuration.daily_send_limit)
        else:
            # The request slot and the day's count in one trip to the store.
            wait, counted = store.reserve_and_count(
                account,
                settings.VOIPMS_REQUESTS_PER_SECOND,
                day,
                configuration.daily_send_limit,
                max_wait=RATE_WAIT_SLACK_SECONDS,
            )
            if counted is None:
                # Wait in the broker, not in a worker thread: the slot is reserved for then.
                return _requeue(message, wait, rate_wait=True)
            within_limit = counted
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
        return _next_route(message, error) or _fail(message, error.code, error.message)

    dst = format_for_voipms(dst_e164, configuration.number_format)
    if configuration.prepend_plus and not dst.startswith("+"):
        dst = "+" + dst
    status_record(message, status=MessageStatus.SENDING)
    return SendJob(
        message=message,
        configuration=configuration,
        account=account,
        day=day,
        did=format_for_voipms(did_e164, configuration.number_format),
        dst=dst,
        media=media,
    )


def delivery_call(job: SendJob) -> CallResult:
    """Make the one VoIP.ms call of a prepared send; uses the network only, never the database."""
    message = job.message
    started = time.monotonic()
    try:
        with voipms_client_for(job.configuration) as client:
            if message.kind == Kind.MMS:
                provider_id = client.send_mms(
                    did=job.did, dst=job.dst, message=message.body, media=job.media
                )
            else:
                provider_id = client.send_sms(did=job.did, dst=job.dst, message=message.body)
    except VoipmsError as error:
        return CallResult(error=error, elapsed=time.monotonic() - started)
    except Exception as error:
        # A fault of ours after the request may have left: whether VoIP.ms sent it is unknown,
        # so it is settled from VoIP.ms's history, never sent again blindly.
        logger.exception("message %s: the VoIP.ms call failed unexpectedly", message.pk)
        unknown = VoipmsOutcomeUnknown(f"{type(error).__name__} during the VoIP.ms call")
        return CallResult(error=unknown, elapsed=time.monotonic() - started)
    return CallResult(provider_id=provider_id, elapsed=time.monotonic() - started)


def delivery_settle(job: SendJob, result: CallResult) -> DeliveryOutcome:
    """Record a call's result on the message: sent, unknown, back in the queue, or failed.

    The attempt, the message's new state and its story commit together.
    """
    with transaction.atomic():
        return _settle(job, result)


def _settle(job: SendJob, result: CallResult) -> DeliveryOutcome:
    message, error, elapsed = job.message, result.error, result.elapsed
    if isinstance(error, VoipmsOutcomeUnknown):
        _record(message, "unknown", error.code, error.message, elapsed)
        _finish(
            message,
            MessageStatus.UNKNOWN,
            error_code=error.code,
            error_message="VoIP.ms did not answer in time; the message may have been sent. "
            "It is checked against VoIP.ms before any resend.",
        )
        return DeliveryOutcome(MessageStatus.UNKNOWN)
    if error is not None:
        if error.nothing_sent or not error.permanent:
            # Refused by VoIP.ms, failed before the request went out, or a transient failure
            # (tried again later, and counted then): no send to count now.
            try:
                limits().uncount_send(job.account, job.day)
            except Exception as uncount_error:
                logger.warning("daily count not returned: %s", type(uncount_error).__name__)
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
    _record(message, "sent", "", "", elapsed)
    _finish(
        message,
        MessageStatus.SENT,
        provider_id=result.provider_id,
        provider_account=job.account,
        configuration_id=job.configuration.pk,
        sent_at=timezone.now(),
        error_code="",
        error_message="",
    )
    return DeliveryOutcome(MessageStatus.SENT)


def message_deliver(*, message_id: int, slot_reserved: bool = False) -> DeliveryOutcome | None:
    """Claim a queued message and send it to VoIP.ms once; None when another worker has it."""
    prepared = delivery_prepare(message_id=message_id, slot_reserved=slot_reserved)
    if not isinstance(prepared, SendJob):
        return prepared
    # The HTTP call runs outside any transaction: no row lock is held for its 7-11 s, and the
    # database connection is handed back for that time too.
    if not connection.in_atomic_block:
        connection.close()
    return delivery_settle(prepared, delivery_call(prepared))
