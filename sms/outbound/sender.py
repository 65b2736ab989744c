"""Hundreds of VoIP.ms sends in flight from one worker process, on a few database connections.

VoIP.ms takes 7-11 s to answer a sendSMS. At 100 messages a second that is 700-1,100 calls in
flight, and a Celery thread pool that size would also hold that many PostgreSQL connections,
because Django gives every thread its own. The sender splits each delivery by what it waits on:

- the task thread claims the message and prepares the call (`delivery_prepare`: a short
  transaction and two Redis counters), then hands the call over and takes the next task;
- a large pool of call threads makes the VoIP.ms requests (`delivery_call`). They never touch
  the ORM, so they never open a database connection: an in-flight call holds a socket only;
- a small pool of database threads (`OUTBOUND_SENDER_DB_THREADS`, one connection each) records
  each answer (`delivery_settle`).

So a worker holds at most 1 + `OUTBOUND_SENDER_DB_THREADS` connections whatever its
`OUTBOUND_SENDER_CONCURRENCY`. Each call opens its own connection: a kept-alive connection
reused after the server closed it while idle fails with no answer, and a send without an answer
must be settled from VoIP.ms's history instead of being tried again.

Threads rather than asyncio or gevent: the VoIP.ms client, the limits store and the ORM are
synchronous and shared with the rest of the portal, threads blocked on a socket cost a small
stack and no CPU, and nothing has to be monkey-patched.

A slot (`OUTBOUND_SENDER_CONCURRENCY`) is taken before the claim and given back after the
settle, so a busy worker stops taking tasks rather than queueing calls in memory. If the process
dies, a message in flight stays `sending`; the sweeper marks it `unknown` and it is settled from
VoIP.ms's history, never sent again blindly. A warm shutdown waits for the calls in flight.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, connections

from core.tasks import publish_quietly
from sms.outbound.deliver import (
    CallResult,
    DeliveryOutcome,
    SendJob,
    delivery_call,
    delivery_prepare,
    delivery_settle,
)

logger = logging.getLogger(__name__)


class OutboundSender:
    """Run the VoIP.ms calls of prepared sends on many threads and settle them on a few."""

    def __init__(self, *, concurrency: int, db_threads: int) -> None:
        self.concurrency = concurrency
        self._slots = threading.BoundedSemaphore(concurrency)
        # The call threads start here, all of them: a thread started when a call is handed over
        # would make the task thread wait for it to run, on a worker whose other threads keep
        # the interpreter busy, for each of the first `concurrency` sends.
        self._jobs: queue.SimpleQueue[SendJob | None] = queue.SimpleQueue()
        self._callers = [
            threading.Thread(target=self._call_loop, name=f"voipms-call-{n}", daemon=True)
            for n in range(concurrency)
        ]
        for thread in self._callers:
            thread.start()
        self._answers: queue.SimpleQueue[tuple[SendJob, CallResult] | None] = queue.SimpleQueue()
        self._settlers = [
            threading.Thread(target=self._settle_loop, name=f"outbox-db-{n}", daemon=True)
            for n in range(max(db_threads, 1))
        ]
        for thread in self._settlers:
            thread.start()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)

    @property
    def in_flight(self) -> int:
        """Return how many messages are between their claim and their settle."""
        with self._lock:
            return self._in_flight

    def submit(self, *, message_id: int, slot_reserved: bool = False) -> DeliveryOutcome | None:
        """Claim and prepare a message here, then send it in the background.

        Returns the outcome when no call is to be made (refused, waiting for a rate slot, taken
        by another worker: None), like `message_deliver`; None once the call is handed over.
        """
        self._slots.acquire()
        self._enter()
        try:
            prepared = delivery_prepare(message_id=message_id, slot_reserved=slot_reserved)
        except BaseException:
            self._leave()
            raise
        if not isinstance(prepared, SendJob):
            self._leave()
            return prepared
        self._jobs.put(prepared)
        return None

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is in flight; False if `timeout` seconds were not enough."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Wait for the sends in flight, then stop the threads and close their connections."""
        drained = self.drain(timeout)
        for _ in self._settlers:
            self._answers.put(None)
        for thread in self._settlers:
            thread.join(timeout)
        for _ in self._callers:
            self._jobs.put(None)
        if drained:
            for thread in self._callers:
                thread.join(timeout)
        return drained

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _leave(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()
        self._slots.release()

    def _call_loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._call(job)

    def _call(self, job: SendJob) -> None:
        try:
            result = delivery_call(job)
        except BaseException:
            # delivery_call turns every error into a result; this is a last resort, and the
            # message stays `sending` for the sweeper to settle from VoIP.ms's history.
            logger.exception("message %s: the send thread failed", job.message.pk)
            self._leave()
            return
        self._answers.put((job, result))

    def _settle_loop(self) -> None:
        try:
            while (answer := self._answers.get()) is not None:
                self._settle(*answer)
        finally:
            connections.close_all()

    def _settle(self, job: SendJob, result: CallResult) -> None:
        try:
            outcome = self._settle_with_retry(job, result)
            if outcome is not None and outcome.retry_in is not None:
                publish_quietly(
                    "sms.deliver_message",
                    job.message.pk,
                    countdown=outcome.retry_in,
                    slot_reserved=outcome.slot_reserved,
                )
        except Exception:
            logger.exception(
                "message %s: its VoIP.ms answer could not be recorded; the sweeper settles it",
                job.message.pk,
            )
        finally:
            self._leave()

    def _settle_with_retry(self, job: SendJob, result: CallResult) -> DeliveryOutcome | None:
        # Database threads live as long as the worker: drop a connection that broke or aged
        # out before using it, as Django does around each request or task.
        close_old_connections()
        try:
            return delivery_settle(job, result)
        except DatabaseError:
            # A connection killed under us (PostgreSQL restarted, a pooler cut it): one more
            # try on a fresh one. The writes are guarded by the message's `sending` state.
            logger.warning("message %s: settling again on a new connection", job.message.pk)
            connection.close()
            return delivery_settle(job, result)


@lru_cache(maxsize=1)
def outbound_sender() -> OutboundSender:
    """Return this process's sender, sized by the OUTBOUND_SENDER_* settings."""
    return OutboundSender(
        concurrency=settings.OUTBOUND_SENDER_CONCURRENCY,
        db_threads=settings.OUTBOUND_SENDER_DB_THREADS,
    )


# A forked child has none of its parent's threads: it starts a sender of its own when it first
# sends (a prefork worker whose parent started one on `worker_ready`).
os.register_at_fork(after_in_child=outbound_sender.cache_clear)


def sender_enabled() -> bool:
    """Return whether this process sends through the background sender."""
    return settings.OUTBOUND_SENDER_CONCURRENCY > 0


def sender_drain(timeout: float) -> bool:
    """Wait for the sends in flight and stop the sender before the process exits."""
    if not sender_enabled() or outbound_sender.cache_info().currsize == 0:
        return True
    sender = outbound_sender()
    if sender.in_flight:
        logger.info("waiting for %s VoIP.ms sends in flight", sender.in_flight)
    return sender.close(timeout)
