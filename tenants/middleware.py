"""Resolve the tenant a request acts in, once, as request.tenant; note the client address."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from contextvars import ContextVar

from axes.helpers import get_client_ip_address
from django.http import HttpRequest, HttpResponse

from tenants.models import Tenant

MANAGED_TENANT_SESSION_KEY = "managed_tenant_id"

# The request being handled, so that services record its client address in the audit trail
# without every caller passing the request down. None outside a request (tasks, commands).
_current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


def client_address(request: HttpRequest) -> str | None:
    """Return the request's client address, read as django-axes reads it for lock-outs."""
    address = get_client_ip_address(request)
    try:
        return str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        return None


def current_client_address() -> str | None:
    """Return the client address of the request being handled, or None outside a request."""
    # Read only when an event is recorded: the webhook path pays nothing for it.
    request = _current_request.get()
    return client_address(request) if request is not None else None


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
        reset = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(reset)
