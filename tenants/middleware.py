"""Resolve the tenant a request acts in, once, as request.tenant; note the client address;
show times in the right zone; hold back half sign-ins."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from contextvars import ContextVar
from datetime import tzinfo
from typing import Any
from urllib.parse import urlencode

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

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


# The pages of the tenant a system administrator manages: they show times in that tenant's zone.
TENANT_PAGE_NAMES = ("tenant:index", "inbox", "sandbox_phone")


def _tenant_page(path: str) -> bool:
    for name in TENANT_PAGE_NAMES:
        try:
            prefix = reverse(name)
        except NoReverseMatch:  # the phone simulator exists only with the VoIP.ms sandbox
            continue
        if path.startswith(prefix):
            return True
    return False


def zone_for_request(request: HttpRequest) -> tzinfo | None:
    """Return the zone the request's pages show times in, or None for UTC.

    A tenant's users see every page in the tenant's zone. A system administrator sees the
    pages of the tenant he manages (tenant site, inbox, phone simulator) in that tenant's zone,
    and everything else (system site, his account pages) in his own. The API speaks UTC, the
    same for a token as for a session.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path_info.startswith("/api/"):
        return None
    tenant = getattr(request, "tenant", None)
    if tenant is not None and (not user.is_system_admin or _tenant_page(request.path_info)):
        return tenant.zone
    return user.zone


class TimeZoneMiddleware:
    """Activate the request's time zone (see zone_for_request) while the response is made."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = zone_for_request(request)
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            # A worker thread serves other users next: never let this zone leak to them.
            timezone.deactivate()


class UserLanguageMiddleware:
    """Speak the signed-in user's language when his profile sets one.

    LocaleMiddleware, earlier in the chain, has already activated the browser's language
    (Accept-Language) and sets the response's Content-Language from the active language once
    the view has run, so a user with an empty language keeps the browser's.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None else ""
        if language and translation.check_for_language(language):
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)


def second_factor_missing(user: Any) -> str:
    """Return what the signed-in user still owes before using the portal.

    "code" when he has two-factor sign-in and has not entered a code in this session, "enrol"
    when it is required of him and not set up, "" otherwise (and for anonymous users).
    """
    if not user.is_authenticated:
        return ""
    if user.two_factor_enabled:
        # OTPMiddleware installs is_verified(); without it nobody counts as verified.
        is_verified = getattr(user, "is_verified", None)
        return "" if callable(is_verified) and is_verified() else "code"
    return "enrol" if user.two_factor_required else ""


class SecondFactorMiddleware:
    """Hold back a session that owes a second factor: only the code or set-up page opens.

    HTML pages redirect to the code page (or to the set-up page when two-factor sign-in is
    required and missing); the API then treats the session as signed out, while API tokens,
    which carry no session, are not affected.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        missing = second_factor_missing(request.user)
        if missing and not self._open(request, missing):
            if request.path_info.startswith("/api/"):
                request.user = AnonymousUser()
                request.tenant = None
            elif missing == "code":
                return redirect(f"{reverse('login_code')}?{urlencode({'next': _next(request)})}")
            else:
                messages.warning(
                    request, _("Set up two-factor sign-in to continue: it is required for you.")
                )
                return redirect("account_security")
        return self.get_response(request)

    @staticmethod
    def _open(request: HttpRequest, missing: str) -> bool:
        path = request.path_info
        if path.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
            return True
        open_names = (
            ["logout", "login_code"] if missing == "code" else ["logout", "account_security"]
        )
        return path in {reverse(name) for name in open_names}


def _next(request: HttpRequest) -> str:
    """Return where to go once the code is in: this page, or home after a form post."""
    return request.get_full_path() if request.method == "GET" else reverse("home")
