"""Failures counted per client address: bad API tokens and unknown webhook URLs.

Only failures are counted, so a request that authenticates (a valid token, a known webhook URL)
never waits for Redis; an address past its limit gets 429 for its failures alone.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from redis.exceptions import RedisError

from core.limits import client_address, limits

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0


def failure_throttle(*, kind: str, request: Any, per_minute: int) -> int | None:
    """Count a failure from the request's address; past the limit, return the seconds to wait."""
    if per_minute <= 0:
        return None
    address = client_address(request)
    try:
        count, rest = limits().count_failure(kind, address, WINDOW_SECONDS)
    except RedisError:
        # Fail open: a Redis outage must not turn every bad token into a 500.
        logger.warning("throttle: cannot count a %s failure, Redis unavailable", kind)
        return None
    if count <= per_minute:
        return None
    if count == per_minute + 1:
        logger.warning("throttle: %s failures from %s over %d a minute", kind, address, per_minute)
    return max(1, math.ceil(rest))
