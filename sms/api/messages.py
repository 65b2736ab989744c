"""Messages in the REST API: read the log, and send with an optional Idempotency-Key."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import TENANT_HEADER
from sms.models import (
    Action,
    Direction,
    IdempotencyRecord,
    Message,
    MessageStatus,
    Source,
)
from sms.outbound.send import message_cancel, message_send
from sms.selectors import conversations_for_user
from sms.story import message_events, message_routed_to, message_unrouted_reason
from tenants.api import TenantScopedViewSet

IDEMPOTENCY_TTL = timedelta(hours=24)


class RoutedToSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Action.choices)
    id = serializers.IntegerField(
        allow_null=True,
        help_text="The extension's or ring group's id; for other actions the inbound rule's.",
    )
    name = serializers.CharField(
        help_text="The extension's number, the ring group's name or the inbound rule's name."
    )


class MessageEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    type = serializers.ChoiceField(
        choices=[
            ("status", "A status change"),
            ("attempt", "A call to VoIP.ms"),
            ("callback", "A try to POST the status callback"),
        ]
    )
    status = serializers.CharField(
        help_text="The new status; for an attempt its outcome (sent, retry, failed, unknown, "
        "next_route, reconciled, resend); for a callback the status it reported."
    )
    code = serializers.CharField(allow_blank=True)
    detail = serializers.CharField(allow_blank=True)


class MessageSerializer(serializers.ModelSerializer):
    media = serializers.SerializerMethodField()
    extension = serializers.CharField(
        source="extension.number", default=None, allow_null=True, read_only=True
    )
    routed_to = serializers.SerializerMethodField(
        help_text="Where a received message went; null when it was not routed, or sent."
    )
    unrouted_reason = serializers.SerializerMethodField(
        help_text="Why a received message was not routed; null otherwise."
    )
    events = serializers.SerializerMethodField(
        help_text="Every status change and every call to VoIP.ms, oldest first."
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "kind",
            "status",
            "did",
            "remote",
            "body",
            "media",
            "provider_id",
            "error_code",
            "error_message",
            "segments",
            "part_index",
            "extension",
            "routed_to",
            "unrouted_reason",
            "events",
            "created_at",
            "send_at",
            "sent_at",
            "received_at",
            "received_at_note",
        ]
        read_only_fields = fields

    def get_media(self, obj: Message) -> list[dict[str, Any]]:
        stored = [{"url": m.url, "content_type": m.content_type} for m in obj.media.all()]
        return stored or [{"url": url, "content_type": ""} for url in obj.media_urls]

    @extend_schema_field(RoutedToSerializer(allow_null=True))
    def get_routed_to(self, obj: Message) -> dict[str, Any] | None:
        return message_routed_to(obj)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_unrouted_reason(self, obj: Message) -> str | None:
        return message_unrouted_reason(obj)

    @extend_schema_field(MessageEventSerializer(many=True))
    def get_events(self, obj: Message) -> list[dict[str, Any]]:
        return [
            {
                "at": serializers.DateTimeField().to_representation(event.at),
                "type": event.type,
                "status": event.status,
                "code": event.code,
                "detail": event.detail,
            }
            for event in message_events(obj)
        ]


class SendSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=40)
    body = serializers.CharField(allow_blank=True, required=False, default="", max_length=4096)
    media_urls = serializers.ListField(
        child=serializers.URLField(max_length=2000), required=False, default=list, max_length=3
    )
    status_callback = serializers.URLField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Each status change is POSTed here, signed with the tenant's callback secret; "
        "empty uses the tenant's default.",
    )
    send_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="ISO 8601 time to send at (at most a year ahead); the message is stored "
        "scheduled until then. A past time sends now.",
    )

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        # "from" is a Python keyword: declare it by name.
        fields["from"] = serializers.CharField(max_length=40, required=False, allow_blank=True)
        return fields


class MessageFilterSerializer(serializers.Serializer):
    """The filters of the message list, checked before any query: a bad one is a 400 naming it."""

    direction = serializers.ChoiceField(choices=Direction.choices, required=False)
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False)
    did = serializers.CharField(max_length=40, required=False, help_text="Our number, E.164.")
    remote = serializers.CharField(
        max_length=40, required=False, help_text="The other party's number, E.164."
    )
    q = serializers.CharField(
        max_length=200, required=False, help_text="Search the text and the numbers."
    )
    since = serializers.DateTimeField(
        required=False, help_text="ISO 8601 time: messages created at or after it."
    )


@extend_schema_view(
    list=extend_schema(parameters=[TENANT_HEADER, MessageFilterSerializer]),
    retrieve=extend_schema(parameters=[TENANT_HEADER]),
)
class MessageViewSet(
    TenantScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin
):
    """The tenant's messages; POST sends one (202: it is queued for delivery)."""

    model = Message
    serializer_class = MessageSerializer
    requires_message_channels = True
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Message]:
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        messages = (
            super()
            .get_queryset()
            .select_related("extension")
            .prefetch_related("media", "events", "attempts")
        )
        user = self.request.user
        if not (user.is_system_admin or user.is_tenant_admin):
            visible = conversations_for_user(user=user, tenant=self.tenant).values("pk")
            extension = getattr(user, "extension", None)
            mine = Q(extension=extension) if extension is not None else Q(pk__in=[])
            messages = messages.filter(Q(conversation__in=visible) | mine)
        if self.action == "list":
            messages = self._filtered(messages)
        return messages.order_by("-created_at", "-id")

    def _filtered(self, messages: QuerySet[Message]) -> QuerySet[Message]:
        # An empty value means "no filter", as it always has.
        given = {name: value for name, value in self.request.query_params.items() if value}
        params = MessageFilterSerializer(data=given)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        for name in ("direction", "status", "did", "remote"):
            if name in filters:
                messages = messages.filter(**{name: filters[name]})
        if "q" in filters:
            q = filters["q"]
            messages = messages.filter(
                Q(body__icontains=q) | Q(remote__contains=q) | Q(did__contains=q)
            )
        if "since" in filters:
            messages = messages.filter(created_at__gte=filters["since"])
        return messages

    @extend_schema(
        parameters=[
            TENANT_HEADER,
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="The same key and body within 24 h get the same answer, once.",
            ),
        ],
        request=SendSerializer,
        responses={
            202: MessageSerializer,
            403: OpenApiResponse(
                description="Refused with a code: sms_not_allowed, from_not_allowed, "
                "tenant_disabled, message_channels_disabled, or quota_exceeded when the "
                "tenant's hard monthly quota of outbound segments would be passed."
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = request.headers.get("Idempotency-Key", "").strip()[:200]
        if not key:
            return self._send(data)
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        records = IdempotencyRecord.objects.for_tenant(self.tenant).filter(
            user=request.user, key=key, created_at__gte=timezone.now() - IDEMPOTENCY_TTL
        )
        IdempotencyRecord.objects.for_tenant(self.tenant).filter(
            user=request.user, key=key, created_at__lt=timezone.now() - IDEMPOTENCY_TTL
        ).delete()
        try:
            with transaction.atomic():
                existing = records.select_for_update().first()
                if existing is None:
                    response = self._send(data)
                    IdempotencyRecord.objects.create(
                        tenant=self.tenant,
                        user=request.user,
                        key=key,
                        request_hash=digest,
                        response_status=response.status_code,
                        response_body=response.data,
                    )
                    return response
        except IntegrityError:
            # Another request with this key won the race: ours was rolled back whole (its
            # message too); answer as the winner did.
            existing = records.get()
        return self._replay(existing, digest)

    @extend_schema(
        parameters=[TENANT_HEADER],
        request=None,
        responses={
            200: MessageSerializer,
            409: OpenApiResponse(
                description="code not_cancellable: the message is being sent or was sent."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None, **kwargs: Any) -> Response:
        """Cancel a scheduled or queued message (every unsent part of its text)."""
        message = self.get_object()
        message_cancel(message=message, actor=request.user)
        message = self.get_queryset().get(pk=message.pk)
        return Response(MessageSerializer(message).data)

    def _replay(self, record: IdempotencyRecord, digest: str) -> Response:
        if record.request_hash != digest:
            return Response(
                {
                    "code": "idempotency_key_reused",
                    "detail": "This Idempotency-Key was used with another request body.",
                },
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        return Response(record.response_body, status=record.response_status)

    def _send(self, data: dict[str, Any]) -> Response:
        messages = message_send(
            user=self.request.user,
            tenant=self.tenant,
            did=data.get("from") or None,
            to=data["to"],
            body=data.get("body", ""),
            media_urls=tuple(data.get("media_urls", [])),
            source=Source.API,
            status_callback=data.get("status_callback") or "",
            send_at=data.get("send_at"),
        )
        body = MessageSerializer(messages[0]).data
        body["parts"] = [m.pk for m in messages]
        return Response(body, status=status.HTTP_202_ACCEPTED)
