"""Tests of MMS media download, storage and opening."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from core.http import backoff_delay
from sms.inbound.media import MediaUnavailable, media_fetch, media_open
from sms.models import Direction, Kind, MediaStatus, Message, MessageMedia, MessageStatus
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


# --- only public addresses ------------------------------------------------------------------------


def resolving(monkeypatch: pytest.MonkeyPatch, table: dict[str, str]) -> None:
    """Make the host names in the table resolve to their address, on top of the offline DNS."""
    offline = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return offline(table.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "http://169.254.169.254/latest/meta-data/iam/a.png",
            'the address of "169.254.169.254" is not public (169.254.169.254)',
        ),
        ("http://[::1]:8000/media/a.png", 'the address of "::1" is not public (::1)'),
        (
            "https://media.lan/a.png",
            'the address of "media.lan" is not public (10.0.0.5)',
        ),
    ],
)
def test_media_fetch_of_a_private_address_fails_for_good_without_a_request(
    tenant_a: Tenant,
    mocked: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    media_root: Path,
    url: str,
    reason: str,
) -> None:
    resolving(monkeypatch, {"media.lan": "10.0.0.5"})
    mocked.get(url, body=PNG, content_type="image/png")
    media = make_media(tenant_a, url)

    assert media_fetch(media_id=media.pk) is None

    assert len(mocked.calls) == 0
    media.refresh_from_db()
    assert media.status == MediaStatus.FAILED
    assert media.error == reason
    assert media.attempts == 1
    assert stored_files(media_root) == []


def test_media_fetch_from_an_allowed_network_is_made(
    tenant_a: Tenant, mocked: responses.RequestsMock, settings: Any
) -> None:
    settings.OUTBOUND_HTTP_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    url = "http://127.0.0.1:8000/sandbox/voipms/media/?mms=1&index=1"
    mocked.get(url, body=PNG, content_type="image/png")
    media = make_media(tenant_a, url)

    media_fetch(media_id=media.pk)

    media.refresh_from_db()
    assert media.status == MediaStatus.STORED


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "https://metadata.internal/computeMetadata/"],
)
def test_media_fetch_refuses_a_redirect_to_a_private_address(
    tenant_a: Tenant, mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    resolving(monkeypatch, {"metadata.internal": "169.254.169.254"})
    mocked.get(MEDIA_URL, status=302, headers={"Location": target})
    mocked.get(target, body=b'{"token": "secret"}', content_type="image/png")
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is None

    assert [call.request.url for call in mocked.calls] == [MEDIA_URL]
    media.refresh_from_db()
    assert media.status == MediaStatus.FAILED
    assert media.error.startswith('the address of "')
    assert media.error.endswith('" is not public (169.254.169.254)')


def test_media_fetch_follows_a_redirect_to_a_public_address(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    cdn = "https://cdn.example.com/files/a.png"
    mocked.get(MEDIA_URL, status=301, headers={"Location": "/media/elsewhere.png"})
    mocked.get("https://voip.ms/media/elsewhere.png", status=307, headers={"Location": cdn})
    mocked.get(cdn, body=PNG, content_type="image/png")
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is None

    assert [call.request.url for call in mocked.calls] == [
        MEDIA_URL,
        "https://voip.ms/media/elsewhere.png",
        cdn,
    ]
    media.refresh_from_db()
    assert media.status == MediaStatus.STORED
    assert media.sha256 == hashlib.sha256(PNG).hexdigest()


def test_media_fetch_gives_up_on_a_redirect_loop(
    tenant_a: Tenant, mocked: responses.RequestsMock
) -> None:
    mocked.get(MEDIA_URL, status=302, headers={"Location": MEDIA_URL})
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is None

    assert len(mocked.calls) == 6
    media.refresh_from_db()
    assert media.status == MediaStatus.FAILED
    assert media.error == "the media link redirected more than 5 times"


def test_media_fetch_retries_a_host_that_does_not_resolve(
    tenant_a: Tenant, mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unresolvable(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    mocked.get(MEDIA_URL, body=PNG, content_type="image/png")
    media = make_media(tenant_a)

    assert media_fetch(media_id=media.pk) is not None

    assert len(mocked.calls) == 0
    media.refresh_from_db()
    assert media.status == MediaStatus.PENDING
    assert media.error == 'Try 1 of 8 failed: could not resolve "voip.ms"'
