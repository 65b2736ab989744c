"""Every write on tenants, users and extensions."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from core.errors import ApplicationError, NotAllowed
from tenants.middleware import MANAGED_TENANT_SESSION_KEY, current_client_address
from tenants.models import (
    API_TOKEN_PREFIX_LENGTH,
    ApiToken,
    AuditEvent,
    Extension,
    Role,
    Tenant,
    User,
    api_token_digest,
)

# last_used_at is written at most this often per token, so API calls do not each write a row.
API_TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def audit_record(
    *,
    actor: User | None,
    action: str,
    tenant: Tenant | None = None,
    obj: Any = None,
    detail: dict[str, Any] | None = None,
    address: str | None = None,
    actor_name: str = "",
) -> AuditEvent:
    """Record an audit event; detail must never hold a secret value.

    The client address defaults to that of the request being handled (None in tasks).
    """
    if not actor_name:
        actor_name = actor.get_username() if actor is not None else "system"
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor_name[:150],
        tenant=tenant,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        detail=detail or {},
        address=address or current_client_address(),
    )


def audit_secret_changed(
    *, actor: User | None, tenant: Tenant | None, obj: Any, field: str
) -> AuditEvent:
    """Record that the object's secret `field` was set or replaced (never its value)."""
    return audit_record(
        actor=actor, action="secret_changed", tenant=tenant, obj=obj, detail={"field": field}
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
    status_callback_url: str = "",
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
        status_callback_url=status_callback_url,
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
def api_token_create(
    *, user: User, name: str = "", actor: User | None = None
) -> tuple[ApiToken, str]:
    """Give the user a new named API token; return it with its key, which is never stored.

    The actor is who asked for it (None: the system, e.g. a management command).
    """
    name = name.strip() or "API token"
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise ApplicationError("The name is too long (100 characters at most).", field="name")
    if not user.is_active:
        raise ApplicationError("An inactive user cannot have API tokens.", field="user")
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        prefix=key[:API_TOKEN_PREFIX_LENGTH],
        digest=api_token_digest(key),
        user=user,
        tenant=user.tenant,
    )
    audit_record(
        actor=actor,
        action="api_token_created",
        tenant=user.tenant,
        obj=token,
        detail={"user": user.get_username()},
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: User | None = None) -> None:
    """Revoke the token at once; later requests with its key are refused."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        audit_record(
            actor=actor,
            action="api_token_revoked",
            tenant=token.tenant,
            obj=token,
            detail={"user": token.user.get_username()},
        )


def api_token_note_use(*, token: ApiToken) -> None:
    """Remember when the token was last used, writing at most once per resolution period."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < API_TOKEN_USE_RESOLUTION:
        return
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - API_TOKEN_USE_RESOLUTION),
        pk=token.pk,
    ).update(last_used_at=now)
    token.last_used_at = now


def tenant_update(*, tenant: Tenant, **changes: Any) -> Tenant:
    """Change a tenant's fields after validating them."""
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.full_clean()
    tenant.save(update_fields=list(changes))
    return tenant


def tenant_callback_secret(*, tenant: Tenant) -> str:
    """Return the secret that signs the tenant's status callbacks, creating it on first use."""
    if tenant.callback_secret:
        return tenant.callback_secret
    # The conditional update lets the first of two concurrent callbacks win; both then sign
    # with the secret that was stored.
    created = Tenant.objects.filter(pk=tenant.pk, callback_secret="").update(
        callback_secret=secrets.token_urlsafe(32)
    )
    if created:
        audit_secret_changed(actor=None, tenant=tenant, obj=tenant, field="callback_secret")
    tenant.refresh_from_db(fields=["callback_secret"])
    return tenant.callback_secret


@transaction.atomic
def tenant_callback_secret_rotate(*, tenant: Tenant, actor: User | None) -> str:
    """Replace the status callback secret; callbacks are signed with the new one from now on."""
    tenant.callback_secret = secrets.token_urlsafe(32)
    tenant.save(update_fields=["callback_secret"])
    audit_secret_changed(actor=actor, tenant=tenant, obj=tenant, field="callback_secret")
    return tenant.callback_secret
