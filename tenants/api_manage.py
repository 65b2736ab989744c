"""A tenant's users, schedule, ring groups, settings and audit log in the REST API."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER, IsTenantAdmin
from tenants.api import ServiceSavedSerializer, TenantScopedViewSet, resolve_api_tenant
from tenants.models import (
    AuditEvent,
    Extension,
    Holiday,
    OfficeHours,
    RingGroup,
    RingGroupMember,
    Role,
    Tenant,
    User,
)
from tenants.services import (
    tenant_callback_secret_rotate,
    tenant_settings_update,
    user_delete,
    user_save,
)
from tenants.services_groups import (
    holiday_delete,
    holiday_save,
    office_hours_delete,
    office_hours_save,
    ring_group_delete,
    ring_group_members_set,
    ring_group_save,
)

_CRUD = ("list", "create", "retrieve", "partial_update", "update", "destroy")
_SCHEMA = {action: extend_schema(parameters=[TENANT_HEADER]) for action in _CRUD}


class _ScopedExtensionField(serializers.PrimaryKeyRelatedField):
    """An extension of the tenant the request acts in (any, for a system-wide request)."""

    def get_queryset(self) -> Any:
        view = self.context.get("view")
        tenant = getattr(view, "scope", getattr(view, "tenant", None))
        if tenant is None:
            user = getattr(self.context.get("request"), "user", None)
            system = bool(user and user.is_system_admin)
            return Extension.objects.all() if system else Extension.objects.none()
        return Extension.objects.for_tenant(tenant)

    def use_pk_only_optimization(self) -> bool:
        # A reverse one-to-one (a user's extension) has no id column on the user.
        return False


# --- users -----------------------------------------------------------------------------------


class UserSerializer(serializers.ModelSerializer):
    language = serializers.CharField(
        read_only=True,
        help_text="The language the user chose on his profile page (en, fr-ca); empty: the "
        "browser's.",
    )
    role = serializers.ChoiceField(
        choices=Role.choices,
        required=False,
        default=Role.USER,
        help_text="Tenant administrators make users and tenant administrators only.",
    )
    tenant = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="Null for system admins."
    )
    extension = _ScopedExtensionField(
        required=False,
        allow_null=True,
        help_text="The id of the user's extension (of his tenant), or null for none.",
    )
    password = serializers.CharField(
        write_only=True,
        required=False,
        max_length=128,
        style={"input_type": "password"},
        help_text="Write-only; checked with the password rules. A user created without one "
        "cannot sign in with a password.",
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "tenant",
            "extension",
            "is_active",
            "password",
            "two_factor_enabled",
            "time_zone",
            "language",
            "last_login",
            "date_joined",
        ]
        # The time zone and language are the user's own, set on his profile page.
        read_only_fields = [
            "id",
            "two_factor_enabled",
            "time_zone",
            "language",
            "last_login",
            "date_joined",
        ]

    def _save(self, user: User | None, data: dict[str, Any]) -> User:
        view = self.context["view"]
        tenant = user.tenant if user is not None else view.scope
        saved = user_save(actor=self.context["request"].user, tenant=tenant, user=user, **data)
        # Read back: the extension may have changed on the other side of the relation.
        return User.objects.select_related("tenant", "extension").get(pk=saved.pk)

    def create(self, validated_data: dict[str, Any]) -> User:
        return self._save(None, validated_data)

    def update(self, instance: User, validated_data: dict[str, Any]) -> User:
        return self._save(instance, validated_data)


@extend_schema_view(**_SCHEMA)
class UserViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Users: tenant administrators manage their tenant's; system administrators everyone's
    (one tenant's with X-Tenant; without it, new users are system administrators)."""

    serializer_class = UserSerializer
    permission_classes = [IsTenantAdmin]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        named = bool(request.headers.get("X-Tenant", "").strip())
        user = request.user
        self.scope = resolve_api_tenant(request) if named or not user.is_system_admin else None

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return User.objects.none()
        users = User.objects.select_related("tenant", "extension")
        if self.scope is not None:
            users = users.for_tenant(self.scope)
        return users.order_by("username", "id")

    def perform_destroy(self, instance: User) -> None:
        user_delete(user=instance, actor=self.request.user)


