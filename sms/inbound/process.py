"""Inbound processing: from a stored webhook delivery (or a poll) to a routed message, once.

One transaction per delivery. The delivery row is locked (that is the claim: a second worker
given the same delivery waits, then finds it done), then the message is deduplicated, checked
against the pool, put in its conversation, read for STOP/START/HELP, matched to an inbound rule
and stored in its final state (`routed`, `unrouted` with the reason, or `ignored`), together with
the rows of its side effects: outbound forwards and replies (outbox rows), e-mail and HTTP
destinations, media downloads. All of it commits at once, or none of it does.

Side effects run after commit, each from its own row, each retried on its own; a sweeper enqueues
again any row whose task was lost. A delivery whose processing raises is marked `failed` with the
error and retried by the sweeper with backoff; Reprocess re-runs a delivery fully, routing its own
message again instead of calling it a duplicate of itself.

Workers take deliveries in batches, as web processes hand them on; a small batch that waited in a
backlog takes the waiting deliveries stored after it along (`webhook_deliveries_process`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from core import metrics
from core.http import backoff_delay
from core.tasks import enqueue
from sms.models import (
    Action,
    Conversation,
    DeliveryStatus,
    DestinationDelivery,
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
from sms.outbound.send import message_queue_automatic
from sms.selectors import (
    inbound_rule_matching,
    shared_read,
    shared_routing_reads,
    shared_routing_reads_active,
    time_period,
)
from tenants.access import messaging_refusal
from tenants.models import Extension, RingGroup, RingGroupMember, Tenant, User
from tenants.services import audit_record
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

# Deliveries a worker may (re)process: waiting ones, and failed ones the sweeper retries.
PROCESSABLE = (DeliveryStatus.RECEIVED, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class Ingested:
    """What became of one inbound message: the message, or None for a duplicate."""

    message: Message | None
    duplicate: bool


@dataclass(frozen=True)
class _Routing:
    """Where a message goes, decided before anything is written."""

    status: str
    routed_to: str
    rule: InboundRule | None = None
    period: str = ""
    in_pool: bool = True
    # The structured destination: the action, and the extension's, ring group's or rule's id
    # and name ("" when unrouted).
    route_type: str = ""
    route_id: int | None = None
    route_name: str = ""


# --- a batch of deliveries --------------------------------------------------------------------

# Deliveries a worker processes together when it chooses: the sweeper publishes batches of this
# size, and a small batch in a backlog fills up to it.
BATCH_SIZE = 20
# A delivery that waited this long for its task was in a backlog: web processes hand deliveries
# on within a hand-off interval (0.05 s) and a worker keeping up takes them within milliseconds.
BACKLOG_AFTER = timedelta(seconds=1)


def webhook_deliveries_process(*, delivery_ids: Sequence[int]) -> None:
    """Process a batch of stored deliveries, each in its own transaction; in a backlog, more.

    The batch reads configurations and routing rules once (`shared_routing_reads`). A delivery
    whose processing raises is marked failed (the sweeper retries it) and the batch goes on.

    A quiet web process hands each webhook on at once, so a backlog (workers stopped, or slower
    than the traffic for a while) is mostly a queue of one-delivery batches, and a delivery alone
    costs a worker about three times its share of a full batch. So when a batch smaller than
    BATCH_SIZE waited longer than BACKLOG_AFTER, the worker goes on with the deliveries stored
    after it that still wait, up to a full batch, without waiting for their locks: their own
    tasks find nothing left to do. It stops at the first one another worker has taken meanwhile,
    since that worker is working through the same stretch.
    """
    with shared_routing_reads():
        backlog_after = None
        for delivery_id in delivery_ids:
            processed = _process_logged(delivery_id, skip_locked=False)
            if processed is not None and processed.waited > BACKLOG_AFTER:
                backlog_after = max(backlog_after or 0, delivery_id)
        room = BATCH_SIZE - len(delivery_ids)
        if backlog_after is None or room <= 0:
            return
        cutoff = timezone.now() - BACKLOG_AFTER
        waiting = WebhookDelivery.objects.filter(
            pk__gt=backlog_after, status=DeliveryStatus.RECEIVED, received_at__lt=cutoff
        ).order_by("pk")
        for delivery_id in waiting.values_list("pk", flat=True)[:room]:
            if _process_logged(delivery_id, skip_locked=True) is None:
                break


def _process_logged(delivery_id: int, *, skip_locked: bool) -> _Processed | None:
    """Process one delivery of a batch, logging an error instead of raising it."""
    try:
        return _process_one(delivery_id, skip_locked=skip_locked)
    except Exception:
        logger.exception("webhook delivery %s: processing failed", delivery_id)
        return _Processed(status=DeliveryStatus.FAILED, waited=timedelta(0))


# --- one delivery ---------------------------------------------------------------------------


def webhook_delivery_process(*, delivery_id: int) -> str | None:
    """Process a stored delivery in one transaction and return its final status.

    None: there is nothing to do (no such delivery, or it is already final). On an error the
    delivery is marked failed with the reason (the sweeper retries it) and the error is raised.
    """
    processed = _process_one(delivery_id, skip_locked=False)
    return processed.status if processed is not None else None


@dataclass(frozen=True)
class _Processed:
    """A delivery's final status, and how long it had waited to be processed."""

    status: str
    waited: timedelta


