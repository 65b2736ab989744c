"""Fault injection for the fault suite: a web server, a Redis server and bursts of requests in
processes and threads of their own, crashes of the worker, the database cut off under it, and
the checks that nothing acknowledged was lost.

Every wait is a bounded polling loop; nothing here measures how fast anything is.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import psycopg
import requests
from django.db import models
from django.db.models import F

from sms.models import (
    DeliveryAttempt,
    DeliveryStatus,
    DestinationAttempt,
    Direction,
    Message,
    MessageStatus,
    WebhookDelivery,
)
from tests.worker import REPO_ROOT, broker_app, session_database_url, worker_environment

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.2

FINAL_DELIVERY = {
    DeliveryStatus.PROCESSED,
    DeliveryStatus.DUPLICATE,
    DeliveryStatus.IGNORED,
    DeliveryStatus.REJECTED,
}
FINAL_INBOUND = {MessageStatus.ROUTED, MessageStatus.UNROUTED, MessageStatus.IGNORED}
SENT = {MessageStatus.SENT, MessageStatus.DELIVERED}
GIVEN_UP = {MessageStatus.FAILED, MessageStatus.UNKNOWN}

# The webhook body VoIP.ms posts for a received SMS (tests/fixtures/voipms/sms.json).
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "voipms" / "sms.json"


# Waiting -------------------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log: Callable[[], str] | None = None,
    interval: float = POLL_INTERVAL,
) -> None:
    """Poll until the condition holds; fail after `timeout` seconds, naming what never came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    if condition():
        return
    tail = f"\nlog tail:\n{log()[-6000:]}" if log is not None else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tail}")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Processes -----------------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A server subprocess (gunicorn or redis-server) and the file its output goes to."""

    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process, appending to its log."""
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        """Return whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after a grace period)."""
        if self.process is not None and self.running:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log(self) -> str:
        """Return everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class WebServer:
    """The portal served by gunicorn in a process of its own."""

    url: str
    server: ServerProcess

    def log(self) -> str:
        """Return the server's output."""
        return self.server.log()

    def webhook_url(self, token: str) -> str:
        """Return the webhook URL of a configuration's token."""
        return f"{self.url}/hooks/voipms/{token}/"

    @property
    def sandbox_api_url(self) -> str:
        """Return the URL of the VoIP.ms sandbox API this server serves."""
        return f"{self.url}/sandbox/voipms/api/v1/rest.php"


@contextmanager
def web_server(log_dir: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[WebServer]:
    """Serve the portal with gunicorn against the test database (and the test Redis, unless
    `extra_env` names another); stop it on exit, printing its output when the body raised."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = ServerProcess(
        name="web",
        command=[
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "16",
            "--graceful-timeout",
            "5",
            "--log-level",
            "info",
        ],
        log_path=log_dir / "web.log",
        env=worker_environment(extra_env),
    )
    web = WebServer(url=f"http://127.0.0.1:{port}", server=server)
    server.start()
    try:
        wait_until(
            lambda: _answers(f"{web.url}/") or not server.running,
            timeout=READY_TIMEOUT,
            what="the web server to answer",
            log=server.log,
        )
        if not server.running:
            raise RuntimeError(f"The web server exited:\n{server.log()}")
        yield web
    except BaseException:
        server.stop()
        sys.stderr.write(f"\n----- web server -----\n{server.log()[-20000:]}\n")
        raise
    else:
        server.stop()


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.RequestException:
        return False
    return True


@dataclass
class RedisServer:
    """A redis-server of the test's own, without persistence: a restart empties it."""

    port: int
    server: ServerProcess

    def url(self, db: int = 0) -> str:
        """Return the URL of one of its databases."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start (or start again) the server and wait until it answers."""
        self.server.start()
        wait_until(self.answers, timeout=READY_TIMEOUT, what="redis-server", log=self.server.log)

    def stop(self) -> None:
        """Stop the server; what it held is gone."""
        self.server.stop()

    def answers(self) -> bool:
        """Return whether the server answers a PING."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@contextmanager
def redis_server(log_dir: Path) -> Iterator[RedisServer]:
    """Run a redis-server on a free port (never the shared one on 6379) for one test."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = ServerProcess(
        name="redis",
        command=[
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        log_path=log_dir / "redis.log",
    )
    redis_process = RedisServer(port=port, server=server)
    redis_process.start()
    try:
        yield redis_process
    finally:
        redis_process.stop()


# Webhooks ------------------------------------------------------------------------------------


def webhook_body(*, provider_id: int, to: str, sender: str, text: str) -> bytes:
    """Return a VoIP.ms webhook body for a received SMS (numbers as VoIP.ms writes them)."""
    payload = json.loads(FIXTURE.read_text())
    payload["data"]["id"] = payload["data"]["payload"]["id"] = provider_id
    payload["data"]["payload"]["to"][0]["phone_number"] = to
    payload["data"]["payload"]["from"]["phone_number"] = sender
    payload["data"]["payload"]["text"] = text
    return json.dumps(payload).encode()


@dataclass(frozen=True)
class Posted:
    """One webhook request and its answer (status 0: no answer came)."""

    provider_id: int
    status: int
    text: str

    @property
    def acknowledged(self) -> bool:
        """Return whether the portal took responsibility for it (200 "ok")."""
        return self.status == 200 and self.text == "ok"


class Burst:
    """Post webhooks from a few threads in the background, recording every answer."""

    def __init__(self, url: str, bodies: list[tuple[int, bytes]], *, concurrency: int = 6):
        self.url = url
        self.results: list[Posted] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="burst")
        self._futures = [self._pool.submit(self._post, pid, body) for pid, body in bodies]
        self._pool.shutdown(wait=False)

    def _post(self, provider_id: int, body: bytes) -> None:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            response = session.post(
                self.url, data=body, headers={"Content-Type": "application/json"}, timeout=15
            )
            posted = Posted(provider_id, response.status_code, response.text)
        except requests.RequestException as error:
            posted = Posted(provider_id, 0, type(error).__name__)
        with self._lock:
            self.results.append(posted)

    @property
    def posted(self) -> int:
        """Return how many requests have had their answer (or failed) so far."""
        with self._lock:
            return len(self.results)

    @property
    def done(self) -> bool:
        """Return whether every request has been made."""
        return all(future.done() for future in self._futures)

    def wait(self, timeout: float = 120.0) -> list[Posted]:
        """Wait until every request has been made and return the answers."""
        wait_until(lambda: self.done, timeout=timeout, what="the burst of webhooks")
        for future in self._futures:
            future.result()  # a bug in _post itself surfaces here
        return list(self.results)


