"""Resolve the tenant a request acts in, once, as request.tenant."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tenants.models import Tenant

MANAGED_TENANT_SESSION_KEY = "managed_tenant_id"


def tenant_for_request(request: HttpRequest) -> Tenant | None:
    """Return the user's own tenant, or the tenant a system admin is managing."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    if user.is_system_admin:
        tenant_id = request.session.get(MANAGED_TENANT_SESSION_KEY)
        if tenant_id is None:
            return None
        return Tenant.objects.filter(pk=tenant_id).first()
    return user.tenant


class TenantMiddleware:
    """Set request.tenant for every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = tenant_for_request(request)
        return self.get_response(request)
