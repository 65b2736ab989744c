"""System administrators' API for tenants."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, viewsets

from portal.api import IsSystemAdmin
from tenants.models import Tenant
from tenants.services import tenant_create, tenant_update


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


class AdminTenantViewSet(viewsets.ModelViewSet):
    """Create, read, change and delete tenants (system administrators only)."""

    queryset = Tenant.objects.order_by("name")
    serializer_class = TenantSerializer
    permission_classes = [IsSystemAdmin]
    filterset_fields = ["enabled", "message_channels_enabled"]
