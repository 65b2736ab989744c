"""Tenants, users and extensions in the system site and the tenant site."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from core.admin import (
    CheckedChangeListMixin,
    ReadOnlyScopedAdmin,
    TenantScopedAdmin,
    TenantTimeMixin,
    cut,
)
from core.clock import time_display
from core.errors import ApplicationError
from tenants.models import AuditEvent, Role, Tenant, User
from tenants.services import api_token_revoke, tenant_manage_start
from tenants.services_two_factor import two_factor_reset


@admin.action(description=_("Reset two-factor sign-in of the selected users"))
def reset_two_factor(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:
    """Turn off two-factor sign-in for users who lost their phone and recovery codes."""
    users = list(queryset.filter(two_factor_enabled=True).select_related("tenant"))
    for user in users:
        two_factor_reset(actor=request.user, user=user)
    model_admin.message_user(
        request,
        _("Two-factor sign-in was reset for %(count)s user(s); they may set it up again.")
        % {"count": len(users)},
        messages.SUCCESS,
    )


class TenantAdmin(CheckedChangeListMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "country", "enabled", "message_channels_enabled", "manage"]
    list_editable = ["enabled"]
    list_filter = ["enabled", "message_channels_enabled", "require_admin_2fa", "country"]
    search_fields = ["name", "slug"]
    list_per_page = 15
    actions_selection_counter = True
    # A status callback URL typed without a scheme is taken as https.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description=_("Manage"))
    def manage(self, obj: Tenant) -> str:
        return format_html(
            '<button type="submit" class="button manage-tenant" form="manage-form" '
            'formaction="{}" data-tenant="{}">Manage</button>',
            reverse("admin:tenants_tenant_manage", args=[obj.pk]),
            obj.slug,
        )

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:tenant_id>/manage/",
                self.admin_site.admin_view(require_POST(self.manage_view)),
                name="tenants_tenant_manage",
            ),
            *super().get_urls(),
        ]

    def manage_view(self, request: HttpRequest, tenant_id: int) -> HttpResponse:
        """Act as the tenant's administrator, then open the tenant site."""
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        try:
            tenant_manage_start(request=request, tenant=tenant)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect(reverse("admin:tenants_tenant_changelist"))
        messages.success(request, _("You are now managing %(name)s.") % {"name": tenant.name})
        return redirect(reverse("tenant:index"))


class PortalUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "role", "tenant", "email")


