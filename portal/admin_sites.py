"""The two back-office sites: /admin/ for system administrators, /tenant/ for one tenant."""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.auth.views import redirect_to_login
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST

from portal.health import health_report
from sms.admin.provisioning import system_dids_page
from sms.admin.usage import erase_remote_page, usage_csv, usage_page
from sms.dashboard import configuration_health, message_volume, tenants_volume
from sms.selectors import office_hours_defined
from sms.usage import quota_status
from tenants.access import messaging_refusal
from tenants.middleware import second_factor_missing
from tenants.services import tenant_manage_stop
from tenants.settings_page import callback_secret_reveal, callback_secret_rotate, settings_page


def _sandbox_on() -> bool:
    """Tell whether the in-repo VoIP.ms sandbox stands in for VoIP.ms here."""
    return bool(settings.VOIPMS_SANDBOX) and django_apps.is_installed("trunks.voipms.sandbox")


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

    # Pages of the site that are no model's: (url name, title) in the index's "Reports" module.
    report_pages: tuple[tuple[str, str], ...] = ()

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        context["portal_site"] = self.portal_site
        context["acting_tenant"] = getattr(request, "tenant", None)
        return context

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        app_list = super().get_app_list(request, app_label)
        if app_label is None and self.report_pages and self.has_permission(request):
            pages = [
                {
                    "name": title,
                    "object_name": name,
                    "admin_url": reverse(f"{self.name}:{name}"),
                    "view_only": True,
                    "perms": {"view": True},
                }
                for name, title in self.report_pages
            ]
            first = pages[0]["admin_url"]
            app_list.append(
                {"name": "Reports", "app_label": "reports", "app_url": first, "models": pages}
            )
        return app_list


class SystemAdminSite(_PortalSite):
    """The system administrator's site: tenants, trunks, users, system-wide logs."""

    site_header = _("Seed SMS Portal — System administration")
    site_title = _("Seed SMS Portal")
    index_title = _("System administration")
    portal_site = "system"
    index_template = "admin/system_index.html"

    report_pages = (("usage", "Usage"), ("voipms_dids", "VoIP.ms DIDs"))

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        dashboard = {
            "health": health_report(),
            "volume": message_volume(tenant=None),
            "tenants": tenants_volume(),
        }
        return super().index(request, {**(extra_context or {}), "dashboard": dashboard})

    def get_urls(self) -> list[Any]:
        return [
            path("usage/", self.admin_view(self.usage_view), name="usage"),
            path("usage/csv/", self.admin_view(self.usage_csv_view), name="usage_csv"),
            path(
                "voipms-dids/",
                self.admin_view(require_http_methods(["GET", "POST"])(self.voipms_dids_view)),
                name="voipms_dids",
            ),
            *super().get_urls(),
        ]

    def voipms_dids_view(self, request: HttpRequest) -> HttpResponse:
        """List a configuration's VoIP.ms DIDs and add chosen ones to its tenant's pool."""
        return system_dids_page(request, admin_site=self)

    def usage_view(self, request: HttpRequest) -> HttpResponse:
        """Show every tenant's usage of a month."""
        return usage_page(request, admin_site=self, tenant=None)

    def usage_csv_view(self, request: HttpRequest) -> HttpResponse:
        """Download every tenant's usage of a month as CSV."""
        return usage_csv(request, tenant=None)

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return (
            user.is_active
            and user.is_authenticated
            and user.is_system_admin
            and not second_factor_missing(user)
        )


