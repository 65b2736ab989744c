"""Reads of tenants, users and API tokens that request code needs."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import ApiToken, Tenant, User, api_token_digest


def api_token_for_key(*, key: str) -> ApiToken | None:
    """Return the live (not revoked) token with this key, with its user and tenant, or None."""
    return (
        ApiToken.objects.select_related("user__tenant")
        .filter(digest=api_token_digest(key), revoked_at__isnull=True)
        .first()
    )


def api_tokens_visible_to(*, user: User, tenant: Tenant | None = None) -> QuerySet[ApiToken]:
    """Return the live tokens the user may see and revoke.

    A system administrator sees every token (only `tenant`'s when given), a tenant administrator
    his tenant's, an extension user his own.
    """
    tokens = ApiToken.objects.select_related("user").filter(revoked_at__isnull=True)
    if user.is_system_admin:
        return tokens.for_tenant(tenant) if tenant is not None else tokens
    if user.is_tenant_admin:
        return tokens.for_tenant(user.tenant)
    return tokens.filter(user=user)


def token_owners_for(*, user: User, tenant: Tenant | None = None) -> QuerySet[User]:
    """Return the users for whom the user may create API tokens."""
    users = User.objects.filter(is_active=True)
    if user.is_system_admin:
        return users.for_tenant(tenant) if tenant is not None else users
    if user.is_tenant_admin:
        return users.for_tenant(user.tenant)
    return users.filter(pk=user.pk)