class PortalUserAdmin(CheckedChangeListMixin, UserAdmin):
    add_form = PortalUserCreationForm
    list_display = [
        "username",
        "role",
        "tenant",
        "email",
        "is_active",
        "two_factor_enabled",
        "last_login",
    ]
    list_filter = ["role", "is_active", "two_factor_enabled", "tenant"]
    actions = [reset_two_factor]
    list_select_related = ["tenant"]
    search_fields = ["username", "email", "first_name", "last_name", "tenant__name"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Role"), {"fields": ("role", "tenant")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Status"), {"fields": ("is_active", "two_factor_enabled", "last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"fields": ("username", "role", "tenant", "email", "password1", "password2")}),
    )
    readonly_fields = ["two_factor_enabled", "last_login", "date_joined"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        obj.is_staff = obj.is_superuser = obj.role == Role.SYSTEM_ADMIN
        if obj.role == Role.SYSTEM_ADMIN:
            obj.tenant = None
        super().save_model(request, obj, form, change)


class AuditEventAdmin(CheckedChangeListMixin, admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "tenant", "address", "object_type", "object"]
    list_filter = ["action", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["actor_name", "object_repr"]
    date_hierarchy = "at"

    @admin.display(description="Object", ordering="object_repr")
    def object(self, obj: Any) -> str:
        return cut(obj.object_repr, 60)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _TenantAuditFilter(admin.SimpleListFilter):
    """Offer the values this tenant's own events have (Django's would read every tenant's)."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = (
            AuditEvent.objects.for_tenant(request.tenant)
            .order_by(self.field)
            .values_list(self.field, flat=True)
            .distinct()[:200]
        )
        return [(value, value) for value in values]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class AuditActionFilter(_TenantAuditFilter):
    title = _("action")
    parameter_name = "action"
    field = "action"


class AuditActorFilter(_TenantAuditFilter):
    title = _("who")
    parameter_name = "actor"
    field = "actor_name"


DETAIL_SHOWN = 40


def audit_detail_text(detail: Any) -> str:
    """Return an audit event's detail as one short line ("fields: name, trunk; status: ok")."""
    if not isinstance(detail, dict):
        return str(detail)
    parts = []
    for key, value in detail.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{key}: {shown}")
    return "; ".join(parts)


class TenantAuditEventAdmin(TenantTimeMixin, ReadOnlyScopedAdmin):
    """The tenant's audit log: who changed what, when and from which address."""

    list_display = [
        "when",
        "who",
        "what",
        "object_kind",
        "from_address",
        "summary",
    ]
    list_filter = [AuditActionFilter, AuditActorFilter]
    search_fields = ["actor_name", "action", "object_repr"]
    search_help_text = _("Search who did it, the action or the object's name.")
    date_hierarchy = "at"
    list_per_page = 50
    show_full_result_count = False
    fields = [
        "when",
        "who",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "from_address",
        "detail_text",
    ]
    readonly_fields = fields

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        return super().changelist_view(request, {"title": _("Audit log"), **(extra_context or {})})

    @admin.display(description=_("when"), ordering="at")
    def when(self, obj: AuditEvent) -> str:
        return time_display(obj.at)

    @admin.display(description=_("who"), ordering="actor_name")
    def who(self, obj: AuditEvent) -> str:
        return obj.actor_name

    @admin.display(description=_("from address"), ordering="address")
    def from_address(self, obj: AuditEvent) -> str:
        return obj.address or "—"

    @admin.display(description=_("action"), ordering="action")
    def what(self, obj: AuditEvent) -> str:
        return obj.action.replace("_", " ")

    @admin.display(description=_("object"), ordering="object_type")
    def object_kind(self, obj: AuditEvent) -> str:
        if not obj.object_type:
            return obj.object_repr or "—"
        kind = obj.object_type.rsplit(".", 1)[-1]
        return format_html('{}<br><small class="quiet">{}</small>', obj.object_repr or "—", kind)

    @admin.display(description=_("detail"))
    def summary(self, obj: AuditEvent) -> str:
        text = audit_detail_text(obj.detail)
        shown = text if len(text) <= DETAIL_SHOWN else text[:DETAIL_SHOWN] + "…"
        return format_html('<span class="audit-detail" title="{}">{}</span>', text, shown)

    @admin.display(description=_("detail"))
    def detail_text(self, obj: AuditEvent) -> str:
        return audit_detail_text(obj.detail) or "—"


class _ApiTokenAdminBase(admin.ModelAdmin):
    """API tokens without their keys (only digests are stored): read them and revoke them."""

    list_display = ["name", "prefix", "user", "created_at", "last_used_at", "revoked_at"]
    list_filter: list[Any] = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["name", "prefix", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A token is revoked, never deleted (its row keeps the history).
        return False

    @admin.action(description=_("Revoke the selected API tokens"), permissions=["view"])
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            api_token_revoke(token=token, actor=request.user)
        messages.success(request, _("%(count)s API token(s) revoked.") % {"count": len(tokens)})


class ApiTokenAdmin(_ApiTokenAdminBase):
    """Every tenant's tokens, and system administrators' own, on the system site."""

    list_display = [
        *_ApiTokenAdminBase.list_display[:3],
        "tenant",
        *_ApiTokenAdminBase.list_display[3:],
    ]
    list_filter = [*_ApiTokenAdminBase.list_filter, "tenant"]
    list_select_related = ["user", "tenant"]
    fields = [*_ApiTokenAdminBase.fields[:3], "tenant", *_ApiTokenAdminBase.fields[3:]]
    readonly_fields = fields


class TenantApiTokenAdmin(_ApiTokenAdminBase, TenantScopedAdmin):
    """The tenant's tokens on the tenant site, for its administrators to see and revoke."""


class TenantUserCreationForm(UserCreationForm):
    role = forms.ChoiceField(
        choices=[(Role.USER, Role.USER.label), (Role.TENANT_ADMIN, Role.TENANT_ADMIN.label)]
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "role", "email")

    def __init__(self, *args: Any, tenant: Tenant | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.tenant = tenant


class TenantUserChangeForm(forms.ModelForm):
    role = forms.ChoiceField(
        choices=[(Role.USER, Role.USER.label), (Role.TENANT_ADMIN, Role.TENANT_ADMIN.label)]
    )

    class Meta:
        model = User
        fields = ("username", "role", "first_name", "last_name", "email", "is_active")


class TenantUserAdmin(TenantScopedAdmin, UserAdmin):
    form = TenantUserChangeForm
    add_form = TenantUserCreationForm
    list_display = ["username", "role", "email", "is_active", "two_factor_enabled", "last_login"]
    list_filter = ["role", "is_active", "two_factor_enabled"]
    actions = [reset_two_factor]
    search_fields = ["username", "email", "first_name", "last_name"]
    fieldsets = ((None, {"fields": ("username", "role", "first_name", "last_name", "email")}),)
    add_fieldsets = ((None, {"fields": ("username", "role", "email", "password1", "password2")}),)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            tenant = request.tenant

            class BoundForm(form):
                def __init__(self, *args: Any, **kw: Any) -> None:
                    super().__init__(*args, tenant=tenant, **kw)

            return BoundForm
        return form

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        obj.tenant = request.tenant
        obj.is_staff = obj.is_superuser = False
        admin.ModelAdmin.save_model(self, request, obj, form, change)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        get_object_or_404(self.get_queryset(request), pk=id)
        return super().user_change_password(request, id, form_url)
