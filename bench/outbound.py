"""Measure outbound sending through a production-like stack on this machine.

Run from the repository root:

    .venv/bin/python bench/outbound.py [--messages 2000] [--latency-ms 8000]

It starts, and stops at the end, every process it needs: PostgreSQL is the server of DATABASE_URL
(default postgres://postgres@127.0.0.1:5432/bench_outbound; the bench creates that database, runs
the migrations and drops it at the end), Redis db 11, a PgBouncer in transaction mode when the
`pgbouncer` program is installed, gunicorn serving the portal and the VoIP.ms sandbox (gthread,
many threads: each sandbox sendSMS sleeps --latency-ms, as VoIP.ms takes 7-11 s, without holding a
database connection), and outbound Celery workers running the background sender
(sms/outbound/sender.py: --worker-concurrency task threads claiming messages, each reserving
--prefetch-multiplier tasks from the broker, --sender-concurrency calls in flight per worker on
call threads that hold no database connection, --db-threads threads recording the answers). It
queues --messages messages with message_queue and measures:

- sustained messages per second, from the first enqueue to the last "sent";
- provider sends per message (rows of the sandbox outbox / messages; exactly 1.00 is the goal),
  and HTTP calls per message (delivery attempts / messages);
- unfinished messages (still queued, sending or unknown when the phase's time ran out), lost
  ones (settled as sent but absent from the sandbox outbox, or gone) and duplicated ones (a text
  in the sandbox outbox twice);
- the most PostgreSQL connections the outbound workers had open at once, all worker processes
  together, against the budget of MAX_CONNECTIONS_GOAL; and, for information, the most the
  sandbox's web server and the whole bench database had (connections carry an application_name
  per role).

A second phase does the same with 10% of the sandbox's answers replaced by Cloudflare's HTML
block page (a transient failure the worker retries), where the goals are 0 lost and 0 duplicated.
The whole run is bounded by --timeout (600 s by default); it always stops what it started.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# bench/processes.py: the benches run as scripts
from processes import Processes, free_port, interpreter, wait_for

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_outbound"
REDIS_URL = "redis://127.0.0.1:6379/11"
GOAL_RATE = 100.0
# All outbound workers together may hold at most this many PostgreSQL connections (issue #12).
MAX_CONNECTIONS_GOAL = 20
ACCOUNT = "bench@voipms.example"
DIDS = [f"+1212555{n:04d}" for n in range(100, 150)]
CONTACTS = [f"+1312555{n:04d}" for n in range(100, 200)]
TERMINAL = {"sent", "failed", "delivered"}


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--fault-messages", type=int, default=None, help="default: --messages")
    parser.add_argument("--latency-ms", type=int, default=8000, help="sandbox time per call")
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument(
        "--worker-concurrency", type=int, default=8, help="Celery task threads per worker"
    )
    parser.add_argument(
        "--prefetch-multiplier",
        type=int,
        default=32,
        help="tasks each task thread reserves from the broker (Celery's --prefetch-multiplier)",
    )
    parser.add_argument(
        "--sender-concurrency", type=int, default=1000, help="VoIP.ms calls in flight per worker"
    )
    parser.add_argument(
        "--db-threads", type=int, default=2, help="threads recording answers, per worker"
    )
    parser.add_argument(
        "--worker-processes", type=int, default=2, help="outbound worker processes (default 2)"
    )
    parser.add_argument("--web-workers", type=int, default=2)
    # The stand-in for VoIP.ms must take every call in flight at once (about 2,000 at 100
    # messages a second and 8 s a call), as VoIP.ms does: calls beyond its threads would wait
    # in its listen queue and lengthen every send.
    parser.add_argument("--web-threads", type=int, default=1000, help="per gunicorn worker")
    parser.add_argument(
        "--db-pool",
        choices=["auto", "pgbouncer", "direct"],
        default="auto",
        help="pgbouncer when installed (auto), or direct connections",
    )
    parser.add_argument("--pool-size", type=int, default=30, help="PgBouncer server connections")
    # Messages are queued as that many API clients would, each waiting for its answer.
    parser.add_argument("--enqueue-threads", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=600.0, help="abort after this many s")
    return parser.parse_args()


# Processes --------------------------------------------------------------------------------------


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own server
            return response.status == 200
    except urllib.error.HTTPError:
        return True


def _cpu_seconds(pid: int) -> float:
    """Return the CPU time of a process and all its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, family = 0.0, {pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in family and child not in family:
                family.add(child)
                changed = True
    for member in family:
        total += times.get(member, 0.0)
    return total


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/<pid>/stat after the command name (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def _own_cpu_seconds(pid: int) -> float:
    """Return the CPU time of one process (0 once it is gone)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def _parent_pid(pid: int) -> int:
    """Return a process's parent (0 once it is gone)."""
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def _reaped_children_seconds(pid: int) -> float:
    """Return the CPU time of a process's children that ended and were waited for."""
    fields = _stat_fields(pid)
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def _machine_busy() -> tuple[float, float]:
    """Return (busy, total) CPU jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# Database ---------------------------------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


@contextmanager
def _admin(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as connection:
        yield connection


def _create_database(url: str) -> None:
    from psycopg import sql

    name = _database_name(url)
    with _admin(url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # Django sets no session time zone when the server's is UTC: nothing for PgBouncer's
        # transaction pooling to lose between server connections.
        connection.execute(
            sql.SQL("ALTER DATABASE {} SET timezone TO 'UTC'").format(sql.Identifier(name))
        )


def _drop_database(url: str) -> None:
    from psycopg import sql

    with _admin(url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(_database_name(url))
            )
        )


WORKER_APPLICATION = "bench-outbound-worker"
WEB_APPLICATION = "bench-sandbox-web"


def _with_application(url: str, name: str) -> str:
    """Return the database URL with an application_name, to count connections per role."""
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def _server_connections(url: str) -> dict[str, int]:
    """Return the bench database's open connections: all, the workers' and the web server's."""
    with _admin(url) as connection:
        rows = connection.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s "
            "GROUP BY application_name",
            [_database_name(url)],
        ).fetchall()
    per_role = dict(rows)
    return {
        "all": sum(per_role.values()),
        "workers": per_role.get(WORKER_APPLICATION, 0),
        "web": per_role.get(WEB_APPLICATION, 0),
    }


def _start_pgbouncer(stack: Processes, url: str, pool_size: int) -> str:
    """Start a PgBouncer in transaction mode in front of the database; return its URL."""
    parts = urlsplit(url)
    directory = stack.workdir / "pgbouncer"
    directory.mkdir()
    port = free_port()
    name = _database_name(url)
    user = parts.username or "postgres"
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
{name} = host={parts.hostname} port={parts.port or 5432} dbname={name} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
max_client_conn = 4000
default_pool_size = {pool_size}
max_db_connections = {pool_size}
reserve_pool_size = 0
server_reset_query =
ignore_startup_parameters = extra_float_digits,options,application_name
logfile = {directory}/pgbouncer-server.log
pidfile = {directory}/pgbouncer.pid
"""
    )
    command = ["pgbouncer", str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; setpriv (unlike runuser) keeps this process's limit
        # of open files, which its thousands of client connections need.
        shutil.chown(directory, user="postgres")
        for path in directory.iterdir():
            shutil.chown(path, user="postgres")
        command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]
    stack.start("pgbouncer", command, dict(os.environ))

    def accepts() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    wait_for("PgBouncer", accepts, stack, timeout=20)
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}"))


# The bench ----------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    name: str
    messages: int
    elapsed: float = 0.0
    rate: float = 0.0
    peak_rate: float = 0.0
    sends_per_message: float = 0.0
    calls_per_message: float = 0.0
    unfinished: int = 0
    lost: int = 0
    duplicated: int = 0
    latency_p50: float = 0.0
    latency_p95: float = 0.0
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    connections: dict[str, int] = field(default_factory=dict)
    aborted: str = ""


@dataclass
class Bench:
    args: argparse.Namespace
    stack: Processes
    worker_pids: list[int]
    web_pid: int
    pgbouncer_pid: int | None
    admin_url: str
    deadline: float

    def setup_data(self) -> Any:
        from sms.configurations import sms_configuration_create
        from tenants.services import tenant_create
        from trunks.services import trunk_assignment_save, trunk_save
        from trunks.voipms.sandbox.services import sandbox_account_ensure

        password = secrets.token_urlsafe(24)
        tenant = tenant_create(name="Bench tenant", slug="bench.example")
        trunk = trunk_save(name="VoIP.ms bench", host="sanjose2.voip.ms")
        trunk_assignment_save(trunk=trunk, tenant=tenant, did_pool=f"{DIDS[0][1:]}-{DIDS[-1][1:]}")
        configuration = sms_configuration_create(
            tenant=tenant,
            actor=None,
            api_password=password,
            name="Bench",
            trunk=trunk,
            username=ACCOUNT,
            daily_send_limit=1_000_000,
        )
        sandbox_account_ensure(
            username=ACCOUNT,
            api_password=password,
            dids=DIDS,
            daily_send_cap=100_000_000,
            latency_ms=self.args.latency_ms,
            fault_mode="",
            fault_rate=1.0,
        )
        return configuration

    def enqueue(self, configuration: Any, texts: list[str]) -> None:
        from django.db import connection

        from sms.models import Source
        from sms.outbound.send import message_queue

        def chunk(index: int) -> None:
            try:
                for position in range(index, len(texts), self.args.enqueue_threads):
                    message_queue(
                        configuration=configuration,
                        conversation=None,
                        did=DIDS[position % len(DIDS)],
                        to=CONTACTS[position % len(CONTACTS)],
                        body=texts[position],
                        source=Source.API,
                    )
            finally:
                connection.close()

        with ThreadPoolExecutor(self.args.enqueue_threads) as pool:
            for future in [pool.submit(chunk, i) for i in range(self.args.enqueue_threads)]:
                future.result()

    def run_phase(self, name: str, configuration: Any, count: int) -> PhaseResult:
        from django.db.models import Count, Max

        from sms.models import DeliveryAttempt, Message
        from trunks.voipms.sandbox.models import SandboxMessage

        result = PhaseResult(name=name, messages=count)
        tag = secrets.token_hex(3)
        texts = [
            f"{name} {tag} message {n:05d}: your appointment is confirmed" for n in range(count)
        ]
        first_pk = (Message.objects.aggregate(top=Max("pk"))["top"] or 0) + 1
        phase = Message.objects.filter(pk__gte=first_pk, direction="out")
        cpu_before = self._cpu()
        busy_before = _machine_busy()
        print(f"\n== {name}: {count} messages, sandbox latency {self.args.latency_ms} ms")
        started = time.time()
        enqueuer = threading.Thread(target=self.enqueue, args=(configuration, texts))
        enqueuer.start()
        samples: list[tuple[float, int]] = []
        max_connections: Counter[str] = Counter()
        last_print = 0.0
        # A send ends within the client's read timeout (45 s) after the sandbox's latency.
        stall_after = self.args.latency_ms / 1000 + 50
        last_counts: Counter[str] = Counter()
        last_change = time.monotonic()
        while True:
            time.sleep(0.5)
            self.stack.check_alive()
            counts = Counter(dict(phase.values_list("status").annotate(n=Count("pk"))))
            now = time.time()
            done = sum(counts[s] for s in TERMINAL)
            samples.append((now, counts["sent"] + counts["delivered"]))
            if now - last_print >= 2.0:
                last_print = now
                connections = _server_connections(self.admin_url)
                for role, open_now in connections.items():
                    max_connections[role] = max(max_connections[role], open_now)
                window = [s for s in samples if s[0] >= now - 5.0]
                rate = (window[-1][1] - window[0][1]) / max(window[-1][0] - window[0][0], 0.1)
                print(
                    f"  {now - started:6.1f} s  created {sum(counts.values()):5d}  "
                    f"queued {counts['queued']:5d}  sending {counts['sending']:4d}  "
                    f"sent {counts['sent']:5d}  failed {counts['failed']:3d}  "
                    f"unknown {counts['unknown']:3d}  {rate:6.1f} msg/s  "
                    f"pg connections {connections['workers']} workers / {connections['all']} all",
                    flush=True,
                )
            if done >= count and not enqueuer.is_alive():
                break
            if counts != last_counts:
                last_counts, last_change = counts, time.monotonic()
            elif time.monotonic() - last_change > stall_after:
                result.aborted = (
                    f"stalled for {stall_after:.0f} s with {count - done} messages not finished "
                    f"({counts['sending']} in 'sending': their tasks died, see the worker log)"
                )
                print(f"  ABORT: {result.aborted}", flush=True)
                break
            if time.monotonic() > self.deadline:
                result.aborted = f"timeout with {count - done} messages not finished"
                print(f"  ABORT: {result.aborted}", flush=True)
                break
        enqueuer.join()
        busy_after = _machine_busy()
        cpu_after = self._cpu()
        last_sent = phase.aggregate(last=Max("sent_at"))["last"]
        end = last_sent.timestamp() if last_sent else time.time()
        sent = phase.filter(status__in=TERMINAL - {"failed"})
        result.elapsed = end - started
        result.rate = sent.count() / result.elapsed if result.elapsed > 0 else 0.0
        result.peak_rate = _peak_rate(samples, window=10.0)
        outbox = Counter(
            SandboxMessage.objects.filter(type=0, message__in=texts).values_list(
                "message", flat=True
            )
        )
        result.sends_per_message = sum(outbox.values()) / count
        attempts = DeliveryAttempt.objects.filter(
            message__pk__gte=first_pk, outcome__in=["sent", "retry", "failed", "unknown"]
        ).count()
        result.calls_per_message = attempts / count
        sent_texts = set(sent.values_list("body", flat=True))
        settled = set(phase.filter(status__in=TERMINAL).values_list("body", flat=True))
        result.unfinished = sum(1 for text in texts if text not in settled)
        failed_texts = set(phase.filter(status="failed").values_list("body", flat=True))
        # Lost: settled, not failed with a reason, and yet not (both) sent and in the outbox.
        result.lost = sum(
            1
            for text in texts
            if text in settled
            and text not in failed_texts
            and (text not in sent_texts or text not in outbox)
        )
        result.duplicated = sum(1 for n in outbox.values() if n > 1)
        latencies = sorted(
            (row.sent_at - row.created_at).total_seconds()
            for row in sent.only("sent_at", "created_at")
        )
        if latencies:
            result.latency_p50, result.latency_p95 = _p50_p95(latencies)
        result.stages = _stages(sent, texts)
        seconds = max(time.time() - started, 0.001)
        result.cpu = {
            name: max(cpu_after[name] - cpu_before.get(name, 0.0), 0.0) / seconds * 100
            for name in cpu_after
        }
        jiffies = busy_after[1] - busy_before[1]
        result.cpu["machine"] = (busy_after[0] - busy_before[0]) / max(jiffies, 1) * 100
        result.connections = dict(max_connections)
        return result

    def _cpu(self) -> dict[str, float]:
        cpu = {
            "worker": sum(_cpu_seconds(pid) for pid in self.worker_pids),
            "web": _cpu_seconds(self.web_pid),
            "bench": sum(os.times()[:2]),
        }
        if self.pgbouncer_pid is not None:
            cpu["pgbouncer"] = _cpu_seconds(self.pgbouncer_pid)
        # The database's backends serving this bench; Redis is shared with whatever else runs.
        with _admin(self.admin_url) as connection:
            backends = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s",
                [_database_name(self.admin_url)],
            ).fetchall()
        # Live backends of the bench database, plus every backend that ended meanwhile (a
        # connection closed after a request): their time is added to the postmaster's
        # children's time when it reaps them (of any database: run on a quiet server).
        cpu["postgres"] = sum(_own_cpu_seconds(pid) for (pid,) in backends)
        if backends:
            cpu["postgres"] += _reaped_children_seconds(_parent_pid(backends[0][0]))
        redis_pids = subprocess.run(
            ["pgrep", "-x", "redis-server"], capture_output=True, text=True, check=False
        ).stdout.split()
        cpu["redis (shared)"] = sum(_own_cpu_seconds(int(pid)) for pid in redis_pids)
        return cpu


def _peak_rate(samples: list[tuple[float, int]], window: float) -> float:
    best = 0.0
    start = 0
    for end in range(len(samples)):
        while samples[end][0] - samples[start][0] > window:
            start += 1
        span = samples[end][0] - samples[start][0]
        if span >= window * 0.8:
            best = max(best, (samples[end][1] - samples[start][1]) / span)
    return best


def _stages(sent: Any, texts: list[str]) -> dict[str, tuple[float, float]]:
    """Return p50 and p95 seconds of each step of a send, for the messages sent once.

    The claim sets `last_attempt_at`, the sandbox stores its copy after its latency (just before
    it answers), and the worker's settle sets `sent_at`.
    """
    from sms.models import DeliveryAttempt
    from trunks.voipms.sandbox.models import SandboxMessage

    answered: dict[str, Any] = {}
    for text, at in SandboxMessage.objects.filter(type=0, message__in=texts).values_list(
        "message", "created_at"
    ):
        answered[text] = None if text in answered else at
    calls = dict(
        DeliveryAttempt.objects.filter(message__in=sent, outcome="sent").values_list(
            "message_id", "elapsed_ms"
        )
    )
    steps: dict[str, list[float]] = {
        "queued->claimed": [],
        "claimed->answered": [],
        "answered->settled": [],
        "call as the worker timed it": [],
    }
    for pk, body, created, claimed, settled in sent.filter(attempt_count=1).values_list(
        "pk", "body", "created_at", "last_attempt_at", "sent_at"
    ):
        at = answered.get(body)
        if at is None or claimed is None or settled is None or calls.get(pk) is None:
            continue
        steps["call as the worker timed it"].append(calls[pk] / 1000)
        steps["queued->claimed"].append((claimed - created).total_seconds())
        steps["claimed->answered"].append((at - claimed).total_seconds())
        steps["answered->settled"].append((settled - at).total_seconds())
    return {name: _p50_p95(values) for name, values in steps.items() if values}


def _p50_p95(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def _mark(ok: bool) -> str:
    return "ok  " if ok else "FAIL"


def _report(results: list[PhaseResult], settings_line: str) -> bool:
    print("\n" + "=" * 100)
    print(settings_line)
    print(
        f"{'phase':<22}{'msgs':>6}{'elapsed':>9}{'msg/s':>8}{'peak':>7}  {'goal':<10}"
        f"{'sends/msg':>10}  {'goal':<11}{'calls/msg':>10}{'unfin':>6}{'lost':>6}{'dup':>5}  "
        f"{'p50 s':>6}{'p95 s':>7}"
    )
    all_ok = True
    for r in results:
        rate_ok = r.rate >= GOAL_RATE or r.name != "clean"
        sends_ok = abs(r.sends_per_message - 1.0) < 1e-9
        connections_ok = r.connections.get("workers", 0) <= MAX_CONNECTIONS_GOAL
        ok = (
            rate_ok
            and sends_ok
            and connections_ok
            and r.unfinished == 0
            and r.lost == 0
            and r.duplicated == 0
            and not r.aborted
        )
        all_ok &= ok
        goal = f"≥{GOAL_RATE:g} {_mark(r.rate >= GOAL_RATE)}" if r.name == "clean" else "-"
        print(
            f"{r.name:<22}{r.messages:>6}{r.elapsed:>8.1f}s{r.rate:>8.1f}{r.peak_rate:>7.1f}  "
            f"{goal:<10}{r.sends_per_message:>10.2f}  {'=1.00 ' + _mark(sends_ok):<11}"
            f"{r.calls_per_message:>10.2f}{r.unfinished:>6}{r.lost:>6}{r.duplicated:>5}  "
            f"{r.latency_p50:>6.1f}{r.latency_p95:>7.1f}"
        )
    print(
        "goals: unfinished 0, lost 0, duplicated 0 and at most "
        f"{MAX_CONNECTIONS_GOAL} PostgreSQL connections (all outbound workers) in every phase"
    )
    for r in results:
        if r.stages:
            steps = ", ".join(
                f"{name} {p50:.2f} / {p95:.2f}" for name, (p50, p95) in r.stages.items()
            )
            print(f"{r.name}: steps of a send, p50 / p95 s: {steps}")
    for r in results:
        cpu = ", ".join(f"{name} {value:.0f}%" for name, value in r.cpu.items())
        print(f"{r.name}: CPU (100% = one core; machine: share of all cores) {cpu}")
        workers = r.connections.get("workers", 0)
        print(
            f"{r.name}: most PostgreSQL connections: outbound workers {workers} "
            f"(goal ≤{MAX_CONNECTIONS_GOAL} {_mark(workers <= MAX_CONNECTIONS_GOAL)}), "
            f"sandbox web {r.connections.get('web', 0)}, "
            f"bench database in all {r.connections.get('all', 0)}"
        )
        if r.aborted:
            print(f"{r.name}: ABORTED: {r.aborted}")
    lost = sum(r.lost for r in results)
    duplicated = sum(r.duplicated for r in results)
    print(
        f"RESULT: {'PASS' if all_ok else 'FAIL'} (lost {lost}, duplicated {duplicated}, "
        f"rate {results[0].rate:.1f} msg/s vs goal {GOAL_RATE:g})"
        if results
        else "RESULT: FAIL (no phase ran)"
    )
    return all_ok


def _keep_logs(workdir: Path, target: Path) -> None:
    """Copy the processes' logs where they outlive the run, and show their errors."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    for log in [*workdir.glob("*.log"), *workdir.glob("pgbouncer/*.log")]:
        shutil.copy(log, target / log.name)
        errors = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if "ERROR" in line or "Traceback" in line or "CRITICAL" in line
        ]
        if errors:
            print(f"{log.name}: {len(errors)} error lines, the last ones:")
            for line in errors[-5:]:
                print(f"  {line[:200]}")
    print(f"logs kept in {target}")