# Sweepers and time -------------------------------------------------------------------------


def send_sweep(broker_url: str) -> None:
    """Ask a worker to run the sweepers now (the beat task), through the given broker."""
    with broker_app(broker_url) as sweep_app:
        sweep_app.send_task("sms.outbox_sweep")


def backdate(queryset: models.QuerySet[Any], by: timedelta) -> int:
    """Move every date and time of the rows `by` into the past, as if that much time passed.

    Sweepers only take rows that waited long enough (a minute, or a backoff): the suite cannot
    wait minutes, so it makes the rows older instead. Every DateTimeField moves, so a field the
    application adds for its own backoff moves too.
    """
    fields = [
        model_field.name
        for model_field in queryset.model._meta.concrete_fields
        if isinstance(model_field, models.DateTimeField)
    ]
    return queryset.update(**{name: F(name) - by for name in fields})


def backdate_unfinished_deliveries(by: timedelta = timedelta(minutes=15)) -> int:
    """Age the webhook deliveries not yet in a final state."""
    return backdate(WebhookDelivery.objects.exclude(status__in=FINAL_DELIVERY), by)


def backdate_queued_sends(by: timedelta = timedelta(minutes=2)) -> int:
    """Age the outbound messages waiting in the outbox (their task may be lost)."""
    return backdate(
        Message.objects.filter(direction=Direction.OUT, status=MessageStatus.QUEUED), by
    )


def snapshot() -> tuple[Any, ...]:
    """Return what changes when processing makes progress (statuses and attempts)."""
    return (
        sorted(Counter(WebhookDelivery.objects.values_list("status", flat=True)).items()),
        sorted(Counter(Message.objects.values_list("direction", "status")).items()),
        DeliveryAttempt.objects.count(),
        DestinationAttempt.objects.count(),
    )


def sweep_until_settled(
    *,
    settled: Callable[[], bool],
    broker_url: str,
    age: Callable[[], object],
    timeout: float = 90.0,
    quiet: float = 1.0,
    give_up_after: float = 15.0,
) -> None:
    """Play beat: whenever processing has been quiet for `quiet` seconds and is not settled,
    age the waiting rows and run the sweepers; return once settled, or once nothing changed
    for `give_up_after` seconds (or at the deadline), leaving the verdict to the assertions."""
    deadline = time.monotonic() + timeout
    last = snapshot()
    changed_at = swept_at = time.monotonic()
    while not settled() and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        now, current = time.monotonic(), snapshot()
        if current != last:
            last, changed_at = current, now
            continue
        if now - changed_at >= give_up_after:
            return
        if now - changed_at >= quiet and now - swept_at >= quiet:
            age()
            send_sweep(broker_url)
            swept_at = now


# Verdicts ------------------------------------------------------------------------------------


def inbound_settled() -> bool:
    """Return whether no delivery or received message waits for processing."""
    return (
        not WebhookDelivery.objects.exclude(status__in=FINAL_DELIVERY).exists()
        and not Message.objects.filter(direction=Direction.IN)
        .exclude(status__in=FINAL_INBOUND)
        .exists()
    )


