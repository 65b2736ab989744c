"""Measure DID owner lookups against primary-key lookups on a pool of 1,000,000 numbers.

Run from the repository root:

    .venv/bin/python bench/did_lookup.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/did_lookup.py

The bench builds its data in a throwaway test database (Django's test database machinery, with a
name of its own) and drops it at the end: the database named by DATABASE_URL is never written.
Without DATABASE_URL it uses the demo's SQLite engine under a temporary VAR_DIR.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from processes import interpreter  # bench/processes.py: runs as a script

REPO_ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.8
FIRST_NUMBER = 12125000000


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--ranges", type=int, default=50, help="ranges per tenant")
    parser.add_argument("--size", type=int, default=1000, help="numbers per range")
    parser.add_argument("--seconds", type=float, default=6.0, help="timed run of each lookup")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def _set_up_django() -> str:
    """Configure and set up Django; return a description of the database it will use."""
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    # Query logging under DEBUG would weigh on both timings; CaptureQueriesContext turns it
    # back on where queries are counted.
    settings.DEBUG = False
    source = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "demo default"
    return f"{connection.vendor} ({source}: {connection.settings_dict['NAME']})"


@dataclass(frozen=True)
class Layout:
    """Where the pools lie: range i starts at FIRST_NUMBER + i * 2 * size, so gaps match ranges."""

    tenants: int
    ranges_per_tenant: int
    size: int

    @property
    def range_count(self) -> int:
        return self.tenants * self.ranges_per_tenant

    def start(self, index: int) -> int:
        return FIRST_NUMBER + index * 2 * self.size

    @cached_property
    def starts(self) -> list[int]:
        return [self.start(index) for index in range(self.range_count)]

    def owner_index(self, index: int, trunk_offset: int) -> int:
        # Ranges of one tenant are scattered across the trunk, as real pools are.
        return (index + trunk_offset) % self.tenants


def _build(layout: Layout) -> tuple[int, dict[int, list[int]], list[int]]:
    """Create tenants, two trunks with every tenant's pool, and return ids for the lookups."""
    from django.db import connection, transaction

    from tenants.services import tenant_create
    from trunks.models import PoolRange, TrunkAssignment
    from trunks.numbers import DidRange, format_did_pool
    from trunks.services import trunk_save

    began = time.perf_counter()
    tenants = [
        tenant_create(name=f"Bench tenant {n:03}", slug=f"t{n:03}.bench.example")
        for n in range(layout.tenants)
    ]
    print(f"  {len(tenants)} tenants created", flush=True)
    owners: dict[int, list[int]] = {}
    for trunk_offset, name in enumerate(("VoIP.ms Bench", "VoIP.ms Bench (other trunk)")):
        with transaction.atomic():
            trunk = trunk_save(name=name, host="bench.voip.ms")
            by_tenant: dict[int, list[DidRange]] = {}
            for index in range(layout.range_count):
                start = layout.start(index)
                tenant = tenants[layout.owner_index(index, trunk_offset)]
                by_tenant.setdefault(tenant.pk, []).append(DidRange(start, start + layout.size - 1))
            assignments = TrunkAssignment.objects.bulk_create(
                TrunkAssignment(
                    trunk=trunk, tenant_id=tenant_id, did_pool=format_did_pool(did_ranges)
                )
                for tenant_id, did_ranges in by_tenant.items()
            )
            PoolRange.objects.bulk_create(
                (
                    PoolRange(
                        tenant_id=assignment.tenant_id,
                        trunk=trunk,
                        assignment=assignment,
                        start=did_range.start,
                        end=did_range.end,
                    )
                    for assignment in assignments
                    for did_range in by_tenant[assignment.tenant_id]
                ),
                batch_size=1000,
            )
        owners[trunk.pk] = [
            tenants[layout.owner_index(index, trunk_offset)].pk
            for index in range(layout.range_count)
        ]
        numbers = layout.range_count * layout.size
        print(
            f"  trunk {name!r}: {layout.range_count} ranges, {numbers:,} numbers "
            f"({time.perf_counter() - began:.1f} s)",
            flush=True,
        )
    with connection.cursor() as cursor:
        # Give the planner statistics and the visibility map, as autovacuum would on a live
        # database (an index-only scan needs the map).
        table = connection.ops.quote_name(PoolRange._meta.db_table)
        cursor.execute(
            f"VACUUM ANALYZE {table}" if connection.vendor == "postgresql" else f"ANALYZE {table}"
        )
    pool_range_ids = list(PoolRange.objects.values_list("pk", flat=True))
    return next(iter(owners)), owners, pool_range_ids


