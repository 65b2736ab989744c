"""Run a real Celery worker in a subprocess against the test database and Redis.

Tests that use it must commit their rows (`@pytest.mark.django_db(transaction=True)`) so the
worker, on its own database connection, can see them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote

import redis
from celery import Celery
from django.conf import settings
from django.db import connection
from kombu.exceptions import OperationalError

from portal.celery import app

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass
class WorkerProcess:
    """A running `celery worker` subprocess and the file its output goes to."""

    nodename: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: IO[bytes] = field(repr=False)
    broker_url: str = ""  # where the worker takes its tasks from (the test Redis by default)

    def log(self) -> str:
        """Return everything the worker has printed so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        """Return whether the process is still alive."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and every process it started (embedded beat, pool children).

        Nothing runs its shutdown code, as when the machine or container dies: tasks in flight
        stay unacknowledged in the broker and open transactions are cut off.
        """
        doomed = [self.process.pid, *_descendants(self.process.pid)]
        for pid in doomed:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(_alive(pid) for pid in doomed[1:]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> int:
        """Stop the worker (SIGTERM, then SIGKILL after a grace period) and return its exit code."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        self._log_file.close()
        return self.process.returncode


def _descendants(pid: int) -> list[int]:
    """Return the ids of every process below `pid` (read from Linux's /proc)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                pids = [int(child) for child in children.read_text().split()]
            except OSError:
                continue  # the thread or process is gone already
            found += pids
            pending += pids
    return found


def _alive(pid: int) -> bool:
    """Return whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def session_database_url() -> str:
    """Return the URL of the database pytest-django created for this session."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of a worker that shares this test session's database and Redis."""
    env = dict(os.environ)
    # A broker URL of its own would send the worker's tasks somewhere the tests do not look.
    env.pop("CELERY_BROKER_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DATABASE_URL=session_database_url(),
        REDIS_URL=settings.REDIS_URL,
        VAR_DIR=str(settings.VAR_DIR),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


def flush_redis() -> None:
    """Empty the test Redis database so no task from an earlier test is delivered."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def broker_app(broker_url: str) -> Iterator[Celery]:
    """Return the portal's Celery app, or a twin of it that talks to another broker.

    Remote control (ping) publishes through the app's own producer pool, whatever connection it
    is given, so a worker on another broker is reached only through an app configured for it.
    """
    if broker_url == app.conf.broker_url:
        yield app
        return
    twin = Celery("portal", set_as_current=False)
    twin.config_from_object("django.conf:settings", namespace="CELERY")
    twin.conf.broker_url = broker_url
    try:
        yield twin
    finally:
        twin.close()


def _responding_nodes(broker_url: str) -> set[str]:
    try:
        with broker_app(broker_url) as control_app:
            replies = control_app.control.ping(timeout=0.5) or []
    except (OperationalError, redis.exceptions.ConnectionError):
        return set()  # a broker that has just (re)started: ask again
    return {name for reply in replies for name in reply}


def wait_until_ready(worker: WorkerProcess, timeout: float = READY_TIMEOUT) -> None:
    """Wait until the worker answers a ping and has finished starting (worker_ready has run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.running:
            raise RuntimeError(
                f"The Celery worker exited with {worker.process.returncode}:\n{worker.log()}"
            )
        # Celery logs "<node> ready." right after the worker_ready signal's receivers ran.
        if (
            worker.nodename in _responding_nodes(worker.broker_url)
            and f"{worker.nodename} ready." in worker.log()
        ):
            return
        time.sleep(0.2)
    raise RuntimeError(f"The Celery worker was not ready after {timeout} s:\n{worker.log()}")


@contextmanager
def celery_worker(
    log_dir: Path,
    *,
    queues: str = "inbound,outbound,default",
    beat: bool = False,
    concurrency: int = 2,
    prefetch_multiplier: int = 1,
    extra_env: dict[str, str] | None = None,
    flush: bool = True,
) -> Iterator[WorkerProcess]:
    """Start a real Celery worker, wait until it is ready, and stop it on exit.

    The test Redis database is emptied first unless `flush` is false (a worker that takes over
    the queues of one that died). The worker's output is printed when the body raises, so a
    failing test shows why.
    """
    if flush:
        flush_redis()
    log_dir.mkdir(parents=True, exist_ok=True)
    nodename = f"test-{uuid.uuid4().hex[:12]}@{socket.gethostname()}"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "portal",
        "worker",
        "-Q",
        queues,
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        str(prefetch_multiplier),
        "--loglevel",
        "INFO",
        "--hostname",
        nodename,
        "--without-mingle",
        "--without-gossip",
    ]
    if beat:
        command += ["-B", "--schedule", str(log_dir / "celerybeat-schedule")]
    log_path = log_dir / "worker.log"
    log_file = log_path.open("wb")
    env = worker_environment(extra_env)
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    worker = WorkerProcess(
        nodename=nodename,
        process=process,
        log_path=log_path,
        _log_file=log_file,
        broker_url=env.get("CELERY_BROKER_URL") or env["REDIS_URL"],
    )
    try:
        wait_until_ready(worker)
        yield worker
    except BaseException:
        worker.stop()
        sys.stderr.write(f"\n----- Celery worker {nodename} -----\n{worker.log()}\n")
        raise
    else:
        worker.stop()
