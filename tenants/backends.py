"""Authentication backend that keeps users of a disabled tenant out."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from tenants.access import account_refusal
from tenants.models import User


class PortalBackend(ModelBackend):
    """Authenticate like ModelBackend, refusing members of a disabled tenant."""

    def user_can_authenticate(self, user: Any) -> bool:
        if not super().user_can_authenticate(user):
            return False
        return not account_refusal(user)

    def get_user(self, user_id: int) -> Any:
        # A session of a user whose tenant was disabled after he signed in ends here.
        user = super().get_user(user_id)
        if user is not None and account_refusal(user):
            return None
        return user


def disabled_tenant_session_user(request: HttpRequest) -> User | None:
    """Return the user signed in with this session whom only his disabled tenant keeps out."""
    session = getattr(request, "session", None)
    user_id = session.get(SESSION_KEY) if session is not None else None
    if user_id is None:
        return None
    try:
        pk = User._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    user = User.objects.select_related("tenant").filter(pk=pk, is_active=True).first()
    if user is None or not account_refusal(user):
        return None
    # The same proof Django asks of a session: it was made with the user's current password.
    session_hash = session.get(HASH_SESSION_KEY) or ""
    if not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return None
    return user
