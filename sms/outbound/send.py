"""Sending a message as a user, a program or the portal itself: checks, outbox rows, wake-up."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import F, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError, Conflict, NotAllowed
from core.netguard import AddressRefused, url_literal_host_check
from core.tasks import enqueue
from sms.models import (
    Conversation,
    Direction,
    Kind,
    LongMessagePolicy,
    Message,
    MessageStatus,
    SmsCallerId,
    SmsConfiguration,
    Source,
)
from sms.outbound.attachments import Attachment, attachments_check_count, attachments_store
from sms.outbound.events import statuses_record
from sms.outbound.rules import routes_for_message
from sms.outbound.splitting import MMS_MAX_CHARS, split_sms, utf8_len
from sms.selectors import is_opted_out
from sms.usage import quota_check
from tenants.access import messaging_check
from tenants.models import Extension, SmsPermission, Tenant, User
from tenants.services import audit_record
from trunks.models import PoolRange, Trunk
from trunks.numbers import (
    InvalidNumber,
    parse_nanp,
)
from trunks.selectors import tenant_owns_number, tenant_pool_numbers, tenant_pool_numbers_containing

logger = logging.getLogger(__name__)


def _enqueue(messages: list[Message]) -> None:
    # Parts of a split text go in order: each later part is enqueued when the one before it
    # is sent (see message_deliver).
    ids = [m.pk for m in messages if m.part_index == 0]
    for pk in ids:
        enqueue("sms.deliver_message", pk)


def message_build_parts(
    *,
    configuration: SmsConfiguration,
    body: str,
    media_urls: tuple[str, ...] = (),
    attachments: Sequence[Attachment] = (),
) -> list[tuple[str, str]]:
    """Return (kind, text) for each message to send: one MMS, or SMS parts of ≤160 bytes."""
    if (
        media_urls
        or attachments
        or (utf8_len(body) > 160 and configuration.long_message_policy == LongMessagePolicy.MMS)
    ):
        if len(body) > MMS_MAX_CHARS:
            raise ApplicationError(
                _("An MMS holds at most %(MMS_MAX_CHARS)s characters.")
                % {"MMS_MAX_CHARS": MMS_MAX_CHARS},
                code="too_long",
                field="body",
            )
        return [(Kind.MMS, body)]
    if not body.strip():
        raise ApplicationError(_("Write a message."), code="message_empty", field="body")
    # A part of only white space would be refused by VoIP.ms (message_empty) and leave the
    # text half sent: leave it out.
    return [(Kind.SMS, part) for part in split_sms(body) if part.strip()]


@transaction.atomic
def message_queue(
    *,
    configuration: SmsConfiguration,
    conversation: Conversation | None,
    did: str,
    to: str,
    body: str,
    media_urls: tuple[str, ...] = (),
    attachments: Sequence[Attachment] = (),
    source: str,
    extension: object | None = None,
    ignore_opt_out: bool = False,
    route_plan: list[dict[str, object]] | None = None,
    status_callback: str = "",
    send_at: datetime | None = None,
) -> list[Message]:
    """Create the outbox rows of a text (one per part) and enqueue them after commit.

    With `send_at`, the rows are stored scheduled; the sweeper queues them when they are due.
    """
    tenant = configuration.tenant
    if not ignore_opt_out and is_opted_out(tenant=tenant, did=did, remote=to):
        raise ApplicationError(
            _("%(to)s opted out of messages from %(did)s (texted STOP).") % {"to": to, "did": did},
            code="opted_out",
            field="to",
        )
    attachments_check_count(media_urls=media_urls, attachments=attachments)
    parts = message_build_parts(
        configuration=configuration, body=body, media_urls=media_urls, attachments=attachments
    )
    group = uuid.uuid4() if len(parts) > 1 else None
    plan = route_plan or [{"configuration_id": configuration.pk, "did": did, "dst": to}]
    messages = [
        Message.objects.create(
            tenant=tenant,
            configuration=configuration,
            conversation=conversation,
            direction=Direction.OUT,
            kind=kind,
            status=MessageStatus.SCHEDULED if send_at else MessageStatus.QUEUED,
            send_at=send_at,
            status_callback=status_callback,
            source=source,
            did=did,
            remote=to,
            body=text,
            media_urls=list(media_urls) if kind == Kind.MMS else [],
            segments=len(parts),
            route_plan=plan,
            part_group=group,
            part_index=index,
            extension=extension,
        )
        for index, (kind, text) in enumerate(parts)
    ]
    if attachments:
        attachments_store(message=messages[0], attachments=attachments)
    if conversation is not None:
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=timezone.now(), last_message_text=body[:200] or "[media]"
        )
    statuses_record(messages, status=messages[0].status)
    if not send_at:
        _enqueue(messages)
    return messages


def message_queue_automatic(
    *,
    conversation: Conversation,
    body: str,
    to: str | None = None,
    ignore_opt_out: bool = False,
) -> list[Message]:
    """Queue an automatic reply (or a forward to `to`) from the conversation's DID."""
    configuration = conversation.configuration
    if configuration is None:
        return []
    try:
        destination = parse_nanp(to) if to else conversation.remote
    except InvalidNumber:
        logger.warning("automatic message: %r is not a valid destination", to)
        return []
    target = conversation
    if to:
        target, _unused = Conversation.objects.get_or_create(
            tenant=conversation.tenant,
            did=conversation.did,
            remote=destination,
            defaults={"configuration": configuration},
        )
    try:
        return message_queue(
            configuration=configuration,
            conversation=target,
            did=conversation.did,
            to=destination,
            body=body,
            source=Source.SYSTEM,
            ignore_opt_out=ignore_opt_out,
        )
    except ApplicationError as error:
        logger.info("automatic message not queued: %s", error.code)
        return []


