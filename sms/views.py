"""The inbox of extension users and tenant administrators."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """Show the user's conversations."""
    extension = getattr(request.user, "extension", None)
    return render(request, "sms/inbox.html", {"extension": extension})
