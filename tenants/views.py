"""Sign-in (password, then a code for users with two-factor sign-in), security and API tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from core.errors import ApplicationError
from tenants.middleware import second_factor_missing
from tenants.services import api_token_create, api_token_revoke
from tenants.services_two_factor import (
    CodeRefused,
    recovery_codes_left,
    recovery_codes_regenerate,
    two_factor_disable,
    two_factor_enrolment_confirm,
    two_factor_enrolment_start,
    two_factor_pending_device,
    two_factor_qr_svg,
    two_factor_secret,
    two_factor_verify,
)


class LoginView(auth_views.LoginView):
    """The one sign-in page of the portal; the home view sends each role onwards.

    The password signs the user in; a user with two-factor sign-in is then sent to the code
    page, and SecondFactorMiddleware keeps every other page closed until the code is in.
    """

    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        if form.get_user().two_factor_enabled:
            return redirect(f"{reverse('login_code')}?{urlencode({'next': response.url})}")
        return response


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """Ask a signed-in user with two-factor sign-in for a code from his app or a recovery code."""
    next_url = _safe_next(request)
    user = request.user
    if second_factor_missing(user) != "code":
        return redirect(next_url)
    error = ""
    if request.method == "POST":
        try:
            device = two_factor_verify(user=user, code=request.POST.get("code", ""))
        except CodeRefused as refusal:
            error = refusal.message
            # Counted by django-axes like a wrong password: enough of them lock the username
            # from this address, and the half-finished sign-in ends.
            user_login_failed.send(
                sender=__name__, credentials={"username": user.get_username()}, request=request
            )
            if getattr(request, "axes_locked_out", False):
                auth.logout(request)
                return redirect("login")
        else:
            request.session.cycle_key()
            otp_login(request, device)
            return redirect(next_url)
    # A refused code shows the form again, like a wrong password on the sign-in page.
    return render(request, "registration/login_code.html", {"error": error, "next": next_url})


def _security_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    context: dict[str, Any] = {
        "enabled": user.two_factor_enabled,
        "required": user.two_factor_required,
    }
    if user.two_factor_enabled:
        context["codes_left"] = recovery_codes_left(user=user)
    else:
        device = two_factor_pending_device(user=user)
        if device is not None:
            context["qr_svg"] = two_factor_qr_svg(device)
            context["secret"] = two_factor_secret(device)
    return context


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def account_security(request: HttpRequest) -> HttpResponse:
    """Let a user set up, keep up or turn off his two-factor sign-in."""
    user = request.user
    extra: dict[str, Any] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        code = request.POST.get("code", "")
        try:
            if action == "start":
                two_factor_enrolment_start(user=user)
                return redirect("account_security")
            if action == "confirm":
                device, extra["recovery_codes"] = two_factor_enrolment_confirm(user=user, code=code)
                request.session.cycle_key()
                otp_login(request, device)
                messages.success(request, "Two-factor sign-in is on.")
            elif action == "regenerate":
                extra["recovery_codes"] = recovery_codes_regenerate(user=user)
                messages.success(request, "New recovery codes replace the old ones.")
            elif action == "disable":
                two_factor_disable(user=user, code=code)
                messages.success(request, "Two-factor sign-in is off.")
                return redirect("account_security")
            else:
                extra["error"] = "Choose an action on this page."
        except ApplicationError as error:
            extra["error"] = error.message
    return render(request, "portal/security.html", {**_security_context(request), **extra})


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Let a user create, replace or revoke his own API token."""
    new_key = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            api_token_revoke(user=request.user)
            messages.success(request, "Your API token was revoked.")
            return redirect("api_tokens")
        new_key = api_token_create(user=request.user).key
    token = getattr(request.user, "auth_token", None) if new_key is None else None
    return render(
        request,
        "portal/api_tokens.html",
        {
            "new_key": new_key,
            "has_token": new_key is not None or token is not None,
            "created": token.created if token else None,
        },
    )
