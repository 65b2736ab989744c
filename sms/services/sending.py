"""Sending a message as a user or a program: permission, pool, opt-out, outbound rule, queue."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from portal.errors import ApplicationError, NotAllowed
from sms.models import (
    Conversation,
    HoursMode,
    Message,
    OutboundRule,
    RoutingStrategy,
    SmsCallerId,
    SmsConfiguration,
    Source,
)
from sms.selectors import time_period
from sms.services.outbound import message_queue
from tenants.models import Extension, SmsPermission, Tenant, User
from trunks.models import PoolRange, Trunk
from trunks.numbers import (
    CallerMaskError,
    InvalidNumber,
    length_list_matches,
    parse_caller_mask,
    parse_nanp,
    prefix_list_matches,
)
from trunks.selectors import tenant_owns_number, tenant_pool_numbers_containing

_DIGITS = re.compile(r"\D")
_QUERY_FORMATTING = re.compile(r"[\s+().-]")
_QUERY_DIGITS = re.compile(r"[0-9]*")


@dataclass(frozen=True)
class Route:
    """One way to send: through this configuration, from this DID, to this number."""

    configuration_id: int
    did: str
    dst: str

    def as_json(self) -> dict[str, Any]:
        return {"configuration_id": self.configuration_id, "did": self.did, "dst": self.dst}


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
    return SmsCallerId.objects.for_tenant(tenant).filter(extension=extension)


def sender_dids_for_user(*, user: User, tenant: Tenant) -> list[str]:
    """Return the DIDs the user may send from (admins: every pooled DID with a configuration)."""
    if _sends_from_pools(user):
        from trunks.selectors import tenant_pool_numbers

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
                "This extension is not allowed to send SMS; ask the tenant administrator.",
                code="sms_not_allowed",
            )
    if not did:
        if len(allowed) == 1:
            return allowed[0]
        raise ApplicationError(
            "Choose the number to send from.", code="from_required", field="from"
        )
    try:
        did = parse_nanp(did)
    except InvalidNumber as error:
        raise ApplicationError(str(error), code="invalid_from", field="from") from error
    if not tenant_owns_number(tenant=tenant, number=did):
        raise ApplicationError(
            f"{did} is not one of this tenant's numbers.", code="did_not_in_pool", field="from"
        )
    # Administrators may send from any pooled DID (the list above is only the first ones).
    if not (user.is_system_admin or user.is_tenant_admin) and did not in allowed:
        raise NotAllowed(f"You may not send from {did}.", code="from_not_allowed")
    return did


def _rule_matches(
    rule: OutboundRule, *, dialled: str, extension: Extension | None, at: datetime
) -> bool:
    if not prefix_list_matches(rule.prefixes, dialled) or not length_list_matches(
        rule.lengths, dialled
    ):
        return False
    if rule.from_extensions.strip():
        if extension is None:
            return False
        try:
            if not parse_caller_mask(rule.from_extensions).matches(extension.number):
                return False
        except CallerMaskError:
            return False
    if rule.hours != HoursMode.ALWAYS:
        return time_period(tenant=rule.tenant, at=at) == rule.hours
    return True


def _route_for(
    *, tenant: Tenant, trunk_id: int, did: str, dialled: str, strip: int = 0, prepend: str = ""
) -> Route | None:
    configuration = (
        SmsConfiguration.objects.for_tenant(tenant).filter(trunk_id=trunk_id, enabled=True).first()
    )
    if configuration is None or not tenant_owns_number(tenant=tenant, number=did, trunk=trunk_id):
        return None
    digits = _DIGITS.sub("", dialled)[strip:]
    try:
        dst = parse_nanp(prepend + digits)
    except InvalidNumber:
        return None
    return Route(configuration_id=configuration.pk, did=did, dst=dst)


def routes_for_message(
    *, tenant: Tenant, did: str, dialled: str, extension: Extension | None, at: datetime
) -> list[Route]:
    """Return the routes to try, from the first matching outbound rule (or the DID's trunk)."""
    rules = list(
        OutboundRule.objects.for_tenant(tenant).filter(enabled=True).select_related("tenant")
    )
    if not rules:
        # Without outbound rules, a DID sends through the configuration on its own trunk.
        routes = []
        for trunk_id in (
            SmsConfiguration.objects.for_tenant(tenant)
            .filter(enabled=True)
            .values_list("trunk_id", flat=True)
        ):
            route = _route_for(tenant=tenant, trunk_id=trunk_id, did=did, dialled=dialled)
            if route is not None and route not in routes:
                routes.append(route)
        return routes
    for rule in rules:
        if not _rule_matches(rule, dialled=dialled, extension=extension, at=at):
            continue
        candidates = list(rule.routes.filter(enabled=True).order_by("position", "id"))
        if rule.strategy == RoutingStrategy.RANDOM:
            random.shuffle(candidates)
        routes = []
        for candidate in candidates:
            sender = parse_nanp(candidate.caller_id) if candidate.caller_id else did
            route = _route_for(
                tenant=tenant,
                trunk_id=candidate.trunk_id,
                did=sender,
                dialled=dialled,
                strip=candidate.strip_digits,
                prepend=candidate.prepend,
            )
            if route is not None:
                routes.append(route)
        if routes:
            return routes
        raise ApplicationError(
            f"Outbound rule {rule.name!r} matches, but none of its routes can send from {did}.",
            code="no_route",
        )
    raise ApplicationError("No outbound rule matches this destination.", code="no_outbound_rule")


@transaction.atomic
def message_send(
    *,
    user: User,
    tenant: Tenant,
    to: str,
    body: str = "",
    did: str | None = None,
    media_urls: tuple[str, ...] = (),
    source: str = Source.PORTAL,
) -> list[Message]:
    """Check and queue a message from a user; nothing is queued when a check fails."""
    if not tenant.enabled or not tenant.message_channels_enabled:
        raise NotAllowed(
            "Message Channels are switched off for this tenant.", code="message_channels_disabled"
        )
    sender = _sender_did(user=user, tenant=tenant, did=did)
    try:
        destination = parse_nanp(to)
    except InvalidNumber as error:
        raise ApplicationError(
            "The destination must be a valid US or Canadian 10-digit number.",
            code="invalid_destination",
            field="to",
        ) from error
    extension = _extension(user, tenant)
    routes = routes_for_message(
        tenant=tenant, did=sender, dialled=to, extension=extension, at=timezone.now()
    )
    if not routes:
        raise ApplicationError(
            f"No enabled SMS/MMS configuration serves {sender}.",
            code="no_configuration",
            field="from",
        )
    first = SmsConfiguration.objects.select_related("tenant").get(pk=routes[0].configuration_id)
    if media_urls and first.channel != "mms":
        raise ApplicationError(
            "This number's configuration sends SMS only; remove the attachments.",
            code="mms_not_enabled",
            field="media_urls",
        )
    conversation, _ = Conversation.objects.get_or_create(
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
        source=source,
        extension=extension,
        route_plan=[route.as_json() for route in routes],
    )
    return messages
