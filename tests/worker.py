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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote

import redis
from django.conf import settings
from django.db import connection

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

    def log(self) -> str:
        """Return everything the worker has printed so far."""
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        """Return whether the process is still alive."""
        return self.process.poll() is None

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


def _responding_nodes() -> set[str]:
    replies = app.control.ping(timeout=0.5) or []
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
        if worker.nodename in _responding_nodes() and f"{worker.nodename} ready." in worker.log():
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
    extra_env: dict[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """Start a real Celery worker, wait until it is ready, and stop it on exit.

    The worker's output is printed when the body raises, so a failing test shows why.
    """
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
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=worker_environment(extra_env),
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    worker = WorkerProcess(
        nodename=nodename, process=process, log_path=log_path, _log_file=log_file
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
