"""Saved reply templates in the REST API: every user of the tenant reads, administrators write."""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, permissions, serializers

from core.api import IsTenantAdmin
from sms.models import ReplyTemplate
from sms.templates_service import (
    REPLY_TEMPLATE_FIELDS,
    reply_template_delete,
    reply_template_save,
)
from tenants.api import TenantScopedViewSet


class ReplyTemplateSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=100)
    body = serializers.CharField(max_length=1600)

    class Meta:
        model = ReplyTemplate
        fields = ["id", *REPLY_TEMPLATE_FIELDS, "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list[Any] = []

    def _save(self, template: ReplyTemplate | None, data: dict[str, Any]) -> ReplyTemplate:
        return reply_template_save(
            tenant=self.context["view"].tenant,
            actor=self.context["request"].user,
            template=template,
            **data,
        )

    def create(self, validated_data: dict[str, Any]) -> ReplyTemplate:
        return self._save(None, validated_data)

    def update(self, instance: ReplyTemplate, validated_data: dict[str, Any]) -> ReplyTemplate:
        return self._save(instance, validated_data)


class ReplyTemplateViewSet(
    TenantScopedViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The tenant's saved replies; tenant administrators create, change and delete them."""

    model = ReplyTemplate
    serializer_class = ReplyTemplateSerializer

    def get_permissions(self) -> list[Any]:
        if self.request.method in permissions.SAFE_METHODS:
            return [permissions.IsAuthenticated()]
        return [IsTenantAdmin()]

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("name", "id")

    def perform_destroy(self, instance: ReplyTemplate) -> None:
        reply_template_delete(template=instance, actor=self.request.user)
