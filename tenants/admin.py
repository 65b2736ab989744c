"""Tenants, users and extensions in the system site and the tenant site."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from core.admin import CheckedChangeListMixin, TenantScopedAdmin
from core.errors import ApplicationError
from tenants.models import Role, Tenant, User
from tenants.services import tenant_manage_start


class TenantAdmin(CheckedChangeListMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "country", "enabled", "message_channels_enabled", "manage"]
    list_editable = ["enabled"]
    list_filter = ["enabled", "message_channels_enabled", "country"]
    search_fields = ["name", "slug"]
    list_per_page = 15
    actions_selection_counter = True

    @admin.display(description="Manage")
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
        messages.success(request, f"You are now managing {tenant.name}.")
        return redirect(reverse("tenant:index"))


class PortalUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "role", "tenant", "email")


class PortalUserAdmin(CheckedChangeListMixin, UserAdmin):
    add_form = PortalUserCreationForm
    list_display = ["username", "role", "tenant", "email", "is_active", "last_login"]
    list_filter = ["role", "is_active", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["username", "email", "first_name", "last_name", "tenant__name"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Role", {"fields": ("role", "tenant")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Status", {"fields": ("is_active", "last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"fields": ("username", "role", "tenant", "email", "password1", "password2")}),
    )
    readonly_fields = ["last_login", "date_joined"]

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        obj.is_staff = obj.is_superuser = obj.role == Role.SYSTEM_ADMIN
        if obj.role == Role.SYSTEM_ADMIN:
            obj.tenant = None
        super().save_model(request, obj, form, change)


class AuditEventAdmin(CheckedChangeListMixin, admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "tenant", "object_type", "object_repr"]
    list_filter = ["action", "tenant"]
    list_select_related = ["tenant"]
    search_fields = ["actor_name", "object_repr"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
    list_display = ["username", "role", "email", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
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
