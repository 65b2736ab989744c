"""The one answer to "may this tenant send and receive messages now?", used everywhere.

`account_refusal` answers the question before it: may this user sign in and use the API at all?

The webhook URL, inbound processing, sending, the delivery and side-effect tasks, the REST API
and the admin pages all ask `messaging_refusal` (or `messaging_check`, which raises), so the rule
is written once. Querysets that must filter in SQL use `MESSAGING_ALLOWED`.
"""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.errors import NotAllowed
from tenants.models import Tenant, User

TENANT_DISABLED = "tenant_disabled"


class MessagingRefused(NotAllowed):
    """Raise when the tenant may not send or receive messages now."""

    code = "message_channels_disabled"


def account_refusal(user: User) -> str:
    """Return why the user may not sign in or use the API now, or "" when he may."""
    tenant = user.tenant
    if tenant is not None and not tenant.enabled:
        return _("The tenant %(name)s is disabled; ask your provider to enable it again.") % {
            "name": tenant.name
        }
    return ""


def messaging_refusal(tenant: Tenant) -> str:
    """Return why the tenant may not send or receive messages now, or "" when it may."""
    if not tenant.enabled:
        return "the tenant is disabled"
    if not tenant.message_channels_enabled:
        return "Message Channels are off for this tenant"
    return ""


def messaging_check(tenant: Tenant) -> None:
    """Raise MessagingRefused, with the reason, when the tenant may not use messaging."""
    # messaging_refusal's reasons are stored with messages and in logs, in English; the person
    # refused reads them in his language.
    if not tenant.enabled:
        raise MessagingRefused(_("The tenant is disabled."), code=TENANT_DISABLED)
    if not tenant.message_channels_enabled:
        raise MessagingRefused(_("Message Channels are off for this tenant."))


def messaging_allowed(prefix: str = "") -> Q:
    """Return the filter `messaging_refusal` applies, for tenants reached through `prefix`."""
    return Q(**{f"{prefix}enabled": True, f"{prefix}message_channels_enabled": True})
