"""Usage and privacy pages of the two admin sites: a month's usage (table, chart, CSV) and
erasing an outside number. The sites (`portal.admin_sites`) add them to their URLs."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from sms.retention import remote_number_erase
from sms.usage import (
    Month,
    month_parse,
    quota_status,
    usage_chart,
    usage_csv_rows,
    usage_rows,
    usage_rows_all_tenants,
    usage_totals,
)
from tenants.models import Tenant


def _month(request: HttpRequest, tenant: Tenant | None) -> tuple[Month, str]:
    """Return the month asked for in ?month=, or the current one and why the asked one is not."""
    try:
        return month_parse(request.GET.get("month"), tenant=tenant), ""
    except ApplicationError as error:
        return month_parse(None, tenant=tenant), error.message


def usage_page(
    request: HttpRequest, *, admin_site: admin.AdminSite, tenant: Tenant | None
) -> HttpResponse:
    """Show a month's usage of one tenant (tenant site) or of every tenant (system site)."""
    month, error = _month(request, tenant)
    if tenant is None:
        rows = usage_rows_all_tenants(month=month)
        tenants = list(Tenant.objects.order_by("name"))
        quota = None
    else:
        rows = usage_rows(tenant=tenant, month=month)
        tenants = [tenant]
        quota = quota_status(tenant=tenant, month=month)
    site = admin_site.name
    context = {
        **admin_site.each_context(request),
        "title": _("Usage"),
        "month": month,
        "month_error": error,
        "rows": rows,
        "totals": usage_totals(rows),
        "chart": usage_chart(tenants=tenants, month=month),
        "quota": quota,
        "every_tenant": tenant is None,
        "csv_url": reverse(f"{site}:usage_csv") + f"?month={month}",
        "previous_url": reverse(f"{site}:usage") + f"?month={month.previous}",
        "next_url": reverse(f"{site}:usage") + f"?month={month.next}",
    }
    return TemplateResponse(request, "admin/sms/usage.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def usage_csv(request: HttpRequest, *, tenant: Tenant | None) -> HttpResponse:
    """Download a month's usage as CSV (a bad month is the current one, as on the page)."""
    month, _unused = _month(request, tenant)
    rows = (
        usage_rows_all_tenants(month=month)
        if tenant is None
        else usage_rows(tenant=tenant, month=month)
    )
    writer = csv.writer(_Echo())
    body = "".join(writer.writerow(line) for line in usage_csv_rows(month=month, rows=rows))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    name = "all-tenants" if tenant is None else tenant.slug
    response["Content-Disposition"] = f'attachment; filename="usage-{name}-{month}.csv"'
    return response


class EraseRemoteForm(forms.Form):
    remote = forms.CharField(
        label=_("Outside number"),
        max_length=40,
        help_text=_("A US or Canadian number, or the digits of a short code."),
    )
    confirm = forms.BooleanField(
        label=_(
            "I understand that this deletes the number's messages, media and conversations for good"
        ),
    )


def erase_remote_page(
    request: HttpRequest, *, admin_site: admin.AdminSite, tenant: Tenant
) -> HttpResponse:
    """Ask for an outside number and erase what the tenant keeps about it (privacy requests)."""
    form = EraseRemoteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            number, counts = remote_number_erase(
                tenant=tenant, remote=form.cleaned_data["remote"], actor=request.user
            )
        except ApplicationError as error:
            form.add_error("remote", error.message)
        else:
            messages.success(
                request,
                _(
                    "Erased %(number)s: %(messages)s message(s), %(media)s media file(s), "
                    "%(conversations)s conversation(s) and %(webhook_deliveries)s webhook "
                    "delivery(ies)."
                )
                % {
                    "number": number,
                    "messages": counts.messages,
                    "media": counts.media,
                    "conversations": counts.conversations,
                    "webhook_deliveries": counts.webhook_deliveries,
                },
            )
            return redirect(reverse(f"{admin_site.name}:erase_remote"))
    context = {
        **admin_site.each_context(request),
        "title": _("Erase an outside number"),
        "form": form,
    }
    return TemplateResponse(request, "admin/sms/erase_remote.html", context)
