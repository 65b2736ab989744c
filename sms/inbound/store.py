"""Webhook deliveries: store what arrived, and hand it to processing after commit.

Two paths store a delivery. The webhook view takes the fast one, `webhook_delivery_accept`, for
speed: a webhook costs one hand-written `INSERT ... SELECT` (the token lookup and the insert in
one statement and one round trip, prepared once per connection on PostgreSQL by `core.db`), and
the request never waits on the broker, since stored ids are handed to the workers in batches
from a background thread (`core.batching`). Its twin, `webhook_delivery_store`, does the same
through the ORM: the fast path falls back to it whenever its statement stores nothing (a
disabled configuration, Message Channels off), and tests and admin tools call it directly. The
two must store identical rows; tests/sms/test_store_paths_agree.py proves it, so change both
together.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import tasks as core_tasks
from core.batching import Batcher
from core.db import fetch_one
from sms.models import DeliveryStatus, SmsConfiguration, WebhookDelivery
from tenants.access import messaging_refusal
from tenants.models import Tenant

# The configuration's "last webhook" time is written at most this often: one UPDATE per webhook
# would lock the configuration row on every request and serialise concurrent webhooks.
LAST_WEBHOOK_RESOLUTION = timedelta(seconds=60)
# Configuration id -> when this process last wrote its "last webhook" time (monotonic seconds).
_last_noted: dict[int, float] = {}


@dataclass(frozen=True)
class Stored:
    """What the webhook view needs to answer: the stored delivery's id, status and reason."""

    delivery_id: int
    status: str
    reason: str


def _publish(delivery_ids: list[int]) -> None:
    # Raised, not logged here: the batcher counts failures and logs them once a minute.
    core_tasks.publish("sms.process_webhooks", (delivery_ids,), {}, None)


# Deliveries reach the workers in batches: one broker publish per request would cost more than
# storing the request. A delivery whose batch is lost (the process died) stays "received" and the
# beat sweeper hands it on a minute later.
_handoff: Batcher[int] = Batcher(
    "webhook-deliveries",
    _publish,
    interval=lambda: settings.HANDOFF_INTERVAL_SECONDS,
    max_batch=50,
)


def webhook_delivery_hand_off(delivery_id: int) -> None:
    """Queue a stored delivery for processing once the current transaction commits."""
    transaction.on_commit(lambda: _handoff.add(delivery_id))


def webhook_deliveries_flush() -> None:
    """Publish what this process has buffered now (at exit, and for tests)."""
    _handoff.flush_now()


