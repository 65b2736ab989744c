"""Every periodic repair job: lost sends, stuck sends, waiting webhook deliveries, pending media."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.tasks import publish_quietly
from sms.models import (
    DeliveryStatus,
    Direction,
    MediaStatus,
    Message,
    MessageMedia,
    MessageStatus,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)


SWEEP_BATCH = 20  # deliveries per re-enqueued task


# A pending media file whose try is this far overdue lost its task (a worker died with it).
MEDIA_LOST_AFTER = timedelta(minutes=10)


def outbox_sweep() -> int:
    """Re-enqueue queued messages whose task may be lost (older than a minute and due)."""
    now = timezone.now()
    minute_ago = now - timedelta(seconds=60)
    due = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.QUEUED).filter(
        Q(next_attempt_at__isnull=True, created_at__lt=minute_ago)
        | Q(next_attempt_at__lt=minute_ago)
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
    moved = Message.objects.filter(pk__in=stuck, status=MessageStatus.SENDING).update(
        status=MessageStatus.UNKNOWN,
        error_code="outcome_unknown",
        error_message="The worker sending it stopped; it is checked against VoIP.ms "
        "before any resend.",
    )
    for pk in stuck:
        publish_quietly("sms.reconcile_message", pk)
    unknown = Message.objects.filter(direction=Direction.OUT, status=MessageStatus.UNKNOWN)
    for pk in unknown.exclude(pk__in=stuck).values_list("pk", flat=True)[:1000]:
        publish_quietly("sms.reconcile_message", pk)
    return moved


def deliveries_sweep() -> int:
    """Re-enqueue webhook deliveries still waiting after a minute (their task was lost)."""
    minute_ago = timezone.now() - timedelta(seconds=60)
    waiting = WebhookDelivery.objects.filter(
        status=DeliveryStatus.RECEIVED, received_at__lt=minute_ago
    ).values_list("pk", flat=True)[:1000]
    ids = list(waiting)
    for start in range(0, len(ids), SWEEP_BATCH):
        # Safe to repeat: processing a delivery twice makes one message.
        publish_quietly("sms.process_webhooks", ids[start : start + SWEEP_BATCH])
    return len(ids)


def media_sweep() -> int:
    """Re-enqueue pending media files whose next try is long overdue (their task was lost)."""
    now = timezone.now()
    overdue = MessageMedia.objects.filter(
        status=MediaStatus.PENDING, next_try_at__lt=now - MEDIA_LOST_AFTER
    ).values_list("pk", flat=True)[:1000]
    ids = list(overdue)
    # Due again now: a file is re-enqueued at most once per MEDIA_LOST_AFTER.
    MessageMedia.objects.filter(pk__in=ids).update(next_try_at=now)
    for pk in ids:
        # Safe to repeat: of two copies of a try, only one claims it.
        publish_quietly("sms.fetch_media", pk)
    return len(ids)