def _environment(workdir: Path, database_url: str, port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = dict(os.environ)
    env.pop("CELERY_BROKER_URL", None)
    base = f"http://127.0.0.1:{port}"
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        PUBLIC_BASE_URL=base,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        VOIPMS_SANDBOX="1",
        VOIPMS_API_URL=f"{base}/sandbox/voipms/api/v1/rest.php",
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        VAR_DIR=str(workdir / "var"),
        STATIC_ROOT=str(workdir / "static"),
        LOG_LEVEL="WARNING",
        VOIPMS_REQUESTS_PER_SECOND="100000",
        SMS_RETRY_BASE_SECONDS="0.5",
        SMS_RETRY_MAX_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    return env


def main() -> int:
    args = _parse_args()
    started = time.monotonic()
    deadline = started + args.timeout - 30  # keep time to stop everything
    admin_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not _database_name(admin_url).startswith("bench"):
        # The bench drops the database at the end: never point it at a real one.
        admin_url = _with_database(admin_url, "bench_outbound")
    pool = args.db_pool
    if pool == "auto":
        pool = "pgbouncer" if shutil.which("pgbouncer") else "direct"
    workdir = Path(tempfile.mkdtemp(prefix="bench_outbound_"))
    workdir.chmod(0o755)
    stack = Processes(workdir, stop_signals={"gunicorn": signal.SIGQUIT})
    results: list[PhaseResult] = []
    settings_line = ""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    database_ready = False
    try:
        print(
            f"database {_database_name(admin_url)} on {urlsplit(admin_url).hostname}, {pool}; "
            f"{interpreter()}"
        )
        _create_database(admin_url)
        database_ready = True
        port = free_port()
        env = _environment(workdir, admin_url, port)
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
        pgbouncer_pid = None
        if pool == "pgbouncer":
            env["DATABASE_URL"] = _start_pgbouncer(stack, admin_url, args.pool_size)
            pgbouncer_pid = stack.started[-1].process.pid
        os.environ.update(env)
        os.environ.pop("CELERY_BROKER_URL", None)
        # The sandbox's threads borrow a connection from their process's pool for each
        # request: a thread waiting for its next request holds none, and none is opened anew.
        web_env = {
            **env,
            "DATABASE_URL": _with_application(env["DATABASE_URL"], WEB_APPLICATION),
            "DATABASE_POOL_MAX_SIZE": "8",
            # The stand-in for VoIP.ms skips the check of each borrowed connection (a round
            # trip per borrow, two borrows per call): its cost is not the portal's.
            "CONN_HEALTH_CHECKS": "false",
        }
        worker_env = {
            **env,
            "DATABASE_URL": _with_application(env["DATABASE_URL"], WORKER_APPLICATION),
            "OUTBOUND_SENDER_CONCURRENCY": str(args.sender_concurrency),
            "OUTBOUND_SENDER_DB_THREADS": str(args.db_threads),
        }

        web = stack.start(
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
                "--config",
                "python:bench.sandbox_gunicorn",
                "--backlog",
                "4096",
                "--timeout",
                "120",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            web_env,
        )
        nodenames = [
            f"bench-outbound-{n}-{secrets.token_hex(3)}@{socket.gethostname()}"
            for n in range(args.worker_processes)
        ]
        workers = [
            stack.start(
                f"worker-{n}",
                [
                    str(BIN / "celery"),
                    "-A",
                    "portal",
                    "worker",
                    "-Q",
                    "outbound,default",
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(args.worker_concurrency),
                    "--loglevel",
                    "WARNING",
                    "--hostname",
                    nodename,
                    "--without-mingle",
                    "--without-gossip",
                    "--prefetch-multiplier",
                    str(args.prefetch_multiplier),
                ],
                worker_env,
            )
            for n, nodename in enumerate(nodenames)
        ]
        sys.path.insert(0, str(REPO_ROOT))
        import django

        django.setup()
        import redis

        from portal.celery import app

        redis.Redis.from_url(REDIS_URL).flushdb()
        wait_for("gunicorn", lambda: _http_answers(env["VOIPMS_API_URL"]), stack)
        for nodename in nodenames:
            wait_for(
                "a Celery worker", lambda n=nodename: bool(app.control.ping([n], timeout=1)), stack
            )
        database = (
            f"via PgBouncer (transaction pooling, {args.pool_size} server connections)"
            if pool == "pgbouncer"
            else "direct connections (no pooler)"
        )
        settings_line = (
            f"setup: PostgreSQL {database}, Redis db 11, "
            f"gunicorn gthread {args.web_workers}x{args.web_threads}, "
            f"{args.worker_processes} outbound worker(s) x {args.worker_concurrency} task threads "
            f"(prefetch {args.prefetch_multiplier}) + {args.sender_concurrency} call threads "
            f"+ {args.db_threads} database threads, "
            f"sandbox latency {args.latency_ms} ms, "
            f"{os.cpu_count()} CPUs"
        )
        print(settings_line)
        bench = Bench(
            args=args,
            stack=stack,
            worker_pids=[worker.process.pid for worker in workers],
            web_pid=web.process.pid,
            pgbouncer_pid=pgbouncer_pid,
            admin_url=admin_url,
            deadline=deadline,
        )
        configuration = bench.setup_data()
        results.append(bench.run_phase("clean", configuration, args.messages))
        if not results[-1].aborted and args.fault_rate > 0:
            from trunks.voipms.sandbox.services import sandbox_account_ensure

            sandbox_account_ensure(
                username=ACCOUNT,
                api_password=None,
                fault_mode="cloudflare_html",
                fault_rate=args.fault_rate,
            )
            results.append(
                bench.run_phase(
                    f"{args.fault_rate:.0%} Cloudflare faults",
                    configuration,
                    args.fault_messages or args.messages,
                )
            )
    except KeyboardInterrupt as interrupted:
        print(f"\ninterrupted ({interrupted}); stopping")
    except Exception:
        traceback.print_exc()
        print("the bench failed; stopping")
    finally:
        with suppress(Exception):
            from django.db import connections

            connections.close_all()
        stack.stop_all()
        _keep_logs(workdir, REPO_ROOT / "var" / "bench_outbound")
        if database_ready:
            with suppress(Exception):
                _drop_database(admin_url)
        with suppress(Exception):
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()
        shutil.rmtree(workdir, ignore_errors=True)
    ok = _report(results, settings_line)
    print(f"total time {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
