"""Every write on tenants, users and extensions."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from core.errors import NotAllowed
from tenants.middleware import MANAGED_TENANT_SESSION_KEY
from tenants.models import AuditEvent, Extension, Role, Tenant, User


def audit_record(
    *,
    actor: User | None,
    action: str,
    tenant: Tenant | None = None,
    obj: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record an audit event; detail must never hold a secret value."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None else "system",
        tenant=tenant,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        detail=detail or {},
    )


def tenant_create(
    *,
    name: str,
    slug: str,
    country: str = "US",
    timezone: str = "America/New_York",
    enabled: bool = True,
    message_channels_enabled: bool = True,
    allow_private_trunks: bool = False,
    require_admin_2fa: bool = False,
    retention_days: int | None = None,
    monthly_quota: int | None = None,
    quota_hard: bool = False,
) -> Tenant:
    """Create a tenant after validating it."""
    tenant = Tenant(
        name=name,
        slug=slug,
        country=country,
        timezone=timezone,
        enabled=enabled,
        message_channels_enabled=message_channels_enabled,
        allow_private_trunks=allow_private_trunks,
        require_admin_2fa=require_admin_2fa,
        retention_days=retention_days,
        monthly_quota=monthly_quota,
        quota_hard=quota_hard,
    )
    tenant.full_clean()
    tenant.save()
    return tenant


def user_create(
    *,
    username: str,
    password: str | None,
    role: str,
    tenant: Tenant | None = None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Create a user with a role; system administrators have no tenant, others exactly one."""
    user = User(
        username=username,
        role=role,
        tenant=None if role == Role.SYSTEM_ADMIN else tenant,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_staff=role == Role.SYSTEM_ADMIN,
        is_superuser=role == Role.SYSTEM_ADMIN,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def extension_create(
    *,
    tenant: Tenant,
    number: str,
    display_name: str = "",
    user: User | None = None,
    email: str = "",
    sms_permission: str = "disable",
) -> Extension:
    """Create an extension in a tenant."""
    extension = Extension(
        tenant=tenant,
        number=number,
        display_name=display_name,
        user=user,
        email=email,
        sms_permission=sms_permission,
    )
    extension.full_clean()
    extension.save()
    return extension


@transaction.atomic
def tenant_manage_start(*, request: HttpRequest, tenant: Tenant) -> None:
    """Let a system administrator act as the administrator of a tenant, and record it."""
    if not request.user.is_authenticated or not request.user.is_system_admin:
        raise NotAllowed("Only system administrators can manage a tenant.")
    request.session[MANAGED_TENANT_SESSION_KEY] = tenant.pk
    request.tenant = tenant
    audit_record(actor=request.user, action="manage", tenant=tenant, obj=tenant)


@transaction.atomic
def tenant_manage_stop(*, request: HttpRequest) -> None:
    """Return a system administrator from a managed tenant to the system site."""
    tenant = getattr(request, "tenant", None)
    request.session.pop(MANAGED_TENANT_SESSION_KEY, None)
    request.tenant = None
    if tenant is not None and request.user.is_system_admin:
        audit_record(
            actor=request.user, action="switch_to_administrator", tenant=tenant, obj=tenant
        )


@transaction.atomic
def api_token_create(*, user: User) -> Token:
    """Give the user a new API token, replacing any earlier one."""
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user)
    audit_record(actor=user, action="api_token_created", tenant=user.tenant)
    return token


@transaction.atomic
def api_token_revoke(*, user: User) -> None:
    """Revoke the user's API token."""
    deleted, _ = Token.objects.filter(user=user).delete()
    if deleted:
        audit_record(actor=user, action="api_token_revoked", tenant=user.tenant)


def tenant_update(*, tenant: Tenant, **changes: Any) -> Tenant:
    """Change a tenant's fields after validating them."""
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.full_clean()
    tenant.save(update_fields=list(changes))
    return tenant
