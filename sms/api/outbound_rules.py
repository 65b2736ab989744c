"""Outbound rules (with their routes) in the REST API."""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, serializers

from core.api import IsTenantAdmin
from sms.models import OutboundRoute, OutboundRule, SmsConfiguration
from sms.outbound.rules import (
    ROUTE_FIELDS,
    RULE_FIELDS,
    outbound_rule_delete,
    outbound_rule_save,
)
from tenants.api import TenantScopedViewSet
from trunks.models import Trunk


class TenantTrunkField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> Any:
        view = self.context.get("view")
        return Trunk.objects.available_to(getattr(view, "tenant", None))


class TenantConfigurationField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> Any:
        view = self.context.get("view")
        return SmsConfiguration.objects.for_tenant(getattr(view, "tenant", None))


class OutboundRouteSerializer(serializers.ModelSerializer):
    trunk = TenantTrunkField()
    configuration = TenantConfigurationField(
        required=False,
        allow_null=True,
        help_text="Only when several configurations share the trunk: the one to send through; "
        "null picks the one whose VoIP.ms account owns the sending DID.",
    )

    class Meta:
        model = OutboundRoute
        fields = ["position", *ROUTE_FIELDS]
        read_only_fields = ["position"]


class OutboundRuleSerializer(serializers.ModelSerializer):
    routes = OutboundRouteSerializer(many=True, required=False)

    class Meta:
        model = OutboundRule
        fields = ["id", *RULE_FIELDS, "routes", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list[Any] = []

    def _save(self, rule: OutboundRule | None, data: dict[str, Any]) -> OutboundRule:
        routes = data.pop("routes", None)
        return outbound_rule_save(
            tenant=self.context["view"].tenant,
            actor=self.context["request"].user,
            rule=rule,
            routes=routes,
            **data,
        )

    def create(self, validated_data: dict[str, Any]) -> OutboundRule:
        return self._save(None, validated_data)

    def update(self, instance: OutboundRule, validated_data: dict[str, Any]) -> OutboundRule:
        return self._save(instance, validated_data)


class OutboundRuleViewSet(
    TenantScopedViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The tenant's outbound rules, each with up to six ordered routes."""

    model = OutboundRule
    serializer_class = OutboundRuleSerializer
    permission_classes = [IsTenantAdmin]
    requires_message_channels = True

    def get_queryset(self) -> Any:
        return super().get_queryset().prefetch_related("routes").order_by("priority", "name")

    def perform_destroy(self, instance: OutboundRule) -> None:
        outbound_rule_delete(rule=instance, actor=self.request.user)
