"""SMS/MMS configurations in the REST API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER, IsTenantAdmin
from sms.configurations import (
    EDITABLE_FIELDS,
    sms_configuration_create,
    sms_configuration_delete,
    sms_configuration_rotate_webhook,
    sms_configuration_update,
    sms_configuration_verify_start,
)
from sms.models import SmsConfiguration
from tenants.api import TenantScopedViewSet
from trunks.models import Brand, Trunk


class TenantTrunkField(serializers.PrimaryKeyRelatedField):
    """A trunk id, chosen among the VoIP.ms trunks assigned to the request's tenant."""

    def get_queryset(self) -> Any:
        view = self.context.get("view")
        tenant = getattr(view, "tenant", None)
        return Trunk.objects.available_to(tenant).filter(brand=Brand.VOIPMS)


class SmsConfigurationSerializer(serializers.ModelSerializer):
    trunk = TenantTrunkField()
    password = serializers.CharField(
        source="api_password",
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="The VoIP.ms API password; write-only.",
    )
    password_set = serializers.SerializerMethodField()
    webhook_url = serializers.CharField(read_only=True)
    trunk_name = serializers.CharField(source="trunk", read_only=True)
    trunk_host = serializers.CharField(source="trunk.host", read_only=True)

    class Meta:
        model = SmsConfiguration
        fields = [
            "id",
            *EDITABLE_FIELDS,
            "password",
            "password_set",
            "trunk_name",
            "trunk_host",
            "webhook_url",
            "last_webhook_at",
            "last_error",
            "last_error_at",
            "verification_status",
            "verification_result",
            "verified_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "last_webhook_at",
            "last_error",
            "last_error_at",
            "verification_status",
            "verification_result",
            "verified_at",
            "created_at",
            "updated_at",
        ]
        validators: list[Any] = []

    def get_password_set(self, obj: SmsConfiguration) -> bool:
        return bool(obj.api_password)

    def create(self, validated_data: dict[str, Any]) -> SmsConfiguration:
        view = self.context["view"]
        password = validated_data.pop("api_password", "")
        return sms_configuration_create(
            tenant=view.tenant,
            actor=self.context["request"].user,
            api_password=password,
            **validated_data,
        )

    def update(
        self, instance: SmsConfiguration, validated_data: dict[str, Any]
    ) -> SmsConfiguration:
        password = validated_data.pop("api_password", None)
        return sms_configuration_update(
            configuration=instance,
            actor=self.context["request"].user,
            api_password=password,
            **validated_data,
        )


@extend_schema_view(
    list=extend_schema(parameters=[TENANT_HEADER]),
    create=extend_schema(parameters=[TENANT_HEADER]),
    retrieve=extend_schema(parameters=[TENANT_HEADER]),
    partial_update=extend_schema(parameters=[TENANT_HEADER]),
    update=extend_schema(parameters=[TENANT_HEADER]),
    destroy=extend_schema(parameters=[TENANT_HEADER]),
)
class SmsConfigurationViewSet(
    TenantScopedViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The tenant's SMS/MMS configurations (tenant administrators)."""

    model = SmsConfiguration
    serializer_class = SmsConfigurationSerializer
    permission_classes = [IsTenantAdmin]
    requires_message_channels = True

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("trunk").order_by("name")

    def perform_destroy(self, instance: SmsConfiguration) -> None:
        sms_configuration_delete(configuration=instance, actor=self.request.user)

    @extend_schema(
        parameters=[TENANT_HEADER],
        request=None,
        responses=inline_serializer("RotatedWebhook", {"webhook_url": serializers.CharField()}),
    )
    @action(detail=True, methods=["post"], url_path="rotate-webhook")
    def rotate_webhook(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Give the configuration a new webhook URL; the old one stops working at once."""
        url = sms_configuration_rotate_webhook(configuration=self.get_object(), actor=request.user)
        return Response({"webhook_url": url})

    @extend_schema(
        parameters=[TENANT_HEADER],
        request=None,
        responses={
            202: inline_serializer("VerificationStarted", {"status": serializers.CharField()})
        },
    )
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Start checking credentials, the IP allow-list and DIDs at VoIP.ms; poll the object."""
        sms_configuration_verify_start(configuration=self.get_object(), actor=request.user)
        return Response({"status": "running"}, status=status.HTTP_202_ACCEPTED)
