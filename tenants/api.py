"""The tenant an API request acts in, and system administrators' API for tenants."""

from __future__ import annotations

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER, IsSystemAdmin, StrictBooleanFilter
from tenants.access import messaging_check
from tenants.models import ApiToken, Tenant, User
from tenants.selectors import api_tokens_visible_to, token_owners_for
from tenants.services import api_token_create, api_token_revoke, tenant_create, tenant_update


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
            raise exceptions.NotFound(_("No tenant %(slug)r.") % {"slug": slug})
        return tenant
    if user.tenant is None or (slug and slug != user.tenant.slug):
        raise exceptions.NotFound(_("No tenant %(slug)r.") % {"slug": slug})
    return user.tenant


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Base of every tenant API route: resolves self.tenant and scopes the queryset to it."""

    model: Any = None
    requires_message_channels = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = resolve_api_tenant(request)
        # With Message Channels off a tenant still reads its data; it may not change or send.
        if self.requires_message_channels and request.method not in permissions.SAFE_METHODS:
            messaging_check(self.tenant)

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.for_tenant(self.tenant)


class ServiceSavedSerializer(serializers.ModelSerializer):
    """A tenant object's serializer that creates and changes it through its service.

    `service` is called as `service(tenant=..., actor=..., <service_instance>=obj, **fields)`,
    the object left out on create, like the tenant site's admin does.
    """

    service: Any = None
    service_instance = ""

    def _save(self, instance: Any, data: dict[str, Any]) -> Any:
        found = {self.service_instance: instance} if instance is not None else {}
        return self.service(
            tenant=self.context["view"].tenant,
            actor=self.context["request"].user,
            **found,
            **data,
        )

    def create(self, validated_data: dict[str, Any]) -> Any:
        return self._save(None, validated_data)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        return self._save(instance, validated_data)


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
            "require_admin_2fa",
            "country",
            "timezone",
            "retention_days",
            "monthly_quota",
            "quota_hard",
            "status_callback_url",
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


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.none(),
        required=False,
        help_text="The owner's id; yourself when left out. Tenant administrators may name a "
        "user of their tenant, system administrators anyone.",
    )
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "user", "username", "created_at", "last_used_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at"]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        owners = self.context.get("owners")
        if owners is not None:
            fields["user"].queryset = owners
        return fields


class NewApiTokenSerializer(ApiTokenSerializer):
    key = serializers.CharField(
        read_only=True, help_text="The key, shown in this answer only: it is stored as a digest."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]


@extend_schema_view(
    list=extend_schema(parameters=[TENANT_HEADER]),
    retrieve=extend_schema(parameters=[TENANT_HEADER]),
    destroy=extend_schema(parameters=[TENANT_HEADER], description="Revoke the token at once."),
)
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Named API tokens: system administrators see all (a tenant's with X-Tenant), tenant
    administrators their tenant's, everyone else his own."""

    serializer_class = ApiTokenSerializer

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        user = request.user
        named = bool(request.headers.get("X-Tenant", "").strip())
        self.scope = resolve_api_tenant(request) if named or not user.is_system_admin else None

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return api_tokens_visible_to(user=self.request.user, tenant=self.scope)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and hasattr(self, "scope"):
            context["owners"] = token_owners_for(user=self.request.user, tenant=self.scope)
        return context

    @extend_schema(
        parameters=[TENANT_HEADER],
        request=ApiTokenSerializer,
        responses={201: NewApiTokenSerializer},
        description="Create a token; the answer holds its key, which is never shown again.",
    )
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = api_token_create(
            user=serializer.validated_data.get("user") or request.user,
            name=serializer.validated_data.get("name", ""),
            actor=request.user,
        )
        body = NewApiTokenSerializer(token, context=self.get_serializer_context()).data
        body["key"] = key
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        api_token_revoke(token=instance, actor=self.request.user)