# --- ring groups, office hours, holidays -----------------------------------------------------


class RingGroupMemberSerializer(serializers.ModelSerializer):
    extension = _ScopedExtensionField()
    enabled = serializers.BooleanField(required=False, default=True)
    position = serializers.IntegerField(
        required=False, min_value=0, max_value=1_000_000, help_text="Lower comes first."
    )

    class Meta:
        model = RingGroupMember
        fields = ["extension", "enabled", "position"]


class RingGroupSerializer(serializers.ModelSerializer):
    members = RingGroupMemberSerializer(
        many=True,
        required=False,
        source="memberships",
        help_text="The extensions in the group; a write replaces them all.",
    )

    class Meta:
        model = RingGroup
        fields = ["id", "name", "number", "members"]
        read_only_fields = ["id"]
        validators: list[Any] = []

    def _save(self, group: RingGroup | None, data: dict[str, Any]) -> RingGroup:
        view = self.context["view"]
        actor = self.context["request"].user
        members = data.pop("memberships", None)
        with transaction.atomic():
            group = ring_group_save(tenant=view.tenant, actor=actor, group=group, **data)
            if members is not None:
                ring_group_members_set(group=group, members=members, actor=actor)
        return RingGroup.objects.prefetch_related("memberships").get(pk=group.pk)

    def create(self, validated_data: dict[str, Any]) -> RingGroup:
        return self._save(None, validated_data)

    def update(self, instance: RingGroup, validated_data: dict[str, Any]) -> RingGroup:
        return self._save(instance, validated_data)


class _CrudViewSet(
    TenantScopedViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    permission_classes = [IsTenantAdmin]


@extend_schema_view(**_SCHEMA)
class RingGroupViewSet(_CrudViewSet):
    """The tenant's ring groups with their members (tenant administrators)."""

    model = RingGroup
    serializer_class = RingGroupSerializer

    def get_queryset(self) -> Any:
        return super().get_queryset().prefetch_related("memberships").order_by("name", "id")

    def perform_destroy(self, instance: RingGroup) -> None:
        ring_group_delete(group=instance, actor=self.request.user)


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$",
        "example": "09:00:00",
        "description": "A local time of day in the tenant's time zone, without an offset.",
    }
)
class LocalTimeField(serializers.TimeField):
    """A time of day without a UTC offset (the schema's "time" format demands one)."""


class OfficeHoursSerializer(ServiceSavedSerializer):
    start = LocalTimeField()
    end = LocalTimeField()

    class Meta:
        model = OfficeHours
        fields = ["id", "weekday", "start", "end"]
        read_only_fields = ["id"]
        validators: list[Any] = []

    service = staticmethod(office_hours_save)
    service_instance = "hours"


@extend_schema_view(**_SCHEMA)
class OfficeHoursViewSet(_CrudViewSet):
    """The tenant's weekly office hours, in its time zone (Monday is 0)."""

    model = OfficeHours
    serializer_class = OfficeHoursSerializer

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("weekday", "start", "id")

    def perform_destroy(self, instance: OfficeHours) -> None:
        office_hours_delete(hours=instance, actor=self.request.user)


class HolidaySerializer(ServiceSavedSerializer):
    class Meta:
        model = Holiday
        fields = ["id", "name", "start_date", "end_date", "every_year"]
        read_only_fields = ["id"]
        validators: list[Any] = []

    service = staticmethod(holiday_save)
    service_instance = "holiday"


@extend_schema_view(**_SCHEMA)
class HolidayViewSet(_CrudViewSet):
    """The tenant's holidays."""

    model = Holiday
    serializer_class = HolidaySerializer

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("start_date", "id")

    def perform_destroy(self, instance: Holiday) -> None:
        holiday_delete(holiday=instance, actor=self.request.user)


