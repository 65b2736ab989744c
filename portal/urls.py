"""URL map of the portal."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from portal import views as portal_views
from portal.admin_sites import tenant_site
from sms.api.configurations import SmsConfigurationViewSet
from sms.api.contacts import ContactViewSet
from sms.api.deliveries import WebhookDeliveryViewSet
from sms.api.extensions import ExtensionViewSet
from sms.api.inbound_rules import ConversationViewSet, InboundRuleViewSet
from sms.api.messages import MessageViewSet
from sms.api.outbound_rules import OutboundRuleViewSet
from sms.api.templates import ReplyTemplateViewSet
from sms.api.usage import EraseRemoteViewSet, UsageViewSet
from sms.inbound.receive import voipms_webhook
from tenants import views as tenant_views
from tenants.api import AdminTenantViewSet, ApiTokenViewSet
from tenants.api_manage import (
    AuditLogViewSet,
    HolidayViewSet,
    OfficeHoursViewSet,
    RingGroupViewSet,
    RotateCallbackSecretView,
    TenantSettingsView,
    UserViewSet,
)
from trunks.api import AdminTrunkAssignmentViewSet, AdminTrunkViewSet, TenantTrunkViewSet

handler404 = "portal.views.not_found"

router = DefaultRouter()
router.register("admin/tenants", AdminTenantViewSet, basename="admin-tenant")
router.register("admin/trunks", AdminTrunkViewSet, basename="admin-trunk")
router.register(
    r"admin/trunks/(?P<trunk_pk>\d+)/assignments",
    AdminTrunkAssignmentViewSet,
    basename="admin-trunk-assignment",
)
router.register("trunks", TenantTrunkViewSet, basename="trunk")
router.register("sms-configurations", SmsConfigurationViewSet, basename="sms-configuration")
router.register("messages", MessageViewSet, basename="message")
router.register("reply-templates", ReplyTemplateViewSet, basename="reply-template")
router.register("outbound-rules", OutboundRuleViewSet, basename="outbound-rule")
router.register("inbound-rules", InboundRuleViewSet, basename="inbound-rule")
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("contacts", ContactViewSet, basename="contact")
router.register("api-tokens", ApiTokenViewSet, basename="api-token")
router.register("usage", UsageViewSet, basename="usage")
router.register("erase-remote", EraseRemoteViewSet, basename="erase-remote")
router.register("extensions", ExtensionViewSet, basename="extension")
router.register("users", UserViewSet, basename="user")
router.register("ring-groups", RingGroupViewSet, basename="ring-group")
router.register("office-hours", OfficeHoursViewSet, basename="office-hours")
router.register("holidays", HolidayViewSet, basename="holiday")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("audit-log", AuditLogViewSet, basename="audit-log")

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("healthz", portal_views.healthz, name="healthz"),
    path("favicon.ico", portal_views.favicon, name="favicon"),
    path("metrics", portal_views.metrics, name="metrics"),
    # The portal's JavaScript strings in the request's language, served as a script file (the
    # Content-Security-Policy refuses inline scripts).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("login/", tenant_views.LoginView.as_view(), name="login"),
    path("login/code/", tenant_views.login_code, name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/profile/", tenant_views.account_profile, name="account_profile"),
    path("account/api-tokens/", tenant_views.api_tokens, name="api_tokens"),
    path("account/security/", tenant_views.account_security, name="account_security"),
    path("inbox/", include("sms.urls")),
    path("hooks/voipms/<str:token>/", voipms_webhook, name="voipms_webhook"),
    path("admin/", admin.site.urls),
    path("tenant/", tenant_site.urls),
    path("api/v1/settings/", TenantSettingsView.as_view(), name="tenant-settings"),
    path(
        "api/v1/settings/rotate-callback-secret/",
        RotateCallbackSecretView.as_view(),
        name="tenant-settings-rotate-callback-secret",
    ),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, so the page needs no inline
    # script under the Content-Security-Policy.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="portal/swagger_ui.html"
        ),
        name="api-docs",
    ),
]

if settings.VOIPMS_SANDBOX:
    urlpatterns += [path("sandbox/voipms/", include("trunks.voipms.sandbox.urls"))]
