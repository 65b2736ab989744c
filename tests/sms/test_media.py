"""Tests of MMS media download, storage and opening."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses

from portal.http import backoff_delay
from sms.models import Direction, Kind, MediaStatus, Message, MessageMedia, MessageStatus
from sms.services.media import MediaUnavailable, media_fetch, media_open
from tenants.models import Tenant
from trunks.voipms.client import USER_AGENT

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
MEDIA_URL = (
    "https://voip.ms/media/MTc4ODc5MDk2MzZhOWVjOGIzMmQ3MTc2YTllYzhiMzJkNzU3fDF8cG5n/media.png"
)


@pytest.fixture(autouse=True)
def media_root(settings: object, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_media(tenant: Tenant, url: str = MEDIA_URL) -> MessageMedia:
    message = Message.objects.create(
        tenant=tenant,
        direction=Direction.IN,
        kind=Kind.MMS,
        status=MessageStatus.RECEIVED,
        did="+12125550101",
        remote="+18457231213",
        media_urls=[url],
        provider_account="voipms@a.example",
        provider_id=10239205,
    )
    return MessageMedia.objects.create(tenant=tenant, message=message, url=url)


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_media_fetch_stores_the_file_with_its_type_size_and_sha256(
    tenant_a: Tenant, mocked: responses.RequestsMock, media_root: Path
) -> None:
    mocked.get(MEDIA_URL, body=PNG, content_type="image/png")
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is None

    media.refresh_from_db()
    assert media.status == MediaStatus.STORED
    assert media.content_type == "image/png"
    assert media.size == len(PNG)
    assert media.sha256 == hashlib.sha256(PNG).hexdigest()
    assert media.attempts == 1
    assert media.error == ""
    assert media.file.name.startswith("mms/")
    assert Path(media.file.path).is_relative_to(media_root)
    assert mocked.calls[0].request.headers["User-Agent"] == USER_AGENT
    handle, content_type = media_open(media=media)
    with handle:
        assert handle.read() == PNG
    assert content_type == "image/png"


def test_media_fetch_keeps_the_type_without_its_parameters(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    mocked.get(MEDIA_URL, body=b"BEGIN:VCARD", content_type="text/vcard; charset=utf-8")
    media = make_media(tenant_a)

    media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.content_type == "text/vcard"


def test_media_fetch_guesses_an_iphone_voice_memo_from_its_extension(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    url = "https://voip.ms/media/QU1SfDF8YW1y/media.amr"
    memo = b"#!AMR\n" + b"\x3c" * 500
    mocked.get(url, body=memo, content_type="application/octet-stream")
    media = make_media(tenant_a, url)

    media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == MediaStatus.STORED
    assert media.content_type == "audio/amr"
    assert media.file.name.endswith(".amr")
    handle, content_type = media_open(media=media)
    with handle:
        assert handle.read() == memo
    assert content_type == "audio/amr"


def test_media_fetch_retries_a_link_that_answers_404_then_200(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    mocked.get(MEDIA_URL, status=404, body=b"not yet")
    mocked.get(MEDIA_URL, body=PNG, content_type="image/png")
    media = make_media(tenant_a)

    delay = media_fetch(media_id=media.pk)

    assert delay is not None
    assert 15 <= delay <= 30
    media.refresh_from_db()
    assert media.status == MediaStatus.PENDING
    assert media.attempts == 1
    assert "HTTP 404" in media.error

    assert media_fetch(media_id=media.pk) is None

    media.refresh_from_db()
    assert media.status == MediaStatus.STORED
    assert media.attempts == 2
    assert media.sha256 == hashlib.sha256(PNG).hexdigest()
    assert media.error == ""


def test_media_fetch_retries_after_a_connection_error(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    mocked.get(MEDIA_URL, body=requests.ConnectionError("connection refused"))
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is not None

    media.refresh_from_db()
    assert media.status == MediaStatus.PENDING
    assert "could not download from voip.ms" in media.error


def test_media_fetch_gives_up_after_the_last_attempt(
    tenant_a: Tenant, mocked: responses.RequestsMock, settings: object
) -> None:
    settings.MEDIA_FETCH_MAX_ATTEMPTS = 3
    mocked.get(MEDIA_URL, status=503, body=b"down")
    media = make_media(tenant_a)

    delays = [media_fetch(media_id=media.pk) for _ in range(3)]

    assert delays[0] is not None
    assert delays[1] is not None
    assert delays[2] is None
    media.refresh_from_db()
    assert media.status == MediaStatus.FAILED
    assert media.attempts == 3
    assert media.error == "gave up after 3 tries: the media link answered HTTP 503"
    assert media_fetch(media_id=media.pk) is None
    assert len(mocked.calls) == 3


def test_media_fetch_fails_at_once_when_the_link_is_gone(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    mocked.get(MEDIA_URL, status=410, body=b"gone")
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is None

    media.refresh_from_db()
    assert media.status == MediaStatus.FAILED
    assert media.error == "the media link answered HTTP 410"


@pytest.mark.parametrize("declared", [False, True])
def test_media_fetch_fails_a_file_over_5_mb_and_keeps_nothing(
    tenant_a: Tenant, mocked: responses.RequestsMock, media_root: Path, declared: bool
) -> None:
    mocked.get(
        MEDIA_URL,
        body=b"x" * (5 * 1024 * 1024 + 1),
        content_type="video/mp4",
        auto_calculate_content_length=declared,
    )
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is None

    media.refresh_from_db()
    assert media.status == MediaStatus.FAILED
    assert media.error == "larger than 5 MB"
    assert not media.file
    assert stored_files(media_root) == []


def test_media_fetch_accepts_a_file_of_exactly_the_cap(
    tenant_a: Tenant, mocked: responses.RequestsMock, settings: object
) -> None:
    settings.MEDIA_MAX_BYTES = 1000
    mocked.get(MEDIA_URL, body=b"y" * 1000, content_type="image/jpeg")
    media = make_media(tenant_a)

    media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == MediaStatus.STORED
    assert media.size == 1000


def test_media_fetch_leaves_a_stored_media_alone(
    tenant_a: Tenant, mocked: responses.RequestsMock, media_root: Path
) -> None:
    mocked.get(MEDIA_URL, body=PNG, content_type="image/png")
    media = make_media(tenant_a)
    media_fetch(media_id=media.pk)

    assert media_fetch(media_id=media.pk) is None

    assert len(mocked.calls) == 1
    media.refresh_from_db()
    assert media.attempts == 1
    assert len(stored_files(media_root)) == 1


def test_fetch_media_task_schedules_the_next_try_with_the_delay(
    tenant_a: Tenant, mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sms import tasks

    scheduled: list[tuple[tuple[int, ...], float]] = []
    monkeypatch.setattr(
        tasks.fetch_media,
        "apply_async",
        lambda args, countdown: scheduled.append((args, countdown)),
    )
    mocked.get(MEDIA_URL, status=404)
    media = make_media(tenant_a)

    tasks.fetch_media(media.pk)

    assert len(scheduled) == 1
    assert scheduled[0][0] == (media.pk,)
    assert 15 <= scheduled[0][1] <= 30


def test_media_open_serves_markup_as_an_opaque_download(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    url = "https://voip.ms/media/SFRNTA/media.html"
    mocked.get(url, body=b"<script>alert(1)</script>", content_type="text/html")
    media = make_media(tenant_a, url)
    media_fetch(media_id=media.pk)
    media.refresh_from_db()

    handle, content_type = media_open(media=media)
    handle.close()

    assert media.content_type == "text/html"
    assert content_type == "application/octet-stream"


def test_media_open_refuses_a_media_not_yet_stored(tenant_a: Tenant) -> None:
    media = make_media(tenant_a)

    with pytest.raises(MediaUnavailable):
        media_open(media=media)


def test_backoff_delay_doubles_with_jitter_and_stops_at_the_cap() -> None:
    for attempt, ceiling in [(1, 30), (2, 60), (3, 120), (6, 960), (7, 1800), (20, 1800)]:
        delays = [backoff_delay(attempt=attempt, base=30, cap=1800) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1


def test_media_fetch_retries_when_the_disk_refuses_the_file(
    tenant_a: Tenant, mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.files.storage import FileSystemStorage

    def full_disk(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", full_disk)
    mocked.get(MEDIA_URL, body=PNG, content_type="image/png")
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is not None

    media.refresh_from_db()
    assert media.status == MediaStatus.PENDING
    assert media.error == "Try 1 of 8 failed: could not store the file"
