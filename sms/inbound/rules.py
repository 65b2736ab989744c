"""Inbound rules: validated against the tenant's pool, masks and destinations."""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError
from core.netguard import AddressRefused, url_literal_host_check
from sms.models import Action, InboundRule
from tenants.models import Extension, RingGroup, Tenant, User
from tenants.services import audit_record, audit_secret_changed
from trunks.models import PoolRange, Trunk
from trunks.numbers import (
    CallerMaskError,
    InvalidNumber,
    number_to_int,
    parse_caller_mask,
    parse_nanp,
)

PERIODS = (
    ("office", "Office hours"),
    ("after_hours", "Outside office hours"),
    ("holiday", "Holidays"),
)
RULE_FIELDS = (
    "name",
    "trunk",
    "did_range",
    "caller_mask",
    "priority",
    "enabled",
    "use_custom_hours",
    "custom_hours",
    *(
        f"{prefix}_{part}"
        for prefix, _ in PERIODS
        for part in ("action", "extension", "ring_group", "target")
    ),
)
_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def did_range_parse(text: str) -> tuple[int, int]:
    """Return (start, end) of "number" or "a-b" as 11-digit integers, or raise ApplicationError."""
    parts = [part.strip() for part in text.split("-")]
    if len(parts) > 2 or not all(parts):
        raise ApplicationError(
            _("Write one number or a range a-b."), code="invalid_did", field="did_range"
        )
    try:
        start, end = (number_to_int(parse_nanp(part)) for part in (parts[0], parts[-1]))
    except InvalidNumber as error:
        raise ApplicationError(str(error), code="invalid_did", field="did_range") from error
    if start > end:
        raise ApplicationError(_("The range is reversed."), code="invalid_did", field="did_range")
    return start, end


def _check_destination(*, tenant: Tenant, rule: InboundRule, prefix: str, label: str) -> None:
    action = getattr(rule, f"{prefix}_action")
    target = (getattr(rule, f"{prefix}_target") or "").strip()
    field = f"{prefix}_target"
    extension: Extension | None = getattr(rule, f"{prefix}_extension")
    group: RingGroup | None = getattr(rule, f"{prefix}_ring_group")
    if extension is not None and extension.tenant_id != tenant.pk:
        raise ApplicationError(
            _("%(label)s: choose an extension of this tenant.") % {"label": label},
            field=f"{prefix}_extension",
        )
    if group is not None and group.tenant_id != tenant.pk:
        raise ApplicationError(
            _("%(label)s: choose a ring group of this tenant.") % {"label": label},
            field=f"{prefix}_ring_group",
        )
    if action == Action.EXTENSION and extension is None:
        raise ApplicationError(
            _("%(label)s: choose the extension.") % {"label": label},
            field=f"{prefix}_extension",
        )
    if action == Action.RING_GROUP and group is None:
        raise ApplicationError(
            _("%(label)s: choose the ring group.") % {"label": label},
            field=f"{prefix}_ring_group",
        )
    try:
        if action == Action.FORWARD:
            setattr(rule, field, parse_nanp(target))
        elif action == Action.EMAIL:
            validate_email(target)
        elif action == Action.HTTP:
            URLValidator(schemes=["http", "https"])(target)
            url_literal_host_check(url=target)
        elif action == Action.AUTO_REPLY and not target:
            raise ApplicationError(_("%(label)s: write the reply.") % {"label": label}, field=field)
    except (InvalidNumber, ValidationError) as error:
        message = error.messages[0] if isinstance(error, ValidationError) else str(error)
        raise ApplicationError(
            _("%(label)s: %(message)s") % {"label": label, "message": message}, field=field
        ) from error
    except AddressRefused as error:
        message = f"{label}: {error.message}."
        raise ApplicationError(message, code=error.code, field=field) from error


def _check_hours(hours: Any) -> None:
    if not isinstance(hours, list):
        raise ApplicationError(_("Office hours must be a list."), field="custom_hours")
    for entry in hours:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"weekday", "start", "end"}
            or entry.get("weekday") not in range(7)
            or not _HOURS.match(str(entry.get("start", "")))
            or not _HOURS.match(str(entry.get("end", "")))
            or entry["start"] >= entry["end"]
        ):
            raise ApplicationError(
                _(
                    'Each range needs {"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"} '
                    "with start before end."
                ),
                field="custom_hours",
            )


