"""Trunks in the REST API: the tenant's view, and system administrators' CRUD."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER, IsSystemAdmin
from core.errors import ApplicationError
from tenants.api import TenantScopedViewSet
from tenants.models import Tenant
from trunks.models import Trunk, TrunkAssignment
from trunks.services import (
    TRUNK_FIELDS,
    trunk_assignment_delete,
    trunk_assignment_save,
    trunk_delete,
    trunk_name_check,
    trunk_save,
)


class TenantTrunkSerializer(serializers.ModelSerializer):
    """A trunk as its tenant sees it: host and the tenant's own pool, never credentials."""

    id = serializers.IntegerField(source="trunk.id", read_only=True)
    name = serializers.CharField(source="trunk.name", read_only=True)
    brand = serializers.CharField(source="trunk.brand", read_only=True)
    host = serializers.CharField(source="trunk.host", read_only=True)
    port = serializers.IntegerField(source="trunk.port", read_only=True)
    transport = serializers.CharField(source="trunk.transport", read_only=True)
    enabled = serializers.BooleanField(source="trunk.enabled", read_only=True)
    private = serializers.BooleanField(
        source="trunk.is_private",
        read_only=True,
        help_text="The tenant's own trunk; it may share its name with a system trunk.",
    )

    class Meta:
        model = TrunkAssignment
        fields = [
            "id",
            "name",
            "private",
            "brand",
            "host",
            "port",
            "transport",
            "enabled",
            "did_pool",
            "max_concurrent_calls",
        ]


@extend_schema(parameters=[TENANT_HEADER])
class TenantTrunkViewSet(TenantScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """The trunks shared with the tenant, with its DID pool on each."""

    model = TrunkAssignment
    serializer_class = TenantTrunkSerializer
    lookup_field = "trunk_id"
    lookup_url_kwarg = "pk"

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("trunk").order_by("trunk__name")


class AdminTrunkSerializer(serializers.ModelSerializer):
    sip_password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )
    sip_password_set = serializers.SerializerMethodField()

    class Meta:
        model = Trunk
        fields = ["id", *TRUNK_FIELDS, "sip_password", "sip_password_set", "created_at"]
        read_only_fields = ["id", "created_at"]

    def get_sip_password_set(self, obj: Trunk) -> bool:
        return bool(obj.sip_password)

    def validate_name(self, name: str) -> str:
        # A field error like any other invalid field; trunk_save checks again when it writes.
        trunk = self.instance
        try:
            trunk_name_check(name=name, owner=trunk.tenant if trunk else None, trunk=trunk)
        except ApplicationError as error:
            raise serializers.ValidationError(error.message, code=error.code) from error
        return name

    def create(self, validated_data: dict[str, Any]) -> Trunk:
        password = validated_data.pop("sip_password", None)
        return trunk_save(
            sip_password=password, actor=self.context["request"].user, **validated_data
        )

    def update(self, instance: Trunk, validated_data: dict[str, Any]) -> Trunk:
        password = validated_data.pop("sip_password", None)
        return trunk_save(
            trunk=instance,
            sip_password=password,
            actor=self.context["request"].user,
            **validated_data,
        )


class AdminTrunkViewSet(viewsets.ModelViewSet):
    """Create, read, change and delete trunks (system administrators only)."""

    queryset = Trunk.objects.order_by("name")
    serializer_class = AdminTrunkSerializer
    permission_classes = [IsSystemAdmin]

    def perform_destroy(self, instance: Trunk) -> None:
        trunk_delete(trunk=instance, actor=self.request.user)


class AssignmentSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", queryset=Tenant.objects.all())

    class Meta:
        model = TrunkAssignment
        fields = ["id", "tenant", "did_pool", "max_concurrent_calls"]
        read_only_fields = ["id"]
        validators: list[Any] = []


class AdminTrunkAssignmentViewSet(viewsets.ModelViewSet):
    """A trunk's tenant assignments and DID pools (system administrators only)."""

    serializer_class = AssignmentSerializer
    permission_classes = [IsSystemAdmin]

    def _trunk(self) -> Trunk:
        return get_object_or_404(Trunk, pk=self.kwargs["trunk_pk"])

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return TrunkAssignment.objects.none()
        return TrunkAssignment.objects.filter(trunk=self._trunk()).select_related("tenant")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        trunk = self._trunk()
        if TrunkAssignment.objects.filter(trunk=trunk, tenant=data["tenant"]).exists():
            raise ApplicationError(
                _("%(name)s is on %(name2)s already; change that assignment.")
                % {"name": data["tenant"].name, "name2": trunk.name},
                code="already_assigned",
                field="tenant",
            )
        assignment = trunk_assignment_save(
            trunk=trunk,
            tenant=data["tenant"],
            did_pool=data.get("did_pool", ""),
            max_concurrent_calls=data.get("max_concurrent_calls", 10),
            actor=request.user,
        )
        return Response(self.get_serializer(assignment).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        assignment = self.get_object()
        serializer = self.get_serializer(
            assignment, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        assignment = trunk_assignment_save(
            trunk=assignment.trunk,
            tenant=data.get("tenant", assignment.tenant),
            did_pool=data.get("did_pool", assignment.did_pool),
            max_concurrent_calls=data.get("max_concurrent_calls", assignment.max_concurrent_calls),
            assignment=assignment,
            actor=request.user,
        )
        return Response(self.get_serializer(assignment).data)

    def perform_destroy(self, instance: TrunkAssignment) -> None:
        trunk_assignment_delete(assignment=instance, actor=self.request.user)