_DIGITS = re.compile(r"\D")


_QUERY_FORMATTING = re.compile(r"[\s+().-]")


_QUERY_DIGITS = re.compile(r"[0-9]*")


def _sends_from_pools(user: User) -> bool:
    return user.is_system_admin or user.is_tenant_admin


def _configured_trunk_ids(tenant: Tenant) -> list[int]:
    return list(
        SmsConfiguration.objects.for_tenant(tenant)
        .filter(enabled=True)
        .values_list("trunk_id", flat=True)
    )


def _caller_ids(user: User, tenant: Tenant) -> QuerySet[SmsCallerId]:
    extension = _extension(user, tenant)
    if extension is None or extension.sms_permission == SmsPermission.DISABLE:
        return SmsCallerId.objects.none()
    caller_ids = SmsCallerId.objects.for_tenant(tenant).filter(extension=extension)
    if extension.sms_permission == SmsPermission.ALLOW_WITH_SENDER_ID:
        return caller_ids
    # As in PortSIP, plain "Allow" sends from the extension's own number only (the first of
    # its SMS caller IDs as the forms and the API list them, the lowest number); "Allow with
    # Sender ID" lets it choose among all of them.
    first = caller_ids.order_by("did").values_list("pk", flat=True)[:1]
    return caller_ids.filter(pk__in=first)


def sender_dids_for_user(*, user: User, tenant: Tenant) -> list[str]:
    """Return the DIDs the user may send from (admins: every pooled DID with a configuration)."""
    if _sends_from_pools(user):
        numbers: list[str] = []
        for trunk in Trunk.objects.filter(pk__in=_configured_trunk_ids(tenant)):
            numbers.extend(tenant_pool_numbers(tenant=tenant, trunk=trunk, limit=200))
        return sorted(set(numbers))
    return list(_caller_ids(user, tenant).values_list("did", flat=True))


def sender_did_count_for_user(*, user: User, tenant: Tenant) -> int:
    """Return how many DIDs the user may send from, counted on the pool ranges in one query."""
    if _sends_from_pools(user):
        # A number pooled on two configured trunks counts twice: the count only chooses between
        # a list and a search box.
        size = F("end") - F("start") + 1
        return (
            PoolRange.objects.for_tenant(tenant)
            .filter(trunk_id__in=_configured_trunk_ids(tenant))
            .aggregate(total=Sum(size))["total"]
            or 0
        )
    return _caller_ids(user, tenant).count()


