"""Base classes of the tenant site's model admins: everything scoped to request.tenant.

The sites themselves live in `portal.admin_sites`, which registers each app's model admins.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect

from core.errors import ApplicationError


class TenantScopedAdmin(admin.ModelAdmin):
    """Base of every model admin on the tenant site: rows, saves and choices of request.tenant.

    Scoping is written here once: the queryset, the tenant set on save, foreign-key and
    many-to-many choices limited to the tenant, and 404 (not a redirect) for a row that is not
    the tenant's.
    """

    exclude_tenant_field = True
    # Rows that go with the object when it is deleted, although the tenant may not delete them
    # one by one (a configuration's webhook log, a private trunk's DID pool).
    deleted_with_it: tuple[type, ...] = ()

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

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        # Django refuses a POST to a read-only page before it looks the object up; another
        # tenant's row must be a 404 whatever the method.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(f"No {self.opts.verbose_name} with ID {object_id!r} in this tenant.")
        return super().change_view(request, object_id, form_url, extra_context)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        names = {str(model._meta.verbose_name) for model in self.deleted_with_it}
        return deleted, counts, {p for p in perms_needed if str(p) not in names}, protected

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
