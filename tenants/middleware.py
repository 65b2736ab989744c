"""Resolve the tenant a request acts in, once, as request.tenant; note the client address."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from contextvars import ContextVar

from axes.helpers import get_client_ip_address
from django.http import HttpRequest, HttpResponse

from tenants.models import Tenant

MANAGED_TENANT_SESSION_KEY = "managed_tenant_id"

# The address of the client whose request is being handled, for the audit trail: services record
# it without every caller passing the request down. None outside a request (tasks, commands).
_client_address: ContextVar[str | None] = ContextVar("client_address", default=None)


def client_address(request: HttpRequest) -> str | None:
    """Return the request's client address, read as django-axes reads it (AXES_PROXY_COUNT)."""
    address = get_client_ip_address(request)
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def current_client_address() -> str | None:
    """Return the client address of the request being handled, or None outside a request."""
    return _client_address.get()


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
    """Set request.tenant for every request, and the client address for the audit trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.tenant = tenant_for_request(request)
        reset = _client_address.set(client_address(request))
        try:
            return self.get_response(request)
        finally:
            _client_address.reset(reset)
