"""The request rate and the daily send count of a VoIP.ms account, in Redis and in memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core import limits as portal_limits

DAY = "2026-12-04"


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest, settings: Any) -> Iterator[portal_limits.Limits]:
    if request.param == "memory":
        yield portal_limits.LocalLimits()
        return
    redis_store = portal_limits.RedisLimits(settings.REDIS_URL)
    yield redis_store
    redis_store.client.close()


@pytest.fixture
def account() -> str:
    return f"{uuid.uuid4().hex}@voipms.example"


def test_a_free_slot_is_taken_and_the_send_counted_in_one_step(
    store: portal_limits.Limits, account: str
) -> None:
    wait, counted = store.reserve_and_count(account, 1000.0, DAY, 5, max_wait=0.05)

    assert counted is True
    assert 0 <= wait <= 0.05
    assert store.sends_today(account, DAY) == 1


def test_a_send_that_must_wait_for_its_slot_is_not_counted(
    store: portal_limits.Limits, account: str
) -> None:
    # One request a second: the first takes the slot, the second must wait about a second.
    store.reserve_and_count(account, 1.0, DAY, 5, max_wait=0.05)
    wait, counted = store.reserve_and_count(account, 1.0, DAY, 5, max_wait=0.05)

    assert counted is None
    assert 0.8 <= wait <= 1.0
    assert store.sends_today(account, DAY) == 1
    # The slot stays reserved for it: counting alone, as the task does when it comes back.
    assert store.count_send(account, DAY, 5) is True
    assert store.sends_today(account, DAY) == 2


def test_a_send_over_the_daily_limit_is_refused_and_not_counted(
    store: portal_limits.Limits, account: str
) -> None:
    answers = [store.reserve_and_count(account, 1000.0, DAY, 2, max_wait=60)[1] for _ in range(4)]

    assert answers == [True, True, False, False]
    assert store.sends_today(account, DAY) == 2
    assert store.sends_today(account, "2026-12-05") == 0
