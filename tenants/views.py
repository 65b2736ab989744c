"""Sign-in (password, then a code for users with two-factor sign-in), profile, security and API
tokens."""

from __future__ import annotations

import zoneinfo
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from core.errors import ApplicationError
from tenants.access import account_refusal
from tenants.backends import disabled_tenant_session_user
from tenants.middleware import second_factor_missing
from tenants.models import User
from tenants.selectors import api_tokens_visible_to
from tenants.services import api_token_create, api_token_revoke, user_profile_update
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


class PortalAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, telling a user with the right password that his tenant is off."""

    tenant_refusal = ""

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ValidationError:
            self.tenant_refusal = self._tenant_refusal()
            if self.tenant_refusal:
                raise ValidationError(self.tenant_refusal, code="tenant_disabled") from None
            raise

    def _tenant_refusal(self) -> str:
        # Only someone who knows the password learns that the tenant is disabled, and never
        # while django-axes holds the sign-in locked.
        if self.request is None or getattr(self.request, "axes_locked_out", False):
            return ""
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        user = User.objects.select_related("tenant").filter(username=username).first()
        if user is None or not user.is_active or not password:
            return ""
        reason = account_refusal(user)
        return reason if reason and user.check_password(password) else ""


class LoginView(auth_views.LoginView):
    """The one sign-in page of the portal; the home view sends each role onwards.

    The password signs the user in; a user with two-factor sign-in is then sent to the code
    page, and SecondFactorMiddleware keeps every other page closed until the code is in.
    """

    template_name = "registration/login.html"
    authentication_form = PortalAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # A user whose tenant was disabled while signed in lands here: say why.
        signed_out = disabled_tenant_session_user(self.request)
        context["tenant_refusal"] = account_refusal(signed_out) if signed_out else ""
        return context

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
                messages.success(request, _("Two-factor sign-in is on."))
            elif action == "regenerate":
                extra["recovery_codes"] = recovery_codes_regenerate(user=user)
                messages.success(request, _("New recovery codes replace the old ones."))
            elif action == "disable":
                two_factor_disable(user=user, code=code)
                messages.success(request, _("Two-factor sign-in is off."))
                return redirect("account_security")
            else:
                extra["error"] = _("Choose an action on this page.")
        except ApplicationError as error:
            extra["error"] = error.message
    return render(request, "portal/security.html", {**_security_context(request), **extra})


def _number(value: str) -> int:
    """Return value as a row id, or 0 (no row) when it is not one."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else 0


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text=_("What the token is for."))


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Let a user create and revoke his own named API tokens; a new key is shown once."""
    own = api_tokens_visible_to(user=request.user).filter(user=request.user)
    form = ApiTokenForm()
    new_token = new_key = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            token_id = request.POST.get("token", "").strip()
            token = get_object_or_404(own, pk=_number(token_id))
            api_token_revoke(token=token, actor=request.user)
            messages.success(
                request, _("The API token %(name)s was revoked.") % {"name": token.name}
            )
            return redirect("api_tokens")
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            try:
                new_token, new_key = api_token_create(
                    user=request.user, name=form.cleaned_data["name"], actor=request.user
                )
            except ApplicationError as error:
                form.add_error("name", error.message)
            else:
                form = ApiTokenForm()
    return render(
        request,
        "portal/api_tokens.html",
        {"form": form, "tokens": list(own), "new_token": new_token, "new_key": new_key},
    )


def _zone_choices() -> list[tuple[str, str]]:
    zones = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
    return [("", _("UTC (none chosen)")), *((zone, zone) for zone in zones)]


class ProfileForm(forms.Form):
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False, choices=())
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("The browser's language")), *settings.LANGUAGES],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = _zone_choices()


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def account_profile(request: HttpRequest) -> HttpResponse:
    """Let the signed-in user choose his own time zone and language."""
    user = request.user
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            try:
                user_profile_update(
                    user=user,
                    time_zone=form.cleaned_data["time_zone"],
                    language=form.cleaned_data["language"],
                )
            except ApplicationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, _("Your profile was saved."))
                return redirect("account_profile")
    else:
        form = ProfileForm(initial={"time_zone": user.time_zone, "language": user.language})
    return render(
        request,
        "portal/profile.html",
        {"form": form, "tenant_zone": user.tenant.timezone if user.tenant else ""},
    )