def _process_one(delivery_id: int, *, skip_locked: bool) -> _Processed | None:
    """Claim and process one delivery; None when it was not claimed (done, or held)."""
    try:
        with transaction.atomic():
            delivery = _claim(delivery_id, skip_locked=skip_locked)
            if delivery is None:
                return None
            waited = timezone.now() - delivery.received_at
            status = _process(delivery)
    except IntegrityError:
        # The message's (account, kind, id) is stored already, from another delivery of the
        # same message (a VoIP.ms retry) or from the poll: this delivery is a duplicate.
        status = _finish(delivery_id, DeliveryStatus.DUPLICATE, "already received")
        waited = timedelta(0)
    except Exception as error:
        webhook_delivery_fail(delivery_id=delivery_id, error=error)
        raise
    return _Processed(status=status, waited=waited)


def _claim(delivery_id: int, *, skip_locked: bool = False) -> WebhookDelivery | None:
    """Lock the delivery row for this transaction, if it still waits to be processed.

    A delivery another worker holds is waited for (then found done), or with `skip_locked`
    passed over. Its configuration (with tenant and trunk) is read with it, or, within a batch's
    shared reads, once for the whole batch.
    """
    claimable = WebhookDelivery.objects.select_for_update(
        of=("self",), skip_locked=skip_locked
    ).filter(pk=delivery_id, status__in=PROCESSABLE)
    if not shared_routing_reads_active():
        return claimable.select_related("configuration__tenant", "configuration__trunk").first()
    delivery = claimable.first()
    if delivery is not None:
        delivery.configuration = shared_read(
            ("configuration", delivery.configuration_id),
            lambda: SmsConfiguration.objects.select_related("tenant", "trunk").get(
                pk=delivery.configuration_id
            ),
        )
    return delivery


def _process(delivery: WebhookDelivery) -> str:
    configuration = delivery.configuration
    refusal = messaging_refusal(configuration.tenant) or (
        "" if configuration.enabled else "the configuration is disabled"
    )
    if refusal:
        # Answered 200 at the door already; kept, and ignored for the reason.
        return _close(delivery, DeliveryStatus.IGNORED, refusal)
    try:
        if delivery.method == "POST" and bytes(delivery.body).strip():
            parsed = parse_webhook_json(bytes(delivery.body), now=delivery.received_at)
        else:
            parsed = parse_callback_query_string(delivery.query, now=delivery.received_at)
    except WebhookError as error:
        _note_error(configuration.pk, f"Rejected webhook: {error}")
        return _close(delivery, DeliveryStatus.REJECTED, str(error))
    if isinstance(parsed, IgnoredEvent):
        return _close(delivery, DeliveryStatus.IGNORED, parsed.reason)
    # A retry or a Reprocess routes the delivery's own message again, never a duplicate of it.
    existing = Message.objects.filter(delivery=delivery).first() if delivery.attempts else None
    _ingest(
        configuration=configuration,
        inbound=parsed,
        source=Source.WEBHOOK if parsed.source == "webhook" else Source.CALLBACK,
        delivery=delivery,
        existing=existing,
    )
    return _close(delivery, DeliveryStatus.PROCESSED, "")


def _close(delivery: WebhookDelivery, status: str, reason: str) -> str:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        reason=reason[:500],
        processed_at=timezone.now(),
        next_try_at=None,
        attempts=F("attempts") + 1,
    )
    if status == DeliveryStatus.PROCESSED:
        transaction.on_commit(lambda: metrics.incr("webhooks_processed"))
    return status


def _finish(delivery_id: int, status: str, reason: str) -> str:
    _close(WebhookDelivery(pk=delivery_id), status, reason)
    if status == DeliveryStatus.DUPLICATE:
        metrics.incr("webhooks_duplicate")
    return status


