"""Authentication backend that keeps users of a disabled tenant out."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend


class PortalBackend(ModelBackend):
    """Authenticate like ModelBackend, refusing members of a disabled tenant."""

    def user_can_authenticate(self, user: Any) -> bool:
        if not super().user_can_authenticate(user):
            return False
        tenant = getattr(user, "tenant", None)
        return tenant is None or tenant.enabled

    def get_user(self, user_id: int) -> Any:
        user = super().get_user(user_id)
        if user is not None and user.tenant_id is not None and not user.tenant.enabled:
            return None
        return user
