"""Every write on tenants, users and extensions."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
    validate_timezone,
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
        raise NotAllowed(_("Only system administrators can manage a tenant."))
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
        raise ApplicationError(_("The name is too long (100 characters at most)."), field="name")
    if not user.is_active:
        raise ApplicationError(_("An inactive user cannot have API tokens."), field="user")
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


def tenant_callback_secret_reveal(*, tenant: Tenant, actor: User) -> str:
    """Return the status callback secret to a tenant administrator, and record that he saw it."""
    secret = tenant_callback_secret(tenant=tenant)
    audit_record(
        actor=actor,
        action="secret_revealed",
        tenant=tenant,
        obj=tenant,
        detail={"field": "callback_secret"},
    )
    return secret


# --- Settings, users and extensions through the API ------------------------------------------

TENANT_SETTINGS_FIELDS = (
    "timezone",
    "stop_reply",
    "help_reply",
    "start_reply",
    "retention_days",
    "status_callback_url",
    "monthly_quota",
    "quota_hard",
)
# Set by system administrators only: a tenant administrator reads them.
TENANT_SYSTEM_FIELDS = ("monthly_quota", "quota_hard")


def _clean(obj: Any, *, exclude: list[str] | None = None, **options: bool) -> None:
    """Run the model's validation; the first failure becomes an error naming its field."""
    try:
        obj.full_clean(exclude=exclude, **options)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise ApplicationError(messages[0], field=None if field == "__all__" else field) from error


