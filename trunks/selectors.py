"""Reads about trunks and DID pools."""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from functools import cache
from itertools import islice

from django.db import connection

from core.db import fetch_one
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


@cache
def _owner_sql() -> str:
    quote = connection.ops.quote_name
    column = {field.name: quote(field.column) for field in PoolRange._meta.concrete_fields}
    return " ".join(
        [
            f"SELECT {column['tenant']}, {column['end']}",
            f"FROM {quote(PoolRange._meta.db_table)}",
            f"WHERE {column['trunk']} = %s AND {column['start']} <= %s",
            f"ORDER BY {column['start']} DESC LIMIT 1",
        ]
    )


def did_owner_tenant_id(*, trunk: Trunk | int, number: str | int) -> int | None:
    """Return the id of the tenant whose pool on the trunk holds the number, in one query."""
    value = _as_int(number)
    if value is None:
        return None
    trunk_id = trunk if isinstance(trunk, int) else trunk.pk
    # Pools on one trunk never overlap, so the range starting nearest below is the only one
    # that can hold the number: one index probe whatever the pool sizes. Every inbound message
    # makes it, so it is the query the ORM would build, prepared: planning it costs more than
    # running it.
    row = fetch_one(_owner_sql(), [trunk_id, value])
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


def tenant_pool_numbers_containing(
    *, tenant: Tenant, trunk_ids: Iterable[int], digits: str, limit: int
) -> list[str]:
    """Return the first `limit` pool numbers on these trunks whose 11 digits contain `digits`.

    A pool number is the integer 1NXXNXXXXXX, so the digits are looked for anywhere in its E.164
    form without the "+": "+12125550105" is found by "12125550105", "2125550105", "212" or
    "0105". Empty digits match every number; anything but 0 to 11 ASCII digits matches none. The
    numbers come in E.164, in ascending order. No range is expanded: where the digits sit at
    offset j, the numbers holding them form blocks of consecutive integers
    (h * 10^(11-j) + digits * 10^low, plus 0 to 10^low - 1, low being the digits after them),
    which are cut to the range, so a search costs the same whatever the size of the pools.
    """
    width = 11
    if limit <= 0 or len(digits) > width or not re.fullmatch(r"[0-9]*", digits):
        return []
    value = int(digits or "0")

    def blocks(start: int, end: int, offset: int) -> Iterator[int]:
        low = 10 ** (width - offset - len(digits))
        period = low * 10 ** len(digits)
        first = value * low
        high = max(0, (start - first) // period)
        while (block := high * period + first) <= end:
            yield from range(max(block, start), min(block + low - 1, end) + 1)
            high += 1

    def containing(start: int, end: int) -> Iterator[int]:
        if not digits:
            yield from range(start, end + 1)
            return
        previous = None
        offsets = range(width - len(digits) + 1)
        # The digits may occur twice in one number ("55" in 12125550105): yield it once.
        for number in heapq.merge(*(blocks(start, end, offset) for offset in offsets)):
            if number != previous:
                yield number
                previous = number

    ranges = (
        PoolRange.objects.for_tenant(tenant)
        .filter(trunk_id__in=list(trunk_ids))
        .order_by("start")
        .values_list("start", "end")
    )
    found: list[int] = []
    for start, end in ranges:
        if len(found) >= limit and found[-1] < start:
            break  # every later range starts above the numbers kept
        # Pools on two trunks may hold the same number: the set keeps it once.
        found = sorted({*found, *islice(containing(start, end), limit)})[:limit]
    return [f"+{number}" for number in found]
