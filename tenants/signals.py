"""Write sign-ins, failed sign-ins and lock-outs (django-axes) to the audit trail."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.http import HttpRequest

from tenants.middleware import client_address
from tenants.models import User
from tenants.services import audit_record


def _address(request: HttpRequest | None) -> str | None:
    return client_address(request) if request is not None else None


def _named_user(username: Any) -> User | None:
    if not isinstance(username, str) or not username:
        return None
    return User.objects.select_related("tenant").filter(username=username).first()


def record_sign_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """Record a successful sign-in."""
    audit_record(
        actor=user, action="signed_in", tenant=user.tenant, obj=user, address=_address(request)
    )


def record_failed_sign_in(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """Record a failed sign-in under the username tried (Django has masked the password)."""
    username = str(credentials.get("username") or "")[:150]
    user = _named_user(username)
    audit_record(
        actor=None,
        actor_name=username or "unknown",
        action="sign_in_failed",
        tenant=user.tenant if user else None,
        obj=user,
        detail={"username": username},
        address=_address(request),
    )


def record_lock_out(
    sender: Any,
    request: HttpRequest | None = None,
    username: Any = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    """Record that django-axes refused a sign-in because of repeated failures."""
    username = str(username or "")[:150]
    user = _named_user(username)
    audit_record(
        actor=None,
        actor_name=username or "unknown",
        action="locked_out",
        tenant=user.tenant if user else None,
        obj=user,
        detail={"username": username},
        address=_address(request),
    )


def connect_audit_receivers() -> None:
    """Connect the receivers (once, from the app's ready())."""
    user_logged_in.connect(record_sign_in, dispatch_uid="tenants.audit.signed_in")
    user_login_failed.connect(record_failed_sign_in, dispatch_uid="tenants.audit.sign_in_failed")
    user_locked_out.connect(record_lock_out, dispatch_uid="tenants.audit.locked_out")
