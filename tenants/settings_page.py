"""The tenant's settings page on the tenant site: STOP/HELP/START replies, time zone, retention,
status callbacks and their signing secret."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ApplicationError
from tenants.models import Tenant
from tenants.services import (
    tenant_callback_secret_reveal,
    tenant_callback_secret_rotate,
    tenant_settings_update,
)

# What a tenant administrator may change here (the quota is the system administrator's).
SETTINGS_PAGE_FIELDS = (
    "timezone",
    "stop_reply",
    "help_reply",
    "start_reply",
    "retention_days",
    "status_callback_url",
)


class TenantSettingsForm(forms.ModelForm):
    timezone = forms.CharField(
        label=gettext_lazy("Time zone"),
        max_length=64,
        help_text=gettext_lazy(
            "An IANA name such as America/Toronto: office hours and the portal's times use it."
        ),
    )
    status_callback_url = forms.URLField(
        label=gettext_lazy("Status callback URL"),
        max_length=2000,
        required=False,
        assume_scheme="https",
        help_text=Tenant._meta.get_field("status_callback_url").help_text,
    )

    class Meta:
        model = Tenant
        fields = SETTINGS_PAGE_FIELDS
        widgets = {
            name: forms.Textarea(attrs={"rows": 2, "cols": 60, "maxlength": 160})
            for name in ("stop_reply", "help_reply", "start_reply")
        }


def _reply_notes(tenant: Tenant) -> list[str]:
    """Return warnings about replies that leave a contact without the usual information."""
    notes = []
    if not tenant.stop_reply:
        notes.append(
            _(
                "No default STOP confirmation: a contact who texts STOP through a configuration "
                "without its own confirmation gets no answer (the opt-out is still recorded)."
            )
        )
    if tenant.help_reply and "STOP" not in tenant.help_reply.upper():
        notes.append(_("The HELP reply does not say how to stop messages (reply STOP)."))
    return notes


def settings_page(request: HttpRequest, *, admin_site: admin.AdminSite, tenant: Tenant) -> Any:
    """Show and change the tenant's settings; every change is audited by the service."""
    # The form validates on its own copy: request.tenant keeps the stored values until saved.
    stored = Tenant.objects.get(pk=tenant.pk)
    form = TenantSettingsForm(
        request.POST if request.method == "POST" else None,
        instance=Tenant.objects.get(pk=tenant.pk),
    )
    if request.method == "POST" and form.is_valid():
        changes = {
            name: form.cleaned_data[name]
            for name in SETTINGS_PAGE_FIELDS
            if form.cleaned_data[name] != getattr(stored, name)
        }
        try:
            tenant_settings_update(tenant=tenant, actor=request.user, **changes)
        except ApplicationError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, _("The settings were saved."))
            return redirect(reverse(f"{admin_site.name}:tenant_settings"))
    name = admin_site.name
    context = {
        **admin_site.each_context(request),
        "title": _("Settings"),
        "form": form,
        "notes": _reply_notes(stored),
        "signing_secret": {
            "id": "callback-signing-secret",
            "title": _("Status callback signing secret"),
            "description": _(
                "Every status callback (to the URL above or a send's own status_callback) is "
                "signed with this secret."
            ),
            "reveal_url": reverse(f"{name}:tenant_callback_secret_reveal"),
            "rotate_url": reverse(f"{name}:tenant_callback_secret_rotate"),
        },
    }
    return TemplateResponse(request, "admin/tenants/settings.html", context)


def callback_secret_reveal(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    """Return the tenant's status callback secret (POST), recording that it was seen."""
    secret = tenant_callback_secret_reveal(tenant=tenant, actor=request.user)
    return JsonResponse({"secret": secret}, headers={"Cache-Control": "no-store"})


def callback_secret_rotate(request: HttpRequest, *, tenant: Tenant) -> HttpResponse:
    """Replace the tenant's status callback secret and return the new one."""
    secret = tenant_callback_secret_rotate(tenant=tenant, actor=request.user)
    return JsonResponse(
        {"secret": secret, "message": _("A new secret signs status callbacks from now on.")},
        headers={"Cache-Control": "no-store"},
    )
