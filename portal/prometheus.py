"""Prometheus text for /metrics: the shared counters, messages by status, VoIP.ms call time."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Sum
from django.utils import timezone

from core.metrics import read_all
from sms.models import DeliveryAttempt, Message


def prometheus_text() -> str:
    """Return counters, messages by status and VoIP.ms call latency in Prometheus format."""
    lines = []
    for name, value in read_all().items():
        lines += [f"# TYPE sms_portal_{name}_total counter", f"sms_portal_{name}_total {value}"]
    lines.append("# TYPE sms_portal_messages gauge")
    by_status = Message.objects.values("direction", "status").annotate(n=Count("id"))
    for row in by_status.order_by("direction", "status"):
        labels = f'direction="{row["direction"]}",status="{row["status"]}"'
        lines.append(f"sms_portal_messages{{{labels}}} {row['n']}")
    hour = DeliveryAttempt.objects.filter(
        at__gte=timezone.now() - timedelta(hours=1), elapsed_ms__isnull=False
    ).aggregate(n=Count("id"), total=Sum("elapsed_ms"))
    lines += [
        "# TYPE sms_portal_voipms_call_seconds summary",
        f"sms_portal_voipms_call_seconds_count {hour['n']}",
        f"sms_portal_voipms_call_seconds_sum {(hour['total'] or 0) / 1000:.3f}",
    ]
    return "\n".join(lines) + "\n"
