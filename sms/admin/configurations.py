"""SMS/MMS configurations and webhook deliveries in the tenant site."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse, reverse_lazy
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from core.admin import ServiceWritesMixin, TenantScopedAdmin
from core.clock import time_display
from core.forms import WriteOnlySecretsMixin
from sms.admin.common import ChannelsRequiredMixin
from sms.admin.provisioning import tenant_dids_page, tenant_point_dids
from sms.configurations import (
    EDITABLE_FIELDS,
    credentials_check_state,
    sms_configuration_create,
    sms_configuration_delete,
    sms_configuration_rotate_webhook,
    sms_configuration_set_enabled,
    sms_configuration_update,
    sms_configuration_verify_start,
)
from sms.dashboard import configuration_volume
from sms.models import CredentialsStatus, SmsConfiguration, WebhookDelivery
from tenants.models import AuditEvent
from trunks.models import Brand, Trunk

VOIPMS_STEPS = (
    _("Sign in at VoIP.ms and open DID Numbers > Manage DIDs."),
    _("Click Edit on each DID of this tenant's pool."),
    _(
        "Under Message Service (SMS/MMS), enable SMS/MMS and paste the URL into "
        "SMS/MMS Webhook URL."
    ),
    _("Choose the same number format as this configuration, then Apply Changes."),
)


class SmsConfigurationForm(WriteOnlySecretsMixin, forms.ModelForm):
    secret_fields = ("api_password",)
    secret_required_on_create = ("api_password",)

    class Meta:
        model = SmsConfiguration
        fields = [
            "name",
            "trunk",
            "username",
            "api_password",
            "number_format",
            "channel",
            "long_message_policy",
            "prepend_plus",
            "daily_send_limit",
            "enabled",
            "poll_enabled",
        ]
        widgets = {
            "number_format": forms.RadioSelect,
            "channel": forms.RadioSelect,
            "long_message_policy": forms.RadioSelect,
        }


class SmsConfigurationAdmin(ChannelsRequiredMixin, ServiceWritesMixin, TenantScopedAdmin):
    form = SmsConfigurationForm
    deleted_with_it = (WebhookDelivery,)
    list_display = ["name_link", "trunk_name", "trunk_host", "enable_toggle", "status"]
    list_display_links = None
    list_select_related = ["trunk"]
    list_per_page = 15
    search_fields = ["name", "username", "trunk__name"]
    change_list_template = "admin/sms/smsconfiguration/change_list.html"
    fieldsets = (
        (None, {"fields": ("name", "trunk", "enabled")}),
        (_("VoIP.ms account"), {"fields": ("username", "api_password")}),
        (
            _("Messages"),
            {
                "fields": (
                    "number_format",
                    "channel",
                    "long_message_policy",
                    "prepend_plus",
                    "daily_send_limit",
                    "poll_enabled",
                )
            },
        ),
    )

    class Media:
        # The JavaScript catalogue first: the script's messages come from it.
        js = (reverse_lazy("javascript-catalog"), "portal/sms_configurations.js")

    def tenant_choices(self, request: HttpRequest) -> dict[str, Any]:
        return {"trunk": Trunk.objects.available_to(request.tenant).filter(brand=Brand.VOIPMS)}

    # --- list columns -------------------------------------------------------------------

    @admin.display(description=_("Name"), ordering="name")
    def name_link(self, obj: SmsConfiguration) -> str:
        return format_html(
            '<a class="config-name" href="{}" data-details-url="{}" data-webhook-url="{}">{}</a>',
            reverse("tenant:sms_smsconfiguration_details", args=[obj.pk]),
            reverse("tenant:sms_smsconfiguration_details", args=[obj.pk]),
            obj.webhook_url,
            obj.name,
        )

    @admin.display(description=_("Trunk Name"), ordering="trunk__name")
    def trunk_name(self, obj: SmsConfiguration) -> str:
        return obj.trunk.name

    @admin.display(description=_("Hostname or IP Address"))
    def trunk_host(self, obj: SmsConfiguration) -> str:
        return obj.trunk.host

    @admin.display(description=_("Enable"))
    def enable_toggle(self, obj: SmsConfiguration) -> str:
        return format_html(
            '<label class="switch"><input type="checkbox" class="enable-toggle" data-url="{}"{}>'
            '<span class="switch-label">{}</span></label>',
            reverse("tenant:sms_smsconfiguration_toggle", args=[obj.pk]),
            " checked" if obj.enabled else "",
            _("On") if obj.enabled else _("Off"),
        )

    @admin.display(description=_("Status"))
    def status(self, obj: SmsConfiguration) -> str:
        return format_html('<span data-testid="status">{}</span>', configuration_status(obj))

    # --- saving -------------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = {
            name: form.cleaned_data[name] for name in EDITABLE_FIELDS if name in form.cleaned_data
        }
        password = form.secret_changes().get("api_password")
        if change:
            saved = sms_configuration_update(
                configuration=obj, actor=request.user, api_password=password, **fields
            )
        else:
            saved = sms_configuration_create(
                tenant=request.tenant, actor=request.user, api_password=password or "", **fields
            )
        obj.pk = saved.pk
        obj.webhook_token = saved.webhook_token

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: Any = None
    ) -> HttpResponse:
        messages.success(
            request,
            format_html(
                'Saved {}. Webhook URL: <code class="new-webhook-url">{}</code> — next, paste it '
                "at VoIP.ms: DID Numbers &gt; Manage DIDs &gt; Edit &gt; Message Service (SMS/MMS) "
                "&gt; SMS/MMS Webhook URL, and choose the {} number format.",
                obj.name,
                obj.webhook_url,
                obj.get_number_format_display(),
            ),
        )
        return redirect(reverse("tenant:sms_smsconfiguration_changelist"))

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        sms_configuration_delete(configuration=obj, actor=request.user)

    # --- custom pages -------------------------------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/details/",
                wrap(require_GET(self.details_view)),
                name="sms_smsconfiguration_details",
            ),
            path(
                "<int:pk>/toggle/",
                wrap(require_POST(self.toggle_view)),
                name="sms_smsconfiguration_toggle",
            ),
            path(
                "<int:pk>/rotate/",
                wrap(require_POST(self.rotate_view)),
                name="sms_smsconfiguration_rotate",
            ),
            path(
                "<int:pk>/verify/",
                wrap(require_POST(self.verify_view)),
                name="sms_smsconfiguration_verify",
            ),
            path(
                "<int:pk>/dids/",
                wrap(require_GET(self.dids_view)),
                name="sms_smsconfiguration_dids",
            ),
            path(
                "<int:pk>/point-dids/",
                wrap(require_POST(self.point_dids_view)),
                name="sms_smsconfiguration_point_dids",
            ),
            path(
                "<int:pk>/verification/",
                wrap(require_GET(self.verification_view)),
                name="sms_smsconfiguration_verification",
            ),
            path(
                "<int:pk>/credentials/",
                wrap(require_GET(self.credentials_view)),
                name="sms_smsconfiguration_credentials",
            ),
            *super().get_urls(),
        ]

    def _get(self, request: HttpRequest, pk: int) -> SmsConfiguration:
        if not self.has_view_permission(request):
            raise Http404
        configuration = (
            self.get_queryset(request).select_related("trunk", "tenant").filter(pk=pk).first()
        )
        if configuration is None:
            raise Http404("No such configuration in this tenant.")
        return configuration

    def details_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Show every field, the webhook URL with a copy button, verification and history."""
        configuration = self._get(request, pk)
        history = AuditEvent.objects.for_tenant(request.tenant).filter(
            object_type="sms.smsconfiguration", object_id=str(configuration.pk)
        )[:50]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": configuration.name,
            "configuration": configuration,
            "status": configuration_status(configuration),
            "credentials": credentials_check_state(configuration),
            "steps": VOIPMS_STEPS,
            "history": history,
            "volume": configuration_volume(configuration=configuration),
            "deliveries": WebhookDelivery.objects.for_tenant(request.tenant)
            .filter(configuration=configuration)
            .only("received_at", "method", "status", "reason")[:10],
        }
        return TemplateResponse(request, "admin/sms/smsconfiguration/details.html", context)

    def dids_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """List the account's DIDs at VoIP.ms, where they point, and the last pointing."""
        configuration = self._get(request, pk)
        return tenant_dids_page(
            request, admin_site=self.admin_site, opts=self.opts, configuration=configuration
        )

    def point_dids_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Point the chosen DIDs at this configuration's webhook."""
        configuration = self._get(request, pk)
        if not self.has_change_permission(request, configuration):
            raise PermissionDenied
        return tenant_point_dids(request, configuration=configuration)

    def toggle_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        configuration = self._get(request, pk)
        enabled = request.POST.get("enabled") == "true"
        sms_configuration_set_enabled(
            configuration=configuration, enabled=enabled, actor=request.user
        )
        return JsonResponse({"id": configuration.pk, "enabled": enabled})

    def rotate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        configuration = self._get(request, pk)
        url = sms_configuration_rotate_webhook(configuration=configuration, actor=request.user)
        messages.success(
            request,
            format_html(
                _(
                    "New webhook URL: <code>{}</code>. The old URL no longer works: paste the new "
                    "one at VoIP.ms on every DID."
                ),
                url,
            ),
        )
        return redirect(reverse("tenant:sms_smsconfiguration_details", args=[pk]))

    def verify_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        configuration = self._get(request, pk)
        sms_configuration_verify_start(configuration=configuration, actor=request.user)
        if request.headers.get("Accept", "").startswith("application/json"):
            return JsonResponse({"status": "running"})
        return redirect(reverse("tenant:sms_smsconfiguration_details", args=[pk]))

    def credentials_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        """Answer the state of the background credentials check, for the details page to poll."""
        configuration = self._get(request, pk)
        return JsonResponse(credentials_check_state(configuration))

    def verification_view(self, request: HttpRequest, pk: int) -> JsonResponse:
        configuration = self._get(request, pk)
        return JsonResponse(
            {
                "status": configuration.verification_status,
                "label": configuration.get_verification_status_display(),
                "result": configuration.verification_result,
                "verified_at": configuration.verified_at.isoformat()
                if configuration.verified_at
                else None,
            }
        )


def configuration_status(configuration: SmsConfiguration) -> str:
    """Describe whether messages arrive: never received, last webhook, or the last error."""
    if configuration.credentials_status == CredentialsStatus.FAILED:
        return gettext("VoIP.ms rejected the credentials: open the details for its reason.")
    if configuration.last_error_at and (
        configuration.last_webhook_at is None
        or configuration.last_error_at >= configuration.last_webhook_at
    ):
        when = time_display(configuration.last_error_at)
        return _("Error at %(when)s: %(error)s") % {
            "when": when,
            "error": configuration.last_error,
        }
    if configuration.last_webhook_at is None:
        return str(_("Never received"))
    when = time_display(configuration.last_webhook_at)
    return _("Last webhook %(when)s") % {"when": when}
