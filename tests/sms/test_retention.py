"""Retention: the nightly purge in batches, idempotency records, and erasing an outside number."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sms.models import (
    Conversation,
    DeliveryStatus,
    Direction,
    IdempotencyRecord,
    Message,
    MessageMedia,
    MessageStatus,
    OptOut,
    SmsConfiguration,
    Source,
    WebhookDelivery,
)
from sms.retention import (
    idempotency_records_purge,
    remote_number_erase,
    retention_purge_all,
    tenant_retention_purge,
)
from sms.tasks import retention_purge
from tenants.models import AuditEvent, Tenant, User
from tenants.services import tenant_update
from tests.factories import World
from tests.worker import WorkerProcess, celery_worker

ClientFor = Callable[[User | None], Client]

DID_A = "+12125550100"
DID_B = "+12125550110"
CONTACT = "+13125550199"
OTHER = "+13125550100"


@pytest.fixture
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def delivery(
    tenant: Tenant, configuration: SmsConfiguration, received: datetime
) -> WebhookDelivery:
    row = WebhookDelivery.objects.create(
        tenant=tenant,
        configuration=configuration,
        method="POST",
        body=b"{}",
        status=DeliveryStatus.PROCESSED,
    )
    WebhookDelivery.objects.filter(pk=row.pk).update(received_at=received)
    return row


def message(
    tenant: Tenant,
    *,
    did: str,
    remote: str = CONTACT,
    created: datetime | None = None,
    with_file: bool = False,
    with_delivery: bool = False,
) -> Message:
    """Store an inbound message (in its conversation), optionally with a stored media file."""
    created = created or timezone.now()
    configuration = SmsConfiguration.objects.for_tenant(tenant).first()
    conversation, _ = Conversation.objects.get_or_create(tenant=tenant, did=did, remote=remote)
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=created)
    row = Message.objects.create(
        tenant=tenant,
        configuration=configuration,
        conversation=conversation,
        direction=Direction.IN,
        status=MessageStatus.ROUTED,
        source=Source.WEBHOOK,
        did=did,
        remote=remote,
        body="hello",
        delivery=delivery(tenant, configuration, created) if with_delivery else None,
    )
    Message.objects.filter(pk=row.pk).update(created_at=created)
    if with_file:
        media = MessageMedia(tenant=tenant, message=row, url="https://voip.ms/m/1.jpg")
        media.file.save("photo.jpg", ContentFile(b"jpeg bytes"), save=True)
    return row


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def days_ago(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


# --- the nightly purge ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_purge_deletes_what_is_older_than_the_tenant_keeps_in_batches(
    world: World,
    media_root: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    tenant_update(tenant=world.tenant_a, retention_days=30)
    old = [
        message(world.tenant_a, did=DID_A, created=days_ago(40), with_file=True) for _ in range(5)
    ]
    recent = message(world.tenant_a, did=DID_A, remote=OTHER, created=days_ago(5), with_file=True)
    old_delivery = delivery(world.tenant_a, world.objects_a[SmsConfiguration], days_ago(31))
    new_delivery = delivery(world.tenant_a, world.objects_a[SmsConfiguration], days_ago(29))
    assert len(files_under(media_root)) == 6

    with (
        django_capture_on_commit_callbacks(execute=True),
        CaptureQueriesContext(connection) as queries,
    ):
        counts = tenant_retention_purge(tenant=world.tenant_a, batch_size=2)

    assert counts.as_dict() == {
        "messages": 5,
        "media": 5,
        "media_files": 5,
        "webhook_deliveries": 1,
        "conversations": 1,
    }
    assert list(Message.objects.for_tenant(world.tenant_a)) == [recent]
    assert not Message.objects.filter(pk__in=[m.pk for m in old]).exists()
    assert MessageMedia.objects.for_tenant(world.tenant_a).get().message == recent
    assert [p.name for p in files_under(media_root)] == [
        recent.media.get().file.name.split("/")[-1]
    ]
    assert set(WebhookDelivery.objects.for_tenant(world.tenant_a)) == {new_delivery}
    assert not WebhookDelivery.objects.filter(pk=old_delivery.pk).exists()
    # The conversation of the old messages is gone, the recent one stays.
    assert list(
        Conversation.objects.for_tenant(world.tenant_a).values_list("remote", flat=True)
    ) == [OTHER]
    # Five messages in batches of two: three statements, none naming more than two ids.
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "sms_message"')]
    assert len(deletes) == 3
    audit = AuditEvent.objects.get(action="retention_purged")
    assert audit.tenant == world.tenant_a
    assert audit.detail["messages"] == 5
    assert audit.detail["webhook_deliveries"] == 1
    assert audit.detail["retention_days"] == 30


@pytest.mark.django_db
def test_a_tenant_that_keeps_everything_and_another_tenants_rows_are_untouched(
    world: World,
) -> None:
    tenant_update(tenant=world.tenant_a, retention_days=1)
    kept_b = message(world.tenant_b, did=DID_B, created=days_ago(3000), with_delivery=True)
    message(world.tenant_a, did=DID_A, created=days_ago(2), with_delivery=True)

    result = retention_purge_all(batch_size=500)

    assert Message.objects.for_tenant(world.tenant_b).get() == kept_b
    assert WebhookDelivery.objects.for_tenant(world.tenant_b).count() == 1
    assert Conversation.objects.for_tenant(world.tenant_b).count() == 1
    assert not Message.objects.for_tenant(world.tenant_a).exists()
    assert result["tenants"] == {
        "a.example": {
            "messages": 1,
            "media": 0,
            "media_files": 0,
            "webhook_deliveries": 1,
            "conversations": 1,
        }
    }
    assert not AuditEvent.objects.filter(action="retention_purged", tenant=world.tenant_b).exists()


@pytest.mark.django_db
def test_a_send_still_in_flight_is_not_purged(world: World) -> None:
    tenant_update(tenant=world.tenant_a, retention_days=1)
    queued = message(world.tenant_a, did=DID_A, created=days_ago(5))
    settled = message(world.tenant_a, did=DID_A, remote=OTHER, created=days_ago(5))
    Message.objects.filter(pk=queued.pk).update(
        direction=Direction.OUT, status=MessageStatus.SENDING
    )

    counts = tenant_retention_purge(tenant=world.tenant_a)

    assert counts.messages == 1
    assert list(Message.objects.for_tenant(world.tenant_a)) == [queued]
    assert not Message.objects.filter(pk=settled.pk).exists()
    # Its conversation stays with it.
    assert Conversation.objects.filter(pk=queued.conversation_id).exists()


@pytest.mark.django_db
def test_a_purge_that_finds_nothing_records_no_audit_event(world: World) -> None:
    tenant_update(tenant=world.tenant_a, retention_days=30)
    message(world.tenant_a, did=DID_A, created=days_ago(1))

    counts = tenant_retention_purge(tenant=world.tenant_a)

    assert counts.total == 0
    assert Message.objects.for_tenant(world.tenant_a).count() == 1
    assert not AuditEvent.objects.filter(action="retention_purged").exists()


@pytest.mark.django_db
def test_idempotency_records_older_than_a_day_are_removed(world: World) -> None:
    def record(tenant: Tenant, user: User, key: str, age: timedelta) -> IdempotencyRecord:
        row = IdempotencyRecord.objects.create(
            tenant=tenant,
            user=user,
            key=key,
            request_hash="0" * 64,
            response_status=202,
            response_body={},
        )
        IdempotencyRecord.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
        return row

    for n in range(3):
        record(world.tenant_a, world.admin_a, f"old-{n}", timedelta(hours=25))
    record(world.tenant_b, world.admin_b, "old-b", timedelta(days=3))
    fresh = record(world.tenant_a, world.admin_a, "fresh", timedelta(hours=23))

    assert idempotency_records_purge(batch_size=2) == 4
    assert list(IdempotencyRecord.objects.all()) == [fresh]


# --- erasing one outside number ------------------------------------------------------------------


@pytest.fixture
def erasable(world: World, media_root: Path) -> World:
    """Tenant A and tenant B both talked with CONTACT; tenant A also with OTHER."""
    for _ in range(3):
        message(world.tenant_a, did=DID_A, with_file=True, with_delivery=True)
    message(world.tenant_a, did="+12125550101", created=days_ago(400))
    message(world.tenant_a, did=DID_A, remote=OTHER)
    message(world.tenant_b, did=DID_B, with_file=True, with_delivery=True)
    OptOut.objects.create(tenant=world.tenant_a, did=DID_A, remote=CONTACT, keyword="STOP")
    return world


def _left(tenant: Tenant, remote: str) -> tuple[int, int, int]:
    return (
        Message.objects.for_tenant(tenant).filter(remote=remote).count(),
        Conversation.objects.for_tenant(tenant).filter(remote=remote).count(),
        MessageMedia.objects.for_tenant(tenant).filter(message__remote=remote).count(),
    )


@pytest.mark.django_db
def test_erasing_a_number_removes_its_messages_media_and_conversations_in_this_tenant_only(
    erasable: World,
    media_root: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    world = erasable
    assert len(files_under(media_root)) == 4

    with django_capture_on_commit_callbacks(execute=True):
        number, counts = remote_number_erase(
            tenant=world.tenant_a, remote="(312) 555-0199", actor=world.admin_a, batch_size=2
        )

    assert number == CONTACT
    assert counts.as_dict() == {
        "messages": 4,
        "media": 3,
        "media_files": 3,
        "webhook_deliveries": 3,
        "conversations": 2,
    }
    assert _left(world.tenant_a, CONTACT) == (0, 0, 0)
    assert _left(world.tenant_a, OTHER) == (1, 1, 0)
    assert _left(world.tenant_b, CONTACT) == (1, 1, 1)
    assert WebhookDelivery.objects.for_tenant(world.tenant_a).count() == 0
    assert WebhookDelivery.objects.for_tenant(world.tenant_b).count() == 1
    assert len(files_under(media_root)) == 1  # tenant B's
    # The opt-out stays: the number must still never be texted.
    assert OptOut.objects.for_tenant(world.tenant_a).filter(remote=CONTACT).exists()
    audit = AuditEvent.objects.get(action="remote_number_erased")
    assert (audit.tenant, audit.actor) == (world.tenant_a, world.admin_a)
    assert audit.detail["remote"] == "…0199"
    assert audit.detail["messages"] == 4
    assert CONTACT not in str(audit.detail)


@pytest.mark.django_db
@pytest.mark.parametrize("remote", ["", "call me", "12"])
def test_a_malformed_number_is_refused(world: World, remote: str) -> None:
    with pytest.raises(Exception) as raised:
        remote_number_erase(tenant=world.tenant_a, remote=remote, actor=world.admin_a)

    assert getattr(raised.value, "field", None) == "remote"


@pytest.mark.django_db
def test_a_short_code_is_erased_as_stored(world: World) -> None:
    message(world.tenant_a, did=DID_A, remote="12345")

    number, counts = remote_number_erase(tenant=world.tenant_a, remote="12345", actor=None)

    assert (number, counts.messages) == ("12345", 1)


@pytest.mark.django_db
def test_the_api_erases_a_number_of_the_callers_tenant(
    erasable: World,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(erasable.admin_a).post(
            "/api/v1/erase-remote/", {"remote": "3125550199"}, content_type="application/json"
        )

    assert response.status_code == 200, response.content
    assert response.json()["remote"] == CONTACT
    assert response.json()["messages"] == 4
    assert _left(erasable.tenant_a, CONTACT) == (0, 0, 0)
    assert _left(erasable.tenant_b, CONTACT) == (1, 1, 1)


@pytest.mark.django_db
def test_tenant_b_cannot_erase_in_tenant_a(erasable: World, client_for: ClientFor) -> None:
    client = client_for(erasable.admin_b)

    named = client.post(
        "/api/v1/erase-remote/",
        {"remote": CONTACT},
        content_type="application/json",
        headers={"X-Tenant": "a.example"},
    )
    own = client.post("/api/v1/erase-remote/", {"remote": CONTACT}, content_type="application/json")

    assert named.status_code == 404
    assert own.status_code == 200
    assert own.json()["messages"] == 1
    assert _left(erasable.tenant_a, CONTACT) == (4, 2, 3)
    assert _left(erasable.tenant_b, CONTACT) == (0, 0, 0)


@pytest.mark.django_db
def test_an_extension_user_may_not_erase(erasable: World, client_for: ClientFor) -> None:
    response = client_for(erasable.user_a).post(
        "/api/v1/erase-remote/", {"remote": CONTACT}, content_type="application/json"
    )

    assert response.status_code == 403
    assert _left(erasable.tenant_a, CONTACT) == (4, 2, 3)


@pytest.mark.django_db
def test_the_api_refuses_a_bad_number_and_a_system_admin_without_a_tenant(
    erasable: World, client_for: ClientFor
) -> None:
    bad = client_for(erasable.admin_a).post(
        "/api/v1/erase-remote/", {"remote": "call me"}, content_type="application/json"
    )
    missing = client_for(erasable.admin_a).post(
        "/api/v1/erase-remote/", {}, content_type="application/json"
    )
    no_tenant = client_for(erasable.sysadmin).post(
        "/api/v1/erase-remote/", {"remote": CONTACT}, content_type="application/json"
    )

    assert (bad.status_code, bad.json()["field"]) == (400, "remote")
    assert missing.status_code == 400
    assert "remote" in missing.json()["errors"]
    assert (no_tenant.status_code, no_tenant.json()["code"]) == (400, "tenant_required")
    assert _left(erasable.tenant_a, CONTACT) == (4, 2, 3)


@pytest.mark.django_db
def test_the_tenant_site_page_erases_after_confirmation(
    erasable: World,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    client = client_for(erasable.admin_a)
    assert client.get("/tenant/erase-remote/").status_code == 200

    unconfirmed = client.post("/tenant/erase-remote/", {"remote": CONTACT})
    assert unconfirmed.status_code == 200
    assert _left(erasable.tenant_a, CONTACT) == (4, 2, 3)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/tenant/erase-remote/", {"remote": CONTACT, "confirm": "on"})

    assert done.status_code == 302
    assert _left(erasable.tenant_a, CONTACT) == (0, 0, 0)
    assert _left(erasable.tenant_b, CONTACT) == (1, 1, 1)
    page = client.get(done["Location"]).content.decode()
    assert f"Erased {CONTACT}: 4 message(s)" in page


@pytest.mark.django_db
def test_the_erase_page_shows_a_bad_number_next_to_the_field(
    erasable: World, client_for: ClientFor
) -> None:
    response = client_for(erasable.admin_a).post(
        "/tenant/erase-remote/", {"remote": "call me", "confirm": "on"}
    )

    assert response.status_code == 200
    assert "Enter the outside number" in response.content.decode()


@pytest.mark.django_db
def test_tenant_b_admin_erasing_on_his_site_leaves_tenant_a_alone(
    erasable: World, client_for: ClientFor
) -> None:
    client_for(erasable.admin_b).post("/tenant/erase-remote/", {"remote": CONTACT, "confirm": "on"})

    assert _left(erasable.tenant_a, CONTACT) == (4, 2, 3)
    assert _left(erasable.tenant_b, CONTACT) == (0, 0, 0)


@pytest.mark.django_db
def test_an_extension_user_is_refused_the_erase_page(
    erasable: World, client_for: ClientFor
) -> None:
    client = client_for(erasable.user_a)

    assert client.get("/tenant/erase-remote/", follow=True).status_code == 403
    response = client.post(
        "/tenant/erase-remote/", {"remote": CONTACT, "confirm": "on"}, follow=True
    )
    assert response.status_code == 403
    assert _left(erasable.tenant_a, CONTACT) == (4, 2, 3)


# --- the nightly task through a real worker ------------------------------------------------------


def test_the_beat_schedule_runs_the_purge_nightly(settings: Any) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["retention-purge"]

    assert entry["task"] == retention_purge.name == "sms.retention_purge"
    assert entry["schedule"].hour == {3}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_purge_task(world: World, tmp_path: Path, media_root: Path) -> None:
    tenant_update(tenant=world.tenant_a, retention_days=7)
    old = message(world.tenant_a, did=DID_A, created=days_ago(8), with_file=True)
    kept = message(world.tenant_a, did=DID_A, remote=OTHER, created=days_ago(6))
    kept_b = message(world.tenant_b, did=DID_B, created=days_ago(800))
    stored = files_under(media_root)
    assert len(stored) == 1

    with celery_worker(
        tmp_path / "worker", queues="default", extra_env={"MEDIA_ROOT": str(media_root)}
    ) as worker:
        retention_purge.delay()
        deadline = time.monotonic() + 30
        while Message.objects.filter(pk=old.pk).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        _wait_for_audit(worker)

    assert not Message.objects.filter(pk=old.pk).exists(), worker.log()
    assert set(Message.objects.values_list("pk", flat=True)) == {kept.pk, kept_b.pk}
    assert not stored[0].exists()
    assert AuditEvent.objects.get(action="retention_purged").detail["messages"] == 1


def _wait_for_audit(worker: WorkerProcess) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if AuditEvent.objects.filter(action="retention_purged").exists():
            return
        time.sleep(0.2)
    raise AssertionError(f"No purge was audited:\n{worker.log()}")