def webhook_delivery_fail(*, delivery_id: int, error: BaseException) -> None:
    """Mark a delivery failed with the error; the sweeper tries it again after a backoff."""
    reason = f"processing failed: {type(error).__name__}: {error}"[:500]
    delivery = (
        WebhookDelivery.objects.filter(pk=delivery_id).only("attempts", "configuration_id").first()
    )
    if delivery is None:
        return
    attempts = delivery.attempts + 1
    next_try_at = None
    if attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delay = backoff_delay(
            attempt=attempts, base=settings.WEBHOOK_RETRY_BASE_SECONDS, cap=3600.0
        )
        next_try_at = timezone.now() + timedelta(seconds=delay)
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.FAILED,
        reason=reason,
        processed_at=timezone.now(),
        attempts=attempts,
        next_try_at=next_try_at,
    )
    _note_error(delivery.configuration_id, f"Processing failed: {type(error).__name__}")
    logger.warning(
        "webhook delivery %s: processing failed (try %d): %s", delivery_id, attempts, reason
    )


# --- one message ----------------------------------------------------------------------------


def inbound_message_ingest(
    *,
    configuration: SmsConfiguration,
    inbound: InboundMessage,
    source: str,
    delivery: WebhookDelivery | None = None,
) -> Ingested:
    """Store a received message once per (account, kind, id), routed, in one transaction."""
    try:
        with transaction.atomic():
            message = _ingest(
                configuration=configuration, inbound=inbound, source=source, delivery=delivery
            )
    except IntegrityError:
        # The unique constraint on (account, kind, id) says we have it already.
        return Ingested(message=None, duplicate=True)
    return Ingested(message=message, duplicate=False)


def _ingest(
    *,
    configuration: SmsConfiguration,
    inbound: InboundMessage,
    source: str,
    delivery: WebhookDelivery | None,
    existing: Message | None = None,
) -> Message:
    """Write the message in its final state and its side effects' rows (inside a transaction)."""
    tenant = configuration.tenant
    received_at = inbound.received_at or (delivery.received_at if delivery else timezone.now())
    did, remote, body = inbound.to_number, inbound.from_number, inbound.text
    rule = inbound_rule_matching(configuration=configuration, did=did, caller=remote)
    routing = _routing(configuration=configuration, rule=rule, did=did, at=received_at)
    extension = _rule_extension(routing)
    conversation = None
    if routing.in_pool:
        conversation = _conversation_touch(
            configuration=configuration,
            did=did,
            remote=remote,
            at=received_at,
            preview=body[:200] or ("[media]" if inbound.media_urls else ""),
            extension=extension,
            count_unread=existing is None,
        )
        if routing.rule is not None and _action(routing) == Action.RING_GROUP:
            extension = _ring_group_handler(_target_group(routing), conversation)
            if extension is not None:
                routing = replace(routing, routed_to=f"{routing.routed_to} → {extension.number}")
    fields = {
        "conversation": conversation,
        "status": routing.status,
        "routed_to": routing.routed_to[:200],
        "rule_name": routing.rule.name if routing.rule else "",
        "extension": extension,
        "route_type": routing.route_type,
        "route_id": routing.route_id,
        "route_name": routing.route_name[:200],
    }
    if existing is not None:
        Message.objects.filter(pk=existing.pk).update(**fields)
        message = existing
        for name, value in fields.items():
            setattr(message, name, value)
    else:
        message = Message.objects.create(
            tenant=tenant,
            configuration=configuration,
            direction=Direction.IN,
            kind=Kind.MMS if inbound.kind == "mms" else Kind.SMS,
            source=source,
            did=did,
            remote=remote,
            body=body,
            media_urls=list(inbound.media_urls),
            provider_account=configuration.username.lower(),
            provider_id=inbound.provider_id,
            delivery=delivery,
            received_at=received_at,
            received_at_note=inbound.time_note,
            **fields,
        )
        _media_rows(message, inbound.media_urls)
    if conversation is not None:
        _keywords(configuration=configuration, message=message, conversation=conversation)
        if routing.rule is not None:
            _side_effects(routing=routing, message=message, conversation=conversation)
        if extension is not None and extension.notify_by_email and extension.email:
            _destination_row(message, Action.EMAIL, extension=extension)
    if routing.status == MessageStatus.UNROUTED:
        _note_error(
            configuration.pk, f"Message from {remote} to {did} unrouted: {routing.routed_to}"
        )
    return message


