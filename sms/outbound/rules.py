"""Outbound rules and their routes: saving them, and choosing the routes of a message."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from sms.models import (
    HoursMode,
    OutboundRoute,
    OutboundRule,
    RoutingStrategy,
    SmsCallerId,
    SmsConfiguration,
)
from sms.selectors import time_period
from tenants.models import Extension, Tenant, User
from tenants.services import audit_record
from trunks.models import Trunk
from trunks.numbers import (
    CallerMaskError,
    InvalidNumber,
    NumberListError,
    length_list_matches,
    parse_caller_mask,
    parse_length_list,
    parse_nanp,
    parse_prefix_list,
    prefix_list_matches,
)
from trunks.selectors import tenant_owns_number

MAX_ROUTES = 6


RULE_FIELDS = (
    "name",
    "priority",
    "strategy",
    "prefixes",
    "lengths",
    "from_extensions",
    "hours",
    "enabled",
)


ROUTE_FIELDS = ("trunk", "strip_digits", "prepend", "caller_id", "configuration", "enabled")


def _check_trunk(tenant: Tenant, trunk: Trunk, field: str) -> None:
    if not Trunk.objects.available_to(tenant).filter(pk=trunk.pk).exists():
        raise ApplicationError(_("Choose a trunk assigned to this tenant."), field=field)


def _pooled(tenant: Tenant, trunk: Trunk, number: str, field: str) -> str:
    try:
        e164 = parse_nanp(number)
    except InvalidNumber as error:
        raise ApplicationError(str(error), field=field) from error
    if not tenant_owns_number(tenant=tenant, number=e164, trunk=trunk):
        raise ApplicationError(
            _("%(e164)s is not in this tenant's DID pool on %(name)s.")
            % {"e164": e164, "name": trunk.name},
            code="did_not_in_pool",
            field=field,
        )
    return e164


def outbound_rule_check(*, tenant: Tenant, rule: OutboundRule) -> None:
    """Raise ApplicationError if the rule's conditions are missing or malformed."""
    if not (rule.prefixes.strip() or rule.lengths.strip() or rule.from_extensions.strip()):
        raise ApplicationError(
            _("Give at least one condition: prefixes, lengths or from extensions."),
            code="condition_required",
            field="prefixes",
        )
    try:
        parse_prefix_list(rule.prefixes)
    except NumberListError as error:
        raise ApplicationError(str(error), field="prefixes") from error
    try:
        parse_length_list(rule.lengths)
    except NumberListError as error:
        raise ApplicationError(str(error), field="lengths") from error
    try:
        parse_caller_mask(rule.from_extensions)
    except CallerMaskError as error:
        raise ApplicationError(str(error), field="from_extensions") from error
    clash = OutboundRule.objects.for_tenant(tenant).filter(name=rule.name).exclude(pk=rule.pk)
    if clash.exists():
        raise ApplicationError(
            _("A rule named %(name)r exists already.") % {"name": rule.name}, field="name"
        )


def outbound_route_check(*, tenant: Tenant, route: OutboundRoute) -> None:
    """Raise ApplicationError if a route's trunk or caller ID is not the tenant's."""
    _check_trunk(tenant, route.trunk, "trunk")
    if route.caller_id:
        route.caller_id = _pooled(tenant, route.trunk, route.caller_id, "caller_id")
    if route.configuration_id is not None and (
        route.configuration.tenant_id != tenant.pk or route.configuration.trunk_id != route.trunk_id
    ):
        raise ApplicationError(
            "Choose a configuration of this tenant on the route's trunk.",
            code="configuration_not_on_trunk",
            field="configuration",
        )
    if route.strip_digits > 9:
        raise ApplicationError(_("Strip at most 9 digits."), field="strip_digits")
    if route.prepend and not route.prepend.isdigit():
        raise ApplicationError(_("Prepend digits only."), field="prepend")


