"""Reads of the sms app; every selector takes the tenant (or an object that fixes it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from sms.models import (
    Contact,
    Conversation,
    Direction,
    InboundRule,
    Message,
    OptOut,
    SmsConfiguration,
)
from tenants.models import Holiday, OfficeHours, Tenant, User
from trunks.numbers import CallerMaskError, InvalidNumber, number_to_int, parse_caller_mask

# A rule's destinations, read with the rule: routing never queries them one by one.
DESTINATION_RELATIONS = tuple(
    f"{period}_{relation}"
    for period in ("office", "after_hours", "holiday")
    for relation in ("extension", "ring_group")
)


T = TypeVar("T")

# Reads shared by the messages of one batch (see `shared_routing_reads`); None outside a batch.
_shared_reads: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar(
    "sms_shared_routing_reads", default=None
)


@contextmanager
def shared_routing_reads() -> Iterator[None]:
    """Within the block, read each configuration, rule set, holiday list and office hours once.

    A worker processing a batch of deliveries (a few dozen, a few hundred milliseconds) reads
    the routing inputs once for all of them instead of once per message: a change saved while
    the batch runs applies from the next batch, as it would had the batch run a moment earlier.
    Each message is still written in its own transaction.
    """
    token = _shared_reads.set({})
    try:
        yield
    finally:
        _shared_reads.reset(token)


def shared_routing_reads_active() -> bool:
    """Return whether reads are shared (inside `shared_routing_reads`)."""
    return _shared_reads.get() is not None


def shared_read(key: tuple[Any, ...], load: Callable[[], T]) -> T:
    """Return `load()`, once per key within `shared_routing_reads`, every time outside it."""
    memo = _shared_reads.get()
    if memo is None:
        return load()
    if key not in memo:
        memo[key] = load()
    return memo[key]


def inbound_rule_matching(
    *, configuration: SmsConfiguration, did: str, caller: str
) -> InboundRule | None:
    """Return the rule for a message to `did` from `caller`: single DID, mask, then priority."""
    try:
        number = number_to_int(did)
    except InvalidNumber:
        return None
    rules = InboundRule.objects.for_tenant(configuration.tenant).filter(
        trunk_id=configuration.trunk_id, enabled=True
    )
    if shared_routing_reads_active():
        # A batch reads the trunk's rules once, whatever DIDs its messages went to.
        candidates = [
            rule
            for rule in shared_read(
                ("rules", configuration.tenant_id, configuration.trunk_id),
                lambda: list(rules.select_related(*DESTINATION_RELATIONS)),
            )
            if rule.did_start <= number <= rule.did_end
        ]
    else:
        candidates = rules.filter(did_start__lte=number, did_end__gte=number).select_related(
            *DESTINATION_RELATIONS
        )
    matching = []
    for rule in candidates:
        try:
            mask = parse_caller_mask(rule.caller_mask)
        except CallerMaskError:
            continue
        if mask.matches(caller):
            matching.append(rule)
    if not matching:
        return None
    return min(
        matching,
        key=lambda rule: (
            rule.did_start != rule.did_end,  # a single DID beats a range
            not rule.caller_mask.strip(),  # a mask beats none
            rule.priority,
            rule.pk,
        ),
    )


def time_period(*, tenant: Tenant, at: datetime, rule: InboundRule | None = None) -> str:
    """Return "holiday", "office" or "after_hours" for a moment in the tenant's time zone."""
    local = at.astimezone(tenant.zone)
    today = local.date()
    holidays = shared_read(
        ("holidays", tenant.pk), lambda: list(Holiday.objects.for_tenant(tenant))
    )
    for holiday in holidays:
        if holiday.every_year:
            start = (holiday.start_date.month, holiday.start_date.day)
            end = (holiday.end_date.month, holiday.end_date.day)
            day = (today.month, today.day)
            inside = start <= day <= end if start <= end else (day >= start or day <= end)
        else:
            inside = holiday.start_date <= today <= holiday.end_date
        if inside:
            return "holiday"
    if rule is not None and rule.use_custom_hours:
        ranges = [
            (int(entry["weekday"]), entry["start"], entry["end"])
            for entry in rule.custom_hours
            if isinstance(entry, dict)
        ]
    else:
        ranges = shared_read(
            ("office_hours", tenant.pk),
            lambda: [
                (hours.weekday, hours.start.strftime("%H:%M"), hours.end.strftime("%H:%M"))
                for hours in OfficeHours.objects.for_tenant(tenant)
            ],
        )
        if not ranges:
            # A tenant without office hours is always open.
            return "office"
    now = local.strftime("%H:%M")
    for weekday, start, end in ranges:
        if weekday == local.weekday() and start <= now < end:
            return "office"
    return "after_hours"


