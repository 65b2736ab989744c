"""`/api/v1/contacts/`: the tenant's contacts (name, number, notes), for every user of it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers

from core.api import TENANT_HEADER
from sms.contacts import contact_delete, contact_save
from sms.models import Contact
from tenants.api import ServiceSavedSerializer, TenantScopedViewSet


class ContactSerializer(ServiceSavedSerializer):
    number = serializers.CharField(
        max_length=40,
        help_text="A US or Canadian number (stored as E.164, +1 and 10 digits) or a short code; "
        "one contact per number in a tenant.",
    )

    class Meta:
        model = Contact
        fields = ["id", "name", "number", "notes", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []

    service = staticmethod(contact_save)
    service_instance = "contact"


@extend_schema_view(
    **{
        action: extend_schema(parameters=[TENANT_HEADER])
        for action in ("list", "create", "retrieve", "update", "partial_update", "destroy")
    }
)
class ContactViewSet(
    TenantScopedViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """The tenant's contacts; every user of the tenant reads and keeps them."""

    model = Contact
    serializer_class = ContactSerializer

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("name", "id")

    def perform_destroy(self, instance: Contact) -> None:
        contact_delete(contact=instance, actor=self.request.user)