@transaction.atomic
def outbound_rule_save(
    *,
    tenant: Tenant,
    actor: User | None,
    rule: OutboundRule | None = None,
    routes: Sequence[dict[str, Any]] | None = None,
    **fields: Any,
) -> OutboundRule:
    """Create or change an outbound rule; `routes`, when given, replace its routes in order."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = rule is None
    rule = rule or OutboundRule(tenant=tenant)
    for name, value in fields.items():
        setattr(rule, name, value)
    outbound_rule_check(tenant=tenant, rule=rule)
    rule.full_clean(exclude=["tenant"], validate_unique=False)
    rule.save()
    if routes is not None:
        if len(routes) > MAX_ROUTES:
            raise ApplicationError(
                _("A rule has at most %(MAX_ROUTES)s routes.") % {"MAX_ROUTES": MAX_ROUTES},
                field="routes",
            )
        built = []
        for position, values in enumerate(routes, start=1):
            route = OutboundRoute(
                tenant=tenant,
                rule=rule,
                position=position,
                **{k: values[k] for k in values if k in ROUTE_FIELDS},
            )
            outbound_route_check(tenant=tenant, route=route)
            built.append(route)
        rule.routes.all().delete()
        OutboundRoute.objects.bulk_create(built)
    audit_record(
        actor=actor,
        action="created" if created else "changed",
        tenant=tenant,
        obj=rule,
        detail={"fields": sorted(fields) + (["routes"] if routes is not None else [])},
    )
    return rule


@transaction.atomic
def outbound_rule_delete(*, rule: OutboundRule, actor: User | None) -> None:
    """Delete an outbound rule and its routes."""
    audit_record(actor=actor, action="deleted", tenant=rule.tenant, obj=rule)
    rule.delete()


def sms_caller_id_check(*, tenant: Tenant, trunk: Trunk, did: str) -> str:
    """Return the DID in E.164 if the tenant may give it to an extension, else raise."""
    _check_trunk(tenant, trunk, "trunk")
    return _pooled(tenant, trunk, did, "did")


@transaction.atomic
def sms_caller_id_save(
    *,
    tenant: Tenant,
    extension: Extension,
    trunk: Trunk,
    did: str,
    description: str = "",
    caller_id: SmsCallerId | None = None,
) -> SmsCallerId:
    """Let an extension send from a DID of the tenant's pool on a trunk."""
    if extension.tenant_id != tenant.pk:
        raise ApplicationError(_("Choose an extension of this tenant."), field="extension")
    e164 = sms_caller_id_check(tenant=tenant, trunk=trunk, did=did)
    caller_id = caller_id or SmsCallerId(tenant=tenant)
    caller_id.extension, caller_id.trunk, caller_id.did = extension, trunk, e164
    caller_id.description = description
    duplicate = SmsCallerId.objects.for_tenant(tenant).filter(extension=extension, did=e164)
    if duplicate.exclude(pk=caller_id.pk).exists():
        raise ApplicationError(
            _("Extension %(number)s has %(e164)s already.")
            % {"number": extension.number, "e164": e164},
            field="did",
        )
    caller_id.save()
    return caller_id


def sms_caller_id_trunk(*, tenant: Tenant, did: str, field: str = "did") -> Trunk:
    """Return the one trunk on which the DID lies in the tenant's pool, else raise."""
    try:
        e164 = parse_nanp(did)
    except InvalidNumber as error:
        raise ApplicationError(str(error), field=field) from error
    trunks = [
        trunk
        for trunk in Trunk.objects.available_to(tenant).order_by("pk")
        if tenant_owns_number(tenant=tenant, number=e164, trunk=trunk)
    ]
    if not trunks:
        raise ApplicationError(
            _("%(e164)s is not in this tenant's DID pool.") % {"e164": e164},
            code="did_not_in_pool",
            field=field,
        )
    if len(trunks) > 1:
        raise ApplicationError(
            _("%(e164)s is in pools on several trunks: name the trunk.") % {"e164": e164},
            field=field,
        )
    return trunks[0]


@transaction.atomic
def extension_caller_ids_set(
    *, tenant: Tenant, extension: Extension, caller_ids: Sequence[dict[str, Any]]
) -> list[SmsCallerId]:
    """Make the extension's SMS caller IDs exactly these ({did, trunk?, description?}).

    A caller ID without a trunk takes the one trunk whose pool in the tenant holds its DID.
    """
    wanted: dict[str, tuple[Trunk, str]] = {}
    for index, item in enumerate(caller_ids):
        field = f"caller_ids[{index}]"
        trunk = item.get("trunk") or sms_caller_id_trunk(
            tenant=tenant, did=str(item.get("did", "")), field=field
        )
        try:
            e164 = sms_caller_id_check(tenant=tenant, trunk=trunk, did=str(item.get("did", "")))
        except ApplicationError as error:
            raise ApplicationError(error.message, code=error.code, field=field) from error
        if e164 in wanted:
            raise ApplicationError(_("%(e164)s is listed twice.") % {"e164": e164}, field=field)
        wanted[e164] = (trunk, item.get("description", "") or "")
    existing = {
        c.did: c for c in SmsCallerId.objects.for_tenant(tenant).filter(extension=extension)
    }
    for did, caller_id in existing.items():
        if did not in wanted:
            caller_id.delete()
    return [
        sms_caller_id_save(
            tenant=tenant,
            extension=extension,
            trunk=trunk,
            did=did,
            description=description,
            caller_id=existing.get(did),
        )
        for did, (trunk, description) in wanted.items()
    ]


