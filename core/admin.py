"""Base classes of the tenant site's model admins: everything scoped to request.tenant.

The sites themselves live in `portal.admin_sites`, which registers each app's model admins.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import ImproperlyConfigured
from django.db import DataError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from core.middleware import query_parameter_with_nul

logger = logging.getLogger(__name__)


class _RefusedQuery(IncorrectLookupParameters):
    """A change list's query string that cannot be applied; the message says why."""

    def __init__(self, message: str, names: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The parameters to drop; None drops every filter.
        self.names = names


class CheckedChangeListMixin:
    """Turn a change list's bad filter, search or date into a message on the page, not a 500.

    NUL anywhere in the query string (PostgreSQL cannot compare it), a date-hierarchy date that
    does not exist or lies at the edge of the calendar, and any filter value Django cannot apply
    (a word for a number, a number too large for its column) are dropped with an error message,
    and the list is shown without them. Views built on the change list (an export) get Django's
    IncorrectLookupParameters, as for any bad lookup.
    """

    # QueryStringNulMiddleware leaves NUL in a change list's query string to this class.
    query_nul_allowed = True

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        refused = getattr(request, "changelist_refused", None)
        if refused is None:
            return response
        # Django would send the user to "?e=1", a page about a broken database installation.
        messages.error(request, refused.message)
        kept = request.GET.copy()
        for name in [ERROR_FLAG, *(refused.names if refused.names is not None else kept)]:
            kept.pop(name, None)
        query = kept.urlencode()
        return HttpResponseRedirect(request.path + (f"?{query}" if query else ""))

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        try:
            self._check_changelist_query(request)
            return super().get_changelist_instance(request)
        except _RefusedQuery as refused:
            request.changelist_refused = refused
            raise
        except (IncorrectLookupParameters, ValueError, OverflowError, DataError) as error:
            logger.info("admin: change list filters refused: %s", error)
            refused = _RefusedQuery(
                _("The filters could not be applied and were cleared: a value is not valid.")
            )
            request.changelist_refused = refused
            raise refused from error

    def _check_changelist_query(self, request: HttpRequest) -> None:
        name = query_parameter_with_nul(request)
        if name is not None:
            raise _RefusedQuery(
                _("The filter “%(name)s” was cleared: null characters are not allowed.")
                % {"name": name},
                [
                    key
                    for key, values in request.GET.lists()
                    if "\x00" in key or any("\x00" in value for value in values)
                ],
            )
        field = getattr(self, "date_hierarchy", None)
        if not field:
            return
        names = [f"{field}__{part}" for part in ("year", "month", "day")]
        values = [request.GET.get(key) for key in names]
        if not values[0]:
            # Without a year Django filters by month or day alone, as plain lookups.
            return
        try:
            year, month, day = (int(value) if value else 1 for value in values)
            first = date(year, month, day)
            # Django looks up to the next day, month or year, and converts both in the zone:
            # keep a margin from the calendar's ends.
            if first.year < 2 or first + timedelta(days=400) > date.max:
                raise ValueError("out of range")
        except (TypeError, ValueError, OverflowError) as error:
            shown = "-".join(value for value in values if value)
            raise _RefusedQuery(
                _("The date “%(shown)s” does not exist or is out of range; showing all dates.")
                % {"shown": shown},
                names,
            ) from error


def tenant_zone(request: HttpRequest) -> Any:
    """Return the acting tenant's time zone (UTC without a tenant)."""
    tenant = getattr(request, "tenant", None)
    return tenant.zone if tenant is not None else UTC


class TenantTimeMixin:
    """Show and group times in the tenant's time zone, on the list and on the detail page."""

    def _in_tenant_time(self, request: HttpRequest, view: Any, *args: Any, **kwargs: Any) -> Any:
        with timezone.override(tenant_zone(request)):
            response = view(request, *args, **kwargs)
            # Templates render lazily; render here, while the tenant's zone is active.
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        return self._in_tenant_time(request, super().changelist_view, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, *args: Any, **kwargs: Any) -> Any:
        return self._in_tenant_time(request, super().change_view, object_id, *args, **kwargs)


class TenantScopedAdmin(CheckedChangeListMixin, admin.ModelAdmin):
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


class ReadOnlyAdminMixin:
    """An admin whose rows are read, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyScopedAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """A tenant-site list the tenant may read but not change."""


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


def cut(text: str, length: int = 60) -> str:
    """Return the text cut to `length` characters for a list column, whole in its tooltip."""
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}…</span>', text, text[:length].rstrip())
