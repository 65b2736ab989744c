"""Limits shared by every process: a daily send count and a request rate per VoIP.ms account,
spaced writes (one per key per interval, as setSMS allows per DID), and the failures (bad API
tokens, unknown webhook URLs) counted per client address.

With REDIS_URL they live in Redis, so all processes on all hosts share them; the embedded demo
(one process of each kind) keeps them in memory.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from functools import cache
from typing import Any, Protocol

from django.conf import settings

# Reserve the next free slot of an account's request rate (KEYS[1]; ARGV: now, interval): it
# leaves `wait`, the seconds until the slot is free.
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
local ttl = math.ceil((free - now + interval) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(free + interval), 'PX', ttl)
local wait = free - now
"""

# Return how long to wait for the reserved slot.
_RATE_SCRIPT = _RESERVE + "return tostring(wait)\n"

# When the reserved slot is free within ARGV[3] seconds, also count one send of the day
# (KEYS[2]) as count_send does. Returns the wait and 1 (counted), 0 (over the daily limit,
# nothing counted) or -1 (wait for the slot, nothing counted).
_RATE_AND_COUNT_SCRIPT = (
    _RESERVE
    + """
if wait > tonumber(ARGV[3]) then return {tostring(wait), -1} end
local count = redis.call('INCR', KEYS[2])
if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
if count > tonumber(ARGV[4]) then
  redis.call('DECR', KEYS[2])
  return {tostring(wait), 0}
end
return {tostring(wait), 1}
"""
)

# Count one failure in a window that opens with the first one; return the count and the
# milliseconds until the window closes.
_FAILURE_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


# A day's send count outlives its day, so a late uncount finds it.
DAILY_KEY_SECONDS = 3 * 86400


def _daily_key(account: str, day: str) -> str:
    return f"limits:daily:{account}:{day}"


def _rate_key(account: str) -> str:
    return f"limits:rate:{account}"


class Limits(Protocol):
    def count_send(self, account: str, day: str, limit: int) -> bool: ...

    def uncount_send(self, account: str, day: str) -> None: ...

    def sends_today(self, account: str, day: str) -> int: ...

    def reserve_request(self, account: str, per_second: float) -> float: ...

    def reserve_and_count(
        self, account: str, per_second: float, day: str, limit: int, *, max_wait: float
    ) -> tuple[float, bool | None]: ...

    def count_failure(self, kind: str, address: str, window: float) -> tuple[int, float]: ...

    def claim_interval(self, key: str, seconds: float) -> float: ...


