"""Pages that connect a configuration's VoIP.ms DIDs: the tenant's list with "point here", and
the system administrator's list with "add to the tenant's pool"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from sms.models import SmsConfiguration
from sms.provisioning import (
    account_dids,
    did_pointing_latest,
    did_pointing_start,
    did_pool_add,
    tenant_dids_owner_names,
)
from trunks.models import Brand


def _listing(configuration: SmsConfiguration) -> dict[str, Any]:
    """Return the account's DIDs for a page, or the reason VoIP.ms could not list them."""
    try:
        rows = account_dids(configuration=configuration)
    except ApplicationError as error:
        return {"rows": [], "error": error.message}
    owners = tenant_dids_owner_names(rows=rows)
    return {
        "rows": [
            {"did": row, "owner": owners.get(row.owner_tenant_id) if row.owner_tenant_id else ""}
            for row in rows
        ],
        "error": "",
    }


def tenant_dids_page(
    request: HttpRequest, *, admin_site: admin.AdminSite, opts: Any, configuration: SmsConfiguration
) -> HttpResponse:
    """Show the account's DIDs, where they point, and the last pointing's results."""
    context = {
        **admin_site.each_context(request),
        "opts": opts,
        "title": _("DIDs at VoIP.ms — %(name)s") % {"name": configuration.name},
        "configuration": configuration,
        "pointing": did_pointing_latest(configuration=configuration),
        **_listing(configuration),
    }
    return TemplateResponse(request, "admin/sms/smsconfiguration/dids.html", context)


def tenant_point_dids(request: HttpRequest, *, configuration: SmsConfiguration) -> HttpResponse:
    """Start pointing the chosen DIDs at the configuration's webhook."""
    dids = request.POST.getlist("dids")
    try:
        did_pointing_start(configuration=configuration, dids=dids, actor=request.user)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            _(
                "Pointing %(count)s DID(s) at this configuration's webhook. VoIP.ms takes "
                "one change per DID per minute; reload this page to see what changed."
            )
            % {"count": len(dids)},
        )
    return redirect(reverse("tenant:sms_smsconfiguration_dids", args=[configuration.pk]))


def system_dids_page(request: HttpRequest, *, admin_site: admin.AdminSite) -> HttpResponse:
    """List a configuration's VoIP.ms DIDs and add chosen ones to its tenant's pool."""
    configurations = SmsConfiguration.objects.select_related("tenant", "trunk").filter(
        trunk__brand=Brand.VOIPMS
    )
    chosen_id = request.POST.get("configuration") or request.GET.get("configuration") or ""
    configuration = (
        configurations.filter(pk=int(chosen_id)).first()
        if chosen_id.isdigit() and len(chosen_id) < 10
        else None
    )
    if request.method == "POST" and configuration is not None:
        dids = request.POST.getlist("dids")
        try:
            assignment = did_pool_add(configuration=configuration, dids=dids, actor=request.user)
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                _("%(tenant)s's pool on %(trunk)s is now %(did_pool)s.")
                % {
                    "tenant": configuration.tenant,
                    "trunk": configuration.trunk,
                    "did_pool": assignment.did_pool,
                },
            )
        return redirect(f"{reverse('admin:voipms_dids')}?configuration={configuration.pk}")
    context = {
        **admin_site.each_context(request),
        "title": _("VoIP.ms DIDs"),
        "configurations": configurations.order_by("tenant__name", "name"),
        "configuration": configuration,
        "chosen_id": chosen_id,
        **(_listing(configuration) if configuration is not None else {"rows": [], "error": ""}),
    }
    return TemplateResponse(request, "admin/voipms_dids.html", context)
