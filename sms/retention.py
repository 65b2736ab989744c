"""Forgetting: the nightly purge of what a tenant keeps no longer, and erasing one number.

Rows go in batches of BATCH_SIZE ids, each batch in its own short transaction, so no purge
holds locks for long or blocks the webhook and the outbox. A stored media file is deleted once
the transaction that deleted its row has committed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from sms.models import (
    Contact,
    Conversation,
    IdempotencyRecord,
    Message,
    MessageMedia,
    MessageStatus,
    WebhookDelivery,
)
from tenants.models import Tenant, User
from tenants.services import audit_record
from trunks.numbers import InvalidNumber, parse_nanp

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
IDEMPOTENCY_KEEP = timedelta(days=1)
IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN)


@dataclass
class PurgeCounts:
    """How many rows (and stored files) a purge or an erasure deleted."""

    messages: int = 0
    media: int = 0
    media_files: int = 0
    webhook_deliveries: int = 0
    conversations: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return self.messages + self.webhook_deliveries + self.conversations


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete the stored media file %s", name)


def _messages_delete(ids: list[int], counts: PurgeCounts, batch_size: int) -> None:
    """Delete messages (with their media rows and files) in batches of short transactions."""
    for chunk in _chunks(ids, batch_size):
        with transaction.atomic():
            media = MessageMedia.objects.filter(message_id__in=chunk)
            names = [name for name in media.values_list("file", flat=True) if name]
            counts.media += media.count()
            _deleted, by_model = Message.objects.filter(pk__in=chunk).delete()
            counts.messages += by_model.get(Message._meta.label, 0)
            counts.media_files += len(names)
            transaction.on_commit(lambda names=names: _delete_files(names))


def _deliveries_delete(ids: list[int], counts: PurgeCounts, batch_size: int) -> None:
    for chunk in _chunks(ids, batch_size):
        with transaction.atomic():
            _deleted, by_model = WebhookDelivery.objects.filter(pk__in=chunk).delete()
            counts.webhook_deliveries += by_model.get(WebhookDelivery._meta.label, 0)


def _ids_in_batches(queryset: Any, batch_size: int, order: str = "pk") -> Iterable[list[int]]:
    """Yield the ids of the queryset's rows, one batch at a time, until none is left.

    Ordered by the time column its (tenant, time) index holds, each batch is an index range.
    """
    while True:
        ids = list(queryset.order_by(order).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        yield ids


def tenant_retention_purge(*, tenant: Tenant, batch_size: int = BATCH_SIZE) -> PurgeCounts:
    """Delete the tenant's messages, media and webhook deliveries older than it keeps them."""
    counts = PurgeCounts()
    if tenant.retention_days is None:
        return counts
    cutoff = timezone.now() - timedelta(days=tenant.retention_days)
    # A send still in flight is left to the outbox and the sweeper; it goes once settled.
    old_messages = (
        Message.objects.for_tenant(tenant)
        .filter(created_at__lt=cutoff)
        .exclude(status__in=IN_FLIGHT)
    )
    for ids in _ids_in_batches(old_messages, batch_size, "created_at"):
        _messages_delete(ids, counts, batch_size)
    old_deliveries = WebhookDelivery.objects.for_tenant(tenant).filter(received_at__lt=cutoff)
    for ids in _ids_in_batches(old_deliveries, batch_size, "received_at"):
        _deliveries_delete(ids, counts, batch_size)
    # A conversation whose last message is older than the cutoff has none left.
    empty = (
        Conversation.objects.for_tenant(tenant)
        .filter(last_message_at__lt=cutoff)
        .exclude(Exists(Message.objects.filter(conversation=OuterRef("pk"))))
    )
    for ids in _ids_in_batches(empty, batch_size):
        with transaction.atomic():
            _deleted, by_model = Conversation.objects.filter(pk__in=ids).delete()
            counts.conversations += by_model.get(Conversation._meta.label, 0)
    if counts.total:
        audit_record(
            actor=None,
            action="retention_purged",
            tenant=tenant,
            detail={"retention_days": tenant.retention_days, **counts.as_dict()},
        )
        logger.info("retention purge of tenant %s: %s", tenant.slug, counts.as_dict())
    return counts


def idempotency_records_purge(*, batch_size: int = BATCH_SIZE) -> int:
    """Delete the idempotency records of every tenant older than a day; return how many."""
    old = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_KEEP)
    deleted = 0
    for ids in _ids_in_batches(old, batch_size, "created_at"):
        with transaction.atomic():
            deleted += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
    return deleted


def retention_purge_all(*, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Purge every tenant that keeps messages for a limited time, then old idempotency records."""
    tenants = {}
    for tenant in Tenant.objects.filter(retention_days__isnull=False).order_by("pk"):
        counts = tenant_retention_purge(tenant=tenant, batch_size=batch_size)
        tenants[tenant.slug] = counts.as_dict()
    return {
        "tenants": tenants,
        "idempotency_records": idempotency_records_purge(batch_size=batch_size),
    }


_SENDER = re.compile(r"\+?[0-9]{3,15}")


def remote_number_normalize(raw: str, *, field: str = "remote") -> str:
    """Return the number as messages store it: E.164 for US/Canada, else as sent (short codes)."""
    raw = raw.strip()
    try:
        return parse_nanp(raw)
    except InvalidNumber:
        if _SENDER.fullmatch(raw):
            return raw
    raise ApplicationError(
        _("Enter the outside number: a US or Canadian number, or the digits of a short code."),
        code="invalid_number",
        field=field,
    )


def remote_number_erase(
    *, tenant: Tenant, remote: str, actor: User | None, batch_size: int = BATCH_SIZE
) -> tuple[str, PurgeCounts]:
    """Erase what the tenant keeps about one outside number (privacy); return it as stored.

    Its messages (both ways, on every DID) with their media and stored files, the webhook
    deliveries that carried them, its conversations and its contact. Opt-outs stay: they are
    the record that the number must not be texted again.
    """
    number = remote_number_normalize(remote)
    counts = PurgeCounts()
    messages = Message.objects.for_tenant(tenant).filter(remote=number)
    # One read of the ids, then batches: the tenant's messages have no index on the number.
    found = list(messages.values_list("pk", "delivery_id"))
    delivery_ids = sorted({delivery for _message, delivery in found if delivery is not None})
    _messages_delete([pk for pk, _ in found], counts, batch_size)
    deliveries = WebhookDelivery.objects.for_tenant(tenant).filter(pk__in=delivery_ids)
    _deliveries_delete(list(deliveries.values_list("pk", flat=True)), counts, batch_size)
    with transaction.atomic():
        _deleted, by_model = Conversation.objects.for_tenant(tenant).filter(remote=number).delete()
        counts.conversations = by_model.get(Conversation._meta.label, 0)
        contacts, _unused = Contact.objects.for_tenant(tenant).filter(number=number).delete()
        audit_record(
            actor=actor,
            action="remote_number_erased",
            tenant=tenant,
            # The log keeps only the end of the number it erased.
            detail={"remote": "…" + number[-4:], **counts.as_dict(), "contacts": contacts},
        )
    logger.info("erased number of tenant %s: %s", tenant.slug, counts.as_dict())
    return number, counts