class RedisLimits:
    """Limits kept in Redis with atomic operations."""

    def __init__(self, url: str) -> None:
        import redis

        # A blocking pool: an outbound worker runs hundreds of threads, and a plain pool refuses
        # a connection at once when all are busy instead of waiting for one.
        pool = redis.BlockingConnectionPool.from_url(url, max_connections=200, timeout=20)
        self.client = redis.Redis(connection_pool=pool)
        self.rate = self.client.register_script(_RATE_SCRIPT)
        self.rate_and_count = self.client.register_script(_RATE_AND_COUNT_SCRIPT)
        self.failure = self.client.register_script(_FAILURE_SCRIPT)

    def count_send(self, account: str, day: str, limit: int) -> bool:
        """Count one send for the account's day; False (and nothing counted) past the limit."""
        key = _daily_key(account, day)
        count = self.client.incr(key)
        if count == 1:
            self.client.expire(key, DAILY_KEY_SECONDS)
        if count > limit:
            self.client.decr(key)
            return False
        return True

    def uncount_send(self, account: str, day: str) -> None:
        """Give back a counted send that never reached VoIP.ms."""
        self.client.decr(_daily_key(account, day))

    def sends_today(self, account: str, day: str) -> int:
        """Return how many sends the account's day has counted."""
        return int(self.client.get(_daily_key(account, day)) or 0)

    def reserve_request(self, account: str, per_second: float) -> float:
        """Reserve the account's next request slot; return the seconds to wait before using it."""
        return float(self.rate(keys=[_rate_key(account)], args=[time.time(), 1.0 / per_second]))

    def reserve_and_count(
        self, account: str, per_second: float, day: str, limit: int, *, max_wait: float
    ) -> tuple[float, bool | None]:
        """Reserve a request slot and, if it is free within `max_wait` s, count a send: one trip.

        Returns the wait and whether the send was counted (False: over the daily limit), or
        None when it must wait for its slot first (then nothing is counted).
        """
        wait, counted = self.rate_and_count(
            keys=[_rate_key(account), _daily_key(account, day)],
            args=[time.time(), 1.0 / per_second, max_wait, limit, DAILY_KEY_SECONDS],
        )
        return float(wait), None if int(counted) < 0 else bool(int(counted))

    def count_failure(self, kind: str, address: str, window: float) -> tuple[int, float]:
        """Count a failure of this kind from the address; return the window's count and rest."""
        count, ttl = self.failure(
            keys=[f"limits:failures:{kind}:{address}"], args=[max(1, int(window * 1000))]
        )
        return int(count), int(ttl) / 1000

    def claim_interval(self, key: str, seconds: float) -> float:
        """Claim the key for `seconds`; return 0 if claimed, else the seconds until it is free."""
        name = f"limits:interval:{key}"
        if self.client.set(name, "1", nx=True, px=max(1, int(seconds * 1000))):
            return 0.0
        ttl = int(self.client.pttl(name))
        # The key expired between SET and PTTL: free again, but let the next try claim it.
        return max(ttl, 1) / 1000


class LocalLimits:
    """Limits kept in this process (the embedded demo runs one worker process)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.daily: dict[tuple[str, str], int] = {}
        self.free: dict[str, float] = {}
        self.failures: dict[tuple[str, str], tuple[int, float]] = {}
        self.intervals: dict[str, float] = {}

    def count_send(self, account: str, day: str, limit: int) -> bool:
        with self.lock:
            count = self.daily.get((account, day), 0)
            if count >= limit:
                return False
            self.daily[(account, day)] = count + 1
            return True

    def uncount_send(self, account: str, day: str) -> None:
        with self.lock:
            self.daily[(account, day)] = max(0, self.daily.get((account, day), 0) - 1)

    def sends_today(self, account: str, day: str) -> int:
        with self.lock:
            return self.daily.get((account, day), 0)

    def reserve_request(self, account: str, per_second: float) -> float:
        with self.lock:
            now = time.time()
            free = max(self.free.get(account, 0.0), now)
            self.free[account] = free + 1.0 / per_second
            return free - now

    def reserve_and_count(
        self, account: str, per_second: float, day: str, limit: int, *, max_wait: float
    ) -> tuple[float, bool | None]:
        with self.lock:
            wait = self.reserve_request(account, per_second)
            return wait, None if wait > max_wait else self.count_send(account, day, limit)

    def count_failure(self, kind: str, address: str, window: float) -> tuple[int, float]:
        with self.lock:
            now = time.monotonic()
            count, ends = self.failures.get((kind, address), (0, 0.0))
            if ends <= now:
                count, ends = 0, now + window
            self.failures[(kind, address)] = (count + 1, ends)
            return count + 1, ends - now

    def claim_interval(self, key: str, seconds: float) -> float:
        with self.lock:
            now = time.monotonic()
            free_at = self.intervals.get(key, 0.0)
            if free_at > now:
                return free_at - now
            self.intervals[key] = now + seconds
            return 0.0


@cache
def _limits(redis_url: str) -> Limits:
    return RedisLimits(redis_url) if redis_url else LocalLimits()


def limits() -> Limits:
    """Return the limits store of this deployment."""
    return _limits(settings.REDIS_URL)


def client_address(request: Any) -> str:
    """Return the address a request came from, seen through TRUSTED_PROXY_COUNT proxies."""
    remote = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if not proxies:
        return remote
    # Each trusted proxy appends the address it was reached from; what a client wrote itself
    # sits further left and is never believed.
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote
