"""Process-shared counters, kept in the cache (Redis in production)."""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)
PREFIX = "metrics:"
COUNTERS = (
    "webhooks_received",
    "webhooks_duplicate",
    "webhooks_rejected",
    "webhooks_ignored",
    "webhooks_unknown_token",
)


def incr(name: str, amount: int = 1) -> None:
    """Add to a counter; a cache outage never fails the caller."""
    key = PREFIX + name
    try:
        if not cache.add(key, amount, timeout=None):
            cache.incr(key, amount)
    except Exception:  # a counter is never worth failing a request for
        logger.warning("metrics: could not count %s", name)


def read_all() -> dict[str, int]:
    """Return every known counter."""
    values = cache.get_many([PREFIX + name for name in COUNTERS])
    return {name: int(values.get(PREFIX + name, 0)) for name in COUNTERS}
