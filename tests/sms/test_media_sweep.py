"""Pending MMS media whose download task was lost are picked up again by the beat sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from sms import tasks
from sms.models import MediaStatus, MessageMedia
from sms.sweep import LOST_AFTER, media_sweep
from tenants.models import Tenant
from tests.sms.test_media import MEDIA_URL, make_media

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(
        "core.tasks.publish",
        lambda name, args, kwargs, countdown: (
            sent.append(args[0]) if name == "sms.fetch_media" else None
        ),
    )
    return sent


def _overdue(media: MessageMedia, by: timedelta) -> None:
    MessageMedia.objects.filter(pk=media.pk).update(next_try_at=timezone.now() - by)


def test_a_new_media_is_due_at_once_and_not_swept_while_its_task_may_still_come(
    tenant_a: Tenant, enqueued: list[int]
) -> None:
    media = make_media(tenant_a)
    assert media.next_try_at <= timezone.now()
    assert media_sweep() == 0
    assert enqueued == []


def test_a_long_overdue_pending_media_is_enqueued_again_once(
    tenant_a: Tenant, enqueued: list[int]
) -> None:
    media = make_media(tenant_a)
    _overdue(media, LOST_AFTER + timedelta(minutes=1))
    assert media_sweep() == 1
    assert enqueued == [media.pk]
    assert media_sweep() == 0  # due again from now: not enqueued at every sweep
    assert enqueued == [media.pk]


def test_stored_and_failed_media_are_never_swept(tenant_a: Tenant, enqueued: list[int]) -> None:
    first = make_media(tenant_a)
    for status in (MediaStatus.STORED, MediaStatus.FAILED):
        media = MessageMedia.objects.create(
            tenant=tenant_a, message=first.message, url=MEDIA_URL, status=status
        )
        _overdue(media, timedelta(days=1))
    MessageMedia.objects.filter(pk=first.pk).delete()
    assert media_sweep() == 0
    assert enqueued == []


def test_a_scheduled_retry_is_not_taken_for_lost(
    tenant_a: Tenant, enqueued: list[int], monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    settings.MEDIA_FETCH_RETRY_BASE_SECONDS = 3600  # the next try is an hour away
    settings.MEDIA_FETCH_RETRY_MAX_SECONDS = 3600
    scheduled: list[float] = []
    monkeypatch.setattr(
        tasks.fetch_media, "apply_async", lambda args, countdown: scheduled.append(countdown)
    )
    media = make_media(tenant_a)
    with responses.RequestsMock() as mocked:
        mocked.get(MEDIA_URL, status=404)
        tasks.fetch_media(media.pk)
    assert len(scheduled) == 1
    media.refresh_from_db()
    assert media.status == MediaStatus.PENDING
    due_in = (media.next_try_at - timezone.now()).total_seconds()
    assert abs(due_in - scheduled[0]) < 60
    # Ten minutes after the try the retry is still ahead: the sweeper leaves it alone.
    MessageMedia.objects.filter(pk=media.pk).update(next_try_at=media.next_try_at - LOST_AFTER)
    assert media_sweep() == 0
    assert enqueued == []


def test_the_beat_sweep_includes_media(tenant_a: Tenant, enqueued: list[int]) -> None:
    media = make_media(tenant_a)
    _overdue(media, timedelta(hours=1))
    tasks.outbox_sweep()
    assert enqueued == [media.pk]
