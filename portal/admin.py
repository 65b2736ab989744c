"""Put each app's model admins on the two sites: /admin/ (system) and /tenant/ (one tenant).

The apps define their model admins; only the project knows the sites, so the apps depend on
nothing above them.
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import Group
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.admin import CheckedChangeListMixin
from portal.admin_sites import tenant_site
from sms.admin.configurations import SmsConfigurationAdmin
from sms.admin.contacts import ContactAdmin
from sms.admin.extensions import ExtensionAdmin
from sms.admin.groups import HolidayAdmin, OfficeHoursAdmin, RingGroupAdmin
from sms.admin.inbound_rules import InboundRuleAdmin
from sms.admin.messages import ConversationAdmin, MessageAdmin, OptOutAdmin, WebhookDeliveryAdmin
from sms.admin.outbound_rules import OutboundRuleAdmin
from sms.admin.system_logs import SystemMessageAdmin, SystemWebhookDeliveryAdmin
from sms.admin.templates import ReplyTemplateAdmin
from sms.models import (
    Contact,
    Conversation,
    InboundRule,
    Message,
    OptOut,
    OutboundRule,
    ReplyTemplate,
    SmsConfiguration,
    WebhookDelivery,
)
from tenants.admin import (
    ApiTokenAdmin,
    AuditEventAdmin,
    PortalUserAdmin,
    TenantAdmin,
    TenantApiTokenAdmin,
    TenantAuditEventAdmin,
    TenantUserAdmin,
)
from tenants.models import (
    ApiToken,
    AuditEvent,
    Extension,
    Holiday,
    OfficeHours,
    RingGroup,
    Tenant,
    User,
)
from trunks.admin import PrivateTrunkAdmin, TenantTrunkAdmin, TrunkAdmin
from trunks.models import PrivateTrunk, Trunk, TrunkAssignment

# Roles replace Django's groups in this portal. Two-factor devices are managed by their users
# on their security page; a system administrator resets them from the user list.
for model in (Group, StaticDevice, TOTPDevice):
    admin.site.unregister(model)


class PortalAccessAttemptAdmin(AccessAttemptAdmin):
    @admin.action(description=_("Clean up expired attempts"))
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: Any) -> None:
        # django-axes reads "now" from the request, where only its sign-in handling puts it;
        # without it, its own admin action fails.
        request.axes_attempt_time = timezone.now()
        super().cleanup_expired_attempts(request, queryset)


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, PortalAccessAttemptAdmin)

for model, model_admin in [
    (Tenant, TenantAdmin),
    (User, PortalUserAdmin),
    (AuditEvent, AuditEventAdmin),
    (ApiToken, ApiTokenAdmin),
    (Trunk, TrunkAdmin),
    (Message, SystemMessageAdmin),
    (WebhookDelivery, SystemWebhookDeliveryAdmin),
]:
    admin.site.register(model, model_admin)

for model, model_admin in [
    (SmsConfiguration, SmsConfigurationAdmin),
    (InboundRule, InboundRuleAdmin),
    (OutboundRule, OutboundRuleAdmin),
    (Extension, ExtensionAdmin),
    (RingGroup, RingGroupAdmin),
    (OfficeHours, OfficeHoursAdmin),
    (Holiday, HolidayAdmin),
    (Message, MessageAdmin),
    (Conversation, ConversationAdmin),
    (Contact, ContactAdmin),
    (OptOut, OptOutAdmin),
    (WebhookDelivery, WebhookDeliveryAdmin),
    (ReplyTemplate, ReplyTemplateAdmin),
    (User, TenantUserAdmin),
    (ApiToken, TenantApiTokenAdmin),
    (TrunkAssignment, TenantTrunkAdmin),
    (PrivateTrunk, PrivateTrunkAdmin),
    (AuditEvent, TenantAuditEventAdmin),
]:
    tenant_site.register(model, model_admin)

# Libraries' model admins on the system site (django-axes' access logs, DRF's tokens) get the
# same checked change lists as ours: a bad filter or date there is a message, not a 500.
for model, model_admin in list(admin.site._registry.items()):
    if not isinstance(model_admin, CheckedChangeListMixin):
        library_admin = type(model_admin)
        admin.site.unregister(model)
        admin.site.register(
            model,
            type(f"Checked{library_admin.__name__}", (CheckedChangeListMixin, library_admin), {}),
        )
