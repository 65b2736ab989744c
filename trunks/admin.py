"""Trunks in the system site (with tenant assignments) and, read-only, in the tenant site."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from core.admin import (
    CheckedChangeListMixin,
    ReadOnlyScopedAdmin,
    ServiceWritesMixin,
    TenantScopedAdmin,
)
from core.errors import ApplicationError
from core.forms import WriteOnlySecretsMixin
from tenants.models import Tenant
from trunks.models import PrivateTrunk, Trunk, TrunkAssignment
from trunks.numbers import DidRange, format_did_pool
from trunks.services import (
    TRUNK_FIELDS,
    did_pool_check,
    did_pool_parse,
    trunk_assignment_check_delete,
    trunk_assignment_delete,
    trunk_assignment_save,
    trunk_check_delete,
    trunk_delete,
    trunk_name_check,
    trunk_save,
)


class TrunkForm(WriteOnlySecretsMixin, forms.ModelForm):
    secret_fields = ("sip_password",)
    # Who a new trunk will belong to: nobody (a system trunk), or the tenant of PrivateTrunkAdmin.
    owner: Tenant | None = None

    class Meta:
        model = Trunk
        fields = [*TRUNK_FIELDS, "sip_password"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        trunk = self.instance if self.instance.pk else None
        try:
            trunk_name_check(name=name, owner=trunk.tenant if trunk else self.owner, trunk=trunk)
        except ApplicationError as error:
            raise forms.ValidationError(error.message, code=error.code) from error
        return name


class AssignmentFormSet(BaseInlineFormSet):
    """Validate every pool with the service, and the pools of this form against each other."""

    def clean(self) -> None:
        super().clean()
        seen: list[tuple[str, list[DidRange]]] = []
        refusals: list[str] = []
        trunk = self.instance if self.instance.pk else None
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            assignment = form.instance if form.instance.pk else None
            if form.cleaned_data.get("DELETE"):
                if assignment is not None:
                    try:
                        trunk_assignment_check_delete(assignment=assignment)
                    except ApplicationError as error:
                        # Django drops errors of rows marked for deletion: raise them here.
                        refusals.append(error.message)
                continue
            tenant = form.cleaned_data.get("tenant")
            if tenant is None:
                continue
            if assignment is not None and "tenant" in form.changed_data:
                form.add_error(
                    "tenant",
                    _("An assignment cannot move to another tenant: remove it and add a new one."),
                )
                continue
            try:
                ranges = did_pool_check(
                    trunk=trunk,
                    tenant=tenant,
                    did_pool=form.cleaned_data.get("did_pool", ""),
                    assignment=assignment,
                )
            except ApplicationError as error:
                form.add_error("did_pool", error.message)
                continue
            for other_name, other_ranges in seen:
                shared = [
                    c for a in ranges for b in other_ranges if (c := a.intersection(b)) is not None
                ]
                if shared and other_name != tenant.name:
                    form.add_error(
                        "did_pool",
                        _("The pool overlaps %(other_name)s's pool: %(value)s")
                        % {"other_name": other_name, "value": format_did_pool(shared)},
                    )
            seen.append((tenant.name, ranges))
        if refusals:
            raise ValidationError(refusals)


class TrunkAssignmentInline(admin.TabularInline):
    model = TrunkAssignment
    formset = AssignmentFormSet
    fields = ["tenant", "did_pool", "max_concurrent_calls"]
    extra = 1
    autocomplete_fields = ["tenant"]
    verbose_name = _("tenant assignment")
    verbose_name_plural = _("tenants and their DID pools")
    formfield_overrides = {
        TrunkAssignment._meta.get_field("did_pool").__class__: {
            "widget": forms.TextInput(attrs={"size": 60})
        }
    }


class TrunkAdmin(CheckedChangeListMixin, ServiceWritesMixin, admin.ModelAdmin):
    form = TrunkForm
    inlines = [TrunkAssignmentInline]
    list_display = ["name", "host", "enabled", "tenant_names", "owner"]
    list_filter = ["enabled", "brand", "transport"]
    search_fields = ["name", "host", "assignments__tenant__name"]
    list_per_page = 15
    fieldsets = (
        (None, {"fields": ("name", "brand", "enabled")}),
        (
            _("SIP"),
            {
                "fields": (
                    "host",
                    "port",
                    "transport",
                    "sip_username",
                    "sip_password",
                    "reregister_interval",
                    "max_concurrent_calls",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super()
            .get_queryset(request)
            .select_related("tenant")
            .prefetch_related("assignments__tenant")
        )

    @admin.display(description=_("Tenants"))
    def tenant_names(self, obj: Trunk) -> str:
        return ", ".join(a.tenant.name for a in obj.assignments.all()) or "—"

    @admin.display(description=_("Private to"))
    def owner(self, obj: Trunk) -> str:
        return obj.tenant.name if obj.tenant else "—"

    def save_model(self, request: HttpRequest, obj: Trunk, form: Any, change: bool) -> None:
        fields = {
            name: form.cleaned_data[name] for name in TRUNK_FIELDS if name in form.cleaned_data
        }
        saved = trunk_save(
            trunk=obj if change else None,
            sip_password=form.secret_changes().get("sip_password"),
            actor=request.user,
            **fields,
        )
        obj.pk = saved.pk

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Saved through the services; the admin's history message reads these lists.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            data = getattr(inline_form, "cleaned_data", None)
            if not data:
                continue
            assignment = inline_form.instance if inline_form.instance.pk else None
            if data.get("DELETE"):
                if assignment is not None:
                    trunk_assignment_delete(assignment=assignment, actor=request.user)
                    formset.deleted_objects.append(assignment)
                continue
            if assignment is None and not inline_form.has_changed():
                continue
            saved = trunk_assignment_save(
                trunk=form.instance,
                tenant=data["tenant"],
                did_pool=data.get("did_pool", ""),
                max_concurrent_calls=data.get("max_concurrent_calls") or 10,
                assignment=assignment,
                actor=request.user,
            )
            if assignment is None:
                formset.new_objects.append(saved)
            else:
                formset.changed_objects.append((saved, inline_form.changed_data))

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        trunk = self.get_object(request, object_id)
        if trunk is not None:
            try:
                trunk_check_delete(trunk=trunk)
            except ApplicationError as error:
                messages.error(request, error.message)
                return redirect(reverse("admin:trunks_trunk_change", args=[trunk.pk]))
        return super().delete_view(request, object_id, extra_context)

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        trunk_delete(trunk=obj, actor=request.user)


class TenantTrunkAdmin(ReadOnlyScopedAdmin):
    """The trunks shared with the tenant: host and the tenant's own pool, never credentials."""

    list_display = ["trunk_name", "trunk_host", "did_pool", "max_concurrent_calls"]
    list_select_related = ["trunk"]
    fields = ["trunk_name", "trunk_host", "did_pool", "max_concurrent_calls"]
    readonly_fields = fields
    search_fields = ["trunk__name", "did_pool"]

    @admin.display(description=_("Trunk name"), ordering="trunk__name")
    def trunk_name(self, obj: TrunkAssignment) -> str:
        # str() marks the tenant's private trunks, which may share a name with a system trunk.
        return str(obj.trunk)

    @admin.display(description=_("Hostname or IP address"))
    def trunk_host(self, obj: TrunkAssignment) -> str:
        return obj.trunk.host

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)


