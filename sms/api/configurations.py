"""SMS/MMS configurations in the REST API."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
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
from sms.models import DidPointing, SmsConfiguration
from sms.provisioning import (
    POINT_MAX_DIDS,
    account_dids,
    did_pointing_results,
    did_pointing_start,
)
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
            "credentials_status",
            "credentials_error",
            "credentials_checked_at",
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
            "credentials_status",
            "credentials_error",
            "credentials_checked_at",
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


class AccountDidSerializer(serializers.Serializer):
    did = serializers.CharField(help_text="The DID in E.164.")
    description = serializers.CharField()
    sms_available = serializers.BooleanField()
    sms_enabled = serializers.BooleanField()
    mms_available = serializers.BooleanField()
    webhook = serializers.CharField(help_text="The SMS/MMS webhook URL set at VoIP.ms.")
    webhook_enabled = serializers.BooleanField()
    points_here = serializers.BooleanField(
        help_text="Whether the webhook URL is this configuration's."
    )
    in_pool = serializers.BooleanField(
        help_text="Whether the DID is in the tenant's DID pool on the configuration's trunk."
    )


class AccountDidsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = AccountDidSerializer(many=True)


class PointDidsSerializer(serializers.Serializer):
    dids = serializers.ListField(
        child=serializers.CharField(max_length=40),
        min_length=1,
        max_length=POINT_MAX_DIDS,
        help_text="DIDs of the tenant's pool on the configuration's trunk.",
    )


class PointResultSerializer(serializers.Serializer):
    did = serializers.CharField()
    ok = serializers.BooleanField(allow_null=True, help_text="null while the DID waits its turn.")
    code = serializers.CharField(
        help_text="pointed, unchanged, or why not: a VoIP.ms status (invalid_did, "
        "sms_wait_message, ...), not_applied, settings_lost, unconfirmed, sms_not_available."
    )
    detail = serializers.CharField(help_text="What changed, or why it failed, in plain words.")
    changes = serializers.ListField(
        child=serializers.DictField(),
        help_text="Each changed setting with its value before and after.",
    )


class DidPointingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["queued", "waiting", "running", "done"])
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    results = PointResultSerializer(many=True)


VOIPMS_FAILED = OpenApiResponse(
    response=inline_serializer(
        "VoipmsFailure", {"code": serializers.CharField(), "detail": serializers.CharField()}
    ),
    description="VoIP.ms refused or failed the read; code is its status.",
)


def _pointing_body(pointing: DidPointing) -> dict[str, Any]:
    return {
        "id": pointing.pk,
        "status": pointing.status,
        "created_at": pointing.created_at,
        "finished_at": pointing.finished_at,
        "results": did_pointing_results(pointing=pointing),
    }


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

    @extend_schema(
        parameters=[TENANT_HEADER],
        responses={200: AccountDidsSerializer, 502: VOIPMS_FAILED},
    )
    @action(detail=True, methods=["get"])
    def dids(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """List the DIDs of the configuration's VoIP.ms account (getDIDsInfo), read now."""
        rows = account_dids(configuration=self.get_object())
        data = AccountDidSerializer(rows, many=True).data
        return Response({"count": len(data), "results": data})

    @extend_schema(
        parameters=[TENANT_HEADER],
        request=PointDidsSerializer,
        responses={202: DidPointingSerializer},
    )
    @action(detail=True, methods=["post"], url_path="point-dids")
    def point_dids(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Point DIDs at this configuration's webhook with setSMS, in the background.

        Answers 202 with the request's id; GET point-dids/{pointing_id}/ until status is done.
        """
        configuration = self.get_object()
        body = PointDidsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pointing = did_pointing_start(
            configuration=configuration, dids=body.validated_data["dids"], actor=request.user
        )
        location = request.build_absolute_uri(f"{pointing.pk}/")
        return Response(
            _pointing_body(pointing),
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": location},
        )

    @extend_schema(
        parameters=[
            TENANT_HEADER,
            OpenApiParameter(
                "pointing_id",
                OpenApiTypes.INT,
                OpenApiParameter.PATH,
                description="The id a POST to point-dids/ answered.",
            ),
        ],
        responses={200: DidPointingSerializer},
    )
    @action(detail=True, methods=["get"], url_path=r"point-dids/(?P<pointing_id>[0-9]{1,18})")
    def point_dids_result(
        self, request: Request, pk: str | None = None, pointing_id: str = "", **kwargs: Any
    ) -> Response:
        """Return a pointing request with what happened to each DID."""
        configuration = self.get_object()
        pointing = get_object_or_404(
            DidPointing.objects.for_tenant(self.tenant).filter(configuration=configuration),
            pk=int(pointing_id),
        )
        return Response(_pointing_body(pointing))
