"""The tenant an API request acts in, and system administrators' API for tenants."""

from __future__ import annotations

from typing import Any

import django_filters
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.request import Request

from core.api import IsSystemAdmin, StrictBooleanFilter
from tenants.access import messaging_check
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_update


class TenantRequired(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "tenant_required"
    default_detail = "System administrators must name a tenant with the X-Tenant header."


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


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Base of every tenant API route: resolves self.tenant and scopes the queryset to it."""

    model: Any = None
    requires_message_channels = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = resolve_api_tenant(request)
        if self.requires_message_channels:
            messaging_check(self.tenant)

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.for_tenant(self.tenant)


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "enabled",
            "message_channels_enabled",
            "allow_private_trunks",
            "country",
            "timezone",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def create(self, validated_data: dict[str, Any]) -> Tenant:
        return tenant_create(**validated_data)

    def update(self, instance: Tenant, validated_data: dict[str, Any]) -> Tenant:
        return tenant_update(tenant=instance, **validated_data)


class TenantFilter(django_filters.rest_framework.FilterSet):
    enabled = StrictBooleanFilter()
    message_channels_enabled = StrictBooleanFilter()

    class Meta:
        model = Tenant
        fields = ["enabled", "message_channels_enabled"]


class AdminTenantViewSet(viewsets.ModelViewSet):
    """Create, read, change and delete tenants (system administrators only)."""

    queryset = Tenant.objects.order_by("name")
    serializer_class = TenantSerializer
    permission_classes = [IsSystemAdmin]
    filterset_class = TenantFilter
