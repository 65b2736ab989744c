"""Portal-wide views: the role-based home redirect and the health check."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found

from core.middleware import API_PREFIX
from portal.health import health_report
from portal.prometheus import prometheus_text


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own place: system site, tenant site, or inbox."""
    user = request.user
    if user.is_system_admin:
        return redirect("tenant:index" if request.tenant else "admin:index")
    if user.is_tenant_admin:
        return redirect("tenant:index")
    return redirect("inbox")


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Answer a browser's /favicon.ico with the portal's icon (pages name it themselves)."""
    return redirect(static("portal/favicon.svg"))


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Report database, broker and worker state; 503 names what is not fine."""
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Export counters in Prometheus text format to system administrators and allowed IPs."""
    allowed_ip = request.META.get("REMOTE_ADDR") in settings.METRICS_ALLOWED_IPS
    user = request.user
    if not allowed_ip and not (user.is_authenticated and user.is_system_admin):
        return HttpResponse("forbidden", status=403, content_type="text/plain")
    return HttpResponse(prometheus_text(), content_type="text/plain; version=0.0.4")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer an unknown URL: JSON in the API error shape under /api/, else the usual page."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"code": "not_found", "detail": _("Not found.")}, status=404)
    return page_not_found(request, exception)
