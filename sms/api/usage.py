"""Usage of a month and erasing an outside number, in the REST API (tenant administrators)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER, IsTenantAdmin
from sms.retention import remote_number_erase
from sms.usage import month_parse, quota_status, usage_rows, usage_rows_all_tenants, usage_totals
from tenants.api import TenantScopedViewSet, resolve_api_tenant


class UsageRowSerializer(serializers.Serializer):
    tenant = serializers.CharField(help_text="The tenant's slug.")
    tenant_name = serializers.CharField()
    configuration_id = serializers.IntegerField(allow_null=True)
    configuration = serializers.CharField(help_text="Empty for a configuration since deleted.")
    did = serializers.CharField()
    messages_in = serializers.IntegerField()
    segments_in = serializers.IntegerField()
    messages_out = serializers.IntegerField(help_text="Texts sent (a split text counts once).")
    segments_out = serializers.IntegerField(help_text="SMS segments and MMS sent.")
    failed = serializers.IntegerField(help_text="Outbound segments that failed or were blocked.")
    opt_outs = serializers.IntegerField(help_text="Contacts who texted STOP to the DID.")


class UsageTotalsSerializer(serializers.Serializer):
    messages_in = serializers.IntegerField()
    segments_in = serializers.IntegerField()
    messages_out = serializers.IntegerField()
    segments_out = serializers.IntegerField()
    failed = serializers.IntegerField()
    opt_outs = serializers.IntegerField()


class QuotaSerializer(serializers.Serializer):
    quota = serializers.IntegerField(help_text="Outbound segments allowed in a month.")
    used = serializers.IntegerField()
    percent = serializers.IntegerField()
    hard = serializers.BooleanField(help_text="Sends beyond the quota are refused.")
    warning = serializers.BooleanField(help_text="80 % or more is used.")
    exceeded = serializers.BooleanField()


class UsageSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM, in each tenant's time zone.")
    tenant = serializers.CharField(allow_null=True, help_text="Null: every tenant.")
    quota = QuotaSerializer(allow_null=True)
    totals = UsageTotalsSerializer()
    results = UsageRowSerializer(many=True)


ERROR = OpenApiResponse(description='{"code", "detail"}')


class OneDocumentSchema(AutoSchema):
    """Describe a viewset's list action that answers one document, not a list of them."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        return False


class UsageViewSet(viewsets.ViewSet):
    """Messages and segments of a month per configuration and DID, failures and opt-outs."""

    permission_classes = [IsTenantAdmin]
    schema = OneDocumentSchema()

    @extend_schema(
        parameters=[
            TENANT_HEADER,
            OpenApiParameter(
                "month",
                str,
                description="YYYY-MM (default: the current month). Months start at midnight "
                "in the tenant's time zone.",
                pattern=r"^\d{4}-\d{2}$",
            ),
        ],
        responses={
            200: UsageSerializer,
            400: OpenApiResponse(description="code invalid_month (field month)"),
            403: ERROR,
            404: OpenApiResponse(description="No such tenant (X-Tenant)."),
        },
        description="A tenant administrator gets his tenant's usage; a system administrator "
        "names a tenant with X-Tenant, or gets every tenant's rows without it.",
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        every_tenant = request.user.is_system_admin and not request.headers.get("X-Tenant", "")
        tenant = None if every_tenant else resolve_api_tenant(request)
        month = month_parse(request.query_params.get("month"), tenant=tenant)
        if tenant is None:
            rows = usage_rows_all_tenants(month=month)
            quota = None
        else:
            rows = usage_rows(tenant=tenant, month=month)
            quota = quota_status(tenant=tenant, month=month)
        data = {
            "month": str(month),
            "tenant": tenant.slug if tenant is not None else None,
            "quota": None
            if quota is None
            else {
                "quota": quota.quota,
                "used": quota.used,
                "percent": quota.percent,
                "hard": quota.hard,
                "warning": quota.warning,
                "exceeded": quota.exceeded,
            },
            "totals": usage_totals(rows),
            "results": [row.as_dict() for row in rows],
        }
        return Response(UsageSerializer(data).data)


class EraseRemoteSerializer(serializers.Serializer):
    remote = serializers.CharField(
        max_length=40, help_text="The outside number (US/Canadian, or a short code's digits)."
    )


class ErasedSerializer(serializers.Serializer):
    remote = serializers.CharField()
    messages = serializers.IntegerField()
    media = serializers.IntegerField()
    media_files = serializers.IntegerField()
    webhook_deliveries = serializers.IntegerField()
    conversations = serializers.IntegerField()


class EraseRemoteViewSet(TenantScopedViewSet):
    """Erase an outside number's messages, media and conversations (privacy requests)."""

    permission_classes = [IsTenantAdmin]
    serializer_class = EraseRemoteSerializer

    @extend_schema(
        parameters=[TENANT_HEADER],
        request=EraseRemoteSerializer,
        responses={
            200: ErasedSerializer,
            400: OpenApiResponse(description="code invalid (errors) or invalid_number"),
            403: ERROR,
            404: OpenApiResponse(description="No such tenant (X-Tenant)."),
        },
        description="Deletes, in the acting tenant only, every message to or from the number "
        "(with its media files and the webhook deliveries that carried it) and its "
        "conversations; opt-outs stay. Audited. Cannot be undone.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = EraseRemoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        remote = serializer.validated_data["remote"]
        number, counts = remote_number_erase(tenant=self.tenant, remote=remote, actor=request.user)
        return Response({"remote": number, **counts.as_dict()})

    def get_queryset(self) -> Any:
        return []