def _routing(
    *, configuration: SmsConfiguration, rule: InboundRule | None, did: str, at: datetime
) -> _Routing:
    """Decide where the message goes from its rule and the time period it arrived in."""
    if rule is None:
        # A rule's numbers lie in the tenant's pool (the pool cannot shrink under a rule), so
        # the owner is looked up only when no rule matched, to say why.
        owner = did_owner_tenant_id(trunk=configuration.trunk_id, number=did)
        reason = (
            "DID not in pool" if owner != configuration.tenant_id else "no inbound rule matches"
        )
        return _Routing(MessageStatus.UNROUTED, reason)
    period = time_period(tenant=configuration.tenant, at=at, rule=rule)
    action = getattr(rule, f"{period}_action")
    target = getattr(rule, f"{period}_target")
    status, routed_to = MessageStatus.ROUTED, ""
    # Actions other than an extension or a ring group name the rule: its target may be a URL
    # holding a token, which the message log must not show to every user.
    route_id, route_name = rule.pk, rule.name
    if action == Action.EXTENSION:
        chosen = getattr(rule, f"{period}_extension")
        if chosen is None:
            status, routed_to = MessageStatus.UNROUTED, f"rule {rule.name}: no extension set"
        else:
            routed_to = f"extension {chosen.number}"
            route_id, route_name = chosen.pk, _extension_label(chosen)
    elif action == Action.RING_GROUP:
        group = getattr(rule, f"{period}_ring_group")
        if group is None:
            status, routed_to = MessageStatus.UNROUTED, f"rule {rule.name}: no ring group set"
        else:
            routed_to = f"ring group {group.name}"
            route_id, route_name = group.pk, group.name
    elif action == Action.FORWARD:
        routed_to = f"forwarded to {target}"
    elif action in (Action.EMAIL, Action.HTTP):
        routed_to = f"{action} {target}"
    elif action == Action.AUTO_REPLY:
        routed_to = "auto-reply"
    else:
        status, routed_to = MessageStatus.IGNORED, f"dropped by rule {rule.name}"
    if status == MessageStatus.UNROUTED:
        return _Routing(status, routed_to, rule, period)
    return _Routing(status, routed_to, rule, period, True, action, route_id, route_name)


def _extension_label(extension: Extension) -> str:
    if extension.display_name:
        return f"{extension.number} ({extension.display_name})"
    return extension.number


def _action(routing: _Routing) -> str:
    return getattr(routing.rule, f"{routing.period}_action")


def _target_group(routing: _Routing) -> RingGroup:
    return getattr(routing.rule, f"{routing.period}_ring_group")


def _rule_extension(routing: _Routing) -> Extension | None:
    if routing.rule is None or routing.status != MessageStatus.ROUTED:
        return None
    if _action(routing) != Action.EXTENSION:
        return None
    return getattr(routing.rule, f"{routing.period}_extension")