def inbound_problems(posted: list[Posted], *, account: str, expected: dict[int, str]) -> list[str]:
    """Return every way the acknowledged webhooks did not end as exactly one final message.

    `expected` maps each provider id to the status its message must end in.
    """
    problems = []
    stuck = WebhookDelivery.objects.exclude(status__in=FINAL_DELIVERY)
    for status, count in sorted(Counter(stuck.values_list("status", flat=True)).items()):
        reasons = Counter(stuck.filter(status=status).values_list("reason", flat=True))
        problems.append(f"{count} deliveries stayed {status} (reasons {dict(reasons)})")
    unfinished = Message.objects.filter(direction=Direction.IN).exclude(status__in=FINAL_INBOUND)
    for status, count in sorted(Counter(unfinished.values_list("status", flat=True)).items()):
        delivery_states = Counter(
            unfinished.filter(status=status).values_list("delivery__status", flat=True)
        )
        problems.append(
            f"{count} received messages stayed {status} (their deliveries: {dict(delivery_states)})"
        )
    acknowledged = Counter(p.provider_id for p in posted if p.acknowledged)
    stored = WebhookDelivery.objects.count()
    if stored < sum(acknowledged.values()):
        problems.append(f"{sum(acknowledged.values())} webhooks acknowledged, {stored} stored")
    messages = Counter(
        Message.objects.filter(
            direction=Direction.IN, provider_account=account, provider_id__in=list(acknowledged)
        ).values_list("provider_id", flat=True)
    )
    lost = sorted(pid for pid in acknowledged if messages[pid] == 0)
    doubled = sorted(pid for pid in acknowledged if messages[pid] > 1)
    if lost:
        problems.append(f"{len(lost)} acknowledged webhooks made no message: {lost[:20]}")
    if doubled:
        problems.append(f"{len(doubled)} acknowledged webhooks made several messages: {doubled}")
    wrong = Counter(
        (expected[pid], status)
        for pid, status in Message.objects.filter(
            direction=Direction.IN, provider_account=account, provider_id__in=list(acknowledged)
        ).values_list("provider_id", "status")
        if status != expected[pid]
    )
    for (want, got), count in sorted(wrong.items()):
        problems.append(f"{count} messages ended {got} instead of {want}")
    return problems


def outbound_settled() -> bool:
    """Return whether no outbound message waits to be sent or settled."""
    return not Message.objects.filter(
        direction=Direction.OUT,
        status__in=[MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.UNKNOWN],
    ).exists()


def outbound_problems(accepted: list[int], sandbox_sends: Counter[str]) -> list[str]:
    """Return every way an accepted send did not end sent exactly once, or failed with a reason.

    `sandbox_sends` counts the texts the sandbox recorded as sent (each test text is unique).
    """
    problems = []
    messages = {message.pk: message for message in Message.objects.filter(pk__in=accepted)}
    missing = sorted(set(accepted) - set(messages))
    if missing:
        problems.append(f"{len(missing)} accepted sends have no message: {missing}")
    by_status: Counter[str] = Counter()
    for message in messages.values():
        sends = sandbox_sends[message.body]
        if message.status in SENT:
            if sends != 1:
                by_status[f"{message.status} but sent {sends} times"] += 1
        elif message.status in GIVEN_UP:
            if not (message.error_code or message.error_message):
                by_status[f"{message.status} without a reason"] += 1
            if sends > 1:
                by_status[f"{message.status} but sent {sends} times"] += 1
        else:
            by_status[f"stayed {message.status} (sent {sends} times)"] += 1
    problems += [f"{count} messages {what}" for what, count in sorted(by_status.items())]
    # A send the API did not acknowledge may exist all the same: it must not linger either.
    others = (
        Message.objects.filter(direction=Direction.OUT)
        .exclude(pk__in=accepted)
        .exclude(status__in=SENT | GIVEN_UP)
    )
    for status, count in sorted(Counter(others.values_list("status", flat=True)).items()):
        problems.append(f"{count} sends the API did not accept stayed {status}")
    return problems


# The database --------------------------------------------------------------------------------


def database_url_named(application_name: str) -> str:
    """Return the test database's URL for a process whose connections carry this name."""
    return f"{session_database_url()}?application_name={application_name}"


def terminate_backends(application_name: str) -> int:
    """Cut every database connection of the processes carrying that name; return how many."""
    with psycopg.connect(session_database_url(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = %s",
            [application_name],
        ).fetchall()
    return sum(1 for (terminated,) in rows if terminated)


class BackendKiller:
    """Cut a process's database connections every `interval` seconds, in a thread."""

    def __init__(self, application_name: str, *, interval: float = 0.3) -> None:
        self.application_name = application_name
        self.interval = interval
        self.terminated = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backend-killer", daemon=True)

    def __enter__(self) -> BackendKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_TIMEOUT)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.terminated += terminate_backends(self.application_name)
