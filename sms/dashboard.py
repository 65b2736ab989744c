"""What the tenant site's home page shows: message volume and configuration health."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, IntegerField, Q, Value
from django.db.models.functions import TruncDate
from django.utils import dateformat, timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.charts import Series, stacked_bars
from sms.models import (
    Conversation,
    Direction,
    Message,
    MessageStatus,
    OptOut,
    SmsConfiguration,
)
from tenants.models import Tenant

DAYS = 14
FAILED = (
    MessageStatus.FAILED,
    MessageStatus.UNROUTED,
    MessageStatus.UNKNOWN,
    MessageStatus.BLOCKED,
)
# The system home draws this many tenants by name; the rest are one "other tenants" band.
TOP_TENANTS = 6
RECEIVED_COLOR, SENT_COLOR, FAILED_COLOR, OPT_OUT_COLOR = "#417690", "#70bf2b", "#ba2121", "#d4a106"
TENANT_COLORS = ("#417690", "#70bf2b", "#d4a106", "#8e5ea2", "#e07b39", "#3cb4b4", "#999999")


def _window(zone: Any, days: int) -> tuple[list[date], datetime]:
    """Return the last `days` dates in the zone (today last) and the instant the first began."""
    today = timezone.now().astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    return [first + timedelta(days=i) for i in range(days)], datetime.combine(
        first, time.min, tzinfo=zone
    )


def _day_labels(dates: list[date]) -> list[str]:
    return [dateformat.format(d, "j M") for d in dates]


def _counts(rows: Any, dates: list[date], names: tuple[str, ...]) -> dict[str, list[int]]:
    """Spread rows of (day, name...) counts over the dates."""
    first = dates[0]
    counts = {name: [0] * len(dates) for name in names}
    for row in rows:
        index = (row["day"] - first).days if row["day"] is not None else -1
        if 0 <= index < len(dates):
            for name in names:
                counts[name][index] += row[name]
    return counts


def message_volume(*, tenant: Tenant | None, days: int = DAYS) -> dict[str, Any]:
    """Return daily counts of received, sent and failed messages (one query) and their chart."""
    zone = tenant.zone if tenant is not None else timezone.get_current_timezone()
    dates, start = _window(zone, days)
    messages = Message.objects.all() if tenant is None else Message.objects.for_tenant(tenant)
    failed = Q(status__in=FAILED)
    rows = (
        messages.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(
            received=Count("id", filter=~failed & Q(direction=Direction.IN)),
            sent=Count("id", filter=~failed & Q(direction=Direction.OUT)),
            failed=Count("id", filter=failed),
        )
        .order_by()
    )
    counts = _counts(rows, dates, ("received", "sent", "failed"))
    chart = stacked_bars(
        _day_labels(dates),
        [
            Series(_("received"), RECEIVED_COLOR, counts["received"]),
            Series(_("sent"), SENT_COLOR, counts["sent"]),
            Series(_("failed or unrouted"), FAILED_COLOR, counts["failed"]),
        ],
        title=_("Messages per day, last %(days)s days") % {"days": days},
    )
    return {"chart": chart, "totals": {name: sum(values) for name, values in counts.items()}}


def configuration_volume(*, configuration: SmsConfiguration, days: int = DAYS) -> dict[str, Any]:
    """Return a configuration's daily messages in and out, failures and opt-outs, and a chart.

    Days are the tenant's. Messages and opt-outs are counted in one grouped query (a UNION);
    an opt-out belongs to the configuration whose conversations use its DID.
    """
    tenant = configuration.tenant
    zone = tenant.zone
    dates, start = _window(zone, days)
    failed = Q(status__in=FAILED)
    nothing = Value(0, output_field=IntegerField())
    messages = (
        Message.objects.for_tenant(tenant)
        .filter(configuration=configuration, created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(
            inbound=Count("id", filter=~failed & Q(direction=Direction.IN)),
            outbound=Count("id", filter=~failed & Q(direction=Direction.OUT)),
            failed=Count("id", filter=failed),
            opt_outs=nothing,
        )
        .order_by()
    )
    dids = Conversation.objects.for_tenant(tenant).filter(configuration=configuration).values("did")
    opt_outs = (
        OptOut.objects.for_tenant(tenant)
        .filter(did__in=dids, created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(inbound=nothing, outbound=nothing, failed=nothing, opt_outs=Count("id"))
        .order_by()
    )
    names = ("inbound", "outbound", "failed", "opt_outs")
    counts = _counts(messages.union(opt_outs, all=True), dates, names)
    chart = stacked_bars(
        _day_labels(dates),
        [
            Series(_("inbound"), RECEIVED_COLOR, counts["inbound"]),
            Series(_("outbound"), SENT_COLOR, counts["outbound"]),
            Series(_("failed"), FAILED_COLOR, counts["failed"]),
            Series(_("opt-outs"), OPT_OUT_COLOR, counts["opt_outs"]),
        ],
        title=_("%(name)s: messages and opt-outs per day, last %(days)s days")
        % {"name": configuration.name, "days": days},
        stacked=False,
    )
    return {
        "chart": chart,
        "days": counts,
        "totals": {name: sum(values) for name, values in counts.items()},
    }


def tenants_volume(*, days: int = DAYS, top: int = TOP_TENANTS) -> dict[str, Any]:
    """Return every tenant's daily messages (one grouped query) as a chart stacked by tenant.

    The busiest `top` tenants of the period are drawn by name, the rest as one band. Days are
    those of the current time zone (the viewer's), one calendar for every tenant.
    """
    zone = timezone.get_current_timezone()
    dates, start = _window(zone, days)
    failed = Q(status__in=FAILED)
    rows = (
        Message.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("tenant_id", "day")
        .annotate(
            inbound=Count("id", filter=~failed & Q(direction=Direction.IN)),
            outbound=Count("id", filter=~failed & Q(direction=Direction.OUT)),
            failed=Count("id", filter=failed),
        )
        .order_by()
    )
    per_tenant: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        per_tenant.setdefault(row["tenant_id"], []).append(row)
    names = ("inbound", "outbound", "failed")
    counts = {pk: _counts(r, dates, names) for pk, r in per_tenant.items()}
    totals = {pk: {name: sum(c[name]) for name in names} for pk, c in counts.items()}
    ranked = sorted(totals, key=lambda pk: (-sum(totals[pk].values()), pk))
    shown, rest = ranked[:top], ranked[top:]
    tenant_names = dict(Tenant.objects.filter(pk__in=shown).values_list("pk", "name"))

    def daily(pks: list[int]) -> list[int]:
        return [sum(counts[pk][n][i] for pk in pks for n in names) for i in range(len(dates))]

    series = [
        Series(
            tenant_names.get(pk, str(pk)), TENANT_COLORS[i % (len(TENANT_COLORS) - 1)], daily([pk])
        )
        for i, pk in enumerate(shown)
    ]
    if rest:
        series.append(
            Series(
                ngettext("%(count)s other tenant", "%(count)s other tenants", len(rest))
                % {"count": len(rest)},
                TENANT_COLORS[-1],
                daily(rest),
            )
        )
    chart = stacked_bars(
        _day_labels(dates),
        series,
        title=_("Messages per day and tenant, last %(days)s days") % {"days": days},
    )
    table = [{"name": tenant_names.get(pk, str(pk)), **totals[pk]} for pk in shown]
    if rest:
        table.append(
            {
                "name": series[-1].label,
                **{name: sum(totals[pk][name] for pk in rest) for name in names},
            }
        )
    return {"chart": chart, "tenants": table, "active": len(ranked)}


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
