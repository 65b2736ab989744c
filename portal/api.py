"""REST API foundations: errors as {code, detail}, tenant resolution and role permissions."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.errors import ApplicationError
from tenants.models import Tenant

TENANT_HEADER = OpenApiParameter(
    name="X-Tenant",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="System administrators name the tenant they act in by its slug.",
)


class TenantRequired(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "tenant_required"
    default_detail = "System administrators must name a tenant with the X-Tenant header."


class MessageChannelsOff(exceptions.APIException):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "message_channels_disabled"
    default_detail = "Message Channels are switched off for this tenant."


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


def resolve_api_tenant(request: Request) -> Tenant:
    """Return the tenant an API request acts in; another tenant's slug is a 404."""
    user = request.user
    slug = request.headers.get("X-Tenant", "").strip()
    if user.is_system_admin:
        if not slug:
            raise TenantRequired()
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise exceptions.NotFound(f"No tenant {slug!r}.")
        return tenant
    if user.tenant is None or (slug and slug != user.tenant.slug):
        raise exceptions.NotFound(f"No tenant {slug!r}.")
    return user.tenant


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


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Base of every tenant API route: resolves self.tenant and scopes the queryset to it."""

    model: Any = None
    requires_message_channels = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = resolve_api_tenant(request)
        if self.requires_message_channels and not self.tenant.message_channels_enabled:
            raise MessageChannelsOff()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.for_tenant(self.tenant)
