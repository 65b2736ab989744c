"""MMS media: download each file VoIP.ms links to, keep a copy, and open it for the inbox."""

from __future__ import annotations

import logging
import mimetypes
import tempfile
from datetime import timedelta
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files import File
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from core.http import backoff_delay
from sms.models import MediaStatus, MessageMedia
from trunks.voipms.fetch import MediaDownloadError, download_media

logger = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# Types phones send that Python's mimetypes table may not know; iPhone voice memos arrive as AMR
# (DOMAIN.md §3).
_EXTRA_TYPES = {
    ".amr": "audio/amr",
    ".3gp": "video/3gpp",
    ".3g2": "video/3gpp2",
    ".m4a": "audio/mp4",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".vcf": "text/vcard",
}

# Served to browsers under their own type; anything else (HTML, SVG, scripts) could run in the
# portal's origin, so it is served as an opaque download.
_INLINE_PREFIXES = ("image/", "audio/", "video/")
_INLINE_EXCEPTIONS = frozenset({"image/svg+xml"})
_INLINE_TYPES = frozenset({"text/plain", "text/vcard", "text/x-vcard", "application/pdf"})


class MediaUnavailable(ApplicationError):
    """Raise when a media file has no stored copy to open."""

    code = "media_unavailable"
    status = 404


def _setting(name: str, default: float) -> float:
    return getattr(settings, name, default)


def media_fetch(*, media_id: int) -> float | None:
    """Download one pending media file; return seconds until the next try, or None when done."""
    media = MessageMedia.objects.filter(pk=media_id, status=MediaStatus.PENDING).first()
    if media is None:
        # Gone, stored already or given up on: nothing to do, whoever asks again.
        return None
    # Claim this try: of two copies of the task running at once, only one moves the counter.
    claimed = MessageMedia.objects.filter(
        pk=media.pk, status=MediaStatus.PENDING, attempts=media.attempts
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        return None
    attempt = media.attempts + 1
    max_attempts = int(_setting("MEDIA_FETCH_MAX_ATTEMPTS", 8))
    max_bytes = int(settings.MEDIA_MAX_BYTES)
    # A media link is kept even if the tenant was disabled since: the message was accepted and
    # VoIP.ms links expire (DOMAIN.md §3).
    with tempfile.SpooledTemporaryFile(max_size=1024 * 1024) as spool:
        try:
            download = download_media(media.url, destination=spool, max_bytes=max_bytes)
        except MediaDownloadError as error:
            return _failed_try(media, error, attempt=attempt, max_attempts=max_attempts)
        content_type = download.content_type
        if not content_type or content_type == DEFAULT_CONTENT_TYPE:
            content_type = media_type_guess(url=media.url)
        spool.seek(0)
        try:
            media.file.save(
                _file_name(media, content_type, download.sha256), File(spool), save=False
            )
        except OSError as error:
            # A full or unmounted disk clears up; the link may not wait for ever, so retry.
            logger.warning("Media %s could not be stored: %s", media.pk, type(error).__name__)
            failure = MediaDownloadError(
                "storage_error", "could not store the file", permanent=False
            )
            return _failed_try(media, failure, attempt=attempt, max_attempts=max_attempts)
    stored = MessageMedia.objects.filter(pk=media.pk, status=MediaStatus.PENDING).update(
        status=MediaStatus.STORED,
        file=media.file.name,
        content_type=content_type[:100],
        size=download.size,
        sha256=download.sha256,
        error="",
    )
    if not stored:
        # Another try finished first; keep its copy and drop ours.
        media.file.storage.delete(media.file.name)
        return None
    logger.info("Stored media %s (%s, %d bytes)", media.pk, content_type, download.size)
    return None


def _failed_try(
    media: MessageMedia, error: MediaDownloadError, *, attempt: int, max_attempts: int
) -> float | None:
    """Record a failed download; return the delay before the next try, or None if given up."""
    if not error.permanent and attempt < max_attempts:
        delay = backoff_delay(
            attempt=attempt,
            base=_setting("MEDIA_FETCH_RETRY_BASE_SECONDS", 30.0),
            cap=_setting("MEDIA_FETCH_RETRY_MAX_SECONDS", 1800.0),
        )
        MessageMedia.objects.filter(pk=media.pk, status=MediaStatus.PENDING).update(
            error=f"Try {attempt} of {max_attempts} failed: {error.message}"[:300]
        )
        logger.info(
            "Media %s try %d failed with %s; next try in %d s", media.pk, attempt, error.code, delay
        )
        return delay
    reason = error.message if error.permanent else f"gave up after {attempt} tries: {error.message}"
    MessageMedia.objects.filter(pk=media.pk, status=MediaStatus.PENDING).update(
        status=MediaStatus.FAILED, error=reason[:300]
    )
    logger.warning("Media %s failed for good with %s", media.pk, error.code)
    return None


def media_type_guess(*, url: str) -> str:
    """Return the media type that a link's file extension suggests."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    if suffix in _EXTRA_TYPES:
        return _EXTRA_TYPES[suffix]
    guessed, _unused = mimetypes.guess_type(f"file{suffix}", strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def _file_name(media: MessageMedia, content_type: str, sha256: str) -> str:
    """Return a storage name of our own: the sender does not choose paths on our disk."""
    suffix = PurePosixPath(urlsplit(media.url).path).suffix.lower()
    if media_type_guess(url=media.url) != content_type:
        by_type = {value: key for key, value in _EXTRA_TYPES.items()}
        suffix = by_type.get(content_type) or mimetypes.guess_extension(content_type) or ""
    if not suffix[1:].isalnum() or len(suffix) > 6:
        suffix = ""
    return f"{media.tenant_id}-{media.pk}-{sha256[:16]}{suffix}"


def media_open(*, media: MessageMedia) -> tuple[IO[bytes], str]:
    """Open a stored media file and return it with the content type a browser may be given."""
    if media.status != MediaStatus.STORED or not media.file:
        raise MediaUnavailable(_("This file has not been downloaded."))
    try:
        handle = media.file.storage.open(media.file.name, "rb")
    except FileNotFoundError:
        raise MediaUnavailable(_("This file is no longer stored.")) from None
    content_type = media.content_type or DEFAULT_CONTENT_TYPE
    inline = content_type in _INLINE_TYPES or (
        content_type.startswith(_INLINE_PREFIXES) and content_type not in _INLINE_EXCEPTIONS
    )
    return handle, content_type if inline else DEFAULT_CONTENT_TYPE


def media_retry_note(*, media_id: int, retry_in: float) -> None:
    """Record when a pending media file's next download try is due."""
    MessageMedia.objects.filter(pk=media_id, status=MediaStatus.PENDING).update(
        next_try_at=timezone.now() + timedelta(seconds=retry_in)
    )
