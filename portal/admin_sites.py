"""The two back-office sites: /admin/ for system administrators, /tenant/ for one tenant."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from portal.errors import ApplicationError


class _PortalSite(admin.AdminSite):
    """Shared behaviour: one login page for the whole portal, and the site's kind in context."""

    portal_site = ""

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if request.user.is_authenticated:
            return self.refuse(request)
        return redirect_to_login(request.GET.get("next", request.get_full_path()))

    def refuse(self, request: HttpRequest) -> HttpResponse:
        """Answer a signed-in user who may not use this site."""
        raise PermissionDenied

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["portal_site"] = self.portal_site
        context["acting_tenant"] = getattr(request, "tenant", None)
        return context


class SystemAdminSite(_PortalSite):
    """The system administrator's site: tenants, trunks, users, system-wide logs."""

    site_header = "Seed SMS Portal — System administration"
    site_title = "Seed SMS Portal"
    index_title = "System administration"
    portal_site = "system"
    index_template = "admin/system_index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from portal.health import health_report
        from sms.dashboard import message_volume

        dashboard = {"health": health_report(), "volume": message_volume(tenant=None)}
        return super().index(request, {**(extra_context or {}), "dashboard": dashboard})

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and user.is_authenticated and user.is_system_admin


class TenantAdminSite(_PortalSite):
    """One tenant's site; every model admin on it derives from TenantScopedAdmin."""

    site_header = "Seed SMS Portal"
    site_title = "Seed SMS Portal"
    index_title = "Tenant administration"
    portal_site = "tenant"
    index_template = "admin/tenant_index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        from sms.dashboard import configuration_health, message_volume

        tenant = request.tenant
        dashboard = None
        if tenant is not None and tenant.message_channels_enabled:
            dashboard = {
                "volume": message_volume(tenant=tenant),
                "health": configuration_health(tenant=tenant),
            }
        return super().index(request, {**(extra_context or {}), "dashboard": dashboard})

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        tenant = getattr(request, "tenant", None)
        if not (user.is_active and user.is_authenticated) or tenant is None:
            return False
        if user.is_system_admin:
            return True
        return user.is_tenant_admin and user.tenant_id == tenant.pk and tenant.enabled

    def get_urls(self) -> list[Any]:
        return [
            path(
                "switch-to-administrator/",
                require_POST(self.switch_to_administrator),
                name="switch_to_administrator",
            ),
            *super().get_urls(),
        ]

    def switch_to_administrator(self, request: HttpRequest) -> HttpResponse:
        """Return a system administrator to the system site without logging out."""
        from tenants.services import tenant_manage_stop

        if not request.user.is_authenticated or not request.user.is_system_admin:
            raise PermissionDenied
        tenant_manage_stop(request=request)
        return redirect(reverse("admin:tenants_tenant_changelist"))

    def refuse(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_system_admin:
            messages.info(request, "Choose a tenant and click Manage to administer it.")
            return redirect(reverse("admin:tenants_tenant_changelist"))
        raise PermissionDenied


tenant_site = TenantAdminSite(name="tenant")


class TenantScopedAdmin(admin.ModelAdmin):
    """Base of every model admin on the tenant site: rows, saves and choices of request.tenant.

    Scoping is written here once: the queryset, the tenant set on save, foreign-key and
    many-to-many choices limited to the tenant, and 404 (not a redirect) for a row that is not
    the tenant's.
    """

    exclude_tenant_field = True

    def get_queryset(self, request: HttpRequest) -> Any:
        return self.model.objects.for_tenant(request.tenant)

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        exclude = list(super().get_exclude(request, obj) or [])
        if self.exclude_tenant_field:
            exclude.append("tenant")
        return exclude

    def tenant_choices(self, request: HttpRequest) -> dict[str, Any]:
        """Return querysets for relation fields whose choices need more than the tenant filter."""
        return {}

    def _scope_choices(self, db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
        if "queryset" in kwargs:
            return
        related = db_field.related_model
        overrides = self.tenant_choices(request)
        if db_field.name in overrides:
            kwargs["queryset"] = overrides[db_field.name]
        elif db_field.name == "tenant":
            # Never shown (see get_exclude), but Django builds list-editable forms from every
            # field: offer only the acting tenant.
            tenant = getattr(request, "tenant", None)
            kwargs["queryset"] = related.objects.filter(pk=tenant.pk if tenant else None)
        elif hasattr(related.objects, "for_tenant"):
            kwargs["queryset"] = related.objects.for_tenant(request.tenant)
        else:
            # Fail closed: an unscoped relation would offer other tenants' rows.
            raise ImproperlyConfigured(
                f"{type(self).__name__}.{db_field.name}: choices of {related.__name__} are not "
                "scoped to the tenant; return them from tenant_choices()."
            )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._scope_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        self._scope_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.tenant = request.tenant
        super().save_model(request, obj, form, change)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        raise Http404(f"No {opts.verbose_name} with ID {object_id!r} in this tenant.")

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        # Django checks the permission before the object; another tenant's row must be a 404.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with ID {object_id!r} in this tenant.")
        return super().delete_view(request, object_id, extra_context)

    def _allowed(self, request: HttpRequest) -> bool:
        return self.admin_site.has_permission(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._allowed(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request)


class TenantScopedInline(admin.TabularInline):
    """Inline on the tenant site: choices limited to the tenant, permissions from the site."""

    def tenant_choices(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        TenantScopedAdmin._scope_choices(self, db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.admin_site.has_permission(request)

    has_add_permission = has_view_permission
    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission


class ReadOnlyScopedAdmin(TenantScopedAdmin):
    """A tenant-site list the tenant may read but not change."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ServiceWritesMixin:
    """Deletes go through `service_delete`; a service's refusal becomes an admin message."""

    def service_delete(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.service_delete(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            try:
                self.service_delete(request, obj)
            except ApplicationError as error:
                messages.error(request, error.message)

    def _changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super()._changeform_view(request, *args, **kwargs)
        except ApplicationError as error:
            messages.error(request, error.message)
            return HttpResponseRedirect(request.get_full_path())
