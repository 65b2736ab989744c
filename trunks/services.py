"""Every write on trunks and tenant assignments, with the DID pool rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError, Conflict
from tenants.models import Tenant, User
from tenants.services import audit_record, audit_secret_changed
from trunks.models import PoolRange, Trunk, TrunkAssignment
from trunks.numbers import DidPoolError, DidRange, format_did_pool, parse_did_pool


@dataclass(frozen=True)
class PoolUse:
    """Something that uses a tenant's numbers on a trunk: one number, or the whole assignment."""

    what: str
    number: int | None = None
    end: int | None = None

    def covered_by(self, ranges: list[DidRange]) -> bool:
        """Return whether every number this use needs lies in the ranges."""
        if self.number is None:
            return bool(ranges)
        last = self.end if self.end is not None else self.number
        return any(r.start <= self.number and last <= r.end for r in ranges)


PoolUser = Callable[[TrunkAssignment], Iterable[PoolUse]]
_pool_users: list[PoolUser] = []


def register_pool_user(function: PoolUser) -> PoolUser:
    """Register a function listing what uses an assignment's numbers (configurations, rules)."""
    _pool_users.append(function)
    return function


def pool_uses(*, assignment: TrunkAssignment) -> list[PoolUse]:
    """Return everything that uses the assignment's numbers."""
    return [use for user in _pool_users for use in user(assignment)]


def _describe(uses: Iterable[PoolUse]) -> str:
    def label(use: PoolUse) -> str:
        if use.number is None:
            return use.what
        if use.end is not None and use.end != use.number:
            return f"{use.what} (+{use.number} to +{use.end})"
        return f"{use.what} (+{use.number})"

    parts = sorted({label(use) for use in uses})
    shown = "; ".join(parts[:10])
    return shown + (f"; and {len(parts) - 10} more" if len(parts) > 10 else "")


def did_pool_parse(*, did_pool: str) -> list[DidRange]:
    """Parse a DID pool text or raise ApplicationError with the parser's precise message."""
    try:
        return parse_did_pool(did_pool, max_range_size=settings.DID_POOL_MAX_RANGE_SIZE)
    except DidPoolError as error:
        raise ApplicationError(str(error), code="invalid_did_pool", field="did_pool") from error


def did_pool_check(
    *,
    trunk: Trunk | None,
    tenant: Tenant,
    did_pool: str,
    assignment: TrunkAssignment | None = None,
) -> list[DidRange]:
    """Validate a tenant's pool on a trunk: syntax, overlap, and numbers still in use."""
    ranges = did_pool_parse(did_pool=did_pool)
    if trunk is not None and trunk.pk:
        clashes: dict[str, list[DidRange]] = {}
        for did_range in ranges:
            for other in (
                PoolRange.objects.filter(
                    trunk=trunk, start__lte=did_range.end, end__gte=did_range.start
                )
                .exclude(tenant=tenant)
                .select_related("tenant")
            ):
                common = did_range.intersection(DidRange(other.start, other.end))
                if common is not None:
                    clashes.setdefault(other.tenant.name, []).append(common)
        if clashes:
            detail = "; ".join(
                f"{name}: {format_did_pool(shared)}" for name, shared in sorted(clashes.items())
            )
            raise ApplicationError(
                _("The pool overlaps another tenant's pool on trunk %(name)s: %(detail)s")
                % {"name": trunk.name, "detail": detail},
                code="did_pool_overlap",
                field="did_pool",
            )
    if assignment is not None and assignment.pk:
        _refuse_removing_used_numbers(assignment=assignment, new_ranges=ranges)
    return ranges


def _refuse_removing_used_numbers(
    *, assignment: TrunkAssignment, new_ranges: list[DidRange] | None
) -> None:
    uses = pool_uses(assignment=assignment)
    if new_ranges is None:
        blocking = uses
    else:
        blocking = [use for use in uses if not use.covered_by(new_ranges)]
    if blocking:
        action = _("removed from the trunk") if new_ranges is None else _("shrunk")
        raise Conflict(
            _(
                "%(tenant)s's pool on %(trunk)s cannot be %(action)s while these use its "
                "numbers: %(value)s"
            )
            % {
                "tenant": assignment.tenant,
                "trunk": assignment.trunk,
                "action": action,
                "value": _describe(blocking),
            },
            code="did_pool_in_use",
            field="did_pool",
        )


def _store_ranges(*, assignment: TrunkAssignment, ranges: list[DidRange]) -> None:
    assignment.pool_ranges.all().delete()
    PoolRange.objects.bulk_create(
        PoolRange(
            tenant_id=assignment.tenant_id,
            trunk_id=assignment.trunk_id,
            assignment=assignment,
            start=r.start,
            end=r.end,
        )
        for r in ranges
    )


