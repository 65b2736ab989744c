"""Keeping the outbox honest: lost tasks, stuck sends, unknown outcomes, delivery status."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from portal.limits import limits
from sms.models import DeliveryAttempt, Direction, Kind, Message, MessageStatus, SmsConfiguration
from sms.providers import voipms_client_for
from trunks.numbers import InvalidNumber, normalize_number
from trunks.voipms.client import SmsRecord
from trunks.voipms.errors import VoipmsError

logger = logging.getLogger(__name__)
RECONCILE_WINDOW = timedelta(minutes=15)
EASTERN = ZoneInfo("America/New_York")
# getSMS/getMMS rows asked for per call, and DID-by-DID calls per account and kind in one run
# of the carrier status update when an account's answer was cut short.
HISTORY_LIMIT = 1000
CARRIER_STATUS_DID_CALLS = 20
CARRIER_STATUS_MAX_WAIT = 5.0  # seconds to wait for a request slot before leaving it to a run
SWEEP_BATCH = 20  # deliveries per re-enqueued task
# A pending media file whose try is this far overdue lost its task (a worker died with it).
MEDIA_LOST_AFTER = timedelta(minutes=10)


def outbox_sweep() -> int:
    """Re-enqueue queued messages whose task may be lost (older than a minute and due)."""
    from sms.tasks import deliver_message

    now = timezone.now()
    minute_ago = now - timedelta(seconds=60)
    due = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.QUEUED).filter(
        Q(next_attempt_at__isnull=True, created_at__lt=minute_ago)
        | Q(next_attempt_at__lt=minute_ago)
    )
    ids = list(due.values_list("pk", flat=True)[:1000])
    for pk in ids:
        # Safe when the original task is alive after all: only one claim can win the row.
        deliver_message.delay(pk)
    return len(ids)


def outbox_unstick() -> int:
    """Take messages stuck in "sending" past the visibility window as unknown, to reconcile."""
    from sms.tasks import reconcile_message

    cutoff = timezone.now() - timedelta(seconds=settings.SMS_SENDING_STUCK_SECONDS)
    stuck = list(
        Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.SENDING, last_attempt_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )
    moved = Message.objects.filter(pk__in=stuck, status=MessageStatus.SENDING).update(
        status=MessageStatus.UNKNOWN,
        error_code="outcome_unknown",
        error_message="The worker sending it stopped; it is checked against VoIP.ms "
        "before any resend.",
    )
    for pk in stuck:
        reconcile_message.delay(pk)
    unknown = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.UNKNOWN)
    for pk in unknown.exclude(pk__in=stuck).values_list("pk", flat=True)[:1000]:
        reconcile_message.delay(pk)
    return moved


def message_reconcile(*, message_id: int) -> str:
    """Look for an unknown message in VoIP.ms's history: sent, re-sent once, or still unknown."""
    message = Message.objects.filter(pk=message_id, status=MessageStatus.UNKNOWN).first()
    if message is None:
        return "not unknown"
    configuration = SmsConfiguration.objects.filter(pk=message.configuration_id).first()
    if configuration is None:
        return "no configuration"
    sent_around = message.last_attempt_at or message.created_at
    eastern = sent_around.astimezone(_eastern())
    step = (message.route_plan or [{}])[
        min(message.route_index, len(message.route_plan or [{}]) - 1)
    ]
    did = str(step.get("did", message.did))
    dst = str(step.get("dst", message.remote))
    try:
        with voipms_client_for(configuration, read_timeout=30.0) as client:
            reader = client.get_mms if message.kind == Kind.MMS else client.get_sms
            rows = reader(
                date_from=(eastern - timedelta(days=1)).date(),
                date_to=(eastern + timedelta(days=1)).date(),
                type=0,
                did=_ten(did),
                contact=_ten(dst),
                limit=200,
            )
    except VoipmsError as error:
        logger.warning("reconcile: VoIP.ms answered %s", error.code)
        return "voipms error"
    taken = set(
        Message.objects.filter(
            provider_account=configuration.username.lower(),
            kind=message.kind,
            direction=Direction.OUT,
            provider_id__in=[row.id for row in rows],
        ).values_list("provider_id", flat=True)
    )
    # Nearest in time first; a row another message already holds is an earlier identical text.
    for row in sorted(rows, key=lambda row: abs(row.date - sent_around)):
        if row.id in taken:
            continue
        if row.message == message.body and abs(row.date - sent_around) <= RECONCILE_WINDOW:
            Message.objects.filter(pk=message.pk, status=MessageStatus.UNKNOWN).update(
                status=MessageStatus.SENT,
                provider_id=row.id,
                provider_account=configuration.username.lower(),
                sent_at=row.date,
                error_code="",
                error_message="",
            )
            DeliveryAttempt.objects.create(
                tenant_id=message.tenant_id, message=message, outcome="reconciled", code="found"
            )
            return "sent"
    if timezone.now() - sent_around < timedelta(seconds=settings.SMS_UNKNOWN_GRACE_SECONDS):
        return "unknown"
    if message.resend_count >= 1:
        Message.objects.filter(pk=message.pk, status=MessageStatus.UNKNOWN).update(
            status=MessageStatus.FAILED,
            error_code="outcome_unknown",
            error_message="VoIP.ms never confirmed this message, even after one resend.",
        )
        return "failed"
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status=MessageStatus.UNKNOWN).update(
            status=MessageStatus.QUEUED, resend_count=message.resend_count + 1, next_attempt_at=None
        )
        if changed:
            DeliveryAttempt.objects.create(
                tenant_id=message.tenant_id, message=message, outcome="resend", code="absent"
            )
            from sms.tasks import deliver_message

            transaction.on_commit(lambda: deliver_message.delay(message.pk))
    return "resent"