_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class Route:
    """One way to send: through this configuration, from this DID, to this number."""

    configuration_id: int
    did: str
    dst: str

    def as_json(self) -> dict[str, Any]:
        return {"configuration_id": self.configuration_id, "did": self.did, "dst": self.dst}


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
    if rule.hours == HoursMode.OFFICE:
        return time_period(tenant=rule.tenant, at=at) == "office"
    if rule.hours == HoursMode.AFTER_HOURS:
        # The office is closed on a holiday: "outside office hours" holds then too.
        return time_period(tenant=rule.tenant, at=at) != "office"
    return True


def configuration_for_sender(
    *, tenant: Tenant, trunk_id: int, did: str, named: SmsConfiguration | None = None
) -> SmsConfiguration | None:
    """Return the enabled configuration that sends from `did` on the trunk, None if none does.

    With one configuration on the trunk, it; with several, the one `named` (by an outbound
    route), else the one whose VoIP.ms account owns the DID as its last verification read it
    from getDIDsInfo. Raises ApplicationError (configuration_ambiguous) rather than guess.
    """
    configurations = list(
        SmsConfiguration.objects.for_tenant(tenant)
        .filter(trunk_id=trunk_id, enabled=True)
        .select_related("trunk")
        .order_by("name")
    )
    if named is not None:
        return next((c for c in configurations if c.pk == named.pk), None)
    if len(configurations) <= 1:
        return configurations[0] if configurations else None
    owners = [c for c in configurations if did in c.account_dids]
    if len(owners) == 1:
        return owners[0]
    trunk = configurations[0].trunk.name
    if owners:
        names = ", ".join(c.name for c in owners)
        reason = (
            f"{did} is on the VoIP.ms accounts of several configurations on trunk {trunk} "
            f"({names}): name the configuration in an outbound rule's route."
        )
    else:
        names = ", ".join(c.name for c in configurations)
        reason = (
            f"Several configurations send on trunk {trunk} ({names}) and none is known to own "
            f"{did} at VoIP.ms: verify them so the portal reads their DIDs, or name the "
            "configuration in an outbound rule's route."
        )
    raise ApplicationError(reason, code="configuration_ambiguous", field="from")


def _route_for(
    *,
    tenant: Tenant,
    trunk_id: int,
    did: str,
    dialled: str,
    strip: int = 0,
    prepend: str = "",
    named: SmsConfiguration | None = None,
) -> Route | None:
    if not tenant_owns_number(tenant=tenant, number=did, trunk=trunk_id):
        return None
    configuration = configuration_for_sender(tenant=tenant, trunk_id=trunk_id, did=did, named=named)
    if configuration is None:
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
            .order_by("trunk_id")
            .values_list("trunk_id", flat=True)
            .distinct()
        ):
            route = _route_for(tenant=tenant, trunk_id=trunk_id, did=did, dialled=dialled)
            if route is not None and route not in routes:
                routes.append(route)
        return routes
    for rule in rules:
        if not _rule_matches(rule, dialled=dialled, extension=extension, at=at):
            continue
        candidates = list(
            rule.routes.filter(enabled=True)
            .select_related("configuration")
            .order_by("position", "id")
        )
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
                named=candidate.configuration,
            )
            if route is not None:
                routes.append(route)
        if routes:
            return routes
        raise ApplicationError(
            _("Outbound rule %(name)r matches, but none of its routes can send from %(did)s.")
            % {"name": rule.name, "did": did},
            code="no_route",
        )
    raise ApplicationError(_("No outbound rule matches this destination."), code="no_outbound_rule")
