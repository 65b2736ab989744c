"""Received messages: from a stored webhook (or a poll) to a routed message, exactly once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from portal import metrics
from sms.models import (
    Action,
    Conversation,
    DeliveryStatus,
    Direction,
    InboundRule,
    Kind,
    Message,
    MessageMedia,
    MessageStatus,
    OptOut,
    SmsConfiguration,
    Source,
    WebhookDelivery,
)
from sms.selectors import inbound_rule_matching, time_period
from tenants.models import Extension, RingGroup, RingGroupMember
from trunks.selectors import did_owner_tenant_id
from trunks.voipms.webhooks import (
    IgnoredEvent,
    InboundMessage,
    WebhookError,
    parse_callback_query_string,
    parse_webhook_json,
)

logger = logging.getLogger(__name__)

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "UNSTOP", "YES"}
HELP_WORDS = {"HELP"}


@dataclass(frozen=True)
class Ingested:
    """What became of one inbound message."""

    message: Message | None
    duplicate: bool


def _note_error(configuration: SmsConfiguration, error: str) -> None:
    SmsConfiguration.objects.filter(pk=configuration.pk).update(
        last_error=error[:500], last_error_at=timezone.now()
    )


def webhook_delivery_process(*, delivery_id: int) -> None:
    """Parse a stored delivery and ingest its message; a delivery already done is left alone."""
    delivery = (
        WebhookDelivery.objects.select_related("configuration__tenant", "configuration__trunk")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status not in (DeliveryStatus.RECEIVED, DeliveryStatus.FAILED):
        return
    configuration = delivery.configuration
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    try:
        if delivery.method == "POST" and bytes(delivery.body).strip():
            parsed = parse_webhook_json(bytes(delivery.body), now=delivery.received_at)
        else:
            parsed = parse_callback_query_string(delivery.query, now=delivery.received_at)
    except WebhookError as error:
        _finish_delivery(delivery, DeliveryStatus.REJECTED, str(error))
        _note_error(configuration, f"Rejected webhook: {error}")
        return
    if isinstance(parsed, IgnoredEvent):
        _finish_delivery(delivery, DeliveryStatus.IGNORED, parsed.reason)
        return
    try:
        result = inbound_message_ingest(
            configuration=configuration,
            inbound=parsed,
            source=Source.WEBHOOK if parsed.source == "webhook" else Source.CALLBACK,
            delivery=delivery,
        )
    except Exception as error:
        _finish_delivery(
            delivery, DeliveryStatus.FAILED, f"processing failed: {type(error).__name__}"
        )
        _note_error(configuration, f"Processing failed: {type(error).__name__}")
        raise
    if result.duplicate:
        metrics.incr("webhooks_duplicate")
        _finish_delivery(delivery, DeliveryStatus.DUPLICATE, "already received")
    else:
        _finish_delivery(delivery, DeliveryStatus.PROCESSED, "")


def _finish_delivery(delivery: WebhookDelivery, status: str, reason: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status, reason=reason[:500], processed_at=timezone.now()
    )


def inbound_message_ingest(
    *,
    configuration: SmsConfiguration,
    inbound: InboundMessage,
    source: str,
    delivery: WebhookDelivery | None = None,
) -> Ingested:
    """Store a received message once per (account, kind, id), then route it."""
    tenant = configuration.tenant
    received_at = inbound.received_at or (delivery.received_at if delivery else timezone.now())
    try:
        with transaction.atomic():
            message = Message.objects.create(
                tenant=tenant,
                configuration=configuration,
                direction=Direction.IN,
                kind=Kind.MMS if inbound.kind == "mms" else Kind.SMS,
                status=MessageStatus.RECEIVED,
                source=source,
                did=inbound.to_number,
                remote=inbound.from_number,
                body=inbound.text,
                media_urls=list(inbound.media_urls),
                provider_account=configuration.username.lower(),
                provider_id=inbound.provider_id,
                delivery=delivery,
                received_at=received_at,
                received_at_note=inbound.time_note,
            )
    except IntegrityError:
        # The unique constraint on (account, kind, id) says we have it already.
        return Ingested(message=None, duplicate=True)
    with transaction.atomic():
        _route(configuration=configuration, message=message, at=received_at)
        for url in inbound.media_urls:
            media = MessageMedia.objects.create(tenant=tenant, message=message, url=url)
            _enqueue_media(media.pk)
    return Ingested(message=message, duplicate=False)


def _enqueue_media(media_id: int) -> None:
    from sms.tasks import fetch_media

    transaction.on_commit(lambda: fetch_media.delay(media_id))


def _route(*, configuration: SmsConfiguration, message: Message, at: datetime) -> None:
    tenant = configuration.tenant
    owner = did_owner_tenant_id(trunk=configuration.trunk_id, number=message.did)
    if owner != tenant.pk:
        _unrouted(configuration, message, "DID not in pool")
        return
    conversation = _conversation(message)
    _keywords(configuration=configuration, message=message, conversation=conversation)
    rule = inbound_rule_matching(
        configuration=configuration, did=message.did, caller=message.remote
    )
    if rule is None:
        _unrouted(configuration, message, "no inbound rule matches")
        return
    period = time_period(tenant=tenant, at=at, rule=rule)
    _deliver(rule=rule, period=period, message=message, conversation=conversation)


def _unrouted(configuration: SmsConfiguration, message: Message, reason: str) -> None:
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.UNROUTED, routed_to=reason)
    message.status, message.routed_to = MessageStatus.UNROUTED, reason
    _note_error(configuration, f"Message from {message.remote} to {message.did} unrouted: {reason}")


def _conversation(message: Message) -> Conversation:
    conversation, _ = Conversation.objects.get_or_create(
        tenant=message.tenant,
        did=message.did,
        remote=message.remote,
        defaults={"configuration": message.configuration},
    )
    preview = message.body[:200] or ("[media]" if message.media_urls else "")
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=message.received_at or timezone.now(),
        last_message_text=preview,
        unread_count=F("unread_count") + 1,
        configuration=message.configuration,
    )
    Message.objects.filter(pk=message.pk).update(conversation=conversation)
    message.conversation = conversation
    return conversation


def _keywords(
    *, configuration: SmsConfiguration, message: Message, conversation: Conversation
) -> None:
    from sms.services.outbound import message_queue_automatic

    word = message.body.strip().upper()
    if word in STOP_WORDS:
        _, created = OptOut.objects.get_or_create(
            tenant=message.tenant,
            did=message.did,
            remote=message.remote,
            defaults={"keyword": word},
        )
        if created and configuration.stop_reply:
            # The confirmation is the one message an opt-out never blocks.
            message_queue_automatic(
                conversation=conversation, body=configuration.stop_reply, ignore_opt_out=True
            )
    elif word in START_WORDS:
        OptOut.objects.for_tenant(message.tenant).filter(
            did=message.did, remote=message.remote
        ).delete()
    elif word in HELP_WORDS and configuration.help_reply:
        message_queue_automatic(conversation=conversation, body=configuration.help_reply)


def _deliver(
    *, rule: InboundRule, period: str, message: Message, conversation: Conversation
) -> None:
    from sms.services.outbound import message_queue_automatic

    action = getattr(rule, f"{period}_action")
    target = getattr(rule, f"{period}_target")
    status, routed_to, extension = MessageStatus.ROUTED, "", None
    if action == Action.EXTENSION:
        extension = getattr(rule, f"{period}_extension")
        if extension is None:
            status, routed_to = MessageStatus.UNROUTED, f"rule {rule.name}: no extension set"
        else:
            routed_to = f"extension {extension.number}"
            Conversation.objects.filter(pk=conversation.pk).update(
                extension=extension, ring_group=None
            )
            if extension.notify_by_email and extension.email:
                _enqueue_destination(message.pk, Action.EMAIL, extension_id=extension.pk)
    elif action == Action.RING_GROUP:
        group = getattr(rule, f"{period}_ring_group")
        extension = _ring_group_handler(group, conversation) if group else None
        if group is None:
            status, routed_to = MessageStatus.UNROUTED, f"rule {rule.name}: no ring group set"
        else:
            routed_to = f"ring group {group.name}" + (f" → {extension.number}" if extension else "")
            if extension is not None and extension.notify_by_email and extension.email:
                _enqueue_destination(message.pk, Action.EMAIL, extension_id=extension.pk)
    elif action == Action.FORWARD:
        routed_to = f"forwarded to {target}"
        message_queue_automatic(
            conversation=conversation, body=f"From {message.remote}: {message.body}", to=target
        )
    elif action in (Action.EMAIL, Action.HTTP):
        routed_to = f"{action} {target}"
        _enqueue_destination(message.pk, action, rule_id=rule.pk, period=period)
    elif action == Action.AUTO_REPLY:
        routed_to = "auto-reply"
        if target:
            message_queue_automatic(conversation=conversation, body=target)
    else:
        status, routed_to = MessageStatus.IGNORED, f"dropped by rule {rule.name}"
    Message.objects.filter(pk=message.pk).update(
        status=status, routed_to=routed_to[:200], rule_name=rule.name, extension=extension
    )
    message.status, message.routed_to, message.rule_name = status, routed_to, rule.name
    if status == MessageStatus.UNROUTED:
        _note_error(message.configuration, f"Message to {message.did} unrouted: {routed_to}")


def _ring_group_handler(group: RingGroup, conversation: Conversation) -> Extension | None:
    """Keep the conversation's agent, or assign the next enabled member round-robin."""
    conversation.refresh_from_db(fields=["extension", "ring_group"])
    if conversation.ring_group_id == group.pk and conversation.extension_id:
        return conversation.extension
    group = RingGroup.objects.select_for_update().get(pk=group.pk)
    members = list(
        RingGroupMember.objects.filter(ring_group=group, enabled=True)
        .select_related("extension")
        .order_by("position", "id")
    )
    if not members:
        Conversation.objects.filter(pk=conversation.pk).update(ring_group=group, extension=None)
        return None
    ids = [m.extension_id for m in members]
    index = (
        (ids.index(group.last_assigned_id) + 1) % len(ids) if group.last_assigned_id in ids else 0
    )
    chosen = members[index].extension
    RingGroup.objects.filter(pk=group.pk).update(last_assigned=chosen)
    Conversation.objects.filter(pk=conversation.pk).update(ring_group=group, extension=chosen)
    return chosen


def _enqueue_destination(
    message_id: int,
    action: str,
    *,
    rule_id: int | None = None,
    period: str | None = None,
    extension_id: int | None = None,
) -> None:
    from sms.tasks import deliver_to_destination

    transaction.on_commit(
        lambda: deliver_to_destination.delay(
            message_id, action, rule_id=rule_id, period=period, extension_id=extension_id
        )
    )
