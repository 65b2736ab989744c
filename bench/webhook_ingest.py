"""Measure the VoIP.ms webhook: acknowledgement speed, and what becomes of what it acknowledged.

Run from the repository root:

    .venv/bin/python bench/webhook_ingest.py [--requests 5000] [--duration-rate 20]

It starts, and stops at the end, every process it needs, production-like (DEBUG off):
PostgreSQL is the server of DATABASE_URL (default postgres://postgres@127.0.0.1:5432; the bench
creates a database bench_webhook_<pid>, migrates it and drops it at the end), Redis db 9 (flushed
at the start and at the end), gunicorn (gthread, --web-workers x --web-threads) serving the portal
plus one bare view (bench/baseline_urls.py: one INSERT of the raw body, nothing else), and one
Celery worker (-Q inbound,default; prefork with --worker-concurrency 2: two worker processes)
started only for the processing phases.

1. acknowledgement throughput: --requests webhook POSTs (20% repeats of earlier ids, 10% MMS whose
   media links point at a closed local port, MEDIA_FETCH_MAX_ATTEMPTS=1 so a refused fetch is not
   retried) from --threads client threads (one keep-alive requests.Session each), worker stopped;
   the same count against the bare one-INSERT view, in ABBA rounds; rates, the ratio
   webhook/baseline (goal >= 0.9), and CPU ms per request of each process;
2. acknowledgement latency at a fixed --rate (open loop, --duration-rate seconds): p50/p99
   measured from the scheduled send time (goal p99 <= 250 ms);
3. the worker drains the backlog: messages processed per second from the first delivery
   processed to the last (worker start-up excluded; goal >= 300/s with two worker processes),
   errors (answers other than 200 "ok"), lost (distinct ids sent minus distinct inbound messages
   stored) and duplicated ((kind, id) stored twice); goals 0;
4. webhook-to-routed latency with the worker running: --routed-count webhooks at --routed-rate
   (50/s), --duplicates of them repeats of earlier ids; per fresh message, from the client's send
   time to the moment its "routed" state was committed, as a LISTEN/NOTIFY from a trigger in the
   bench's database announces it (goals p50 <= 20 ms, p99 <= 50 ms). Message.created_at minus
   the send time is printed for information.

The whole run is bounded by --timeout (600 s); the exit status is 1 when a goal fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

# bench/processes.py: the benches run as scripts
from processes import Processes, free_port, interpreter, wait_for

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/9"
SETTINGS_MODULE = "bench.bench_settings"
ACCOUNT = "bench@voipms.example"
POOL = "12125550100-12125550149"
DIDS = [str(n)[1:] for n in range(12125550100, 12125550150)]  # as VoIP.ms sends them (NANPA)
CALLERS = [f"312555{n:04d}" for n in range(1000, 1100)]
GOAL_RATIO = 0.9
GOAL_ACK_P99_MS = 250.0
GOAL_DRAIN_RATE = 300.0
GOAL_ROUTED_P50_MS = 20.0
GOAL_ROUTED_P99_MS = 50.0
ROUTED_TRIGGER = """
CREATE OR REPLACE FUNCTION bench_routed_notify() RETURNS trigger AS $$
BEGIN
    IF NEW.direction = 'in' AND NEW.status = 'routed' THEN
        PERFORM pg_notify('bench_routed', NEW.kind || ':' || NEW.provider_id);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER bench_routed AFTER INSERT OR UPDATE OF status ON sms_message
    FOR EACH ROW EXECUTE FUNCTION bench_routed_notify();
"""

Key = tuple[str, int]  # (kind, VoIP.ms id)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per side in phase 1")
    parser.add_argument("--threads", type=int, default=32, help="client threads in phase 1")
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s in phase 2")
    parser.add_argument(
        "--duration-rate", type=float, default=20.0, help="seconds of the fixed-rate phase 2"
    )
    parser.add_argument("--routed-count", type=int, default=500, help="webhooks in phase 4")
    parser.add_argument("--routed-rate", type=float, default=50.0, help="requests/s in phase 4")
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of repeated ids")
    parser.add_argument("--mms", type=float, default=0.1, help="share of MMS among fresh ids")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8, help="per gunicorn worker")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--worker-pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument("--timeout", type=int, default=600, help="abort after this many s")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.requests < 100:
        parser.error("--requests must be at least 100")
    return args


class Aborted(Exception):
    """The run was stopped: time limit, SIGTERM."""


def _raise_aborted(signum: int, _frame: object) -> None:
    raise Aborted("time limit reached" if signum == signal.SIGALRM else "terminated")


# Processes ----------------------------------------------------------------------------------------


# CPU accounting -----------------------------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, float, str]]:
    """Return pid -> (parent pid, CPU seconds, command line) for every process."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / ticks,
            cmdline,
        )
    return table


