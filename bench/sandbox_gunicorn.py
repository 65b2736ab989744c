"""Gunicorn settings of the VoIP.ms sandbox the outbound bench serves (`-c python:...`).

A gthread worker starts its request threads one at a time as connections arrive, and each start
makes the accepting thread wait until the new thread has run. With a thousand sends arriving in
a few seconds on a busy machine, those waits kept connections in the listen queue for seconds,
which the bench counted as VoIP.ms's latency. The sandbox stands in for VoIP.ms and must not be
the narrow part, so each worker starts all its threads before it accepts a connection.
"""

from __future__ import annotations

import threading
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Start every thread of a gthread worker's pool before its first request."""
    pool = getattr(worker, "tpool", None)
    if pool is None:
        return
    threads = worker.cfg.threads
    everyone = threading.Barrier(threads + 1)
    for _ in range(threads):
        pool.submit(everyone.wait)
    everyone.wait()
