"""Request guards every route shares: API authentication throttling, NUL in query strings."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

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