@transaction.atomic
def trunk_assignment_save(
    *,
    trunk: Trunk,
    tenant: Tenant,
    did_pool: str,
    max_concurrent_calls: int = 10,
    assignment: TrunkAssignment | None = None,
    actor: User | None = None,
) -> TrunkAssignment:
    """Create or change a tenant's assignment to a trunk with its DID pool."""
    # One writer per trunk at a time, so two tenants cannot claim the same numbers at once.
    Trunk.objects.select_for_update().filter(pk=trunk.pk).first()
    if assignment is None:
        assignment = TrunkAssignment.objects.filter(trunk=trunk, tenant=tenant).first()
    if assignment is not None:
        # Compare with the stored row: a form may have written the new tenant onto the object.
        stored = TrunkAssignment.objects.select_related("tenant").get(pk=assignment.pk)
        if stored.tenant_id != tenant.pk:
            raise ApplicationError(
                _("An assignment cannot move to another tenant."), field="tenant"
            )
        assignment = stored
    ranges = did_pool_check(trunk=trunk, tenant=tenant, did_pool=did_pool, assignment=assignment)
    created = assignment is None
    if created:
        assignment = TrunkAssignment(trunk=trunk, tenant=tenant)
    assignment.did_pool = format_did_pool(ranges) if ranges else ""
    assignment.max_concurrent_calls = max_concurrent_calls
    assignment.full_clean(exclude=["trunk", "tenant"], validate_unique=False)
    assignment.save()
    _store_ranges(assignment=assignment, ranges=ranges)
    audit_record(
        actor=actor,
        action="trunk_assigned" if created else "trunk_assignment_changed",
        tenant=tenant,
        obj=assignment,
        detail={"did_pool": assignment.did_pool},
    )
    return assignment


@transaction.atomic
def trunk_assignment_delete(*, assignment: TrunkAssignment, actor: User | None = None) -> None:
    """Remove a tenant from a trunk, unless something still uses its numbers."""
    _refuse_removing_used_numbers(assignment=assignment, new_ranges=None)
    audit_record(actor=actor, action="trunk_unassigned", tenant=assignment.tenant, obj=assignment)
    assignment.delete()


def trunk_assignment_check_delete(*, assignment: TrunkAssignment) -> None:
    """Raise if the assignment cannot be removed now."""
    _refuse_removing_used_numbers(assignment=assignment, new_ranges=None)


TRUNK_FIELDS = (
    "name",
    "brand",
    "host",
    "port",
    "transport",
    "sip_username",
    "reregister_interval",
    "max_concurrent_calls",
    "enabled",
)


def trunk_name_check(*, name: str, owner: Tenant | None, trunk: Trunk | None = None) -> None:
    """Refuse a name the owner already gives another trunk: the system's, or the tenant's own."""
    # Only the owner's trunks count, so the answer never tells a tenant which names other tenants
    # (or system trunks it cannot see) use; the database constraints on Trunk hold the same rule.
    others = Trunk.objects.filter(name=name, tenant=owner)
    if trunk is not None and trunk.pk:
        others = others.exclude(pk=trunk.pk)
    if not others.exists():
        return
    if owner is None:
        message = f"A system trunk named “{name}” exists already; choose another name."
    else:
        message = f"{owner.name} has a private trunk named “{name}” already; choose another name."
    raise ApplicationError(message, code="trunk_name_taken", field="name")


@transaction.atomic
def trunk_save(
    *,
    trunk: Trunk | None = None,
    sip_password: str | None = None,
    actor: User | None = None,
    owner: Tenant | None = None,
    **fields: Any,
) -> Trunk:
    """Create or change a trunk; a blank or missing SIP password keeps the stored one."""
    unknown = set(fields) - set(TRUNK_FIELDS)
    if unknown:
        raise ApplicationError(
            _("Unknown trunk fields: %(value)s") % {"value": ", ".join(sorted(unknown))}
        )
    created = trunk is None
    trunk = trunk or Trunk(tenant=owner)
    for name, value in fields.items():
        setattr(trunk, name, value)
    if sip_password:
        trunk.sip_password = sip_password
    trunk_name_check(name=trunk.name, owner=trunk.tenant, trunk=trunk)
    trunk.full_clean()
    try:
        with transaction.atomic():
            trunk.save()
    except IntegrityError:
        # Another request took the name since the check: give its message, not a server error.
        trunk_name_check(name=trunk.name, owner=trunk.tenant, trunk=trunk)
        raise
    changed = sorted(fields) + (["sip_password"] if sip_password else [])
    audit_record(
        actor=actor,
        action="trunk_created" if created else "trunk_changed",
        tenant=owner,
        obj=trunk,
        detail={"fields": changed},
    )
    if sip_password:
        audit_secret_changed(actor=actor, tenant=owner, obj=trunk, field="sip_password")
    return trunk


def trunk_check_delete(*, trunk: Trunk) -> None:
    """Raise if something still uses any tenant's numbers on the trunk."""
    uses = [use for a in trunk.assignments.all() for use in pool_uses(assignment=a)]
    if uses:
        raise Conflict(
            _("Trunk %(name)s cannot be deleted while these use it: %(value)s")
            % {"name": trunk.name, "value": _describe(uses)},
            code="trunk_in_use",
        )


@transaction.atomic
def trunk_delete(*, trunk: Trunk, actor: User | None = None) -> None:
    """Delete a trunk that nothing uses any more."""
    trunk_check_delete(trunk=trunk)
    audit_record(actor=actor, action="trunk_deleted", tenant=trunk.tenant, obj=trunk)
    trunk.delete()