def _note_arrival(configuration_id: int, last_webhook_at: datetime | None = None) -> None:
    """Write the configuration's "last webhook" time when this process has not for a while."""
    now = time.monotonic()
    noted = _last_noted.get(configuration_id)
    if noted is not None and now - noted < LAST_WEBHOOK_RESOLUTION.total_seconds():
        return
    _last_noted[configuration_id] = now
    moment = timezone.now()
    if last_webhook_at is not None and moment - last_webhook_at < LAST_WEBHOOK_RESOLUTION:
        return
    # Other processes write it too: only a time older than the resolution is replaced.
    SmsConfiguration.objects.filter(pk=configuration_id).exclude(
        last_webhook_at__gte=moment - LAST_WEBHOOK_RESOLUTION
    ).update(last_webhook_at=moment)


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

    The ORM twin of `webhook_delivery_accept`, storing the same row: a disabled configuration,
    or a tenant whose Message Channels are off, turns received into ignored. One INSERT,
    committed on its own: the request is safe before it is acknowledged.
    """
    if status == DeliveryStatus.RECEIVED:
        # Answered 200 so VoIP.ms stops retrying; the request is kept, marked ignored.
        refusal = messaging_refusal(configuration.tenant)
        if refusal:
            status, reason = DeliveryStatus.IGNORED, refusal
        elif not configuration.enabled:
            status, reason = DeliveryStatus.IGNORED, "the configuration is disabled"
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
    _note_arrival(configuration.pk, configuration.last_webhook_at)
    if status == DeliveryStatus.RECEIVED:
        webhook_delivery_hand_off(delivery.pk)
    return delivery


@cache
def _accept_sql(vendor: str, received: bool) -> str:
    """INSERT ... SELECT: the token lookup and the INSERT in one statement and one round trip.

    Only identifiers taken from the models are formatted in; every value is a parameter.
    """
    q = connection.ops.quote_name
    deliveries = q(WebhookDelivery._meta.db_table)
    configurations = q(SmsConfiguration._meta.db_table)
    tenants = q(Tenant._meta.db_table)
    column = {field.name: q(field.column) for field in WebhookDelivery._meta.concrete_fields}
    columns = ", ".join(
        column[name]
        for name in (
            "tenant", "configuration", "received_at", "method", "body", "query", "content_type",
            "remote_addr", "headers", "status", "reason", "processed_at", "attempts",
        )
    )  # fmt: skip
    tenant_id, pk = q("tenant_id"), q("id")
    headers = "CAST(%s AS jsonb)" if vendor == "postgresql" else "%s"
    values = f"c.{tenant_id}, c.{pk}, %s, %s, %s, %s, %s, %s, {headers}, %s, %s, %s, 0"
    where = f"c.{q('webhook_token_digest')} = %s"
    if received:
        # Received needs an enabled configuration of a tenant that may use messaging (the
        # condition of tenants.access.messaging_refusal); otherwise no row is stored here and
        # the slower path says why.
        where += f" AND c.{q('enabled')} AND t.{q('enabled')} AND t.{q('message_channels_enabled')}"
    return " ".join(
        [
            f"INSERT INTO {deliveries} ({columns}) SELECT {values}",
            f"FROM {configurations} c JOIN {tenants} t ON t.{pk} = c.{tenant_id}",
            f"WHERE {where}",
            f"RETURNING {pk}, {column['configuration']}",
        ]
    )


def webhook_delivery_accept(
    *,
    token_digest: str,
    method: str,
    body: bytes,
    query: str,
    content_type: str,
    remote_addr: str | None,
    headers: dict[str, Any],
    status: str,
    reason: str = "",
) -> Stored | None:
    """Store a request to the webhook URL whose token has this digest; None: no such URL.

    `status` is received or rejected (the body decides); a disabled configuration, or a tenant
    whose Message Channels are off, turns received into ignored. The common case is one
    autocommitted statement; the delivery is handed to the workers after commit.
    """
    now = timezone.now()
    reason = reason[:500]
    received = status == DeliveryStatus.RECEIVED
    row = fetch_one(
        _accept_sql(connection.vendor, received),
        [
            now,
            method,
            body,
            query,
            content_type[:200],
            remote_addr or None,
            json.dumps(headers),
            status,
            reason,
            None if received else now,
            token_digest,
        ],
        # The INSERT is the request's only statement: no health check round trip before it. Run
        # twice after a connection broke mid-answer, it stores a second delivery of the same
        # request, which processing marks a duplicate.
        reconnect=True,
    )
    if row is not None:
        delivery_id, configuration_id = row
        _note_arrival(configuration_id)
        if received:
            webhook_delivery_hand_off(delivery_id)
        return Stored(delivery_id, status, reason)
    configuration = (
        SmsConfiguration.objects.select_related("tenant")
        .filter(webhook_token_digest=token_digest)
        .first()
    )
    if configuration is None:
        return None
    # The statement stored nothing for a known URL: the ORM twin says why and stores it ignored.
    delivery = webhook_delivery_store(
        configuration=configuration,
        method=method,
        body=body,
        query=query,
        content_type=content_type,
        remote_addr=remote_addr,
        headers=headers,
        status=status,
        reason=reason,
    )
    return Stored(delivery.pk, delivery.status, delivery.reason)
