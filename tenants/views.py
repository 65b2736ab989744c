"""Sign-in and the user's own API tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from core.errors import ApplicationError
from tenants.access import account_refusal
from tenants.backends import disabled_tenant_session_user
from tenants.models import User
from tenants.selectors import api_tokens_visible_to
from tenants.services import api_token_create, api_token_revoke


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
    """The one sign-in page of the portal; the home view sends each role onwards."""

    template_name = "registration/login.html"
    authentication_form = PortalAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # A user whose tenant was disabled while signed in lands here: say why.
        signed_out = disabled_tenant_session_user(self.request)
        context["tenant_refusal"] = account_refusal(signed_out) if signed_out else ""
        return context


def _number(value: str) -> int:
    """Return value as a row id, or 0 (no row) when it is not one."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else 0


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for.")


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
            messages.success(request, f"The API token {token.name} was revoked.")
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
