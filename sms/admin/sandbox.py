"""The tenant site's Sandbox page: the tenant's VoIP.ms sandbox DIDs and how they deliver.

Only mounted when VOIPMS_SANDBOX is on, where the in-repo sandbox stands in for VoIP.ms. A
sandbox account belongs to the tenant whose SMS configuration signs in with its login e-mail.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sms.models import SmsConfiguration
from tenants.models import Tenant
from tenants.services import audit_record
from trunks.numbers import normalize_number
from trunks.voipms.sandbox.models import NumberFormat, SandboxAccount, SandboxDid
from trunks.voipms.sandbox.selectors import sandbox_accounts_of, sandbox_dids_of
from trunks.voipms.sandbox.services import (
    SandboxError,
    sandbox_account_claim,
    sandbox_did_add,
    sandbox_did_configure,
    sandbox_did_remove,
)

CALLBACK_QUERY = "?from={FROM}&to={TO}&message={MESSAGE}&id={ID}&date={TIMESTAMP}&media={MEDIA}"


def callback_template(configuration: SmsConfiguration) -> str:
    """Return the URL callback template that delivers to the configuration (DOMAIN.md §3)."""
    return f"{configuration.webhook_url}{CALLBACK_QUERY}"


def _configurations(tenant: Tenant) -> list[SmsConfiguration]:
    return list(SmsConfiguration.objects.for_tenant(tenant).order_by("name"))


def _accounts(tenant: Tenant, configurations: list[SmsConfiguration]) -> list[SandboxAccount]:
    """Return the tenant's sandbox accounts, claiming unowned ones its configurations sign in to."""
    for configuration in configurations:
        sandbox_account_claim(username=configuration.username, tenant=tenant)
    return list(sandbox_accounts_of(tenant=tenant).order_by("username"))


def _did_of(tenant: Tenant, pk: int) -> SandboxDid:
    """Return one of the tenant's sandbox DIDs, or 404 for any other."""
    sandbox_did = sandbox_dids_of(tenant=tenant).filter(pk=pk).first()
    if sandbox_did is None:
        raise Http404(_("No such sandbox DID"))
    return sandbox_did