@transaction.atomic
def tenant_settings_update(*, tenant: Tenant, actor: User, **changes: Any) -> Tenant:
    """Change a tenant's settings; the quota fields only a system administrator may set."""
    unknown = set(changes) - set(TENANT_SETTINGS_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    for field in TENANT_SYSTEM_FIELDS:
        if (
            field in changes
            and not actor.is_system_admin
            and changes[field] != getattr(tenant, field)
        ):
            raise ApplicationError(
                _("Only system administrators set the monthly quota."),
                code="read_only",
                field=field,
            )
    if not changes:
        return tenant
    for field, value in changes.items():
        setattr(tenant, field, value)
    _clean(tenant)
    tenant.save(update_fields=list(changes))
    audit_record(
        actor=actor,
        action="settings_changed",
        tenant=tenant,
        obj=tenant,
        detail={"fields": sorted(changes)},
    )
    return tenant


@transaction.atomic
def tenant_callback_secret_rotate(*, tenant: Tenant, actor: User | None) -> str:
    """Replace the status callback secret; callbacks are signed with the new one from now on."""
    tenant.callback_secret = secrets.token_urlsafe(32)
    tenant.save(update_fields=["callback_secret"])
    audit_secret_changed(actor=actor, tenant=tenant, obj=tenant, field="callback_secret")
    return tenant.callback_secret


USER_FIELDS = ("username", "email", "first_name", "last_name", "role", "is_active")
_NO_EXTENSION = object()


def _user_role_check(*, actor: User, tenant: Tenant | None, role: str) -> None:
    if role == Role.SYSTEM_ADMIN:
        if not actor.is_system_admin:
            raise ApplicationError(
                _("Tenant administrators cannot make system administrators."), field="role"
            )
        if tenant is not None:
            raise ApplicationError(
                _("A system administrator belongs to no tenant: leave out X-Tenant."), field="role"
            )
    elif tenant is None:
        raise ApplicationError(
            _(
                "Name the user's tenant with the X-Tenant header (only system administrators have "
                "none)."
            ),
            code="tenant_required",
            field="role",
        )


def _user_extension(user: User, extension: Extension | None) -> None:
    current = Extension.objects.filter(user=user).first() if user.pk else None
    if extension is not None:
        if extension.tenant_id != user.tenant_id:
            raise ApplicationError(
                _("Choose an extension of the user's tenant."), field="extension"
            )
        if extension.user_id and extension.user_id != user.pk:
            raise ApplicationError(
                _("Extension %(number)s belongs to %(user)s already.")
                % {"number": extension.number, "user": extension.user},
                field="extension",
            )
    if current is not None and (extension is None or current.pk != extension.pk):
        Extension.objects.filter(pk=current.pk).update(user=None)
    if extension is not None and extension.user_id != user.pk:
        Extension.objects.filter(pk=extension.pk).update(user=user)
        extension.user = user


@transaction.atomic
def user_save(
    *,
    actor: User,
    tenant: Tenant | None,
    user: User | None = None,
    password: str | None = None,
    extension: Any = _NO_EXTENSION,
    **fields: Any,
) -> User:
    """Create or change a user of the tenant (None: a system administrator).

    The password is checked with the configured password validators and stored hashed; a
    new user without one cannot sign in with a password (an API token still works).
    """
    unknown = set(fields) - set(USER_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = user is None
    if user is None:
        user = User(tenant=tenant, role=fields.get("role", Role.USER))
    elif user.tenant_id != (tenant.pk if tenant else user.tenant_id):
        raise ApplicationError(_("Choose a user of this tenant."), field="username")
    for name, value in fields.items():
        setattr(user, name, value)
    _user_role_check(actor=actor, tenant=user.tenant, role=user.role)
    if not created and user.pk == actor.pk:
        if not user.is_active:
            raise ApplicationError(_("You cannot deactivate yourself."), field="is_active")
        if user.role != actor.role:
            raise ApplicationError(_("You cannot change your own role."), field="role")
    user.is_staff = user.is_superuser = user.role == Role.SYSTEM_ADMIN
    if User.objects.filter(username__iexact=user.username).exclude(pk=user.pk).exists():
        raise ApplicationError(_("A user with that username exists already."), field="username")
    _clean(user, exclude=["password"])
    if password is not None:
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise ApplicationError(" ".join(error.messages), field="password") from error
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.save()
    if extension is not _NO_EXTENSION:
        if extension is not None and user.tenant is None:
            raise ApplicationError(_("A system administrator has no extension."), field="extension")
        _user_extension(user, extension)
    changed = sorted(set(fields) | ({"password"} if password is not None else set()))
    if extension is not _NO_EXTENSION:
        changed.append("extension")
    audit_record(
        actor=actor,
        action="created" if created else "changed",
        tenant=user.tenant,
        obj=user,
        detail={"fields": sorted(changed)},
    )
    return user


PROFILE_FIELDS = ("time_zone", "language")


@transaction.atomic
def user_profile_update(*, user: User, time_zone: str, language: str) -> User:
    """Change the signed-in user's own time zone and language (empty: UTC, the browser's)."""
    if time_zone:
        try:
            validate_timezone(time_zone)
        except ValidationError as error:
            raise ApplicationError(error.messages[0], field="time_zone") from error
    if language and language not in dict(settings.LANGUAGES):
        raise ApplicationError(
            _("%(language)r is not a language of the portal.") % {"language": language},
            field="language",
        )
    changes = {
        name: value
        for name, value in (("time_zone", time_zone), ("language", language))
        if getattr(user, name) != value
    }
    if not changes:
        return user
    for name, value in changes.items():
        setattr(user, name, value)
    user.save(update_fields=list(changes))
    audit_record(
        actor=user,
        action="profile_changed",
        tenant=user.tenant,
        obj=user,
        detail={"fields": sorted(changes), **changes},
    )
    return user


@transaction.atomic
def user_delete(*, user: User, actor: User) -> None:
    """Delete a user (his API tokens go with him; his extension stays, without a user)."""
    if user.pk == actor.pk:
        raise ApplicationError(_("You cannot delete yourself."), code="conflict")
    audit_record(actor=actor, action="deleted", tenant=user.tenant, obj=user)
    user.delete()


EXTENSION_FIELDS = ("number", "display_name", "user", "email", "notify_by_email", "sms_permission")


@transaction.atomic
def extension_save(
    *, tenant: Tenant, actor: User | None, extension: Extension | None = None, **fields: Any
) -> Extension:
    """Create or change an extension of the tenant; its number is unique in the tenant."""
    unknown = set(fields) - set(EXTENSION_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = extension is None
    extension = extension or Extension(tenant=tenant)
    for name, value in fields.items():
        setattr(extension, name, value)
    if extension.user_id is not None:
        if extension.user.tenant_id != tenant.pk:
            raise ApplicationError(_("Choose a user of this tenant."), field="user")
        taken = Extension.objects.filter(user_id=extension.user_id).exclude(pk=extension.pk)
        if taken.exists():
            raise ApplicationError(
                _("%(user)s has extension %(number)s already.")
                % {"user": extension.user, "number": taken.get().number},
                field="user",
            )
    clash = Extension.objects.for_tenant(tenant).filter(number=extension.number)
    if clash.exclude(pk=extension.pk).exists():
        raise ApplicationError(
            _("Extension %(number)s exists already.") % {"number": extension.number}, field="number"
        )
    _clean(extension, exclude=["tenant"], validate_unique=False, validate_constraints=False)
    extension.save()
    audit_record(
        actor=actor,
        action="created" if created else "changed",
        tenant=tenant,
        obj=extension,
        detail={"fields": sorted(fields)},
    )
    return extension


@transaction.atomic
def extension_delete(*, extension: Extension, actor: User | None) -> None:
    """Delete an extension; rules that send to it protect it."""
    audit_record(actor=actor, action="deleted", tenant=extension.tenant, obj=extension)
    extension.delete()
