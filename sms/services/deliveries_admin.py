"""Webhook deliveries handled by an administrator: process stored requests again."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from sms.models import DeliveryStatus, WebhookDelivery
from tenants.models import Tenant, User
from tenants.services import audit_record

# Processed and duplicate deliveries already produced their message; running them again could
# only turn "processed" into "duplicate", so they are left alone.
REPROCESSABLE = (
    DeliveryStatus.RECEIVED,
    DeliveryStatus.FAILED,
    DeliveryStatus.REJECTED,
    DeliveryStatus.IGNORED,
)


@transaction.atomic
def webhook_deliveries_reprocess(
    *, tenant: Tenant, deliveries: QuerySet[WebhookDelivery], actor: User | None
) -> int:
    """Set the chosen deliveries back to received and process each again after commit."""
    from sms.tasks import process_webhook

    ids = list(
        deliveries.filter(tenant=tenant, status__in=REPROCESSABLE).values_list("pk", flat=True)
    )
    if not ids:
        return 0
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=DeliveryStatus.RECEIVED, reason="", processed_at=None
    )
    audit_record(
        actor=actor,
        action="reprocessed",
        tenant=tenant,
        detail={"webhook_deliveries": ids[:100], "count": len(ids)},
    )
    transaction.on_commit(lambda: [process_webhook.delay(pk) for pk in ids])
    return len(ids)
