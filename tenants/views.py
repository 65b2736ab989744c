"""Sign-in and the user's own API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from tenants.services import api_token_create, api_token_revoke


class LoginView(auth_views.LoginView):
    """The one sign-in page of the portal; the home view sends each role onwards."""

    template_name = "registration/login.html"
    redirect_authenticated_user = True


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