# --- settings --------------------------------------------------------------------------------


class TenantSettingsSerializer(serializers.ModelSerializer):
    callback_secret = serializers.SerializerMethodField(
        help_text='Signs status callbacks (HMAC-SHA256 of "<timestamp>.<body>"); null until '
        "the first rotation."
    )

    class Meta:
        model = Tenant
        fields = [
            "name",
            "slug",
            "timezone",
            "stop_reply",
            "help_reply",
            "start_reply",
            "retention_days",
            "status_callback_url",
            "monthly_quota",
            "quota_hard",
            "callback_secret",
        ]
        read_only_fields = ["name", "slug"]
        extra_kwargs = {
            "monthly_quota": {"help_text": "Set by system administrators; read-only otherwise."},
            "quota_hard": {"help_text": "Set by system administrators; read-only otherwise."},
        }

    def get_callback_secret(self, tenant: Tenant) -> str | None:
        return tenant.callback_secret or None

    def update(self, instance: Tenant, validated_data: dict[str, Any]) -> Tenant:
        return tenant_settings_update(
            tenant=instance, actor=self.context["request"].user, **validated_data
        )


class CallbackSecretSerializer(serializers.Serializer):
    callback_secret = serializers.CharField(read_only=True)


class _TenantView(generics.GenericAPIView):
    permission_classes = [IsTenantAdmin]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.tenant = resolve_api_tenant(request)


class TenantSettingsView(_TenantView):
    """The tenant's settings (tenant administrators). The STOP and HELP replies here are the
    defaults of configurations whose own reply is empty; START is answered from here only."""

    serializer_class = TenantSettingsSerializer

    @extend_schema(parameters=[TENANT_HEADER], operation_id="settings_retrieve")
    def get(self, request: Request) -> Response:
        return Response(self.get_serializer(self.tenant).data)

    @extend_schema(parameters=[TENANT_HEADER], operation_id="settings_partial_update")
    def patch(self, request: Request) -> Response:
        serializer = self.get_serializer(self.tenant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(self.get_serializer(self.tenant).data)


class RotateCallbackSecretView(_TenantView):
    """Replace the tenant's callback secret; callbacks are signed with the new one at once."""

    serializer_class = CallbackSecretSerializer

    @extend_schema(
        parameters=[TENANT_HEADER], request=None, responses={200: CallbackSecretSerializer}
    )
    def post(self, request: Request) -> Response:
        secret = tenant_callback_secret_rotate(tenant=self.tenant, actor=request.user)
        return Response({"callback_secret": secret}, status=status.HTTP_200_OK)


# --- audit log -------------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "actor_name",
            "tenant",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "detail",
            "address",
        ]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    """The filters of the audit log, checked first: a bad one is a 400 naming it."""

    action = serializers.CharField(
        max_length=40, required=False, help_text="e.g. created, changed, manage, sign_in."
    )
    since = serializers.DateTimeField(required=False, help_text="ISO 8601: at or after it.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601: before it.")


@extend_schema_view(list=extend_schema(parameters=[TENANT_HEADER, AuditFilterSerializer]))
class AuditLogViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Who changed what and when: a tenant administrator reads his tenant's events, a system
    administrator everyone's (one tenant's with X-Tenant)."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsTenantAdmin]
    filter_backends: list[Any] = []

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        named = bool(request.headers.get("X-Tenant", "").strip())
        user = request.user
        self.scope = resolve_api_tenant(request) if named or not user.is_system_admin else None

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        events = AuditEvent.objects.select_related("tenant")
        if self.scope is not None:
            events = events.for_tenant(self.scope)
        given = {name: value for name, value in self.request.query_params.items() if value}
        params = AuditFilterSerializer(data=given)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        if "action" in filters:
            events = events.filter(action=filters["action"])
        if "since" in filters:
            events = events.filter(at__gte=filters["since"])
        if "until" in filters:
            events = events.filter(at__lt=filters["until"])
        return events.order_by("-at", "-id")