def sender_dids_matching(*, user: User, tenant: Tenant, query: str, limit: int) -> list[str]:
    """Return the first DIDs the user may send from whose digits contain the query's digits.

    Spaces, dots, dashes, brackets and "+" in the query are ignored; the digits left are looked
    for anywhere in the 11 digits of the DID's E.164 form (see tenant_pool_numbers_containing).
    An empty query matches every DID; a query with a letter matches none. The DIDs are those
    sender_dids_for_user allows, whole pools for administrators, in ascending order.
    """
    digits = _QUERY_FORMATTING.sub("", query)
    if not _QUERY_DIGITS.fullmatch(digits):
        return []
    if _sends_from_pools(user):
        return tenant_pool_numbers_containing(
            tenant=tenant, trunk_ids=_configured_trunk_ids(tenant), digits=digits, limit=limit
        )
    dids = _caller_ids(user, tenant).values_list("did", flat=True)
    return sorted(did for did in dids if digits in did.removeprefix("+"))[:limit]


def _extension(user: User, tenant: Tenant) -> Extension | None:
    extension = getattr(user, "extension", None)
    return extension if extension is not None and extension.tenant_id == tenant.pk else None


def _sender_did(*, user: User, tenant: Tenant, did: str | None) -> str:
    allowed = sender_dids_for_user(user=user, tenant=tenant)
    if not (user.is_system_admin or user.is_tenant_admin):
        extension = _extension(user, tenant)
        if extension is None or extension.sms_permission == SmsPermission.DISABLE:
            raise NotAllowed(
                _("This extension is not allowed to send SMS; ask the tenant administrator."),
                code="sms_not_allowed",
            )
    if not did:
        if len(allowed) == 1:
            return allowed[0]
        raise ApplicationError(
            _("Choose the number to send from."), code="from_required", field="from"
        )
    try:
        did = parse_nanp(did)
    except InvalidNumber as error:
        raise ApplicationError(str(error), code="invalid_from", field="from") from error
    if not tenant_owns_number(tenant=tenant, number=did):
        raise ApplicationError(
            _("%(did)s is not one of this tenant's numbers.") % {"did": did},
            code="did_not_in_pool",
            field="from",
        )
    # Administrators may send from any pooled DID (the list above is only the first ones).
    if not (user.is_system_admin or user.is_tenant_admin) and did not in allowed:
        extension = _extension(user, tenant)
        if (
            extension is not None
            and extension.sms_permission == SmsPermission.ALLOW
            and SmsCallerId.objects.for_tenant(tenant).filter(extension=extension, did=did).exists()
        ):
            raise NotAllowed(
                _(
                    "Extension %(extension)s sends only from its own number %(own)s; choosing "
                    'another sender needs the SMS permission "Allow with Sender ID".'
                )
                % {"extension": extension.number, "own": allowed[0] if allowed else ""},
                code="sender_id_not_allowed",
            )
        raise NotAllowed(
            _("You may not send from %(did)s.") % {"did": did}, code="from_not_allowed"
        )
    return did


@transaction.atomic
def message_send(
    *,
    user: User,
    tenant: Tenant,
    to: str,
    body: str = "",
    did: str | None = None,
    media_urls: tuple[str, ...] = (),
    attachments: Sequence[Attachment] = (),
    source: str = Source.PORTAL,
    status_callback: str = "",
    send_at: datetime | None = None,
) -> list[Message]:
    """Check and queue a message from a user; nothing is queued when a check fails.

    `status_callback` (else the tenant's default) receives each status change of the message;
    `send_at` in the future schedules it.
    """
    messaging_check(tenant)
    if status_callback:
        status_callback_check(status_callback)
    callback = status_callback or tenant.status_callback_url
    send_at = _send_time(send_at)
    sender = _sender_did(user=user, tenant=tenant, did=did)
    try:
        destination = parse_nanp(to)
    except InvalidNumber as error:
        raise ApplicationError(
            _("The destination must be a valid US or Canadian 10-digit number."),
            code="invalid_destination",
            field="to",
        ) from error
    extension = _extension(user, tenant)
    routes = routes_for_message(
        tenant=tenant, did=sender, dialled=to, extension=extension, at=timezone.now()
    )
    if not routes:
        raise ApplicationError(
            _("No enabled SMS/MMS configuration serves %(sender)s.") % {"sender": sender},
            code="no_configuration",
            field="from",
        )
    first = SmsConfiguration.objects.select_related("tenant").get(pk=routes[0].configuration_id)
    if (media_urls or attachments) and first.channel != "mms":
        raise ApplicationError(
            _("This number's configuration sends SMS only; remove the attachments."),
            code="mms_not_enabled",
            field="media_urls" if media_urls else "attachments",
        )
    attachments_check_count(media_urls=media_urls, attachments=attachments)
    parts = message_build_parts(
        configuration=first, body=body, media_urls=tuple(media_urls), attachments=attachments
    )
    quota_check(tenant=tenant, segments=len(parts))
    conversation, _unused = Conversation.objects.get_or_create(
        tenant=tenant,
        did=sender,
        remote=destination,
        defaults={"configuration": first, "extension": extension},
    )
    if (
        extension is not None
        and conversation.extension_id is None
        and not conversation.ring_group_id
    ):
        # The extension that starts a conversation sees its replies in its inbox.
        Conversation.objects.filter(pk=conversation.pk).update(extension=extension)
    messages = message_queue(
        configuration=first,
        conversation=conversation,
        did=routes[0].did,
        to=destination,
        body=body,
        media_urls=tuple(media_urls),
        attachments=attachments,
        source=source,
        extension=extension,
        route_plan=[route.as_json() for route in routes],
        status_callback=callback,
        send_at=send_at,
    )
    return messages


