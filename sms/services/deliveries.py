"""Webhook deliveries: store what arrived, and hand it to processing after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from sms.models import DeliveryStatus, SmsConfiguration, WebhookDelivery

# The configuration's "last webhook" time is written at most this often: one UPDATE per webhook
# would lock the configuration row on every request and serialise concurrent webhooks.
LAST_WEBHOOK_RESOLUTION = timedelta(seconds=60)


def webhook_delivery_store(
    *,
    configuration: SmsConfiguration,
    method: str,
    body: bytes,
    query: str,
    content_type: str,
    remote_addr: str | None,
    headers: dict[str, Any],
    status: str,
    reason: str = "",
) -> WebhookDelivery:
    """Store a request that reached a configuration's webhook URL and note its arrival.

    One INSERT, committed on its own: the request is safe before it is acknowledged.
    """
    now = timezone.now()
    delivery = WebhookDelivery.objects.create(
        tenant_id=configuration.tenant_id,
        configuration=configuration,
        method=method,
        body=body,
        query=query,
        content_type=content_type[:200],
        remote_addr=remote_addr or None,
        headers=headers,
        status=status,
        reason=reason[:500],
        processed_at=None if status == DeliveryStatus.RECEIVED else now,
    )
    last = configuration.last_webhook_at
    if last is None or now - last >= LAST_WEBHOOK_RESOLUTION:
        SmsConfiguration.objects.filter(pk=configuration.pk).update(last_webhook_at=now)
    if status == DeliveryStatus.RECEIVED:
        from sms.tasks import process_webhook

        transaction.on_commit(lambda: process_webhook.delay(delivery.pk))
    return delivery