def carrier_status_update() -> int:
    """Mark sends of the last 48 hours delivered from VoIP.ms's carrier status, per account.

    One history call per account and kind (getSMS, getMMS). An answer as long as the limit may
    have left rows out: the sends still unseen are then asked for DID by DID, at most
    CARRIER_STATUS_DID_CALLS calls per account and kind in one run, within the account's rate.
    """
    since = timezone.now() - timedelta(hours=48)
    recent = Message.objects.filter(
        direction=Direction.OUT,
        status=MessageStatus.SENT,
        sent_at__gte=since,
        provider_id__isnull=False,
    ).values_list("pk", "kind", "provider_account", "provider_id", "configuration_id", "did")
    # (account, kind) -> provider id -> (message pk, DID); SMS and MMS ids are separate counters.
    wanted: dict[tuple[str, str], dict[int, tuple[int, str]]] = defaultdict(dict)
    configuration_of: dict[str, int] = {}
    for pk, kind, account, provider_id, configuration_id, did in recent:
        wanted[(account, kind)][provider_id] = (pk, did)
        configuration_of.setdefault(account, configuration_id)
    configurations = SmsConfiguration.objects.in_bulk(list(configuration_of.values()))
    today = timezone.now().astimezone(_eastern()).date()
    window = {"date_from": today - timedelta(days=2), "date_to": today, "type": 0}
    delivered = 0
    for (account, kind), unseen in sorted(wanted.items()):
        configuration = configurations.get(configuration_of[account])
        if configuration is None:
            continue
        try:
            with voipms_client_for(configuration, read_timeout=30.0) as client:
                history = client.get_mms if kind == Kind.MMS else client.get_sms
                rows = history(**window, limit=HISTORY_LIMIT)
                delivered += _apply_carrier_status(rows, unseen)
                dids = sorted({did for _, did in unseen.values()})
                if len(rows) < HISTORY_LIMIT or not dids:
                    continue
                # The answer may have been cut short: ask for the rest DID by DID.
                for did in dids[:CARRIER_STATUS_DID_CALLS]:
                    if not _wait_for_request_slot(account):
                        break
                    rows = history(**window, did=_ten(did), limit=HISTORY_LIMIT)
                    delivered += _apply_carrier_status(rows, unseen)
        except VoipmsError as error:
            logger.warning("carrier status: VoIP.ms answered %s", error.code)
    return delivered


def _apply_carrier_status(rows: list[SmsRecord], unseen: dict[int, tuple[int, str]]) -> int:
    """Record the carrier status of the rows' sends; return how many are now delivered."""
    delivered = 0
    for row in rows:
        if row.id not in unseen or not row.carrier_status:
            continue
        pk, _ = unseen.pop(row.id)
        fields: dict[str, object] = {"carrier_status": row.carrier_status[:200]}
        if "delivered" in row.carrier_status.lower():
            fields.update(status=MessageStatus.DELIVERED, delivered_at=timezone.now())
            delivered += 1
        Message.objects.filter(pk=pk, status=MessageStatus.SENT).update(**fields)
    return delivered


def _wait_for_request_slot(account: str) -> bool:
    """Take the account's next request slot, waiting a little; False: the rest waits a run."""
    wait = limits().reserve_request(account, settings.VOIPMS_REQUESTS_PER_SECOND)
    if wait > CARRIER_STATUS_MAX_WAIT:
        return False
    time.sleep(max(wait, 0))
    return True


def _ten(e164: str) -> str:
    try:
        return normalize_number(e164).removeprefix("+1")
    except InvalidNumber:
        return e164


def _eastern():
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")


def deliveries_sweep() -> int:
    """Re-enqueue webhook deliveries still waiting after a minute (their task was lost)."""
    from sms.models import DeliveryStatus, WebhookDelivery
    from sms.tasks import process_webhooks

    minute_ago = timezone.now() - timedelta(seconds=60)
    waiting = WebhookDelivery.objects.filter(
        status=DeliveryStatus.RECEIVED, received_at__lt=minute_ago
    ).values_list("pk", flat=True)[:1000]
    ids = list(waiting)
    for start in range(0, len(ids), SWEEP_BATCH):
        # Safe to repeat: processing a delivery twice makes one message.
        process_webhooks.delay(ids[start : start + SWEEP_BATCH])
    return len(ids)


def media_retry_note(*, media_id: int, retry_in: float) -> None:
    """Record when a pending media file's next download try is due."""
    from sms.models import MediaStatus, MessageMedia

    MessageMedia.objects.filter(pk=media_id, status=MediaStatus.PENDING).update(
        next_try_at=timezone.now() + timedelta(seconds=retry_in)
    )


def media_sweep() -> int:
    """Re-enqueue pending media files whose next try is long overdue (their task was lost)."""
    from sms.models import MediaStatus, MessageMedia
    from sms.tasks import fetch_media

    now = timezone.now()
    overdue = MessageMedia.objects.filter(
        status=MediaStatus.PENDING, next_try_at__lt=now - MEDIA_LOST_AFTER
    ).values_list("pk", flat=True)[:1000]
    ids = list(overdue)
    # Due again now: a file is re-enqueued at most once per MEDIA_LOST_AFTER.
    MessageMedia.objects.filter(pk__in=ids).update(next_try_at=now)
    for pk in ids:
        # Safe to repeat: of two copies of a try, only one claims it.
        fetch_media.delay(pk)
    return len(ids)
