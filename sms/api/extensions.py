"""Extensions, with the numbers they may send SMS from, in the REST API."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from core.api import TENANT_HEADER, IsTenantAdmin
from sms.api.inbound_rules import TenantTrunkIdField
from sms.models import SmsCallerId
from sms.outbound.rules import extension_caller_ids_set
from tenants.api import TenantScopedViewSet
from tenants.models import Extension, SmsPermission, User
from tenants.services import extension_delete, extension_save


class TenantUserIdField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self) -> Any:
        view = self.context.get("view")
        return User.objects.for_tenant(getattr(view, "tenant", None))


class CallerIdSerializer(serializers.ModelSerializer):
    trunk = TenantTrunkIdField(
        required=False,
        help_text="The trunk whose pool holds the DID; left out: the one trunk that does.",
    )
    did = serializers.CharField(max_length=20, help_text="A number of the tenant's DID pool.")
    description = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )

    class Meta:
        model = SmsCallerId
        fields = ["did", "trunk", "description"]


class ExtensionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(
        source="display_name", max_length=100, required=False, allow_blank=True, default=""
    )
    user = TenantUserIdField(required=False, allow_null=True, default=None)
    email_notify = serializers.BooleanField(
        source="notify_by_email",
        required=False,
        default=False,
        help_text="E-mail the extension (at email) when a message arrives.",
    )
    sms_permission = serializers.ChoiceField(
        choices=SmsPermission.choices,
        required=False,
        help_text="disable: no sending; allow: from its own number only (the first, lowest, of its "
        "caller_ids); "
        "allow_sender_id: from any of its caller_ids, chosen per message.",
    )
    sms_enabled = serializers.BooleanField(
        required=False,
        help_text="Shortcut of sms_permission: true is allow (or allow with Sender ID when "
        "already so), false is disable.",
    )
    caller_ids = CallerIdSerializer(
        many=True,
        required=False,
        source="sms_caller_ids",
        help_text="The DIDs of the tenant's pool it may send from; a write replaces them all.",
    )

    class Meta:
        model = Extension
        fields = [
            "id",
            "number",
            "name",
            "user",
            "email",
            "email_notify",
            "sms_permission",
            "sms_enabled",
            "caller_ids",
        ]
        read_only_fields = ["id"]
        # The service checks the number within the tenant, with the error on its field.
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        enabled = attrs.pop("sms_enabled", None)
        if enabled is None:
            return attrs
        if "sms_permission" in attrs:
            if (attrs["sms_permission"] != SmsPermission.DISABLE) != enabled:
                raise serializers.ValidationError(
                    {"sms_enabled": [_("It contradicts sms_permission; give one of them.")]}
                )
            return attrs
        current = self.instance.sms_permission if self.instance else SmsPermission.DISABLE
        if not enabled:
            attrs["sms_permission"] = SmsPermission.DISABLE
        elif current == SmsPermission.DISABLE:
            attrs["sms_permission"] = SmsPermission.ALLOW
        return attrs

    def _save(self, extension: Extension | None, data: dict[str, Any]) -> Extension:
        view = self.context["view"]
        caller_ids = data.pop("sms_caller_ids", None)
        with transaction.atomic():
            extension = extension_save(
                tenant=view.tenant, actor=self.context["request"].user, extension=extension, **data
            )
            if caller_ids is not None:
                extension_caller_ids_set(
                    tenant=view.tenant, extension=extension, caller_ids=caller_ids
                )
        return Extension.objects.prefetch_related("sms_caller_ids").get(pk=extension.pk)

    def create(self, validated_data: dict[str, Any]) -> Extension:
        return self._save(None, validated_data)

    def update(self, instance: Extension, validated_data: dict[str, Any]) -> Extension:
        return self._save(instance, validated_data)


_SCHEMA = {
    action: extend_schema(parameters=[TENANT_HEADER])
    for action in ("list", "create", "retrieve", "partial_update", "update", "destroy")
}


@extend_schema_view(**_SCHEMA)
class ExtensionViewSet(
    TenantScopedViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The tenant's extensions (tenant administrators)."""

    model = Extension
    serializer_class = ExtensionSerializer
    permission_classes = [IsTenantAdmin]

    def get_queryset(self) -> Any:
        return super().get_queryset().prefetch_related("sms_caller_ids").order_by("number", "id")

    def perform_destroy(self, instance: Extension) -> None:
        extension_delete(extension=instance, actor=self.request.user)
