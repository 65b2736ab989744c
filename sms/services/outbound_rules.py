"""Outbound rules with their routes, and the SMS caller IDs of extensions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from portal.errors import ApplicationError
from sms.models import OutboundRoute, OutboundRule, SmsCallerId
from tenants.models import Extension, Tenant, User
from tenants.services import audit_record
from trunks.models import Trunk
from trunks.numbers import (
    CallerMaskError,
    InvalidNumber,
    NumberListError,
    parse_caller_mask,
    parse_length_list,
    parse_nanp,
    parse_prefix_list,
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
ROUTE_FIELDS = ("trunk", "strip_digits", "prepend", "caller_id", "enabled")


def _check_trunk(tenant: Tenant, trunk: Trunk, field: str) -> None:
    if not Trunk.objects.available_to(tenant).filter(pk=trunk.pk).exists():
        raise ApplicationError("Choose a trunk assigned to this tenant.", field=field)


def _pooled(tenant: Tenant, trunk: Trunk, number: str, field: str) -> str:
    try:
        e164 = parse_nanp(number)
    except InvalidNumber as error:
        raise ApplicationError(str(error), field=field) from error
    if not tenant_owns_number(tenant=tenant, number=e164, trunk=trunk):
        raise ApplicationError(
            f"{e164} is not in this tenant's DID pool on {trunk.name}.",
            code="did_not_in_pool",
            field=field,
        )
    return e164


def outbound_rule_check(*, tenant: Tenant, rule: OutboundRule) -> None:
    """Raise ApplicationError if the rule's conditions are missing or malformed."""
    if not (rule.prefixes.strip() or rule.lengths.strip() or rule.from_extensions.strip()):
        raise ApplicationError(
            "Give at least one condition: prefixes, lengths or from extensions.",
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
        raise ApplicationError(f"A rule named {rule.name!r} exists already.", field="name")


def outbound_route_check(*, tenant: Tenant, route: OutboundRoute) -> None:
    """Raise ApplicationError if a route's trunk or caller ID is not the tenant's."""
    _check_trunk(tenant, route.trunk, "trunk")
    if route.caller_id:
        route.caller_id = _pooled(tenant, route.trunk, route.caller_id, "caller_id")
    if route.strip_digits > 9:
        raise ApplicationError("Strip at most 9 digits.", field="strip_digits")
    if route.prepend and not route.prepend.isdigit():
        raise ApplicationError("Prepend digits only.", field="prepend")


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
        raise ApplicationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    created = rule is None
    rule = rule or OutboundRule(tenant=tenant)
    for name, value in fields.items():
        setattr(rule, name, value)
    outbound_rule_check(tenant=tenant, rule=rule)
    rule.full_clean(exclude=["tenant"], validate_unique=False)
    rule.save()
    if routes is not None:
        if len(routes) > MAX_ROUTES:
            raise ApplicationError(f"A rule has at most {MAX_ROUTES} routes.", field="routes")
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
        raise ApplicationError("Choose an extension of this tenant.", field="extension")
    _check_trunk(tenant, trunk, "trunk")
    e164 = _pooled(tenant, trunk, did, "did")
    caller_id = caller_id or SmsCallerId(tenant=tenant)
    caller_id.extension, caller_id.trunk, caller_id.did = extension, trunk, e164
    caller_id.description = description
    duplicate = SmsCallerId.objects.for_tenant(tenant).filter(extension=extension, did=e164)
    if duplicate.exclude(pk=caller_id.pk).exists():
        raise ApplicationError(f"Extension {extension.number} has {e164} already.", field="did")
    caller_id.save()
    return caller_id