class AddDidForm(forms.Form):
    account = forms.ModelChoiceField(
        label=gettext_lazy("Sandbox account"), queryset=SandboxAccount.objects.none()
    )
    did = forms.CharField(
        label=gettext_lazy("DID"),
        max_length=20,
        help_text=gettext_lazy("A US or Canadian number, e.g. 332 249 6216."),
    )
    configuration = forms.ModelChoiceField(
        label=gettext_lazy("Deliver to"),
        queryset=SmsConfiguration.objects.none(),
        required=False,
        empty_label=gettext_lazy("Nowhere yet"),
        help_text=gettext_lazy("Sets the DID's webhook URL to this configuration's."),
    )

    def clean_did(self) -> str:
        # Written as anywhere in the portal: (332) 249-6216, 332.249.6216, +1 332 249 6216 ...
        return normalize_number(self.cleaned_data["did"])

    def __init__(self, *args: Any, tenant: Tenant, accounts: list[SandboxAccount], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = sandbox_accounts_of(tenant=tenant)
        if len(accounts) == 1:
            self.fields["account"].initial = accounts[0].pk
        configurations = SmsConfiguration.objects.for_tenant(tenant).order_by("name")
        self.fields["configuration"].queryset = configurations
        first = configurations.first()
        if first is not None:
            self.fields["configuration"].initial = first.pk


class DidDeliveryForm(forms.Form):
    webhook_url = forms.CharField(
        label=gettext_lazy("SMS/MMS webhook URL"), max_length=1000, required=False
    )
    webhook_enabled = forms.BooleanField(label=gettext_lazy("Webhook enabled"), required=False)
    callback_url = forms.CharField(
        label=gettext_lazy("URL callback"),
        max_length=1000,
        required=False,
        help_text=gettext_lazy(
            "A GET URL with the placeholders {FROM} {TO} {MESSAGE} {ID} {TIMESTAMP} {MEDIA}."
        ),
    )
    callback_enabled = forms.BooleanField(
        label=gettext_lazy("URL callback enabled"), required=False
    )
    callback_retry = forms.BooleanField(
        label=gettext_lazy("Retry the callback until the answer is “ok”"), required=False
    )
    number_format = forms.ChoiceField(
        label=gettext_lazy("Number format"), choices=NumberFormat.choices
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for field, enabled in (
            ("webhook_url", "webhook_enabled"),
            ("callback_url", "callback_enabled"),
        ):
            url = data.get(field, "").strip()
            if url and not url.lower().startswith(("http://", "https://")):
                self.add_error(field, _("Enter an http:// or https:// URL."))
            if data.get(enabled) and not url:
                self.add_error(field, _("Enter the URL, or untick “enabled”."))
        return data


def sandbox_page(
    request: HttpRequest, *, admin_site: admin.AdminSite, tenant: Tenant
) -> HttpResponse:
    """List the tenant's sandbox accounts and DIDs; add a DID; create a missing account."""
    configurations = _configurations(tenant)
    accounts = _accounts(tenant, configurations)
    form = AddDidForm(
        request.POST if request.method == "POST" and "add_did" in request.POST else None,
        tenant=tenant,
        accounts=accounts,
    )
    if request.method == "POST" and "create_account" in request.POST:
        return _create_account(
            request, admin_site=admin_site, tenant=tenant, configurations=configurations
        )
    if request.method == "POST" and form.is_valid():
        configuration = form.cleaned_data["configuration"]
        try:
            sandbox_did = sandbox_did_add(
                account=form.cleaned_data["account"],
                did=form.cleaned_data["did"],
                webhook_url=configuration.webhook_url if configuration else "",
            )
        except SandboxError as error:
            form.add_error("did", error.message)
        else:
            audit_record(
                actor=request.user,
                action="sandbox DID added",
                tenant=tenant,
                detail={"did": sandbox_did.did, "account": sandbox_did.account.username},
            )
            messages.success(request, _("Sandbox DID %(did)s added.") % {"did": sandbox_did.e164})
            return redirect(reverse(f"{admin_site.name}:sandbox"))
    used = {account.username for account in accounts}
    taken = set(
        SandboxAccount.objects.filter(
            username__in=[c.username.strip().lower() for c in configurations]
        )
        .exclude(tenant=tenant)
        .values_list("username", flat=True)
    )
    context = {
        **admin_site.each_context(request),
        "title": _("Sandbox"),
        "accounts": accounts,
        "dids": list(sandbox_dids_of(tenant=tenant)),
        "form": form,
        "without_account": [
            c for c in configurations if c.username.strip().lower() not in used | taken
        ],
        "taken": sorted(taken),
    }
    return TemplateResponse(request, "admin/sms/sandbox.html", context)


def _create_account(
    request: HttpRequest,
    *,
    admin_site: admin.AdminSite,
    tenant: Tenant,
    configurations: list[SmsConfiguration],
) -> HttpResponse:
    """Create the sandbox account a configuration signs in to, with its login and password."""
    configuration = next(
        (c for c in configurations if str(c.pk) == request.POST.get("configuration", "")), None
    )
    if configuration is None:
        raise Http404(_("No such configuration"))
    try:
        account = sandbox_account_claim(
            username=configuration.username,
            tenant=tenant,
            api_password=configuration.api_password,
        )
    except SandboxError as error:
        messages.error(request, error.message)
        return redirect(reverse(f"{admin_site.name}:sandbox"))
    if account is None:
        messages.error(
            request,
            _("The sandbox account %(login)s belongs to another tenant.")
            % {"login": configuration.username},
        )
    else:
        audit_record(
            actor=request.user,
            action="sandbox account created",
            tenant=tenant,
            detail={"account": account.username},
        )
        messages.success(
            request, _("Sandbox account %(login)s is ready.") % {"login": account.username}
        )
    return redirect(reverse(f"{admin_site.name}:sandbox"))


def sandbox_did_page(
    request: HttpRequest, *, admin_site: admin.AdminSite, tenant: Tenant, pk: int
) -> HttpResponse:
    """Set how one of the tenant's sandbox DIDs delivers received messages."""
    sandbox_did = _did_of(tenant, pk)
    initial = {
        name: getattr(sandbox_did, name)
        for name in (
            "webhook_url",
            "webhook_enabled",
            "callback_url",
            "callback_enabled",
            "callback_retry",
            "number_format",
        )
    }
    form = DidDeliveryForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in initial}
        try:
            sandbox_did_configure(did=sandbox_did.did, **changes)
        except SandboxError as error:
            form.add_error(None, error.message)
        else:
            changed = sorted(name for name, value in changes.items() if initial[name] != value)
            if changed:
                audit_record(
                    actor=request.user,
                    action="sandbox DID changed",
                    tenant=tenant,
                    detail={"did": sandbox_did.did, "fields": changed},
                )
            messages.success(request, _("Sandbox DID %(did)s saved.") % {"did": sandbox_did.e164})
            return redirect(reverse(f"{admin_site.name}:sandbox"))
    # The configurations signing in to the DID's account come first; any other may be chosen too.
    login = sandbox_did.account.username
    configurations = sorted(
        _configurations(tenant), key=lambda c: c.username.strip().lower() != login
    )
    context = {
        **admin_site.each_context(request),
        "title": _("Sandbox DID %(did)s") % {"did": sandbox_did.e164},
        "sandbox_did": sandbox_did,
        "form": form,
        "defaults": [
            {"name": c.name, "webhook": c.webhook_url, "callback": callback_template(c)}
            for c in configurations
        ],
    }
    return TemplateResponse(request, "admin/sms/sandbox_did.html", context)


def sandbox_did_delete_page(
    request: HttpRequest, *, admin_site: admin.AdminSite, tenant: Tenant, pk: int
) -> HttpResponse:
    """Confirm, then remove one of the tenant's sandbox DIDs."""
    sandbox_did = _did_of(tenant, pk)
    if request.method == "POST":
        sandbox_did_remove(sandbox_did=sandbox_did)
        audit_record(
            actor=request.user,
            action="sandbox DID removed",
            tenant=tenant,
            detail={"did": sandbox_did.did, "account": sandbox_did.account.username},
        )
        messages.success(request, _("Sandbox DID %(did)s removed.") % {"did": sandbox_did.e164})
        return redirect(reverse(f"{admin_site.name}:sandbox"))
    context = {
        **admin_site.each_context(request),
        "title": _("Remove sandbox DID %(did)s") % {"did": sandbox_did.e164},
        "sandbox_did": sandbox_did,
    }
    return TemplateResponse(request, "admin/sms/sandbox_did_delete.html", context)