@transaction.atomic
def inbound_rule_save(
    *, tenant: Tenant, actor: User | None, rule: InboundRule | None = None, **fields: Any
) -> InboundRule:
    """Create or change an inbound rule after checking its DIDs, mask and destinations."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = rule is None
    rule = rule or InboundRule(tenant=tenant)
    for name, value in fields.items():
        setattr(rule, name, value)
    trunk: Trunk = rule.trunk
    if not Trunk.objects.available_to(tenant).filter(pk=trunk.pk).exists():
        raise ApplicationError(_("Choose a trunk assigned to this tenant."), field="trunk")
    rule.did_start, rule.did_end = did_range_parse(rule.did_range)
    inside = PoolRange.objects.for_tenant(tenant).filter(
        trunk=trunk, start__lte=rule.did_start, end__gte=rule.did_end
    )
    if not inside.exists():
        raise ApplicationError(
            _("%(did_range)s is not inside this tenant's DID pool on %(name)s.")
            % {"did_range": rule.did_range, "name": trunk.name},
            code="did_not_in_pool",
            field="did_range",
        )
    try:
        parse_caller_mask(rule.caller_mask or "")
    except CallerMaskError as error:
        raise ApplicationError(str(error), field="caller_mask") from error
    _check_hours(rule.custom_hours)
    for prefix, label in PERIODS:
        _check_destination(tenant=tenant, rule=rule, prefix=prefix, label=label)
    if InboundRule.objects.for_tenant(tenant).filter(name=rule.name).exclude(pk=rule.pk).exists():
        raise ApplicationError(
            _("A rule named %(name)r exists already.") % {"name": rule.name}, field="name"
        )
    rule.full_clean(
        exclude=["tenant", "did_start", "did_end", "webhook_secret"], validate_unique=False
    )
    rule.save()
    audit_record(
        actor=actor,
        action="created" if created else "changed",
        tenant=tenant,
        obj=rule,
        detail={"fields": sorted(fields)},
    )
    return rule


@transaction.atomic
def inbound_rule_delete(*, rule: InboundRule, actor: User | None) -> None:
    """Delete an inbound rule."""
    audit_record(actor=actor, action="deleted", tenant=rule.tenant, obj=rule)
    rule.delete()


@transaction.atomic
def inbound_rule_secret_rotate(*, rule: InboundRule, actor: User | None) -> str:
    """Give the rule a new secret for signing its HTTP POST destinations; the old one stops."""
    rule.webhook_secret = secrets.token_urlsafe(32)
    InboundRule.objects.filter(pk=rule.pk).update(webhook_secret=rule.webhook_secret)
    audit_secret_changed(actor=actor, tenant=rule.tenant, obj=rule, field="webhook_secret")
    return rule.webhook_secret


def inbound_rule_secret(*, rule: InboundRule) -> str:
    """Return the rule's signing secret, creating it on first use."""
    if rule.webhook_secret:
        return rule.webhook_secret
    # The conditional update lets the first of two concurrent deliveries win; both then sign
    # with the secret that was stored.
    created = InboundRule.objects.filter(pk=rule.pk, webhook_secret="").update(
        webhook_secret=secrets.token_urlsafe(32)
    )
    if created:
        audit_secret_changed(actor=None, tenant=rule.tenant, obj=rule, field="webhook_secret")
    rule.refresh_from_db(fields=["webhook_secret"])
    return rule.webhook_secret


def inbound_rule_secret_reveal(*, rule: InboundRule, actor: User) -> str:
    """Return the rule's signing secret to a tenant administrator, and record that he saw it."""
    secret = inbound_rule_secret(rule=rule)
    audit_record(
        actor=actor,
        action="secret_revealed",
        tenant=rule.tenant,
        obj=rule,
        detail={"field": "webhook_secret"},
    )
    return secret