class PrivateTrunkForm(TrunkForm):
    did_pool = forms.CharField(
        label=_("DID pool"),
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_(
            "This tenant's numbers on the trunk, e.g. 13322496213-13322496215;16468097069."
        ),
    )

    class Meta(TrunkForm.Meta):
        model = PrivateTrunk
        fields = [f for f in TrunkForm.Meta.fields if f != "brand"]

    def clean_did_pool(self) -> str:
        try:
            did_pool_parse(did_pool=self.cleaned_data["did_pool"])
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from error
        return self.cleaned_data["did_pool"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            assignment = self.instance.assignments.first()
            self.initial["did_pool"] = assignment.did_pool if assignment else ""


class PrivateTrunkAdmin(ServiceWritesMixin, TenantScopedAdmin):
    """The tenant's own trunks, where the system administrator allows them."""

    form = PrivateTrunkForm
    deleted_with_it = (TrunkAssignment,)
    list_display = ["name", "host", "enabled"]
    search_fields = ["name", "host"]
    fieldsets = (
        (None, {"fields": ("name", "enabled", "did_pool")}),
        (
            _("SIP"),
            {
                "fields": (
                    "host",
                    "port",
                    "transport",
                    "sip_username",
                    "sip_password",
                    "reregister_interval",
                    "max_concurrent_calls",
                )
            },
        ),
    )

    def _allowed(self, request: HttpRequest) -> bool:
        tenant = getattr(request, "tenant", None)
        return super()._allowed(request) and tenant is not None and tenant.allow_private_trunks

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        # A new trunk's name is checked among this tenant's trunks only (see trunk_name_check).
        return type(form.__name__, (form,), {"owner": request.tenant})

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        fields = {n: form.cleaned_data[n] for n in TRUNK_FIELDS if n in form.cleaned_data}
        with transaction.atomic():
            trunk = trunk_save(
                trunk=obj if change else None,
                sip_password=form.secret_changes().get("sip_password"),
                actor=request.user,
                owner=request.tenant,
                **fields,
            )
            trunk_assignment_save(
                trunk=trunk,
                tenant=request.tenant,
                did_pool=form.cleaned_data.get("did_pool", ""),
                max_concurrent_calls=trunk.max_concurrent_calls,
                actor=request.user,
            )
        obj.pk = trunk.pk

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        trunk_delete(trunk=obj, actor=request.user)
