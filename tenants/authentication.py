"""How API requests authenticate: named tokens stored as digests, and signed-in sessions.

Both refuse a user whose tenant is disabled with 403 and the reason, on every API route.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import SessionScheme
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from tenants.access import TENANT_DISABLED, account_refusal
from tenants.backends import disabled_tenant_session_user
from tenants.models import ApiToken, User
from tenants.selectors import api_token_for_key
from tenants.services import api_token_note_use


class TenantDisabled(exceptions.PermissionDenied):
    default_code = TENANT_DISABLED
    default_detail = _("The tenant of this account is disabled.")


def _refuse_disabled_tenant(user: User) -> None:
    reason = account_refusal(user)
    if reason:
        raise TenantDisabled(reason, code=TENANT_DISABLED)


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, the key looked up by its SHA-256 digest."""

    def authenticate_credentials(self, key: str) -> tuple[User, ApiToken]:
        token = api_token_for_key(key=key)
        # A token made while its user was in another tenant does not follow him to this one.
        if token is None or not token.user.is_active or token.tenant_id != token.user.tenant_id:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        _refuse_disabled_tenant(token.user)
        api_token_note_use(token=token)
        # A token carries no session, so UserLanguageMiddleware did not know the user: answer
        # (and set Content-Language) in his profile's language from here on.
        if token.user.language and translation.check_for_language(token.user.language):
            translation.activate(token.user.language)
        return token.user, token


class PortalSessionAuthentication(SessionAuthentication):
    """Django's session, telling a user whose tenant was disabled why he is refused."""

    def authenticate(self, request: Request) -> Any:
        result = super().authenticate(request)
        if result is None:
            user = disabled_tenant_session_user(request._request)
            if user is not None:
                _refuse_disabled_tenant(user)
        return result


class PortalSessionScheme(SessionScheme):
    """Describe PortalSessionAuthentication in the OpenAPI schema as Django's session cookie."""

    target_class = "tenants.authentication.PortalSessionAuthentication"
