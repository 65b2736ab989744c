"""Download the media files of received MMS from the links VoIP.ms gives."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from core.http import guarded_session
from core.netguard import AddressRefused, HostUnresolved
from trunks.voipms.client import USER_AGENT

logger = logging.getLogger("trunks.voipms")

CHUNK_BYTES = 64 * 1024
# Redirects followed from one media link before giving up on it.
MAX_REDIRECTS = 5

# A media link may answer 404 for a while after the message arrives (DOMAIN.md §3), and VoIP.ms
# sits behind Cloudflare, whose 403 "Attention Required" page comes and goes (DOMAIN.md §2).
_TRANSIENT_STATUSES = frozenset({403, 404, 408, 425, 429})


class MediaDownloadError(Exception):
    """Report a failed media download with a stable code and whether a retry can help."""

    def __init__(
        self, code: str, message: str, *, permanent: bool, http_status: int | None = None
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.permanent = permanent
        self.http_status = http_status

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class MediaDownload:
    """What was written for one media link: its declared type, size and SHA-256."""

    content_type: str
    size: int
    sha256: str


def download_media(
    url: str,
    *,
    destination: BinaryIO,
    max_bytes: int,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    total_timeout: float = 120.0,
) -> MediaDownload:
    """Stream a media link into `destination`, refusing anything larger than `max_bytes`."""
    started = time.monotonic()
    # Redirects are followed here, not by requests, so that every hop's address is checked.
    for _hop in range(MAX_REDIRECTS + 1):
        host = _link_host(url)
        try:
            with (
                guarded_session(url) as http,
                http.get(
                    url,
                    headers={"User-Agent": USER_AGENT, "Accept": "*/*"},
                    timeout=(connect_timeout, read_timeout),
                    stream=True,
                    allow_redirects=False,
                ) as response,
            ):
                if response.is_redirect:
                    url = urljoin(url, response.headers["Location"])
                    continue
                download = _stream(
                    response,
                    destination=destination,
                    max_bytes=max_bytes,
                    deadline=started + total_timeout,
                    total_timeout=total_timeout,
                )
        except AddressRefused as error:
            raise MediaDownloadError(error.code, error.message, permanent=True) from None
        except HostUnresolved as error:
            raise MediaDownloadError(error.code, error.message, permanent=False) from None
        except requests.Timeout:
            raise MediaDownloadError(
                "timeout", f"{host} did not answer within {read_timeout:g} s", permanent=False
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema):
            raise MediaDownloadError(
                "invalid_url", "the media link is not a usable URL", permanent=True
            ) from None
        except requests.RequestException as exc:
            raise MediaDownloadError(
                "connection_error",
                f"could not download from {host} ({type(exc).__name__})",
                permanent=False,
            ) from None
        logger.info("Downloaded %d bytes of MMS media from %s", download.size, host)
        return download
    raise MediaDownloadError(
        "too_many_redirects",
        f"the media link redirected more than {MAX_REDIRECTS} times",
        permanent=True,
    )


def _link_host(url: str) -> str:
    """Return the host of an http(s) link, for messages, or raise if it is not one."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise MediaDownloadError(
            "invalid_url", "the media link is not an http(s) URL", permanent=True
        )
    return urlsplit(url).hostname or "?"


def _stream(
    response: requests.Response,
    *,
    destination: BinaryIO,
    max_bytes: int,
    deadline: float,
    total_timeout: float,
) -> MediaDownload:
    """Check the answer's status, write its body to `destination` and describe what was written."""
    _check_status(response.status_code)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    digest = hashlib.sha256()
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            # Stop reading at once: the sender does not get to fill our disk.
            raise _too_large(max_bytes)
        # The read timeout bounds each read only; a server dripping bytes must not hold a worker
        # for ever.
        if time.monotonic() > deadline:
            raise MediaDownloadError(
                "timeout", f"the download took longer than {total_timeout:g} s", permanent=False
            )
        digest.update(chunk)
        destination.write(chunk)
    return MediaDownload(
        content_type=_media_type(response.headers.get("Content-Type", "")),
        size=size,
        sha256=digest.hexdigest(),
    )


def _check_status(status: int) -> None:
    """Raise the error an unsuccessful HTTP status means."""
    if 200 <= status < 300:
        return
    permanent = status < 500 and status not in _TRANSIENT_STATUSES
    raise MediaDownloadError(
        f"http_{status}",
        f"the media link answered HTTP {status}",
        permanent=permanent,
        http_status=status,
    )


def _too_large(max_bytes: int) -> MediaDownloadError:
    """Return the error of a file over the size cap."""
    return MediaDownloadError(
        "too_large", f"larger than {max_bytes / (1024 * 1024):g} MB", permanent=True
    )


def _media_type(header: str) -> str:
    """Return the media type of a Content-Type header without its parameters."""
    return header.split(";", 1)[0].strip().lower()
