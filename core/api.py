"""REST API foundations: errors as {code, detail} and role permissions."""

from __future__ import annotations

from typing import Any

from csp.constants import UNSAFE_INLINE
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, permissions, renderers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError

TENANT_HEADER = OpenApiParameter(
    name="X-Tenant",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="System administrators name the tenant they act in by its slug.",
)


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """Render DRF's browsable API, allowing the inline styles its templates carry."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> Any:
        response = (renderer_context or {}).get("response")
        if response is not None:
            # django-csp adds these sources to the policy of this one response.
            response._csp_update = {"style-src": [UNSAFE_INLINE]}
        return super().render(data, accepted_media_type, renderer_context)


def _codes(detail: Any) -> Any:
    if isinstance(detail, list):
        return [_codes(item) for item in detail]
    if isinstance(detail, dict):
        return {key: _codes(value) for key, value in detail.items()}
    return getattr(detail, "code", "invalid")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn every error into JSON with a stable `code` and a human `detail`."""
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"code": exc.code, "detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": "The request is not valid; see errors.",
            "errors": exc.detail,
        }
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        response.data = {
            "code": code if isinstance(code, str) else "error",
            "detail": str(exc.detail),
        }
    return response


class IsSystemAdmin(permissions.BasePermission):
    message = "Only system administrators may use this route."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_system_admin)


class IsTenantAdmin(permissions.BasePermission):
    """Allow tenant administrators, and system administrators acting in a tenant."""

    message = "Only tenant administrators may use this route."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and (user.is_system_admin or user.is_tenant_admin)
        )
