"""Request guards every route shares: API authentication throttling, NUL in query strings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

from core.throttle import failure_throttle

API_PREFIX = "/api/"


class ApiAuthThrottleMiddleware:
    """Answer 429 to an address whose API tokens failed too often; never slow a valid token.

    Whatever authentication class the API uses, a request that carried credentials and got 401
    is a failed authentication: it is counted after the fact, so a request that authenticates
    costs nothing here. Past API_AUTH_FAILURES_PER_MINUTE failures, the address's failures get
    429 with Retry-After while its valid tokens still pass: someone sharing an address with a
    real client (a NAT, a proxy) cannot lock that client out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code != 401
            or "HTTP_AUTHORIZATION" not in request.META
            or not request.path_info.startswith(API_PREFIX)
        ):
            return response
        wait = failure_throttle(
            kind="api_auth", request=request, per_minute=settings.API_AUTH_FAILURES_PER_MINUTE
        )
        if wait is None:
            return response
        throttled = JsonResponse(
            {
                "code": "throttled",
                "detail": "Too many failed authentications from this address; "
                f"try again in {wait} seconds.",
            },
            status=429,
        )
        throttled["Retry-After"] = str(wait)
        return throttled


def query_nul_allowed(view: Any) -> Any:
    """Mark a view that takes NUL in its query string itself (it stores or cleans it)."""
    view.query_nul_allowed = True
    return view


def query_parameter_with_nul(request: HttpRequest) -> str | None:
    """Return the name of the first query parameter holding NUL, or None (the usual, fast case)."""
    raw = request.META.get("QUERY_STRING", "")
    if "%00" not in raw and "\x00" not in raw:
        return None
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "\\x00")
    return None


class QueryStringNulMiddleware:
    """Answer 400 naming the parameter when a query string holds NUL.

    PostgreSQL cannot store or compare a string with NUL: a filter or search holding one would
    fail deep in a query with a 500. Views that clean NUL themselves are marked with
    `query_nul_allowed` (the webhook URL stores what VoIP.ms sent), and admin change lists mark
    themselves to answer with a message on the page instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        name = query_parameter_with_nul(request)
        if name is None or getattr(view, "query_nul_allowed", False):
            return None
        if getattr(getattr(view, "model_admin", None), "query_nul_allowed", False):
            return None
        message = "Null characters are not allowed."
        if request.path_info.startswith(API_PREFIX):
            return JsonResponse(
                {
                    "code": "invalid",
                    "detail": "The request is not valid; see errors.",
                    "errors": {name: [message]},
                },
                status=400,
            )
        return HttpResponse(
            f"<p>The query parameter {escape(name)!s} is not valid: {message}</p>",
            status=400,
        )
