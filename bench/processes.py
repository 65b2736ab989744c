"""Processes a bench starts (gunicorn, Celery workers, PgBouncer), stopped together at the end."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent


def interpreter() -> str:
    """Name the Python that runs the bench and what it starts: builds differ in speed.

    An interpreter compiled without profile-guided optimisation (pyenv's default, for one) runs
    the same code about half again as slowly as a distribution's or the official image's.
    """
    return f"Python {platform.python_version()} from {sys.base_prefix}"


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: TextIO


@dataclass
class Processes:
    """Every process the bench started, each in a session of its own, to stop them at the end."""

    workdir: Path
    # The signal that stops a process at once, by name (SIGTERM when not named): gunicorn
    # waits for requests sleeping in the sandbox on SIGTERM, not on SIGQUIT.
    stop_signals: Mapping[str, signal.Signals] = field(default_factory=dict)
    started: list[Started] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> Started:
        """Start a command with its output in <workdir>/<name>.log."""
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; the bench stops them
        )
        entry = Started(name, process, log_path, log)
        self.started.append(entry)
        return entry

    def pid(self, name: str) -> int | None:
        """Return the pid of a running process started under that name."""
        for entry in self.started:
            if entry.name == name and entry.process.poll() is None:
                return entry.process.pid
        return None

    def check_alive(self) -> None:
        """Raise with the end of its log if a started process has exited."""
        for entry in self.started:
            if entry.process.poll() is not None:
                tail = entry.log_path.read_text(errors="replace")[-3000:]
                code = entry.process.returncode
                # gunicorn and celery exit 0 on SIGTERM/SIGINT: the bench had not asked.
                hint = " (stopped by a signal from outside the bench?)" if code <= 0 else ""
                raise RuntimeError(
                    f"{entry.name} (pid {entry.process.pid}) exited with {code}{hint}:\n{tail}"
                )

    def stop(self, name: str) -> None:
        """Stop the processes started under that name."""
        for entry in [e for e in self.started if e.name == name]:
            self._stop(entry)
            self.started.remove(entry)

    def stop_all(self) -> None:
        """Stop every started process, the last started first."""
        for entry in reversed(self.started):
            self._stop(entry)
        self.started.clear()

    def _stop(self, entry: Started) -> None:
        process = entry.process
        if process.poll() is None:
            process.send_signal(self.stop_signals.get(entry.name, signal.SIGTERM))
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        # Whatever is left in its session (worker children, gunicorn workers) was started by it.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        entry.log.close()


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    what: str, ready: Callable[[], bool], processes: Processes, timeout: float = 60.0
) -> None:
    """Wait until ready() is true, failing early if a started process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        with suppress(Exception):
            if ready():
                return
        time.sleep(0.3)
    raise RuntimeError(f"{what} was not ready after {timeout:g} s")
