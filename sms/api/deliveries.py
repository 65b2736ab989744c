"""Webhook deliveries in the REST API: what reached a configuration's URL, and reprocessing."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER, IsTenantAdmin
from core.errors import Conflict
from sms.inbound.process import webhook_deliveries_reprocess
from sms.models import DeliveryStatus, WebhookDelivery
from tenants.api import TenantScopedViewSet


class WebhookDeliverySerializer(serializers.ModelSerializer):
    body = serializers.CharField(
        source="body_text", read_only=True, help_text="The raw body, as text."
    )
    messages = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="The ids of the messages it became."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "configuration",
            "received_at",
            "method",
            "query",
            "content_type",
            "remote_addr",
            "headers",
            "body",
            "status",
            "reason",
            "processed_at",
            "attempts",
            "messages",
        ]
        read_only_fields = fields


class DeliveryFilterSerializer(serializers.Serializer):
    """The filters of the delivery list, checked first: a bad one is a 400 naming it."""

    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    configuration = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="A configuration's id."
    )


@extend_schema_view(
    list=extend_schema(parameters=[TENANT_HEADER, DeliveryFilterSerializer]),
    retrieve=extend_schema(parameters=[TENANT_HEADER]),
)
class WebhookDeliveryViewSet(TenantScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Requests that reached the tenant's webhook URLs, with what became of them (tenant
    administrators)."""

    model = WebhookDelivery
    serializer_class = WebhookDeliverySerializer
    permission_classes = [IsTenantAdmin]
    requires_message_channels = True
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        deliveries = super().get_queryset().prefetch_related("messages")
        if self.action == "list":
            given = {name: value for name, value in self.request.query_params.items() if value}
            params = DeliveryFilterSerializer(data=given)
            params.is_valid(raise_exception=True)
            for name, value in params.validated_data.items():
                deliveries = deliveries.filter(**{name: value})
        return deliveries.order_by("-received_at", "-id")

    @extend_schema(
        parameters=[TENANT_HEADER],
        request=None,
        responses={
            202: WebhookDeliverySerializer,
            409: OpenApiResponse(
                description="A duplicate of another delivery is not processed again."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def reprocess(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Process the delivery again (a processed one is routed again)."""
        delivery = self.get_object()
        queued = webhook_deliveries_reprocess(
            tenant=self.tenant,
            deliveries=WebhookDelivery.objects.filter(pk=delivery.pk),
            actor=request.user,
        )
        if not queued:
            raise Conflict(_("A duplicate of another delivery is not processed again."))
        delivery.refresh_from_db()
        return Response(self.get_serializer(delivery).data, status=status.HTTP_202_ACCEPTED)