class TenantAdminSite(_PortalSite):
    """One tenant's site; every model admin on it derives from TenantScopedAdmin."""

    site_header = _("Seed SMS Portal")
    site_title = _("Seed SMS Portal")
    index_title = _("Tenant administration")
    portal_site = "tenant"
    index_template = "admin/tenant_index.html"

    @property
    def report_pages(self) -> tuple[tuple[str, str], ...]:  # type: ignore[override]
        pages = (("usage", "Usage"), ("erase_remote", "Erase an outside number"))
        if _sandbox_on():
            pages = (*pages, ("sandbox", "Sandbox"))
        return pages

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        tenant = request.tenant
        dashboard = None
        if tenant is not None and not messaging_refusal(tenant):
            dashboard = {
                "volume": message_volume(tenant=tenant),
                "health": configuration_health(tenant=tenant),
                "quota": quota_status(tenant=tenant),
                "office_hours_missing": not office_hours_defined(tenant=tenant),
            }
        context = {"dashboard": dashboard, "recent_actions": self.recent_actions(request)}
        return super().index(request, {**(extra_context or {}), **context})

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        app_list = super().get_app_list(request, app_label)
        if app_label is None and self.has_permission(request):
            url = reverse(f"{self.name}:tenant_settings")
            page = {
                "name": _("Settings"),
                "object_name": "tenant_settings",
                "admin_url": url,
                "view_only": True,
                "perms": {"view": True},
            }
            app_list.insert(
                0, {"name": _("Tenant"), "app_label": "tenant", "app_url": url, "models": [page]}
            )
        return app_list

    def recent_actions(self, request: HttpRequest, limit: int = 10) -> list[dict[str, Any]]:
        """Return the user's last actions on this tenant's objects, linked into this site.

        Django's own box links into /admin/ (which a tenant administrator may not open) and
        lists a system administrator's actions in every tenant.
        """
        admins = {
            ContentType.objects.get_for_model(model): model_admin
            for model, model_admin in self._registry.items()
        }
        entries = list(
            LogEntry.objects.filter(user_id=request.user.pk, content_type__in=admins)
            .select_related("content_type")
            .order_by("-action_time")[: limit * 3]
        )
        visible: dict[int, set[str]] = {}
        for content_type, model_admin in admins.items():
            ids = [e.object_id for e in entries if e.content_type_id == content_type.pk]
            if ids:
                found = model_admin.get_queryset(request).filter(pk__in=ids).values_list("pk")
                visible[content_type.pk] = {str(pk) for (pk,) in found}
        actions = []
        for entry in entries:
            shown = entry.object_id in visible.get(entry.content_type_id, set())
            # A deleted object's tenant is unknown: only a tenant's own users see deletions.
            if not shown and (request.user.is_system_admin or not entry.is_deletion()):
                continue
            url = None
            if shown:
                opts = entry.content_type
                url = reverse(
                    f"{self.name}:{opts.app_label}_{opts.model}_change", args=[entry.object_id]
                )
            actions.append({"entry": entry, "url": url})
            if len(actions) == limit:
                break
        return actions

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        tenant = getattr(request, "tenant", None)
        if not (user.is_active and user.is_authenticated) or tenant is None:
            return False
        if second_factor_missing(user):
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
            path("usage/", self.admin_view(self.usage_view), name="usage"),
            path("usage/csv/", self.admin_view(self.usage_csv_view), name="usage_csv"),
            path("erase-remote/", self.admin_view(self.erase_remote_view), name="erase_remote"),
            path("settings/", self.admin_view(self.settings_view), name="tenant_settings"),
            path(
                "settings/callback-secret/",
                self.admin_view(require_POST(self.callback_secret_reveal_view)),
                name="tenant_callback_secret_reveal",
            ),
            path(
                "settings/callback-secret/rotate/",
                self.admin_view(require_POST(self.callback_secret_rotate_view)),
                name="tenant_callback_secret_rotate",
            ),
            *self._sandbox_urls(),
            *super().get_urls(),
        ]

    def _sandbox_urls(self) -> list[Any]:
        """Return the Sandbox pages' routes when the in-repo VoIP.ms sandbox is installed."""
        if not django_apps.is_installed("trunks.voipms.sandbox"):
            return []
        methods = require_http_methods(["GET", "POST"])
        return [
            path("sandbox/", self.admin_view(methods(self.sandbox_view)), name="sandbox"),
            path(
                "sandbox/did/<int:pk>/",
                self.admin_view(methods(self.sandbox_did_view)),
                name="sandbox_did",
            ),
            path(
                "sandbox/did/<int:pk>/delete/",
                self.admin_view(methods(self.sandbox_did_delete_view)),
                name="sandbox_did_delete",
            ),
        ]

    def sandbox_view(self, request: HttpRequest) -> HttpResponse:
        """List the acting tenant's sandbox DIDs and add one."""
        from sms.admin.sandbox import sandbox_page

        if not _sandbox_on():
            raise Http404
        return sandbox_page(request, admin_site=self, tenant=request.tenant)

    def sandbox_did_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Set how one of the acting tenant's sandbox DIDs delivers."""
        from sms.admin.sandbox import sandbox_did_page

        if not _sandbox_on():
            raise Http404
        return sandbox_did_page(request, admin_site=self, tenant=request.tenant, pk=pk)

    def sandbox_did_delete_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Remove one of the acting tenant's sandbox DIDs."""
        from sms.admin.sandbox import sandbox_did_delete_page

        if not _sandbox_on():
            raise Http404
        return sandbox_did_delete_page(request, admin_site=self, tenant=request.tenant, pk=pk)

    def usage_view(self, request: HttpRequest) -> HttpResponse:
        """Show the acting tenant's usage of a month."""
        return usage_page(request, admin_site=self, tenant=request.tenant)

    def usage_csv_view(self, request: HttpRequest) -> HttpResponse:
        """Download the acting tenant's usage of a month as CSV."""
        return usage_csv(request, tenant=request.tenant)

    def erase_remote_view(self, request: HttpRequest) -> HttpResponse:
        """Erase what the acting tenant keeps about an outside number."""
        return erase_remote_page(request, admin_site=self, tenant=request.tenant)

    def settings_view(self, request: HttpRequest) -> HttpResponse:
        """Show and change the acting tenant's settings."""
        return settings_page(request, admin_site=self, tenant=request.tenant)

    def callback_secret_reveal_view(self, request: HttpRequest) -> HttpResponse:
        """Return the acting tenant's status callback secret."""
        return callback_secret_reveal(request, tenant=request.tenant)

    def callback_secret_rotate_view(self, request: HttpRequest) -> HttpResponse:
        """Replace the acting tenant's status callback secret."""
        return callback_secret_rotate(request, tenant=request.tenant)

    def switch_to_administrator(self, request: HttpRequest) -> HttpResponse:
        """Return a system administrator to the system site without logging out."""
        if not request.user.is_authenticated or not request.user.is_system_admin:
            raise PermissionDenied
        tenant_manage_stop(request=request)
        return redirect(reverse("admin:tenants_tenant_changelist"))

    def refuse(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_system_admin:
            messages.info(request, _("Choose a tenant and click Manage to administer it."))
            return redirect(reverse("admin:tenants_tenant_changelist"))
        raise PermissionDenied


tenant_site = TenantAdminSite(name="tenant")
