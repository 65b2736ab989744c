"""A tenant's usage for a calendar month, and its optional monthly quota of outbound segments.

A month is the tenant's own: it starts at midnight on the 1st in the tenant's time zone. Each
outbound row of the outbox is one SMS segment (a long text is split into one row per part) or
one MMS; an inbound row counts its `segments` (1 unless VoIP.ms said otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from core.charts import Series, stacked_bars
from core.errors import ApplicationError, NotAllowed
from sms.models import Direction, Message, MessageStatus, OptOut
from tenants.models import Tenant

QUOTA_WARNING_SHARE = 0.8
FAILED_SENDS = (MessageStatus.FAILED, MessageStatus.BLOCKED)
# A message cancelled before it was sent uses nothing.
CANCELLED = MessageStatus.CANCELLED
_MONTH = re.compile(r"(\d{4})-(\d{2})")

CSV_HEADER = [
    "month",
    "tenant",
    "configuration",
    "did",
    "messages_in",
    "segments_in",
    "messages_out",
    "segments_out",
    "failed",
    "opt_outs",
]


@dataclass(frozen=True)
class Month:
    """A calendar month, read in a tenant's time zone when it becomes a time range."""

    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @property
    def days(self) -> int:
        return (self.next.first_day - self.first_day).days

    def bounds(self, tenant: Tenant) -> tuple[datetime, datetime]:
        """Return the month's first instant and the next month's, in the tenant's time zone."""
        zone = tenant.zone
        start = datetime(self.year, self.month, 1, tzinfo=zone)
        end = datetime(self.next.year, self.next.month, 1, tzinfo=zone)
        return start, end


def month_parse(value: str | None, *, tenant: Tenant | None = None) -> Month:
    """Return the month written YYYY-MM; none given is the current month (tenant's time)."""
    if not value:
        now = timezone.now().astimezone(tenant.zone if tenant else timezone.get_current_timezone())
        return Month(now.year, now.month)
    found = _MONTH.fullmatch(value.strip())
    if found is None or not (1 <= int(found[2]) <= 12) or not (2000 <= int(found[1]) <= 9998):
        raise ApplicationError(
            _("month must be written YYYY-MM (e.g. 2026-03), not %(value)r.")
            % {"value": value[:20]},
            code="invalid_month",
            field="month",
        )
    return Month(int(found[1]), int(found[2]))


@dataclass
class UsageRow:
    """The traffic of one configuration and DID of a tenant in a month."""

    tenant: str
    tenant_name: str
    configuration_id: int | None
    configuration: str
    did: str
    messages_in: int = 0
    segments_in: int = 0
    messages_out: int = 0
    segments_out: int = 0
    failed: int = 0
    opt_outs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _month_messages(*, tenant: Tenant, month: Month) -> Any:
    start, end = month.bounds(tenant)
    # Served by the (tenant, -created_at) index.
    return Message.objects.for_tenant(tenant).filter(created_at__gte=start, created_at__lt=end)


def usage_rows(*, tenant: Tenant, month: Month) -> list[UsageRow]:
    """Return the tenant's usage in the month, one row per configuration and DID (2 queries)."""
    counts = (
        _month_messages(tenant=tenant, month=month)
        .values("configuration_id", "configuration__name", "did")
        .annotate(
            messages_in=Count("id", filter=Q(direction=Direction.IN)),
            segments_in=Coalesce(Sum("segments", filter=Q(direction=Direction.IN)), 0),
            messages_out=Count(
                "id", filter=Q(direction=Direction.OUT, part_index=0) & ~Q(status=CANCELLED)
            ),
            segments_out=Count("id", filter=Q(direction=Direction.OUT) & ~Q(status=CANCELLED)),
            failed=Count("id", filter=Q(direction=Direction.OUT, status__in=FAILED_SENDS)),
        )
        .order_by("configuration__name", "did")
    )
    rows = [
        UsageRow(
            tenant=tenant.slug,
            tenant_name=tenant.name,
            configuration_id=item["configuration_id"],
            configuration=item["configuration__name"] or "",
            did=item["did"],
            messages_in=item["messages_in"],
            segments_in=item["segments_in"],
            messages_out=item["messages_out"],
            segments_out=item["segments_out"],
            failed=item["failed"],
        )
        for item in counts
    ]
    start, end = month.bounds(tenant)
    opt_outs = (
        OptOut.objects.for_tenant(tenant)
        .filter(created_at__gte=start, created_at__lt=end)
        .values("did")
        .annotate(n=Count("id"))
        .order_by("did")
    )
    by_did = {}
    for row in rows:
        by_did.setdefault(row.did, row)
    for item in opt_outs:
        row = by_did.get(item["did"])
        if row is None:
            row = UsageRow(
                tenant=tenant.slug,
                tenant_name=tenant.name,
                configuration_id=None,
                configuration="",
                did=item["did"],
            )
            rows.append(row)
            by_did[row.did] = row
        row.opt_outs += item["n"]
    return rows