SCHEDULE_LIMIT = timedelta(days=366)


def _send_time(send_at: datetime | None) -> datetime | None:
    """Return when a scheduled send is due; None sends now (a time already past, too)."""
    if send_at is None:
        return None
    if timezone.is_naive(send_at):
        raise ApplicationError(
            _("Give the time with its offset, e.g. 2030-01-31T09:00:00-05:00."),
            code="invalid_send_at",
            field="send_at",
        )
    now = timezone.now()
    if send_at <= now:
        return None
    if send_at > now + SCHEDULE_LIMIT:
        raise ApplicationError(
            _("A message can be scheduled at most a year ahead."),
            code="invalid_send_at",
            field="send_at",
        )
    return send_at


def status_callback_check(url: str) -> None:
    """Refuse a status callback URL that is not http(s) or names a non-public address."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in ("http", "https"):
        raise ApplicationError(
            _("The status callback must be an http(s) URL."),
            code="invalid_status_callback",
            field="status_callback",
        )
    try:
        url_literal_host_check(url=url)
    except AddressRefused as error:
        raise ApplicationError(
            _("The status callback is refused: %(message)s.") % {"message": error.message},
            code="invalid_status_callback",
            field="status_callback",
        ) from None


CANCELLABLE = (MessageStatus.SCHEDULED, MessageStatus.QUEUED)


@transaction.atomic
def message_cancel(*, message: Message, actor: User | None) -> int:
    """Cancel a message not yet handed to VoIP.ms (every unsent part of its text).

    Raises Conflict when it is being sent or was sent already. Returns the parts cancelled.
    """
    if message.direction != Direction.OUT:
        raise Conflict(_("Only a message to send can be cancelled."), code="not_cancellable")
    parts = Message.objects.select_for_update().filter(
        tenant_id=message.tenant_id, direction=Direction.OUT
    )
    if message.part_group is not None:
        parts = parts.filter(part_group=message.part_group)
    else:
        parts = parts.filter(pk=message.pk)
    locked = list(parts.order_by("part_index"))
    current = next((m for m in locked if m.pk == message.pk), None)
    if current is None or current.status not in CANCELLABLE:
        state = current.get_status_display().lower() if current else "gone"
        raise Conflict(
            _("This message can no longer be cancelled: it is %(state)s.") % {"state": state},
            code="not_cancellable",
        )
    cancelled = [m for m in locked if m.status in CANCELLABLE]
    detail = "Cancelled before it was sent."
    Message.objects.filter(pk__in=[m.pk for m in cancelled]).update(
        status=MessageStatus.CANCELLED,
        error_code="cancelled",
        error_message=detail,
        next_attempt_at=None,
    )
    statuses_record(cancelled, status=MessageStatus.CANCELLED, code="cancelled", detail=detail)
    audit_record(
        actor=actor,
        action="message_cancelled",
        tenant=message.tenant,
        obj=current,
        detail={"messages": [m.pk for m in cancelled]},
    )
    return len(cancelled)
