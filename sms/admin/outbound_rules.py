"""Outbound rules with their routes, in the tenant site."""

from __future__ import annotations

from typing import Any

from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceWritesMixin, TenantScopedAdmin, TenantScopedInline
from core.errors import ApplicationError
from sms.admin.common import ChannelsRequiredMixin, office_hours_notice
from sms.models import OutboundRoute, OutboundRule
from sms.outbound.rules import (
    MAX_ROUTES,
    ROUTE_FIELDS,
    RULE_FIELDS,
    outbound_route_check,
    outbound_rule_check,
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
    fields = ["position", *ROUTE_FIELDS]
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
    change_form_template = "admin/sms/outboundrule/change_form.html"
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

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> Any:
        context = {**office_hours_notice(request, outbound=True), **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, context)

    fieldsets = (
        (None, {"fields": ("name", "priority", "strategy", "enabled")}),
        (_("Conditions (at least one)"), {"fields": ("prefixes", "lengths", "from_extensions")}),
        (_("Office hours"), {"fields": ("hours",)}),
    )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        base = super().get_form(request, obj, change=change, **kwargs)
        tenant = request.tenant

        class RuleForm(base):
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                # The service's own check, so a refusal is a field error, not a lost form.
                rule = OutboundRule(tenant=tenant, pk=self.instance.pk)
                for name in RULE_FIELDS:
                    if name in cleaned:
                        setattr(rule, name, cleaned[name])
                try:
                    outbound_rule_check(tenant=tenant, rule=rule)
                except ApplicationError as error:
                    self.add_error(
                        error.field if error.field in self.fields else None, error.message
                    )
                return cleaned

        return RuleForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Nothing yet: the rule and its routes are saved together in save_related."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        fields = {
            name: form.cleaned_data[name] for name in RULE_FIELDS if name in form.cleaned_data
        }
        routes = None
        for formset in formsets:
            if not isinstance(formset, RouteFormSet):
                continue
            kept = [
                f
                for f in formset.forms
                if getattr(f, "cleaned_data", None)
                and not f.cleaned_data.get("DELETE")
                and f.cleaned_data.get("trunk")
            ]
            kept.sort(key=lambda f: f.cleaned_data.get("position") or 0)
            routes = [
                {k: f.cleaned_data[k] for k in ROUTE_FIELDS if k in f.cleaned_data} for f in kept
            ]
            # The service replaces the routes; the admin's history message reads these lists.
            formset.new_objects = [f.instance for f in kept if f.instance.pk is None]
            formset.changed_objects = [
                (f.instance, f.changed_data) for f in kept if f.instance.pk and f.has_changed()
            ]
            formset.deleted_objects = [
                f.instance
                for f in formset.initial_forms
                if getattr(f, "cleaned_data", None) and f.cleaned_data.get("DELETE")
            ]
        existing = self.get_queryset(request).get(pk=form.instance.pk) if change else None
        saved = outbound_rule_save(
            tenant=request.tenant, actor=request.user, rule=existing, routes=routes, **fields
        )
        # The admin logs and redirects with the object it built from the form.
        form.instance.pk, form.instance.tenant_id = saved.pk, saved.tenant_id
        form.instance.created_at = saved.created_at
        form.instance._state.adding = False

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        outbound_rule_delete(rule=obj, actor=request.user)
