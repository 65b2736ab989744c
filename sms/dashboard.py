"""What the tenant site's home page shows: message volume and configuration health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.charts import Series, stacked_bars
from sms.models import Direction, Message, MessageStatus, SmsConfiguration
from tenants.models import Tenant

DAYS = 14
FAILED = (
    MessageStatus.FAILED,
    MessageStatus.UNROUTED,
    MessageStatus.UNKNOWN,
    MessageStatus.BLOCKED,
)


def message_volume(*, tenant: Tenant | None, days: int = DAYS) -> dict[str, Any]:
    """Return daily counts of received, sent and failed messages (one query) and their chart."""
    zone = tenant.zone if tenant is not None else timezone.get_current_timezone()
    today = timezone.now().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    messages = Message.objects.all() if tenant is None else Message.objects.for_tenant(tenant)
    rows = (
        messages.filter(created_at__date__gte=first - timedelta(days=1))
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "direction", "status")
        .annotate(n=Count("id"))
    )
    dates = [first + timedelta(days=i) for i in range(days)]
    received, sent, failed = ([0] * days for _ in range(3))
    for row in rows:
        if row["day"] is None or row["day"] < first:
            continue
        index = (row["day"] - first).days
        if row["status"] in FAILED:
            failed[index] += row["n"]
        elif row["direction"] == Direction.IN:
            received[index] += row["n"]
        else:
            sent[index] += row["n"]
    chart = stacked_bars(
        [d.strftime("%d %b") for d in dates],
        [
            Series("received", "#417690", received),
            Series("sent", "#70bf2b", sent),
            Series("failed or unrouted", "#ba2121", failed),
        ],
    )
    return {
        "chart": chart,
        "totals": {"received": sum(received), "sent": sum(sent), "failed": sum(failed)},
    }


def configuration_health(*, tenant: Tenant) -> list[dict[str, Any]]:
    """Return each configuration with a traffic-light state: ok, warning or error."""
    now = timezone.now()
    health = []
    for configuration in SmsConfiguration.objects.for_tenant(tenant).select_related("trunk"):
        if not configuration.enabled:
            state, note = "off", _("disabled")
        elif configuration.last_error_at and (
            configuration.last_webhook_at is None
            or configuration.last_error_at >= configuration.last_webhook_at
        ):
            state, note = "error", configuration.last_error
        elif configuration.last_webhook_at is None:
            state, note = "warning", _("never received a webhook")
        elif now - configuration.last_webhook_at > timedelta(days=7):
            state, note = "warning", _("no webhook for a week")
        else:
            state, note = "ok", _("receiving")
        health.append({"configuration": configuration, "state": state, "note": note})
    return health
