"""Batcher: items leave in batches from one background thread per process."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from core.batching import Batcher

WAIT = 10.0  # seconds: a bound for a thread to act, never a speed requirement


class Sink:
    """Record each batch handed on, and let a test wait for the next one."""

    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.arrived = threading.Event()
        self.fail_first = fail_first

    def __call__(self, items: list[int]) -> None:
        self.threads.add(threading.current_thread().name)
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("broker unavailable")
        self.batches.append(items)
        self.arrived.set()


def test_an_item_that_finds_the_thread_idle_leaves_at_once_from_the_background_thread() -> None:
    sink = Sink()
    batcher = Batcher("at-once", sink, interval=lambda: 3600.0)
    batcher.add(7)
    assert sink.arrived.wait(WAIT)  # long before the interval of an hour
    assert sink.batches == [[7]]
    assert sink.threads == {"batcher-at-once"}
    assert batcher.pending() == 0


def test_when_busy_items_soon_after_a_batch_wait_for_the_interval_and_leave_together() -> None:
    sink = Sink()
    # Busy from the second item within the interval (an hour) on.
    batcher = Batcher("together", sink, interval=lambda: 3600.0, busy_items=2)
    batcher.add(0)
    assert sink.arrived.wait(WAIT)
    assert not batcher.busy()
    for item in range(1, 5):
        batcher.add(item)
    assert batcher.busy()
    # Within the hour after the first batch: held back, so they can leave as one.
    assert batcher.pending() == 4
    batcher.flush_now()
    assert sink.batches == [[0], [1, 2, 3, 4]]


def test_when_quiet_an_item_soon_after_a_batch_still_leaves_at_once() -> None:
    sink = Sink()
    batcher = Batcher("quiet", sink, interval=lambda: 3600.0, busy_items=6)
    for item in range(3):
        sink.arrived.clear()
        batcher.add(item)
        # Three items within the hour are fewer than six: each leaves alone, at once.
        assert sink.arrived.wait(WAIT)
    assert sink.batches == [[0], [1], [2]]
    assert not batcher.busy()


def test_later_items_leave_in_a_later_batch() -> None:
    sink = Sink()
    batcher = Batcher("later", sink, interval=lambda: 0.01)
    batcher.add(1)
    assert sink.arrived.wait(WAIT)
    sink.arrived.clear()
    batcher.add(2)
    assert sink.arrived.wait(WAIT)
    assert sink.batches == [[1], [2]]


def test_a_large_backlog_is_handed_on_in_bounded_batches() -> None:
    sink = Sink()
    batcher = Batcher("bounded", sink, interval=lambda: 3600.0, max_batch=100)
    for item in range(250):
        batcher.add(item)
    batcher.flush_now()
    assert [len(batch) for batch in sink.batches] == [100, 100, 50]
    assert [item for batch in sink.batches for item in batch] == list(range(250))


def test_with_no_interval_an_item_is_handed_on_before_add_returns() -> None:
    sink = Sink()
    batcher = Batcher("direct", sink, interval=lambda: 0)
    batcher.add(7)
    assert sink.batches == [[7]]
    assert sink.threads == {threading.current_thread().name}


def test_a_failed_batch_is_logged_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink(fail_first=2)
    batcher = Batcher("flaky", sink, interval=lambda: 3600.0)
    with caplog.at_level(logging.ERROR, logger="core.batching"):
        batcher.add(1)
        batcher.flush_now()
        batcher.add(2)
        batcher.flush_now()  # fails too: counted, not logged again within the minute
        batcher.add(3)
        batcher.flush_now()
    assert sink.batches == [[3]]
    failures = [record for record in caplog.records if "could not hand on" in record.message]
    assert len(failures) == 1
    assert failures[0].exc_info is not None


def test_a_forked_child_starts_empty_with_its_own_thread() -> None:
    read_end, write_end = os.pipe()

    def to_pipe(items: list[int]) -> None:
        os.write(write_end, (",".join(map(str, items)) + "\n").encode())

    batcher = Batcher("forked", to_pipe, interval=lambda: 3600.0, busy_items=1)
    batcher.add(0)  # leaves at once; the next item waits for the interval of an hour
    deadline = time.monotonic() + WAIT
    while batcher.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    batcher.add(1)  # the parent's: never the child's to hand on
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            handed_on = threading.Event()

            def to_pipe_and_tell(items: list[int]) -> None:
                to_pipe(items)
                handed_on.set()

            batcher._flush = to_pipe_and_tell
            batcher._interval = lambda: 0.01
            if batcher.pending() == 0:
                batcher.add(2)
                code = 0 if handed_on.wait(WAIT) else 2  # by the child's own thread
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert batcher.pending() == 1  # the parent still holds its own
    batcher.flush_now()
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == "0\n2\n1\n"  # the child handed on only its item (2)