def _expected_owner(layout: Layout, owners: list[int], number: int) -> int | None:
    index = bisect_right(layout.starts, number) - 1
    if index < 0 or number > layout.starts[index] + layout.size - 1:
        return None
    return owners[index]


def _probe_numbers(layout: Layout, rng: random.Random, count: int) -> list[int]:
    """Return numbers half inside the pools and half outside (gaps, below and above)."""
    span_end = layout.start(layout.range_count)
    numbers = []
    for n in range(count):
        index = rng.randrange(layout.range_count)
        if n % 2 == 0:
            numbers.append(layout.start(index) + rng.randrange(layout.size))
        elif n % 10 == 1:
            numbers.append(rng.choice((FIRST_NUMBER - 1 - rng.randrange(1000), span_end + 5)))
        else:
            numbers.append(layout.start(index) + layout.size + rng.randrange(layout.size))
    return numbers


@dataclass
class Timing:
    name: str
    latencies_ns: list[int]
    elapsed_s: float

    @property
    def rate(self) -> float:
        return len(self.latencies_ns) / self.elapsed_s

    def percentile_us(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000


def _timed(name: str, lookup: Callable[[int], object], args: list[int], seconds: float) -> Timing:
    latencies: list[int] = []
    clock = time.perf_counter_ns
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    position = 0
    while time.perf_counter() < deadline:
        arg = args[position % len(args)]
        position += 1
        start = clock()
        lookup(arg)
        latencies.append(clock() - start)
    return Timing(name, latencies, time.perf_counter() - began)


def _queries_per_call(lookup: Callable[[int], object], args: list[int]) -> float:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        for arg in args:
            lookup(arg)
    return len(captured) / len(args)


def _run(args: argparse.Namespace) -> int:
    from django.db import connection

    from core.db import fetch_one
    from trunks.models import PoolRange
    from trunks.selectors import did_owner_tenant_id

    layout = Layout(args.tenants, args.ranges, args.size)
    rng = random.Random(args.seed)
    total = layout.range_count * layout.size
    print(
        f"building {total:,} pooled numbers per trunk: {layout.tenants} tenants x "
        f"{layout.ranges_per_tenant} ranges x {layout.size:,} numbers, on 2 trunks",
        flush=True,
    )
    trunk_id, owners, pool_range_ids = _build(layout)
    print(f"  {len(pool_range_ids):,} PoolRange rows in all", flush=True)

    numbers = _probe_numbers(layout, rng, 20_000)
    range_ids = [rng.choice(pool_range_ids) for _ in range(20_000)]

    def owner_lookup(number: int) -> int | None:
        return did_owner_tenant_id(trunk=trunk_id, number=f"+{number}")

    # The owner lookup runs prepared on PostgreSQL (core.db), so the goal is judged against a
    # primary-key lookup prepared the same way: the ratio compares the database's work with the
    # same Python around it. The plain primary-key statement, as Django's ORM runs it (parsed
    # and planned on every call), is timed too, for information.
    quote = connection.ops.quote_name
    pk_sql = " ".join(
        [
            f"SELECT tenant_id, {quote('end')}",
            f"FROM {quote(PoolRange._meta.db_table)}",
            "WHERE id = %s",
        ]
    )

    def pk_lookup(pk: int) -> object:
        return fetch_one(pk_sql, [pk])

    def plain_pk_lookup(pk: int) -> object:
        with connection.cursor() as cursor:
            cursor.execute(pk_sql, [pk])
            return cursor.fetchone()

    wrong = [
        n for n in numbers[:2000] if owner_lookup(n) != _expected_owner(layout, owners[trunk_id], n)
    ]
    inside = sum(1 for n in numbers if _expected_owner(layout, owners[trunk_id], n) is not None)
    print(
        f"checked 2,000 owner lookups against the layout: {len(wrong)} wrong; "
        f"probes inside pools: {inside / len(numbers):.0%}",
        flush=True,
    )
    sample = numbers[0]
    plan = (
        PoolRange.objects.filter(trunk_id=trunk_id, start__lte=sample)
        .order_by("-start")
        .values_list("tenant_id", "end")[:1]
        .explain()
    )
    print("owner lookup plan:")
    for line in plan.splitlines():
        print(f"  {line}")

    lookups = [
        ("owner lookup (did_owner_tenant_id)", owner_lookup, numbers),
        ("primary-key lookup (PoolRange by pk)", pk_lookup, range_ids),
        ("plain primary-key statement (the ORM's)", plain_pk_lookup, range_ids),
    ]
    for _ in range(500):  # warm connections, caches, prepared statements and the planner
        for _, lookup, arguments in lookups:
            lookup(rng.choice(arguments))
    queries = [_queries_per_call(lookup, arguments[:1000]) for _, lookup, arguments in lookups]

    rounds = 3
    runs: list[list[Timing]] = [[] for _ in lookups]
    print(
        f"timing {rounds} alternating rounds of {args.seconds / rounds:.1f} s each ...", flush=True
    )
    for _ in range(rounds):
        for index, (name, lookup, arguments) in enumerate(lookups):
            runs[index].append(_timed(name, lookup, arguments, args.seconds / rounds))
    timings = [
        Timing(
            name,
            [ns for run in runs[index] for ns in run.latencies_ns],
            sum(run.elapsed_s for run in runs[index]),
        )
        for index, (name, _, _) in enumerate(lookups)
    ]
    owner, pk, plain_pk = timings

    print()
    print(f"{'':42} {'lookups/s':>10} {'p50 µs':>8} {'p99 µs':>8} {'queries/lookup':>15}")
    for timing, count in zip(timings, queries, strict=True):
        print(
            f"{timing.name:42} {timing.rate:10,.0f} {timing.percentile_us(0.50):8.0f} "
            f"{timing.percentile_us(0.99):8.0f} {count:15.2f}"
        )
    ratio = owner.rate / pk.rate
    ok = ratio >= GOAL_RATIO and queries[0] == 1.0 and not wrong
    print()
    print(f"ratio owner/plain primary-key statement: {owner.rate / plain_pk.rate:.2f}")
    print(f"ratio owner/pk: {ratio:.2f} (goal >= {GOAL_RATIO}): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def main() -> int:
    args = _parse_args()
    began = time.perf_counter()
    own_var_dir = None
    if "VAR_DIR" not in os.environ:
        # The demo settings write generated secrets and the SQLite file under VAR_DIR.
        own_var_dir = tempfile.mkdtemp(prefix="did-lookup-bench-")
        os.environ["VAR_DIR"] = own_var_dir
    database = _set_up_django()
    from django.db import connection

    original_name = connection.settings_dict["NAME"]
    # A name of our own: never the configured database, nor another run's test database.
    test_name = f"bench_did_lookup_{os.getpid()}"
    if connection.vendor == "sqlite":
        test_name = str(Path(os.environ["VAR_DIR"]) / f"{test_name}.sqlite3")
    connection.settings_dict.setdefault("TEST", {})["NAME"] = test_name
    print(f"database: {database}; {interpreter()}")
    print(f"creating the throwaway database {test_name} (migrations) ...", flush=True)
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        status = _run(args)
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)
        connection.close()
        if own_var_dir:
            shutil.rmtree(own_var_dir, ignore_errors=True)
        print(f"dropped {test_name}; total run time {time.perf_counter() - began:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
