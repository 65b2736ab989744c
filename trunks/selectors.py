"""Reads about trunks and DID pools."""

from __future__ import annotations

from collections.abc import Iterator

from tenants.models import Tenant
from trunks.models import PoolRange, Trunk, TrunkAssignment
from trunks.numbers import InvalidNumber, number_to_int


def _as_int(number: str | int) -> int | None:
    if isinstance(number, int):
        return number
    try:
        return number_to_int(number)
    except InvalidNumber:
        return None


def did_owner_tenant_id(*, trunk: Trunk | int, number: str | int) -> int | None:
    """Return the id of the tenant whose pool on the trunk holds the number, in one query."""
    value = _as_int(number)
    if value is None:
        return None
    trunk_id = trunk if isinstance(trunk, int) else trunk.pk
    # Pools on one trunk never overlap, so the range starting nearest below is the only one
    # that can hold the number: one index probe whatever the pool sizes.
    row = (
        PoolRange.objects.filter(trunk_id=trunk_id, start__lte=value)
        .order_by("-start")
        .values_list("tenant_id", "end")
        .first()
    )
    if row is None or row[1] < value:
        return None
    return row[0]


def tenant_owns_number(
    *, tenant: Tenant | None, number: str | int, trunk: Trunk | None = None
) -> bool:
    """Return whether the number lies in one of the tenant's pools (on the trunk, if given)."""
    value = _as_int(number)
    if tenant is None or value is None:
        return False
    ranges = PoolRange.objects.for_tenant(tenant).filter(start__lte=value, end__gte=value)
    if trunk is not None:
        ranges = ranges.filter(trunk=trunk)
    return ranges.exists()


def trunk_assignments_for_tenant(*, tenant: Tenant) -> list[TrunkAssignment]:
    """Return the tenant's trunk assignments with their trunks."""
    return list(
        TrunkAssignment.objects.for_tenant(tenant).select_related("trunk").order_by("trunk__name")
    )


def tenant_pool_numbers(
    *, tenant: Tenant, trunk: Trunk | None = None, limit: int = 1000
) -> Iterator[str]:
    """Yield the tenant's pool numbers in E.164, at most `limit` of them."""
    ranges = PoolRange.objects.for_tenant(tenant).order_by("start")
    if trunk is not None:
        ranges = ranges.filter(trunk=trunk)
    count = 0
    for pool_range in ranges:
        for value in range(pool_range.start, pool_range.end + 1):
            if count >= limit:
                return
            yield f"+{value}"
            count += 1
