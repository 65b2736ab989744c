"""Inbound rules and conversations in the REST API."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import F
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER, IsTenantAdmin
from sms.inbound.rules import (
    RULE_FIELDS,
    inbound_rule_delete,
    inbound_rule_save,
    inbound_rule_secret_rotate,
)
from sms.models import Conversation, InboundRule
from sms.selectors import conversations_for_user
from tenants.api import TenantScopedViewSet
from tenants.models import Extension, RingGroup
from trunks.models import Trunk
from trunks.numbers import normalize_number


class _TenantRelatedField(serializers.PrimaryKeyRelatedField):
    """An id chosen among the request tenant's rows; another tenant's id is "does not exist"."""

    def rows(self, tenant: Any) -> Any:
        raise NotImplementedError

    def get_queryset(self) -> Any:
        view = self.context.get("view")
        return self.rows(getattr(view, "tenant", None))


class TenantTrunkIdField(_TenantRelatedField):
    def rows(self, tenant: Any) -> Any:
        return Trunk.objects.available_to(tenant)


class TenantExtensionIdField(_TenantRelatedField):
    def rows(self, tenant: Any) -> Any:
        return Extension.objects.for_tenant(tenant)


class TenantRingGroupIdField(_TenantRelatedField):
    def rows(self, tenant: Any) -> Any:
        return RingGroup.objects.for_tenant(tenant)


class InboundRuleSerializer(serializers.ModelSerializer):
    trunk = TenantTrunkIdField()
    office_extension = TenantExtensionIdField(required=False, allow_null=True)
    office_ring_group = TenantRingGroupIdField(required=False, allow_null=True)
    after_hours_extension = TenantExtensionIdField(required=False, allow_null=True)
    after_hours_ring_group = TenantRingGroupIdField(required=False, allow_null=True)
    holiday_extension = TenantExtensionIdField(required=False, allow_null=True)
    holiday_ring_group = TenantRingGroupIdField(required=False, allow_null=True)

    class Meta:
        model = InboundRule
        fields = ["id", *RULE_FIELDS, "did_start", "did_end", "created_at"]
        read_only_fields = ["id", "did_start", "did_end", "created_at"]
        # The service checks the name within the tenant, with the error on its field.
        validators: list[Any] = []

    def create(self, validated_data: dict[str, Any]) -> InboundRule:
        view = self.context["view"]
        return inbound_rule_save(
            tenant=view.tenant, actor=self.context["request"].user, **validated_data
        )

    def update(self, instance: InboundRule, validated_data: dict[str, Any]) -> InboundRule:
        view = self.context["view"]
        return inbound_rule_save(
            tenant=view.tenant,
            actor=self.context["request"].user,
            rule=instance,
            **validated_data,
        )


class InboundRuleDetailSerializer(InboundRuleSerializer):
    """A rule read alone: with the secret that signs its HTTP POST destinations."""

    webhook_secret = serializers.SerializerMethodField(
        help_text="Signs HTTP POST destinations (X-Seed-Signature: sha256=HMAC-SHA256 of "
        '"<timestamp>.<body>"); null until the first HTTP delivery or rotation.'
    )

    class Meta(InboundRuleSerializer.Meta):
        fields = [*InboundRuleSerializer.Meta.fields, "webhook_secret"]

    def get_webhook_secret(self, rule: InboundRule) -> str | None:
        return rule.webhook_secret or None


class WebhookSecretSerializer(serializers.Serializer):
    webhook_secret = serializers.CharField(read_only=True)


_SCHEMA = {
    name: extend_schema(parameters=[TENANT_HEADER])
    for name in ("list", "create", "partial_update", "update", "destroy")
}
_SCHEMA["retrieve"] = extend_schema(
    parameters=[TENANT_HEADER], responses={200: InboundRuleDetailSerializer}
)


@extend_schema_view(**_SCHEMA)
class InboundRuleViewSet(
    TenantScopedViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The tenant's inbound rules (tenant administrators)."""

    model = InboundRule
    serializer_class = InboundRuleSerializer
    permission_classes = [IsTenantAdmin]
    requires_message_channels = True

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("priority", "name", "id")

    def get_serializer_class(self) -> Any:
        if self.action == "retrieve":
            return InboundRuleDetailSerializer
        return super().get_serializer_class()

    def perform_destroy(self, instance: InboundRule) -> None:
        inbound_rule_delete(rule=instance, actor=self.request.user)

    @extend_schema(
        parameters=[TENANT_HEADER], request=None, responses={200: WebhookSecretSerializer}
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Replace the secret that signs the rule's HTTP POST destinations."""
        secret = inbound_rule_secret_rotate(rule=self.get_object(), actor=request.user)
        return Response({"webhook_secret": secret}, status=status.HTTP_200_OK)


class NumberFilter(django_filters.CharFilter):
    """Match a number as stored (E.164), whichever way the caller wrote it."""

    def filter(self, qs: Any, value: Any) -> Any:
        if not value:
            return qs
        # A "+" in a query string arrives as a space.
        return super().filter(qs, normalize_number(value.strip().replace(" ", "+")))


class ConversationFilter(django_filters.FilterSet):
    did = NumberFilter(field_name="did")
    remote = NumberFilter(field_name="remote")

    class Meta:
        model = Conversation
        fields = ["did", "remote"]


class ConversationSerializer(serializers.ModelSerializer):
    # Null when the conversation has no extension or ring group (the field is always present).
    extension_number = serializers.CharField(
        source="extension.number", allow_null=True, read_only=True
    )
    ring_group_name = serializers.CharField(
        source="ring_group.name", allow_null=True, read_only=True
    )

    class Meta:
        model = Conversation
        fields = [
            "id",
            "configuration",
            "did",
            "remote",
            "extension",
            "extension_number",
            "ring_group",
            "ring_group_name",
            "last_message_at",
            "last_message_text",
            "unread_count",
        ]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(parameters=[TENANT_HEADER]),
    retrieve=extend_schema(parameters=[TENANT_HEADER]),
)
class ConversationViewSet(TenantScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Conversations the caller may read: all for administrators, else his and his groups'."""

    model = Conversation
    serializer_class = ConversationSerializer
    filterset_class = ConversationFilter
    requires_message_channels = True

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        return (
            conversations_for_user(user=self.request.user, tenant=self.tenant)
            .select_related("extension", "ring_group")
            .order_by(F("last_message_at").desc(nulls_last=True), "-id")
        )
