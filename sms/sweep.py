"""Every periodic repair job: whatever a lost task, a dead worker or a broker outage left behind.

The database is the record of all work: a queued message, a received or failed webhook delivery,
a pending media file, a pending e-mail or HTTP destination. A task is only a wake-up, so beat runs
`sweep_all` every SWEEP_INTERVAL_SECONDS and publishes again every row that waited longer than
that. Publishing twice is safe everywhere: each task claims its row before it does anything.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.tasks import enqueue, publish_quietly
from sms.inbound.process import BATCH_SIZE
from sms.models import (
    CallbackStatus,
    CredentialsStatus,
    DeliveryStatus,
    DestinationDelivery,
    DestinationStatus,
    DidPointing,
    DidPointingStatus,
    Direction,
    MediaStatus,
    Message,
    MessageMedia,
    MessageStatus,
    SmsConfiguration,
    StatusCallback,
    WebhookDelivery,
)
from sms.outbound.events import statuses_record_by_id

logger = logging.getLogger(__name__)


# A pending media file or destination whose try is this far overdue lost its task (a worker
# died with it).
LOST_AFTER = timedelta(minutes=10)
# A run pointing DIDs makes one VoIP.ms call per DID (each within its 45 s timeout): a run that
# began this long ago is taken for dead.
POINTING_RUN_LOST_AFTER = timedelta(minutes=30)


def _waited() -> datetime:
    """Return the moment before which a row has waited long enough to be published again."""
    return timezone.now() - timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS)


def sweep_all() -> dict[str, int]:
    """Run every sweep once and return how many rows each published again."""
    return {
        "messages": outbox_sweep(),
        "stuck": outbox_unstick(),
        "deliveries": deliveries_sweep(),
        "media": media_sweep(),
        "destinations": destinations_sweep(),
        "pointings": pointings_sweep(),
        "callbacks": callbacks_sweep(),
        "scheduled": scheduled_release(),
        "credentials": credentials_checks_sweep(),
    }


def outbox_sweep() -> int:
    """Re-enqueue queued messages whose task may be lost (waiting a sweep interval and due)."""
    waited = _waited()
    due = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.QUEUED).filter(
        Q(next_attempt_at__isnull=True, created_at__lt=waited) | Q(next_attempt_at__lt=waited)
    )
    ids = list(due.values_list("pk", flat=True)[:1000])
    for pk in ids:
        # Safe when the original task is alive after all: only one claim can win the row.
        publish_quietly("sms.deliver_message", pk)
    return len(ids)


def outbox_unstick() -> int:
    """Take messages stuck in "sending" past the visibility window as unknown, to reconcile."""
    cutoff = timezone.now() - timedelta(seconds=settings.SMS_SENDING_STUCK_SECONDS)
    stuck = list(
        Message.objects.filter(
            direction=Direction.OUT, status=MessageStatus.SENDING, last_attempt_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )
    detail = "The worker sending it stopped; it is checked against VoIP.ms before any resend."
    moved = Message.objects.filter(pk__in=stuck, status=MessageStatus.SENDING).update(
        status=MessageStatus.UNKNOWN, error_code="outcome_unknown", error_message=detail
    )
    if moved:
        statuses_record_by_id(
            Message.objects.filter(
                pk__in=stuck, status=MessageStatus.UNKNOWN, error_code="outcome_unknown"
            ).values_list("pk", flat=True),
            status=MessageStatus.UNKNOWN,
            code="outcome_unknown",
            detail=detail,
        )
    for pk in stuck:
        publish_quietly("sms.reconcile_message", pk)
    unknown = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.UNKNOWN)
    for pk in unknown.exclude(pk__in=stuck).values_list("pk", flat=True)[:1000]:
        publish_quietly("sms.reconcile_message", pk)
    return moved


def deliveries_sweep() -> int:
    """Publish again deliveries still waiting after a sweep interval, and failed ones now due.

    A failed delivery is tried again after its backoff (`next_try_at`), at most
    WEBHOOK_MAX_ATTEMPTS times in all; after the last it stays failed, counted in the
    configuration's health.
    """
    now = timezone.now()
    waiting = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.RECEIVED, received_at__lt=_waited()
        ).values_list("pk", flat=True)[:1000]
    )
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.FAILED, next_try_at__lte=now
        ).values_list("pk", flat=True)[:1000]
    )
    # Not due again before its task had a sweep interval to run.
    WebhookDelivery.objects.filter(pk__in=due).update(
        next_try_at=now + timedelta(seconds=settings.SWEEP_INTERVAL_SECONDS)
    )
    ids = waiting + due
    for start in range(0, len(ids), BATCH_SIZE):
        # Safe to repeat: a delivery is claimed (row lock) and processed once.
        publish_quietly("sms.process_webhooks", ids[start : start + BATCH_SIZE])
    return len(ids)


def media_sweep() -> int:
    """Re-enqueue pending media files whose next try is long overdue (their task was lost)."""
    now = timezone.now()
    overdue = MessageMedia.objects.filter(
        status=MediaStatus.PENDING, next_try_at__lt=now - LOST_AFTER
    ).values_list("pk", flat=True)[:1000]
    ids = list(overdue)
    # Due again now: a file is re-enqueued at most once per LOST_AFTER.
    MessageMedia.objects.filter(pk__in=ids).update(next_try_at=now)
    for pk in ids:
        # Safe to repeat: of two copies of a try, only one claims it.
        publish_quietly("sms.fetch_media", pk)
    return len(ids)


def destinations_sweep() -> int:
    """Re-enqueue pending e-mail and HTTP destinations whose next try is long overdue."""
    now = timezone.now()
    ids = list(
        DestinationDelivery.objects.filter(
            status=DestinationStatus.PENDING, next_try_at__lt=now - LOST_AFTER
        ).values_list("pk", flat=True)[:1000]
    )
    DestinationDelivery.objects.filter(pk__in=ids).update(next_try_at=now)
    for pk in ids:
        # Safe to repeat: a destination already delivered is not delivered again.
        publish_quietly("sms.deliver_destination", pk)
    return len(ids)


def pointings_sweep() -> int:
    """Re-enqueue requests to point DIDs whose next run is long overdue (their task was lost),
    and those whose run began so long ago that its worker must have died (run again: writing a
    DID's settings a second time changes nothing)."""
    now = timezone.now()
    stale = list(
        DidPointing.objects.filter(
            status=DidPointingStatus.RUNNING, next_run_at__lt=now - POINTING_RUN_LOST_AFTER
        ).values_list("pk", flat=True)[:1000]
    )
    DidPointing.objects.filter(pk__in=stale, status=DidPointingStatus.RUNNING).update(
        status=DidPointingStatus.WAITING
    )
    overdue = DidPointing.objects.filter(
        status__in=[DidPointingStatus.QUEUED, DidPointingStatus.WAITING],
        next_run_at__lt=now - LOST_AFTER,
    )
    ids = list(overdue.values_list("pk", flat=True)[:1000])
    for pk in ids:
        # Safe when the original task is alive after all: a run claims the request first.
        publish_quietly("sms.point_dids", pk)
    return len(ids)


# A credentials check is one VoIP.ms call (30 s timeout at most): one still pending this long after
# its save lost its task.
CREDENTIALS_CHECK_LOST_AFTER = timedelta(minutes=2)


def credentials_checks_sweep() -> int:
    """Re-enqueue the credentials checks of configurations still pending long after their save."""
    ids = list(
        SmsConfiguration.objects.filter(
            credentials_status=CredentialsStatus.CHECKING,
            updated_at__lt=timezone.now() - CREDENTIALS_CHECK_LOST_AFTER,
        ).values_list("pk", flat=True)[:1000]
    )
    for pk in ids:
        # Safe when the original task is alive after all: the last answer recorded wins.
        publish_quietly("sms.check_credentials", pk)
    return len(ids)


def callbacks_sweep() -> int:
    """Re-enqueue pending status callbacks whose next try is long overdue (their task was lost)."""
    now = timezone.now()
    ids = list(
        StatusCallback.objects.filter(
            status=CallbackStatus.PENDING, next_try_at__lt=now - LOST_AFTER
        ).values_list("pk", flat=True)[:1000]
    )
    StatusCallback.objects.filter(pk__in=ids).update(next_try_at=now)
    for pk in ids:
        # Safe to repeat: a try is claimed by its number, so two copies POST once.
        publish_quietly("sms.deliver_status_callback", pk)
    return len(ids)


def scheduled_release() -> int:
    """Queue the scheduled messages that are due, and wake their delivery after commit."""
    with transaction.atomic():
        # Locked, so a cancel at this moment waits and then finds the message queued (or the
        # release skips a message being cancelled, and its cancel wins).
        due = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(
                direction=Direction.OUT,
                status=MessageStatus.SCHEDULED,
                send_at__lte=timezone.now(),
            )
            .order_by("send_at")
            .values_list("pk", "part_index")[:1000]
        )
        ids = [pk for pk, _ in due]
        Message.objects.filter(pk__in=ids).update(status=MessageStatus.QUEUED, next_attempt_at=None)
        statuses_record_by_id(ids, status=MessageStatus.QUEUED)
        for pk, part_index in due:
            # Parts of a split text go in order: a later part is woken when the one before is
            # sent.
            if part_index == 0:
                enqueue("sms.deliver_message", pk)
    return len(ids)