def _tree_seconds(table: dict[int, tuple[int, float, str]], root: int | None) -> float:
    if root is None:
        return 0.0
    family, changed = {root}, True
    while changed:
        changed = False
        for pid, (parent, _, _) in table.items():
            if parent in family and pid not in family:
                family.add(pid)
                changed = True
    return sum(table[pid][1] for pid in family if pid in table)


def _machine_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuSnapshot:
    parts: dict[str, float]
    busy: int
    total: int


class CpuMeter:
    """CPU seconds of the client (this process), gunicorn, the worker, PostgreSQL and Redis.

    PostgreSQL backends of the bench database come and go (Django reconnects after
    CONN_MAX_AGE), so a sampler keeps the last CPU time seen of every backend, exited or not.
    """

    def __init__(self, processes: Processes, database: str, stop: Any) -> None:
        self.processes = processes
        self.backend_tag = f" {database} "
        self.backends: dict[int, float] = {}
        self.lock = threading.Lock()
        self.stop = stop
        self.sampler = threading.Thread(target=self._sample, name="cpu-sampler", daemon=True)
        self.sampler.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.5):
            self._note_backends(_process_table())

    def _note_backends(self, table: dict[int, tuple[int, float, str]]) -> None:
        with self.lock:
            for pid, (_, seconds, cmdline) in table.items():
                if cmdline.startswith("postgres:") and self.backend_tag in cmdline:
                    self.backends[pid] = max(seconds, self.backends.get(pid, 0.0))

    def snapshot(self) -> CpuSnapshot:
        table = _process_table()
        self._note_backends(table)
        times = os.times()
        with self.lock:
            postgres = sum(self.backends.values())
        parts = {
            "client": times.user + times.system,
            "gunicorn": _tree_seconds(table, self.processes.pid("gunicorn")),
            "worker": _tree_seconds(table, self.processes.pid("worker")),
            "postgres": postgres,
            "redis": sum(
                seconds for _, seconds, cmdline in table.values() if "redis-server" in cmdline
            ),
        }
        busy, total = _machine_jiffies()
        return CpuSnapshot(parts, busy, total)

    @staticmethod
    def describe(before: CpuSnapshot, after: CpuSnapshot, requests: int) -> str:
        per = ", ".join(
            f"{name} {1000 * (after.parts[name] - before.parts[name]) / max(requests, 1):.2f}"
            for name in ("client", "gunicorn", "worker", "postgres", "redis")
            if after.parts[name] - before.parts[name] > 0.005
        )
        busy = (after.busy - before.busy) / max(after.total - before.total, 1)
        # Jiffies of /proc/stat are summed over CPUs, like process times.
        busy_seconds = (after.busy - before.busy) / os.sysconf("SC_CLK_TCK")
        ours = sum(after.parts[name] - before.parts[name] for name in after.parts)
        other = max(busy_seconds - ours, 0.0)
        return (
            f"CPU ms per request: {per}, anything else {1000 * other / max(requests, 1):.2f}; "
            f"machine busy {busy:.0%} of {os.cpu_count()} cores"
        )


# Database and Redis -------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def _admin(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as connection:
        yield connection


