"""REST API foundations: errors as {code, detail}, their place in the schema, role permissions
and pagination."""

from __future__ import annotations

import logging
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, pagination, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError

logger = logging.getLogger(__name__)

TENANT_HEADER = OpenApiParameter(
    name="X-Tenant",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description="System administrators name the tenant they act in by its slug.",
)


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
    if isinstance(exc, DataError):
        # The last guard of "bad input is never a 500": a value the serializers let through
        # but the database cannot store (a NUL inside JSON, a number past its column).
        logger.warning("api: the database refused a value: %s", exc)
        return Response(
            {
                "code": "invalid",
                "detail": _(
                    "A value cannot be stored: it is out of range or holds characters that are "
                    "not allowed."
                ),
            },
            status=400,
        )
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response(
            {
                "code": "protected",
                "detail": _("Other records still use this one; remove or change them first."),
            },
            status=409,
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
            "detail": _("The request is not valid; see errors."),
            "errors": exc.detail,
        }
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes()
        response.data = {
            "code": code if isinstance(code, str) else "error",
            "detail": str(exc.detail),
        }
    return response


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answer: a stable code, a human detail and, for invalid input, "
    "the errors by parameter or field.",
    "properties": {
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "The one field a business rule refused."},
        "errors": {
            "description": "For code `invalid`: the messages by parameter or field name.",
        },
    },
    "required": ["code", "detail"],
}
# What any operation may answer besides success; the messages route adds 409 and 422 itself.
ERROR_RESPONSES = {
    "400": "Invalid input: a query parameter, path parameter or body field (named in errors).",
    "401": "No credentials, or credentials that are not valid.",
    "403": "Authenticated, but not allowed (role, disabled tenant, Message Channels off).",
    "404": "No such object in this tenant, no such tenant (X-Tenant) or no such page.",
    "409": "The request conflicts with the current state.",
    "415": "The body's content type is not accepted.",
    "429": "Too many failed authentications from this address; see Retry-After.",
}
_BODY_METHODS = {"post", "put", "patch"}


def error_responses_hook(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Document the error answers every operation can give, all in the one Error shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                if status == "415" and method not in _BODY_METHODS:
                    continue
                responses.setdefault(status, {"description": description, "content": content})
            for status, response in responses.items():
                # A view that documents an error by its description alone answers the same shape.
                if str(status).startswith("4"):
                    response.setdefault("content", content)
    return result


class PageNumberPagination(pagination.PageNumberPagination):
    """Pages by number; a page that is not a positive whole number is a 400 naming `page`."""

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        number = super().get_page_number(request, paginator)
        if number in self.last_page_strings:
            return number
        if not str(number).isdigit() or int(number) < 1 or len(str(number)) > 9:
            raise exceptions.ValidationError(
                {self.page_query_param: [_("A positive whole number.")]}
            )
        return number


class _TrueOrFalseField(forms.NullBooleanField):
    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if value in (True, "true", "1"):
            return True
        if value in (False, "false", "0"):
            return False
        raise forms.ValidationError(_("Choose true or false."), code="invalid")


class _TrueOrFalseWidget(django_filters.widgets.BooleanWidget):
    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        value = data.get(name)
        # The parent turns any other value into "no filter"; keep it for the field to refuse.
        return {"true": True, "false": False, "1": True, "0": False}.get(value, value)


class StrictBooleanFilter(django_filters.rest_framework.BooleanFilter):
    """A true/false filter that refuses any other value instead of ignoring it."""

    field_class = _TrueOrFalseField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", _TrueOrFalseWidget)
        super().__init__(*args, **kwargs)


class IsSystemAdmin(permissions.BasePermission):
    message = _("Only system administrators may use this route.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_system_admin)


class IsTenantAdmin(permissions.BasePermission):
    """Allow tenant administrators, and system administrators acting in a tenant."""

    message = _("Only tenant administrators may use this route.")

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and (user.is_system_admin or user.is_tenant_admin)
        )