def office_hours_defined(*, tenant: Tenant) -> bool:
    """Return whether the tenant has office hours (without them, it is always open)."""
    return OfficeHours.objects.for_tenant(tenant).exists()


def is_opted_out(*, tenant: Tenant, did: str, remote: str) -> bool:
    """Return whether the contact asked for no more messages from this DID."""
    return OptOut.objects.for_tenant(tenant).filter(did=did, remote=remote).exists()


def conversations_for_user(*, user: User, tenant: Tenant) -> QuerySet[Conversation]:
    """Return the conversations a user may read: all for admins, else his and his groups'."""
    conversations = Conversation.objects.for_tenant(tenant)
    if user.is_system_admin or user.is_tenant_admin:
        return conversations
    extension = getattr(user, "extension", None)
    if extension is None or extension.tenant_id != tenant.pk:
        return conversations.none()
    return conversations.filter(
        Q(extension=extension) | Q(ring_group__memberships__extension=extension)
    ).distinct()


def conversations_listed(*, user: User, tenant: Tenant) -> QuerySet[Conversation]:
    """Return the user's conversations in the inbox's order: latest message first."""
    return (
        conversations_for_user(user=user, tenant=tenant)
        .select_related("extension", "ring_group")
        .order_by(F("last_message_at").desc(nulls_last=True), "-id")
    )


def conversations_search(*, user: User, tenant: Tenant, query: str) -> QuerySet[Conversation]:
    """Return the user's conversations whose contact name, number or a message contains `query`.

    Each carries `match_id`, the latest of its messages whose text contains the query (or None).
    """
    query = query.strip()
    conversations = conversations_listed(user=user, tenant=tenant)
    if not query:
        return conversations.none()
    messages = Message.objects.for_tenant(tenant).filter(body__icontains=query)
    names = Contact.objects.for_tenant(tenant).filter(name__icontains=query).values("number")
    found = (
        Q(remote__in=names)
        | Q(last_message_text__icontains=query)
        | Q(pk__in=messages.values("conversation_id"))
    )
    digits = "".join(c for c in query if c.isdigit())
    if len(digits) >= 3 and len(digits) * 2 >= len(query.replace(" ", "")):
        found |= Q(remote__contains=digits)
    latest = messages.filter(conversation=OuterRef("pk")).order_by("-id").values("id")[:1]
    return conversations.filter(found).annotate(match_id=Subquery(latest))


def contacts_by_number(*, tenant: Tenant, numbers: list[str]) -> dict[str, Contact]:
    """Return the tenant's contacts of these numbers, by number, in one query."""
    if not numbers:
        return {}
    return {
        contact.number: contact
        for contact in Contact.objects.for_tenant(tenant).filter(number__in=set(numbers))
    }


def inbound_messages_after(
    *, user: User, tenant: Tenant, after: int, limit: int = 10
) -> list[Message]:
    """Return the first inbound messages newer than id `after` in the user's conversations."""
    visible = conversations_for_user(user=user, tenant=tenant).values("pk")
    return list(
        Message.objects.for_tenant(tenant)
        .filter(direction=Direction.IN, pk__gt=after, conversation__in=visible)
        .order_by("id")[:limit]
    )


def inbound_message_latest_id(*, user: User, tenant: Tenant) -> int:
    """Return the id of the newest inbound message the user may read, or 0."""
    visible = conversations_for_user(user=user, tenant=tenant).values("pk")
    latest = (
        Message.objects.for_tenant(tenant)
        .filter(direction=Direction.IN, conversation__in=visible)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    return latest or 0
