"""Pictures attached to an outbound MMS from the inbox: checked, stored privately, sent as base64.

VoIP.ms takes each of media1..media3 as a public URL or a `data:<type>;base64,...` string in a
multipart POST (DOMAIN.md §2, sendMMS). A data URL needs no address VoIP.ms can reach, so the
portal sends its stored copy that way; the file itself is served to users only through the
permission-checked inbox media view.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from django.core.files.base import ContentFile
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from sms.models import MediaStatus, Message, MessageMedia

MAX_ATTACHMENTS = 3
# About 1.2 MB per file is the observed ceiling of sendMMS (DOMAIN.md §2; a guess).
MAX_ATTACHMENT_BYTES = 1_200_000
# The picture types every phone shows; told apart by their first bytes, not by the file name.
SIGNATURES = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif"}
ACCEPT = ",".join(SIGNATURES)


@dataclass(frozen=True)
class Attachment:
    """One checked picture to send: its name as uploaded, type and bytes."""

    name: str
    content_type: str
    content: bytes


def _kind(content: bytes) -> str | None:
    for content_type, prefixes in SIGNATURES.items():
        if content.startswith(prefixes):
            return content_type
    return None


def attachments_read(*, files: Iterable[IO[bytes]]) -> list[Attachment]:
    """Return the uploaded files as attachments, or raise a clear error for the first bad one."""
    files = list(files)
    if len(files) > MAX_ATTACHMENTS:
        raise ApplicationError(
            _("Attach at most %(count)d pictures to one MMS.") % {"count": MAX_ATTACHMENTS},
            code="too_many_attachments",
            field="attachments",
        )
    attachments = []
    for upload in files:
        name = (getattr(upload, "name", "") or "picture").rsplit("/", 1)[-1][:100]
        content = upload.read(MAX_ATTACHMENT_BYTES + 1)
        if not content:
            raise ApplicationError(
                _("The file %(name)s is empty.") % {"name": name},
                code="attachment_empty",
                field="attachments",
            )
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise ApplicationError(
                _("The file %(name)s is larger than %(limit)s MB, the most VoIP.ms takes per file.")
                % {"name": name, "limit": "1.2"},
                code="attachment_too_large",
                field="attachments",
            )
        content_type = _kind(content)
        if content_type is None:
            raise ApplicationError(
                _("The file %(name)s is not a JPEG, PNG or GIF picture.") % {"name": name},
                code="attachment_type",
                field="attachments",
            )
        attachments.append(Attachment(name=name, content_type=content_type, content=content))
    return attachments


def attachments_check_count(
    *, media_urls: Sequence[str], attachments: Sequence[Attachment]
) -> None:
    """Refuse more media than one MMS holds, links and pictures together."""
    if len(media_urls) + len(attachments) > MAX_ATTACHMENTS:
        raise ApplicationError(
            _("One MMS holds at most %(count)d media, links and pictures together.")
            % {"count": MAX_ATTACHMENTS},
            code="too_many_attachments",
            field="attachments",
        )


def attachments_store(*, message: Message, attachments: Sequence[Attachment]) -> list[MessageMedia]:
    """Keep the pictures of an outbound MMS under a private path, as the message's media."""
    stored = []
    for attachment in attachments:
        media = MessageMedia(
            tenant_id=message.tenant_id,
            message=message,
            url="",
            status=MediaStatus.STORED,
            content_type=attachment.content_type,
            size=len(attachment.content),
            sha256=hashlib.sha256(attachment.content).hexdigest(),
        )
        filename = f"{uuid.uuid4().hex}.{EXTENSIONS[attachment.content_type]}"
        media.file.save(filename, ContentFile(attachment.content), save=False)
        media.save()
        stored.append(media)
    return stored


def outbound_media_data_urls(*, message: Message) -> list[str]:
    """Return the stored pictures of an outbound MMS as base64 data URLs, in order."""
    urls = []
    for media in MessageMedia.objects.filter(
        message=message, status=MediaStatus.STORED, url=""
    ).order_by("id"):
        with media.file.open("rb") as handle:
            content = handle.read()
        urls.append(f"data:{media.content_type};base64,{base64.b64encode(content).decode()}")
    return urls