def usage_rows_all_tenants(*, month: Month) -> list[UsageRow]:
    """Return every tenant's usage in the month, each tenant's month in its own time zone."""
    rows: list[UsageRow] = []
    for tenant in Tenant.objects.order_by("name"):
        rows.extend(usage_rows(tenant=tenant, month=month))
    return rows


def usage_totals(rows: list[UsageRow]) -> dict[str, int]:
    """Return the sum of each count over the rows."""
    names = ("messages_in", "segments_in", "messages_out", "segments_out", "failed", "opt_outs")
    return {name: sum(getattr(row, name) for row in rows) for name in names}


def usage_daily(*, tenants: list[Tenant], month: Month) -> tuple[list[int], list[int]]:
    """Return segments in and out for each day of the month (one query per tenant)."""
    segments_in, segments_out = [0] * month.days, [0] * month.days
    for tenant in tenants:
        per_day = (
            _month_messages(tenant=tenant, month=month)
            .annotate(day=TruncDate("created_at", tzinfo=tenant.zone))
            .values("day", "direction")
            .annotate(
                n=Count("id"),
                segments=Coalesce(Sum("segments"), 0),
            )
        )
        for item in per_day:
            index = (item["day"] - month.first_day).days
            if not 0 <= index < month.days:
                continue
            if item["direction"] == Direction.IN:
                segments_in[index] += item["segments"]
            else:
                segments_out[index] += item["n"]
    return segments_in, segments_out


def usage_chart(*, tenants: list[Tenant], month: Month) -> SafeString:
    """Return an SVG bar chart of the month's segments in and out, day by day."""
    segments_in, segments_out = usage_daily(tenants=tenants, month=month)
    labels = [str(day + 1) for day in range(month.days)]
    return stacked_bars(
        labels,
        [
            Series("segments received", "#417690", segments_in),
            Series("segments sent", "#70bf2b", segments_out),
        ],
        title=_("SMS segments per day of %(month)s") % {"month": month},
    )


def usage_csv_rows(*, month: Month, rows: list[UsageRow]) -> Iterator[list[Any]]:
    """Yield the CSV header and one line per usage row."""
    yield CSV_HEADER
    for row in rows:
        yield [
            str(month),
            row.tenant,
            row.configuration,
            row.did,
            row.messages_in,
            row.segments_in,
            row.messages_out,
            row.segments_out,
            row.failed,
            row.opt_outs,
        ]


# --- the monthly quota -------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaStatus:
    quota: int
    used: int
    hard: bool

    @property
    def percent(self) -> int:
        return self.used * 100 // self.quota

    @property
    def warning(self) -> bool:
        return self.used >= self.quota * QUOTA_WARNING_SHARE

    @property
    def exceeded(self) -> bool:
        return self.used >= self.quota


def outbound_segments_in_month(*, tenant: Tenant, month: Month) -> int:
    """Return the outbound segments the tenant queued in the month: what the quota counts."""
    return (
        _month_messages(tenant=tenant, month=month)
        .filter(direction=Direction.OUT)
        .exclude(status=CANCELLED)
        .count()
    )


def quota_status(*, tenant: Tenant, month: Month | None = None) -> QuotaStatus | None:
    """Return how much of its monthly quota the tenant used, or None without a quota."""
    if tenant.monthly_quota is None:
        return None
    month = month or month_parse(None, tenant=tenant)
    used = outbound_segments_in_month(tenant=tenant, month=month)
    return QuotaStatus(quota=tenant.monthly_quota, used=used, hard=tenant.quota_hard)


def quota_check(*, tenant: Tenant, segments: int) -> None:
    """Refuse `segments` more outbound segments when they would pass a hard monthly quota."""
    if tenant.monthly_quota is None or not tenant.quota_hard:
        return
    # Two sends of the tenant at once would both see room for themselves: the caller's
    # transaction holds the tenant's row until its messages are written.
    list(Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk", flat=True))
    status = quota_status(tenant=tenant)
    if status is not None and status.used + segments > status.quota:
        raise NotAllowed(
            _(
                "This tenant's monthly quota of %(quota)s SMS segments is used up (%(used)s "
                "sent this month, %(segments)s more asked); sends resume next month or when "
                "the system administrator raises the quota."
            )
            % {"quota": status.quota, "used": status.used, "segments": segments},
            code="quota_exceeded",
        )