def _conversation_touch(
    *,
    configuration: SmsConfiguration,
    did: str,
    remote: str,
    at: datetime,
    preview: str,
    extension: Extension | None,
    count_unread: bool,
) -> Conversation:
    """Create or update the conversation in one statement; hand it to `extension` if given."""
    sql = _conversation_upsert_sql(assign_extension=extension is not None)
    unread = 1 if count_unread else 0
    params = [
        configuration.tenant_id,
        configuration.pk,
        did,
        remote,
        extension.pk if extension else None,
        at,
        preview,
        unread,
        unread,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pk, extension_id, ring_group_id = cursor.fetchone()
    return Conversation(
        pk=pk,
        tenant=configuration.tenant,
        configuration=configuration,
        did=did,
        remote=remote,
        extension_id=extension_id,
        ring_group_id=ring_group_id,
        last_message_at=at,
        last_message_text=preview,
    )


@cache
def _conversation_upsert_sql(*, assign_extension: bool) -> str:
    """INSERT ... ON CONFLICT DO UPDATE: find or create the conversation in one statement.

    The ORM's get_or_create plus an UPDATE takes two to four statements (and a savepoint) for
    what PostgreSQL and SQLite do in one. Only identifiers from the model are formatted in;
    every value is a parameter.
    """
    q = connection.ops.quote_name
    table = q(Conversation._meta.db_table)
    c = {field.name: q(field.column) for field in Conversation._meta.concrete_fields}
    updates = [
        f"{c['configuration']} = EXCLUDED.{c['configuration']}",
        f"{c['last_message_at']} = EXCLUDED.{c['last_message_at']}",
        f"{c['last_message_text']} = EXCLUDED.{c['last_message_text']}",
        f"{c['unread_count']} = {table}.{c['unread_count']} + %s",
    ]
    if assign_extension:
        updates += [f"{c['extension']} = EXCLUDED.{c['extension']}", f"{c['ring_group']} = NULL"]
    columns = ", ".join(
        c[name]
        for name in (
            "tenant", "configuration", "did", "remote", "extension", "ring_group",
            "last_message_at", "last_message_text", "unread_count",
        )
    )  # fmt: skip
    return " ".join(
        [
            f"INSERT INTO {table} ({columns})",
            "VALUES (%s, %s, %s, %s, %s, NULL, %s, %s, %s)",
            f"ON CONFLICT ({c['tenant']}, {c['did']}, {c['remote']}) DO UPDATE SET",
            ", ".join(updates),
            f"RETURNING {c['id']}, {c['extension']}, {c['ring_group']}",
        ]
    )


def _ring_group_handler(group: RingGroup, conversation: Conversation) -> Extension | None:
    """Keep the conversation's agent, or assign the next enabled member round-robin."""
    if conversation.ring_group_id == group.pk and conversation.extension_id:
        return Extension.objects.filter(pk=conversation.extension_id).first()
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
    conversation.ring_group_id, conversation.extension_id = group.pk, chosen.pk
    return chosen


def _keywords(
    *, configuration: SmsConfiguration, message: Message, conversation: Conversation
) -> None:
    # A configuration's own reply wins; when it is empty the tenant's default answers.
    word = message.body.strip().upper()
    if word in STOP_WORDS:
        _, created = OptOut.objects.get_or_create(
            tenant=message.tenant,
            did=message.did,
            remote=message.remote,
            defaults={"keyword": word},
        )
        reply = configuration.stop_reply or message.tenant.stop_reply
        if created and reply:
            # The confirmation is the one message an opt-out never blocks.
            message_queue_automatic(conversation=conversation, body=reply, ignore_opt_out=True)
    elif word in START_WORDS:
        removed, _ = (
            OptOut.objects.for_tenant(message.tenant)
            .filter(did=message.did, remote=message.remote)
            .delete()
        )
        if removed and message.tenant.start_reply:
            message_queue_automatic(conversation=conversation, body=message.tenant.start_reply)
    elif word in HELP_WORDS:
        reply = configuration.help_reply or message.tenant.help_reply
        if reply:
            message_queue_automatic(conversation=conversation, body=reply)


def _side_effects(*, routing: _Routing, message: Message, conversation: Conversation) -> None:
    """Write the rows of what the rule's destination does besides showing the message."""
    action = _action(routing)
    target = getattr(routing.rule, f"{routing.period}_target")
    if action == Action.FORWARD:
        message_queue_automatic(
            conversation=conversation, body=f"From {message.remote}: {message.body}", to=target
        )
    elif action in (Action.EMAIL, Action.HTTP):
        _destination_row(message, action, rule=routing.rule, period=routing.period)
    elif action == Action.AUTO_REPLY and target:
        message_queue_automatic(conversation=conversation, body=target)


def _destination_row(
    message: Message,
    action: str,
    *,
    rule: InboundRule | None = None,
    period: str = "",
    extension: Extension | None = None,
) -> None:
    row = DestinationDelivery.objects.create(
        tenant_id=message.tenant_id,
        message=message,
        action=action,
        rule=rule,
        period=period,
        extension=extension,
    )
    enqueue("sms.deliver_destination", row.pk)


def _media_rows(message: Message, urls: tuple[str, ...] | list[str]) -> None:
    if not urls:
        return
    media = MessageMedia.objects.bulk_create(
        [MessageMedia(tenant_id=message.tenant_id, message=message, url=url) for url in urls]
    )
    for item in media:
        if item.pk is None:  # backends that return no ids: read them back
            media = list(MessageMedia.objects.filter(message=message).order_by("pk"))
            break
    for item in media:
        enqueue("sms.fetch_media", item.pk)


def _note_error(configuration_id: int, error: str) -> None:
    SmsConfiguration.objects.filter(pk=configuration_id).update(
        last_error=error[:500], last_error_at=timezone.now()
    )


# --- Reprocess ------------------------------------------------------------------------------


@transaction.atomic
def webhook_deliveries_reprocess(
    *, tenant: Tenant, deliveries: QuerySet[WebhookDelivery], actor: User | None
) -> int:
    """Set the chosen deliveries back to received and process each again after commit.

    A processed delivery is routed again (its rule or pool may have changed); a duplicate stays
    a duplicate of the delivery that brought the message first.
    """
    ids = list(
        deliveries.filter(tenant=tenant)
        .exclude(status=DeliveryStatus.DUPLICATE)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=DeliveryStatus.RECEIVED, reason="", processed_at=None, next_try_at=None
    )
    audit_record(
        actor=actor,
        action="reprocessed",
        tenant=tenant,
        detail={"webhook_deliveries": ids[:100], "count": len(ids)},
    )
    for pk in ids:
        enqueue("sms.process_webhook", pk)
    return len(ids)
