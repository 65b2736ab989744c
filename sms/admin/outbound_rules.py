"""Outbound rules with their routes, in the tenant site."""

from __future__ import annotations

from typing import Any

from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from core.admin import ServiceWritesMixin, TenantScopedAdmin, TenantScopedInline
from core.errors import ApplicationError
from sms.admin.common import ChannelsRequiredMixin
from sms.models import OutboundRoute
from sms.outbound.rules import (
    MAX_ROUTES,
    ROUTE_FIELDS,
    RULE_FIELDS,
    outbound_route_check,
    outbound_rule_delete,
    outbound_rule_save,
)
from trunks.models import Trunk


class RouteFormSet(BaseInlineFormSet):
    """Check every route with the service before anything is saved."""

    def clean(self) -> None:
        super().clean()
        tenant = self.request_tenant
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or not data.get("trunk"):
                continue
            route = OutboundRoute(tenant=tenant, **{k: data[k] for k in ROUTE_FIELDS if k in data})
            try:
                outbound_route_check(tenant=tenant, route=route)
            except ApplicationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)


class OutboundRouteInline(TenantScopedInline):
    model = OutboundRoute
    formset = RouteFormSet
    fields = ["position", "trunk", "strip_digits", "prepend", "caller_id", "enabled"]
    extra = 1
    max_num = MAX_ROUTES
    ordering = ["position"]

    def tenant_choices(self, request: HttpRequest) -> dict[str, Any]:
        return {"trunk": Trunk.objects.available_to(request.tenant)}

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.request_tenant = request.tenant
        return formset


class OutboundRuleAdmin(ChannelsRequiredMixin, ServiceWritesMixin, TenantScopedAdmin):
    inlines = [OutboundRouteInline]
    list_display = [
        "name",
        "priority",
        "strategy",
        "prefixes",
        "lengths",
        "from_extensions",
        "hours",
        "enabled",
    ]
    list_editable = ["enabled"]
    list_filter = ["enabled", "strategy"]
    search_fields = ["name", "prefixes"]
    list_per_page = 15
    fieldsets = (
        (None, {"fields": ("name", "priority", "strategy", "enabled")}),
        ("Conditions (at least one)", {"fields": ("prefixes", "lengths", "from_extensions")}),
        ("Office hours", {"fields": ("hours",)}),
    )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = {
            name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data
        }
        saved = outbound_rule_save(
            tenant=request.tenant, actor=request.user, rule=obj if change else None, **fields
        )
        obj.pk = saved.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        for formset in formsets:
            rows = [
                f.cleaned_data
                for f in formset.forms
                if getattr(f, "cleaned_data", None)
                and not f.cleaned_data.get("DELETE")
                and f.cleaned_data.get("trunk")
            ]
            rows.sort(key=lambda row: row.get("position") or 0)
            outbound_rule_save(
                tenant=request.tenant,
                actor=request.user,
                rule=form.instance,
                routes=[{k: row[k] for k in ROUTE_FIELDS if k in row} for row in rows],
            )

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        outbound_rule_delete(rule=obj, actor=request.user)
