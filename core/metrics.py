"""Process-shared counters, kept in the cache (Redis in production)."""

from __future__ import annotations

import logging
from collections import Counter
from functools import cache as cache_function
from typing import Any

from django.conf import settings
from django.core.cache import cache

from core.batching import Batcher

logger = logging.getLogger(__name__)
PREFIX = "metrics:"
COUNTERS = (
    "webhooks_received",
    "webhooks_duplicate",
    "webhooks_rejected",
    "webhooks_ignored",
    "webhooks_unknown_token",
)


@cache_function
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url) if url else None


def _add_up(names: list[str]) -> None:
    """Add a batch of counts to the shared counters: one round trip for the lot."""
    totals = Counter(names)
    client = _redis(settings.REDIS_URL)
    if client is not None:
        # INCRBY on the keys Django's Redis cache reads back in read_all().
        pipeline = client.pipeline(transaction=False)
        for name, amount in totals.items():
            pipeline.incrby(cache.make_and_validate_key(PREFIX + name), amount)
        pipeline.execute()
        return
    for name, amount in totals.items():
        if not cache.add(PREFIX + name, amount, timeout=None):
            cache.incr(PREFIX + name, amount)


# Counted by a background thread: a counter is never worth a round trip in a request.
_tally: Batcher[str] = Batcher(
    "metrics",
    _add_up,
    interval=lambda: settings.HANDOFF_INTERVAL_SECONDS,
    max_batch=10_000,
    busy_items=1,  # counters are never urgent: always add them up for an interval
)


def incr(name: str) -> None:
    """Count one event; the shared counter catches up within the hand-off interval."""
    _tally.add(name)


def read_all() -> dict[str, int]:
    """Return every known counter."""
    _tally.flush_now()  # this process's own counts first
    values = cache.get_many([PREFIX + name for name in COUNTERS])
    return {name: int(values.get(PREFIX + name, 0)) for name in COUNTERS}
