from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    default = True
    verbose_name = _("Portal")


class PortalAdminConfig(admin_apps.AdminConfig):
    """Make the system administrator's site Django's default admin site."""

    default = False
    default_site = "portal.admin_sites.SystemAdminSite"