def _create_database(url: str, name: str) -> None:
    from psycopg import sql

    with _admin(url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_database(url: str, name: str) -> None:
    from psycopg import sql

    with _admin(url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


def _redis_tasks() -> dict[str, int]:
    """Return the tasks waiting in the worker's queues and those taken but not acknowledged."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return {
            "inbound": int(client.llen("inbound")),
            "default": int(client.llen("default")),
            "unacked": int(client.hlen("unacked")),  # kombu's Redis transport keeps them here
        }
    finally:
        client.close()


# Traffic ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    key: Key
    body: bytes
    repeat: bool


class Traffic:
    """VoIP.ms-shaped JSON webhooks: fresh ids, MMS among them, and repeats of earlier ids."""

    def __init__(self, rng: random.Random, media_base: str) -> None:
        self.rng = rng
        self.media_base = media_base
        self.ids = {"sms": itertools.count(310_000_000), "mms": itertools.count(520_000_000)}
        self.history: list[Item] = []
        self.unique: set[Key] = set()
        self._repeat_due = 0.0

    def _fresh(self, mms_share: float) -> Item:
        kind = "mms" if self.rng.random() < mms_share else "sms"
        provider_id = next(self.ids[kind])
        media = [{"url": f"{self.media_base}/{provider_id}/photo.jpg"}] if kind == "mms" else []
        document = {
            "data": {
                "id": provider_id,
                "payload": {
                    "id": provider_id,
                    "to": [
                        {
                            "status": "webhook_delivered",
                            "phone_number": DIDS[provider_id % len(DIDS)],
                        }
                    ],
                    "from": {"phone_number": CALLERS[(provider_id * 7) % len(CALLERS)]},
                    "text": f"Bench {kind} {provider_id}: running ten minutes late, sorry!",
                    "type": kind.upper(),
                    "media": media,
                    "received_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                    "record_type": "message",
                },
                "event_type": "message.received",
                "record_type": "event",
            }
        }
        item = Item((kind, provider_id), json.dumps(document).encode(), repeat=False)
        self.history.append(item)
        self.unique.add(item.key)
        return item

    def batch(self, count: int, *, repeats: float, mms_share: float) -> list[Item]:
        items = []
        for _ in range(count):
            self._repeat_due += repeats
            if self._repeat_due >= 1.0 and self.history:
                self._repeat_due -= 1.0
                # VoIP.ms repeats a webhook soon after the first try: pick among recent ones.
                earlier = self.rng.choice(self.history[-500:])
                items.append(Item(earlier.key, earlier.body, repeat=True))
            else:
                items.append(self._fresh(mms_share))
        return items


# HTTP client --------------------------------------------------------------------------------------


def _session() -> Any:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
    session.headers.update(
        {"Content-Type": "application/json", "User-Agent": "VoIP.ms webhook bench"}
    )
    return session


def _post(session: Any, url: str, body: bytes) -> str:
    """POST a body; return "ok" for 200 "ok", else the status code or the exception's name."""
    import requests

    try:
        response = session.post(url, data=body, timeout=10)
    except requests.RequestException as error:
        return type(error).__name__
    if response.status_code == 200 and response.text == "ok":
        return "ok"
    return str(response.status_code)


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Load:
    name: str
    count: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    cpu: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    @property
    def errors(self) -> int:
        return sum(n for answer, n in self.answers.items() if answer != "ok")

    def merge(self, other: Load) -> None:
        self.count += other.count
        self.elapsed += other.elapsed
        self.latencies_ms += other.latencies_ms
        self.answers.update(other.answers)


def _closed_loop(name: str, url: str, bodies: list[bytes], threads: int, stop: Any) -> Load:
    """Send every body as fast as `threads` keep-alive clients allow."""
    load = Load(name)
    positions = itertools.count()
    lock = threading.Lock()

    def client() -> None:
        session = _session()
        latencies, answers = [], Counter()
        try:
            while not stop.is_set():
                position = next(positions)
                if position >= len(bodies):
                    break
                began = time.perf_counter()
                answers[_post(session, url, bodies[position])] += 1
                latencies.append(1000 * (time.perf_counter() - began))
        finally:
            session.close()
            with lock:
                load.latencies_ms += latencies
                load.answers.update(answers)

    pool = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    began = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    load.elapsed = time.perf_counter() - began
    load.count = len(load.latencies_ms)
    return load


@dataclass
class OpenLoad(Load):
    from_send_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)


def _open_loop(
    name: str,
    url: str,
    items: list[Item],
    rate: float,
    stop: Any,
    *,
    on_send: Callable[[Key, float], None] | None = None,
    pool_size: int = 32,
) -> OpenLoad:
    """Send item i at start + i / rate whatever the answers take (open loop)."""
    load = OpenLoad(name)
    lock = threading.Lock()
    local = threading.local()
    sessions: list[Any] = []

    def send(item: Item, scheduled: float) -> None:
        if stop.is_set():
            return
        if not hasattr(local, "session"):
            local.session = _session()
            with lock:
                sessions.append(local.session)
        began = time.perf_counter()
        if on_send is not None:
            on_send(item.key, time.time())
        answer = _post(local.session, url, item.body)
        ended = time.perf_counter()
        with lock:
            load.answers[answer] += 1
            load.latencies_ms.append(1000 * (ended - scheduled))
            load.from_send_ms.append(1000 * (ended - began))
            load.late_ms.append(1000 * (began - scheduled))

    began = time.perf_counter()
    with ThreadPoolExecutor(pool_size, thread_name_prefix="open-loop") as pool:
        try:
            for position, item in enumerate(items):
                scheduled = began + position / rate
                pause = scheduled - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                if stop.is_set():
                    break
                pool.submit(send, item, scheduled)
        except BaseException:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    load.elapsed = time.perf_counter() - began
    load.count = len(load.latencies_ms)
    for session in sessions:
        session.close()
    return load


# Django in this process ---------------------------------------------------------------------------


def _django_database_url() -> str:
    """Return the URL of the database this process's Django uses (the bench's own)."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def _set_up_django(env: dict[str, str]) -> None:
    # This process's Django uses the same settings and database as the servers it starts.
    os.environ.update(env)
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()


def _seed() -> str:
    """Create a tenant, a trunk with a pool, a configuration and a rule; return the token."""
    from sms.configurations import sms_configuration_create
    from sms.inbound.rules import inbound_rule_save
    from sms.models import Action
    from tenants.services import extension_create, tenant_create
    from trunks.services import trunk_assignment_save, trunk_save

    tenant = tenant_create(name="Bench webhook tenant", slug="webhook.bench.example")
    trunk = trunk_save(name="VoIP.ms bench", host="sanjose2.voip.ms")
    trunk_assignment_save(trunk=trunk, tenant=tenant, did_pool=POOL)
    extension = extension_create(tenant=tenant, number="200", display_name="Reception")
    configuration = sms_configuration_create(
        tenant=tenant,
        actor=None,
        api_password=secrets.token_urlsafe(24),
        name="Bench",
        trunk=trunk,
        username=ACCOUNT,
    )
    inbound_rule_save(
        tenant=tenant,
        actor=None,
        name="All to reception",
        trunk=trunk,
        did_range=POOL,
        **{
            f"{period}_{part}": value
            for period in ("office", "after_hours", "holiday")
            for part, value in (("action", Action.EXTENSION), ("extension", extension))
        },
    )
    return configuration.webhook_token


@contextmanager
def _redis_round_trips() -> Iterator[list[int]]:
    """Count commands and pipelines sent to Redis by this process (one round trip each)."""
    from redis.connection import AbstractConnection

    original = AbstractConnection.send_packed_command
    counter = [0]

    def counting(self: Any, command: Any, check_health: bool = True) -> Any:
        counter[0] += 1
        return original(self, command, check_health)

    AbstractConnection.send_packed_command = counting
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original


def _probe(token: str, traffic: Traffic) -> list[str]:
    """Run a webhook and a baseline request in this process; report their SQL and Redis trips."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    lines = []
    for attempt in range(3):  # the last one shows the steady state (connections open)
        # The baseline gets the same body; only the webhook's id counts as sent.
        item = traffic.batch(1, repeats=0.0, mms_share=0.0)[0]
        for name, path in (("webhook", f"/hooks/voipms/{token}/"), ("baseline", "/bench/insert/")):
            with CaptureQueriesContext(connection) as queries, _redis_round_trips() as trips:
                response = client.post(path, data=item.body, content_type="application/json")
            if response.status_code != 200:
                raise RuntimeError(f"{name} probe answered {response.status_code}")
            if attempt == 2:
                statements = [q["sql"].split(" WHERE ")[0][:70] for q in queries.captured_queries]
                lines.append(
                    f"  {name}: {len(statements)} SQL statements, {trips[0]} Redis round trips"
                )
                lines += [f"    {statement}" for statement in statements]
    return lines


# Phases -------------------------------------------------------------------------------------------


@dataclass
class Results:
    webhook: Load = field(default_factory=lambda: Load("webhook"))
    baseline: Load = field(default_factory=lambda: Load("baseline"))
    fixed: OpenLoad | None = None
    routed: OpenLoad | None = None
    errors: Counter[str] = field(default_factory=Counter)
    lost: int | None = None
    duplicated: int | None = None
    drain_rate: float = 0.0
    routed_ms: list[float] = field(default_factory=list)
    not_routed: int = 0


def _print_load(load: Load) -> None:
    print(
        f"  {load.name:26} {load.count:6d} req in {load.elapsed:6.2f} s = {load.rate:7.1f} req/s"
        f"  p50 {_percentile(load.latencies_ms, 0.5):6.1f} ms  "
        f"p99 {_percentile(load.latencies_ms, 0.99):6.1f} ms  errors {load.errors}",
        flush=True,
    )
    if load.cpu:
        print(f"    {load.cpu}", flush=True)


def _phase_throughput(
    args: argparse.Namespace,
    base_url: str,
    webhook_url: str,
    traffic: Traffic,
    cpu: CpuMeter,
    results: Results,
    stop: Any,
) -> None:
    baseline_url = f"{base_url}/bench/insert/"
    print(f"\n== 1. acknowledgement throughput ({args.threads} keep-alive clients, worker off)")
    warm = traffic.batch(300, repeats=args.duplicates, mms_share=args.mms)
    for side, url in (("webhook", webhook_url), ("baseline", baseline_url)):
        load = _closed_loop(
            f"warm-up {side}", url, [item.body for item in warm], args.threads, stop
        )
        if side == "webhook":
            results.errors.update({a: n for a, n in load.answers.items() if a != "ok"})
        _print_load(load)
    halves = [args.requests // 2, args.requests - args.requests // 2]
    for round_number, count in enumerate(halves, start=1):
        items = traffic.batch(count, repeats=args.duplicates, mms_share=args.mms)
        bodies = [item.body for item in items]
        order = [("webhook", webhook_url), ("baseline", baseline_url)]
        if round_number % 2 == 0:
            order.reverse()  # ABBA: drift in the machine's load weighs on both sides alike
        for side, url in order:
            before = cpu.snapshot()
            load = _closed_loop(f"{side} round {round_number}", url, bodies, args.threads, stop)
            load.cpu = CpuMeter.describe(before, cpu.snapshot(), load.count)
            _print_load(load)
            getattr(results, side).merge(load)
            if side == "webhook":
                results.errors.update({a: n for a, n in load.answers.items() if a != "ok"})
    ratio = results.webhook.rate / results.baseline.rate if results.baseline.rate else 0.0
    print(
        f"  webhook {results.webhook.rate:.1f} req/s, baseline {results.baseline.rate:.1f} "
        f"req/s: ratio {ratio:.2f} (goal >= {GOAL_RATIO})",
        flush=True,
    )


def _phase_fixed_rate(
    args: argparse.Namespace,
    webhook_url: str,
    traffic: Traffic,
    cpu: CpuMeter,
    results: Results,
    stop: Any,
) -> None:
    count = round(args.rate * args.duration_rate)
    print(
        f"\n== 2. acknowledgement latency at {args.rate:g} req/s for {args.duration_rate:g} s "
        f"({count} requests, open loop, worker off)",
        flush=True,
    )
    items = traffic.batch(count, repeats=args.duplicates, mms_share=args.mms)
    before = cpu.snapshot()
    load = _open_loop("webhook at fixed rate", webhook_url, items, args.rate, stop)
    load.cpu = CpuMeter.describe(before, cpu.snapshot(), load.count)
    _print_load(load)
    print(
        f"    from the actual send: p50 {_percentile(load.from_send_ms, 0.5):.1f} ms, "
        f"p99 {_percentile(load.from_send_ms, 0.99):.1f} ms; send later than scheduled: "
        f"p99 {_percentile(load.late_ms, 0.99):.1f} ms",
        flush=True,
    )
    results.fixed = load
    results.errors.update({a: n for a, n in load.answers.items() if a != "ok"})


def _delivery_counts() -> dict[str, int]:
    from django.db.models import Count

    from sms.models import WebhookDelivery

    rows = WebhookDelivery.objects.order_by().values_list("status").annotate(n=Count("id"))
    return dict(rows)


def _wait_drained(processes: Processes, deadline: float, stop: Any) -> tuple[float, int]:
    """Wait until no delivery is left "received" and no task (media fetches too) is waiting.

    Return (seconds until the last delivery was processed, deliveries processed).
    """
    began = time.monotonic()
    first = _delivery_counts().get("received", 0)
    last_print = began
    processed_after = None
    while not stop.is_set():
        processes.check_alive()
        counts = _delivery_counts()
        pending = counts.get("received", 0)
        now = time.monotonic()
        if pending == 0 and processed_after is None:
            processed_after = now - began
        if pending == 0 and not any(_redis_tasks().values()):
            return processed_after or 0.0, first
        if now - last_print >= 5:
            done = first - pending
            print(
                f"  {now - began:5.0f} s: {pending} deliveries left, "
                f"{done / (now - began):.0f}/s so far; {dict(sorted(counts.items()))}; "
                f"tasks {_redis_tasks()}",
                flush=True,
            )
            last_print = now
        if time.time() > deadline:
            raise Aborted(f"the worker did not drain in time ({pending} deliveries left)")
        time.sleep(0.25)
    raise Aborted("stopped")


def _processing_rate() -> float:
    """Return deliveries processed per second, from the first processed to the last."""
    from django.db.models import Count, Max, Min

    from sms.models import WebhookDelivery

    span = WebhookDelivery.objects.exclude(processed_at=None).aggregate(
        first=Min("processed_at"), last=Max("processed_at"), count=Count("pk")
    )
    if not span["count"] or span["first"] == span["last"]:
        return 0.0
    return (span["count"] - 1) / (span["last"] - span["first"]).total_seconds()


def _integrity(traffic: Traffic, results: Results) -> None:
    from django.db.models import Count

    from sms.models import Message

    rows = (
        Message.objects.filter(direction="in", provider_account=ACCOUNT)
        .order_by()
        .values_list("kind", "provider_id")
        .annotate(n=Count("id"))
    )
    stored = {(kind, provider_id): n for kind, provider_id, n in rows}
    results.lost = len(traffic.unique - stored.keys())
    results.duplicated = sum(1 for n in stored.values() if n > 1)
    statuses = Counter(
        dict(
            Message.objects.filter(direction="in")
            .order_by()
            .values_list("status")
            .annotate(n=Count("id"))
        )
    )
    results.not_routed = sum(n for status, n in statuses.items() if status != "routed")
    print(
        f"  sent {len(traffic.unique)} distinct ids; stored {len(stored)} inbound messages "
        f"{dict(statuses)}; lost {results.lost}, duplicated {results.duplicated}, "
        f"errors {sum(results.errors.values())} {dict(results.errors)}",
        flush=True,
    )


def _phase_drain(
    args: argparse.Namespace,
    env: dict[str, str],
    processes: Processes,
    traffic: Traffic,
    cpu: CpuMeter,
    results: Results,
    deadline: float,
    stop: Any,
) -> None:
    print(
        f"\n== 3. processing: one Celery worker ({args.worker_pool}, concurrency "
        f"{args.worker_concurrency}) drains the backlog",
        flush=True,
    )
    print(
        f"  backlog: {_delivery_counts()}; tasks in Redis: {_redis_tasks()}",
        flush=True,
    )
    before = cpu.snapshot()
    processes.start(
        "worker",
        [
            str(BIN / "celery"),
            "-A",
            "portal",
            "worker",
            "-Q",
            "inbound,default",
            "--pool",
            args.worker_pool,
            "--concurrency",
            str(args.worker_concurrency),
            "--loglevel",
            "WARNING",
            "--hostname",
            f"bench-webhook-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        env,
    )
    seconds, processed = _wait_drained(processes, deadline, stop)
    results.drain_rate = _processing_rate()
    print(
        f"  drained {processed} deliveries in {seconds:.1f} s, worker start-up included; "
        f"{results.drain_rate:.0f}/s from the first processed to the last; "
        f"{CpuMeter.describe(before, cpu.snapshot(), processed)}",
        flush=True,
    )
    print(f"  deliveries: {_delivery_counts()}", flush=True)
    _integrity(traffic, results)


def _phase_routed(
    args: argparse.Namespace,
    webhook_url: str,
    processes: Processes,
    traffic: Traffic,
    cpu: CpuMeter,
    results: Results,
    deadline: float,
    stop: Any,
) -> None:
    from django.db import connection

    from sms.models import Message

    print(
        f"\n== 4. webhook-to-routed latency: {args.routed_count} webhooks at "
        f"{args.routed_rate:g} req/s ({args.duplicates:.0%} repeats), worker running",
        flush=True,
    )
    items = traffic.batch(args.routed_count, repeats=args.duplicates, mms_share=args.mms)
    fresh = {item.key for item in items if not item.repeat}
    sent_at: dict[Key, float] = {}
    seen_at: dict[Key, float] = {}
    lock = threading.Lock()
    watching = threading.Event()

    def on_send(key: Key, at: float) -> None:
        with lock:
            sent_at.setdefault(key, at)  # a repeat does not restart the clock

    # A trigger (created in the bench's own database only) notifies when a message becomes
    # "routed"; PostgreSQL delivers a notification when its transaction commits, so the moment
    # it arrives is the commit, give or take the listener's wake-up.
    with connection.cursor() as cursor:
        cursor.execute(ROUTED_TRIGGER)
    listener = psycopg.connect(_django_database_url(), autocommit=True)
    listener.execute("LISTEN bench_routed")

    def watch() -> None:
        try:
            while not watching.is_set():
                for notice in listener.notifies(timeout=0.2):
                    now = time.time()
                    kind, _, provider_id = notice.payload.partition(":")
                    with lock:
                        seen_at.setdefault((kind, int(provider_id)), now)
        finally:
            listener.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    before = cpu.snapshot()
    try:
        load = _open_loop(
            "webhook, worker running", webhook_url, items, args.routed_rate, stop, on_send=on_send
        )
        wanted = fresh
        settle = time.monotonic() + 60
        while time.monotonic() < settle and not stop.is_set():
            processes.check_alive()
            with lock:
                if wanted <= seen_at.keys():
                    break
            if time.time() > deadline:
                raise Aborted("phase 4 did not finish in time")
            time.sleep(0.1)
    finally:
        watching.set()
        watcher.join(timeout=5)
    load.cpu = CpuMeter.describe(before, cpu.snapshot(), load.count)
    _print_load(load)
    results.routed = load
    results.errors.update({a: n for a, n in load.answers.items() if a != "ok"})
    rows = Message.objects.filter(
        provider_account=ACCOUNT,
        kind__in=["sms", "mms"],
        provider_id__in=[provider_id for _, provider_id in wanted],
        direction="in",
    ).values_list(
        "kind",
        "provider_id",
        "created_at",
        "status",
        "delivery__received_at",
        "delivery__processed_at",
    )
    created = {(kind, provider_id): (at, status) for kind, provider_id, at, status, *_ in rows}
    # Where the time goes, per message: the view's INSERT, the wait for the worker, the task.
    stages: dict[str, list[float]] = {"stored": [], "picked up": [], "processed": []}
    for kind, provider_id, at, _, stored, processed in rows:
        send = sent_at.get((kind, provider_id))
        if send is None or stored is None or processed is None:
            continue
        stages["stored"].append(1000 * (stored.timestamp() - send))
        stages["picked up"].append(1000 * (at - stored).total_seconds())
        stages["processed"].append(1000 * (processed - at).total_seconds())
    created_ms = [
        1000 * (created[key][0].timestamp() - sent_at[key])
        for key in wanted
        if key in created and key in sent_at and created[key][1] == "routed"
    ]
    results.routed_ms = [
        1000 * (seen_at[key] - sent_at[key]) for key in wanted if key in seen_at and key in sent_at
    ]
    missing = len(wanted) - len(results.routed_ms)
    print(
        "  send -> routed state committed (LISTEN/NOTIFY from a trigger): "
        f"p50 {_percentile(results.routed_ms, 0.5):.1f} ms, "
        f"p99 {_percentile(results.routed_ms, 0.99):.1f} ms, "
        f"max {max(results.routed_ms, default=float('nan')):.1f} ms "
        f"({len(results.routed_ms)} of {len(wanted)} fresh messages seen routed)",
        flush=True,
    )
    print(
        "  stages (p50 / p99 ms): "
        + "; ".join(
            f"{name} {_percentile(values, 0.5):.1f} / {_percentile(values, 0.99):.1f}"
            for name, values in (
                ("send -> delivery stored (view)", stages["stored"]),
                ("stored -> Message created (queue, worker)", stages["picked up"]),
                ("created -> delivery processed (routing)", stages["processed"]),
            )
        ),
        flush=True,
    )
    print(
        "  Message.created_at (inside the routing transaction) - send time, for information: "
        f"p50 {_percentile(created_ms, 0.5):.1f} ms, p99 {_percentile(created_ms, 0.99):.1f} ms",
        flush=True,
    )
    _wait_drained(processes, deadline, stop)
    print("  after phase 4:", flush=True)
    _integrity(traffic, results)
    if missing:
        results.routed_ms += [float("inf")] * missing


# Report -------------------------------------------------------------------------------------------


def _shown(value: int | None) -> str:
    return "not measured" if value is None else str(value)


def _report(results: Results, args: argparse.Namespace, aborted: str) -> bool:
    ratio = results.webhook.rate / results.baseline.rate if results.baseline.rate else 0.0
    fixed_p99 = _percentile(results.fixed.latencies_ms, 0.99) if results.fixed else float("nan")
    routed_p50 = _percentile(results.routed_ms, 0.5)
    routed_p99 = _percentile(results.routed_ms, 0.99)
    errors = sum(results.errors.values())
    rows: list[tuple[str, str, str, bool]] = [
        (
            "ack throughput webhook/baseline",
            f"{results.webhook.rate:.0f} / {results.baseline.rate:.0f} req/s = {ratio:.2f}",
            f">= {GOAL_RATIO}",
            ratio >= GOAL_RATIO,
        ),
        (
            f"ack p99 at {args.rate:g} req/s (p50)",
            f"{fixed_p99:.1f} ms ({_percentile(results.fixed.latencies_ms, 0.5):.1f} ms)"
            if results.fixed
            else "not measured",
            f"<= {GOAL_ACK_P99_MS:g} ms",
            fixed_p99 <= GOAL_ACK_P99_MS,
        ),
        (
            f"drain, {args.worker_concurrency} {args.worker_pool} worker(s)",
            f"{results.drain_rate:.0f} messages/s" if results.drain_rate else "not measured",
            f">= {GOAL_DRAIN_RATE:g}/s",
            results.drain_rate >= GOAL_DRAIN_RATE,
        ),
        ("errors (answers not 200 ok)", str(errors), "0", errors == 0),
        ("lost", _shown(results.lost), "0", results.lost == 0),
        ("duplicated", _shown(results.duplicated), "0", results.duplicated == 0),
        (
            "webhook-to-routed-commit p50",
            f"{routed_p50:.1f} ms" if results.routed_ms else "not measured",
            f"<= {GOAL_ROUTED_P50_MS:g} ms",
            routed_p50 <= GOAL_ROUTED_P50_MS,
        ),
        (
            "webhook-to-routed-commit p99",
            f"{routed_p99:.1f} ms" if results.routed_ms else "not measured",
            f"<= {GOAL_ROUTED_P99_MS:g} ms",
            routed_p99 <= GOAL_ROUTED_P99_MS,
        ),
    ]
    print()
    print(f"{'figure':34} {'measured':34} {'goal':12} result")
    for name, measured, goal, ok in rows:
        print(f"{name:34} {measured:34} {goal:12} {'PASS' if ok else 'FAIL'}")
    if aborted:
        print(f"\nABORTED: {aborted} (figures not measured count as FAIL)")
    return all(ok for *_, ok in rows) and not aborted


# Main ---------------------------------------------------------------------------------------------


def _child_env(database_url: str, port: int, workdir: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(60),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "VOIPMS_SANDBOX": "false",
            # Nothing in this bench calls VoIP.ms; if anything tried, it would reach a closed port.
            "VOIPMS_API_URL": f"http://127.0.0.1:{free_port()}/api/v1/rest.php",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "CELERY_BROKER_URL": REDIS_URL,
            "VAR_DIR": str(workdir / "var"),
            "MEDIA_ROOT": str(workdir / "media"),
            "EMAIL_URL": "consolemail://",
            "LOG_LEVEL": "WARNING",
            # MMS links point at a closed local port; give a refused fetch up at once rather
            # than schedule retries that would crowd the worker during the latency phase.
            "MEDIA_FETCH_MAX_ATTEMPTS": "1",
        }
    )
    return env


def main() -> int:
    args = _parse_args()
    began = time.monotonic()
    deadline = time.time() + args.timeout
    signal.signal(signal.SIGALRM, _raise_aborted)
    signal.signal(signal.SIGTERM, _raise_aborted)
    signal.alarm(args.timeout)

    source = os.environ.get("DATABASE_URL", "")
    server_url = (
        source if source.startswith(("postgres://", "postgresql://")) else DEFAULT_SERVER_URL
    )
    database = f"bench_webhook_{os.getpid()}"
    database_url = _with_database(server_url, database)
    print(
        f"webhook ingest bench: PostgreSQL {urlsplit(server_url).hostname}:"
        f"{urlsplit(server_url).port or 5432} database {database}, Redis {REDIS_URL}, "
        f"{os.cpu_count()} CPUs, limit {args.timeout} s; {interpreter()}",
        flush=True,
    )
    idle_before = _machine_jiffies()
    time.sleep(2)
    idle_after = _machine_jiffies()
    load = (idle_after[0] - idle_before[0]) / max(idle_after[1] - idle_before[1], 1)
    print(
        f"machine busy before the bench starts: {load:.0%}"
        + (" (other work is running: every figure below is skewed by it)" if load > 0.1 else ""),
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    processes = Processes(workdir)
    stop = threading.Event()
    results = Results()
    port = free_port()
    env = _child_env(database_url, port, workdir)
    base_url = f"http://127.0.0.1:{port}"
    created = False
    aborted = ""
    ok = False
    try:
        created = True  # dropped at the end even if creating it is interrupted
        _create_database(server_url, database)
        print("migrating ...", flush=True)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            env=env,
            check=True,
        )
        _set_up_django(env)
        from django.db import connection

        from bench.baseline_urls import CREATE_TABLE

        with connection.cursor() as cursor:
            cursor.execute(CREATE_TABLE)
        token = _seed()
        webhook_url = f"{base_url}/hooks/voipms/{token}/"
        # MMS links point at a port nobody listens on: a fetch fails at once and stays local.
        traffic = Traffic(random.Random(args.seed), f"http://127.0.0.1:{free_port()}/media")
        _flush_redis()

        print("one request of each kind in this process (steady state):", flush=True)
        for line in _probe(token, traffic):
            print(line)
        connection.close()

        processes.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "portal.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--worker-class",
                "gthread",
                "--workers",
                str(args.web_workers),
                "--threads",
                str(args.web_threads),
                "--backlog",
                "2048",
                "--keep-alive",
                "30",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            env,
        )

        def answers() -> bool:
            import requests

            return requests.get(f"{base_url}/healthz", timeout=2).status_code in (200, 503)

        wait_for("gunicorn", answers, processes, timeout=60)
        print(
            f"gunicorn: {args.web_workers} workers x {args.web_threads} threads (gthread) "
            f"on {base_url}",
            flush=True,
        )
        cpu = CpuMeter(processes, database, stop)
        _phase_throughput(args, base_url, webhook_url, traffic, cpu, results, stop)
        _phase_fixed_rate(args, webhook_url, traffic, cpu, results, stop)
        _phase_drain(args, env, processes, traffic, cpu, results, deadline, stop)
        _phase_routed(args, webhook_url, processes, traffic, cpu, results, deadline, stop)
    except (Aborted, KeyboardInterrupt) as error:
        aborted = str(error) or "interrupted"
    except Exception:
        traceback.print_exc()
        aborted = "error (traceback above)"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the clean-up finish
        stop.set()
        try:
            ok = _report(results, args, aborted)
        finally:
            processes.stop_all()
            if "django" in sys.modules:
                from django.db import connections

                connections.close_all()
            if created:
                _drop_database(server_url, database)
            with suppress(Exception):
                _flush_redis()
            shutil.rmtree(workdir, ignore_errors=True)
            print(
                f"stopped gunicorn and the worker, dropped {database}, flushed Redis db 9; "
                f"total run time {time.monotonic() - began:.0f} s",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
