"""Hand work on in batches from a background thread, so a request never waits on the network.

A web process that acknowledges hundreds of webhooks a second cannot afford one broker publish
(or one Redis round trip) per request, and a worker handles a batch of a dozen far more cheaply
than a dozen batches of one. A `Batcher` collects items in memory and one daemon thread per
process passes them on. While the process is quiet (fewer than `busy_items` items arrived in the
last `interval` seconds) every item leaves at once, so nothing waits at a trickle. Once it is
busy, what arrives less than `interval` seconds after the last batch waits for the rest of that
interval and leaves with the others: under load there is at most one batch per interval.

What sits in the buffer when a process dies is gone from the buffer, so callers only batch what
is also recorded durably (a stored webhook delivery has a sweeper) or what may be lost (counters).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
FAILURE_LOG_INTERVAL = 60.0  # seconds


class Batcher(Generic[T]):
    """Collect items in this process; a daemon thread calls `flush(items)` with each batch."""

    def __init__(
        self,
        name: str,
        flush: Callable[[list[T]], None],
        *,
        interval: Callable[[], float],
        max_batch: int = 100,
        busy_items: int = 6,
    ) -> None:
        self.name = name
        self._flush = flush
        self._interval = interval  # read at each use: tests and settings may change it
        self._max_batch = max_batch
        # The arrival times of the last `busy_items` items: all within one interval means busy.
        self._arrivals: deque[float] = deque(maxlen=max(busy_items, 1))
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._items: list[T] = []
        self._owner_pid: int | None = None
        self._failed = 0
        self._failure_logged_at = -FAILURE_LOG_INTERVAL
        self._last_batch_at = float("-inf")
        atexit.register(self.flush_now)
        os.register_at_fork(after_in_child=self._forget_parent)

    def add(self, item: T) -> None:
        """Queue an item; with an interval of 0 it is handed on before this returns."""
        if self._interval() <= 0:
            self._pass_on([item])
            return
        with self._lock:
            self._items.append(item)
            self._arrivals.append(time.monotonic())
            if self._owner_pid != os.getpid():
                # First use in this process (threads do not survive a fork): start its thread.
                self._owner_pid = os.getpid()
                threading.Thread(target=self._run, name=f"batcher-{self.name}", daemon=True).start()
        self._wakeup.set()

    def pending(self) -> int:
        """Return how many items wait in this process's buffer."""
        with self._lock:
            return len(self._items)

    def busy(self) -> bool:
        """Return whether `busy_items` items arrived within the last interval."""
        with self._lock:
            arrivals = self._arrivals
            return (
                len(arrivals) == arrivals.maxlen
                and time.monotonic() - arrivals[0] <= self._interval()
            )

    def flush_now(self) -> None:
        """Hand on everything buffered, in this thread (at exit, and in tests)."""
        with self._lock:
            items, self._items = self._items, []
        if items:
            self._pass_on(items)

    def _forget_parent(self) -> None:
        # The parent still holds its items and its thread; the child starts empty.
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._items = []
        self._arrivals = deque(maxlen=self._arrivals.maxlen)
        self._owner_pid = None
        self._last_batch_at = float("-inf")

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            # Busy and soon after a batch: let what arrives during the rest of the interval join
            # this one. Quiet: leave at once.
            wait = self._last_batch_at + self._interval() - time.monotonic()
            if wait > 0 and self.busy():
                time.sleep(wait)
            self._wakeup.clear()
            self._last_batch_at = time.monotonic()
            self.flush_now()

    def _pass_on(self, items: list[T]) -> None:
        for start in range(0, len(items), self._max_batch):
            chunk = items[start : start + self._max_batch]
            try:
                self._flush(chunk)
            except Exception:
                # Never let a failure stop the thread; callers keep a durable record. An outage
                # fails every batch: the log gets one traceback a minute and a count.
                self._failed += len(chunk)
                if time.monotonic() - self._failure_logged_at >= FAILURE_LOG_INTERVAL:
                    self._failure_logged_at = time.monotonic()
                    logger.exception(
                        "%s: could not hand on %d item(s) in the last minute",
                        self.name,
                        self._failed,
                    )
                    self._failed = 0
