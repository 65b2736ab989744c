"""Outbound messages through a real Celery worker, Redis and the VoIP.ms sandbox: each is sent
exactly once, even when the worker is killed in the middle of a batch."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from sms.models import DeliveryAttempt, Direction, Message, MessageStatus, SmsConfiguration, Source
from sms.outbound.send import message_queue
from sms.sweep import outbox_sweep, outbox_unstick
from tests.factories import World
from tests.sms.helpers import API_PASSWORD, make_configuration
from tests.worker import WorkerProcess, celery_worker
from trunks.voipms.sandbox.services import sandbox_account_ensure, sandbox_outbox

SENDER = "+12125550100"
CONTACT = "+13125550199"


@pytest.fixture(autouse=True)
def _fresh_limits(fresh_limits: None) -> None:
    """Every test starts with no send counted and no request slot taken."""


@pytest.fixture
def api_url(live_server: Any, settings: Any) -> str:
    """Point this process and the workers at the sandbox served by the live server."""
    url = f"{live_server.url}/sandbox/voipms/api/v1/rest.php"
    settings.VOIPMS_API_URL = url
    return url


@pytest.fixture
def configuration(world: World, api_url: str) -> SmsConfiguration:
    """Return a configuration of tenant A whose VoIP.ms account lives in the sandbox."""
    configuration = make_configuration(world.tenant_a, daily_send_limit=10_000)
    sandbox_account_ensure(
        username=configuration.username,
        api_password=API_PASSWORD,
        dids=[SENDER],
        daily_send_cap=10_000,
        latency_ms=0,
    )
    return configuration


# Each worker test runs with sends made in the task's thread, and with the background sender
# (sms/outbound/sender.py) that keeps many calls in flight on few database connections.
SENDER_MODES = {"task-thread": "0", "background-sender": "20"}


@pytest.fixture(params=sorted(SENDER_MODES))
def sender_mode(request: pytest.FixtureRequest) -> str:
    return SENDER_MODES[request.param]


def worker_env(api_url: str, sender: str = "0", **extra: str) -> dict[str, str]:
    return {
        "OUTBOUND_SENDER_CONCURRENCY": sender,
        "VOIPMS_API_URL": api_url,
        "VOIPMS_REQUESTS_PER_SECOND": "1000",
        "SMS_RETRY_BASE_SECONDS": "0.2",
        "SMS_RETRY_MAX_SECONDS": "1",
        **extra,
    }


def queue(configuration: SmsConfiguration, texts: list[str]) -> list[Message]:
    """Queue one message per text; each delivery task goes to the broker when its row commits."""
    return [
        message_queue(
            configuration=configuration,
            conversation=None,
            did=SENDER,
            to=CONTACT,
            body=text,
            source=Source.API,
        )[0]
        for text in texts
    ]


def wait_for(condition: Callable[[], bool], worker: WorkerProcess, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out; worker log:\n{worker.log()[-5000:]}")


def statuses() -> Counter[str]:
    return Counter(Message.objects.filter(direction=Direction.OUT).values_list("status", flat=True))


def all_sent() -> bool:
    return set(statuses()) == {MessageStatus.SENT}


def assert_sent_exactly_once(messages: list[Message]) -> None:
    """Check every message is sent, and the sandbox got each text once, under the message's id."""
    outbox = list(sandbox_outbox(did=SENDER, contact=CONTACT))
    per_text = Counter(row.message for row in outbox)
    duplicated = {text: count for text, count in per_text.items() if count > 1}
    assert not duplicated, f"sent more than once: {duplicated}"
    lost = [m.body for m in messages if m.body not in per_text]
    assert not lost, f"never sent: {lost}"
    assert len(outbox) == len(messages)
    provider_ids = {row.message: row.provider_id for row in outbox}
    for message in messages:
        message.refresh_from_db()
        assert message.status == MessageStatus.SENT, (message.body, message.error_code)
        assert message.provider_id == provider_ids[message.body]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_thirty_messages_are_each_sent_exactly_once(
    configuration: SmsConfiguration, api_url: str, tmp_path: Path, sender_mode: str
) -> None:
    with celery_worker(
        tmp_path,
        queues="outbound,default",
        concurrency=8,
        extra_env=worker_env(api_url, sender_mode),
    ) as worker:
        messages = queue(configuration, [f"Batch message {n:02d}" for n in range(30)])
        wait_for(all_sent, worker)

    assert_sent_exactly_once(messages)
    assert sandbox_outbox().count() == 30


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_loses_no_message_and_sends_none_twice(
    configuration: SmsConfiguration, api_url: str, tmp_path: Path, settings: Any, sender_mode: str
) -> None:
    sandbox_account_ensure(username=configuration.username, api_password=None, latency_ms=300)
    env = worker_env(
        api_url, sender_mode, SMS_UNKNOWN_GRACE_SECONDS="0", SMS_SENDING_STUCK_SECONDS="0"
    )
    settings.SMS_UNKNOWN_GRACE_SECONDS = 0
    settings.SMS_SENDING_STUCK_SECONDS = 0

    with celery_worker(
        tmp_path / "first", queues="outbound,default", concurrency=8, extra_env=env
    ) as first:
        messages = queue(configuration, [f"Interrupted batch {n:02d}" for n in range(40)])
        wait_for(lambda: statuses()[MessageStatus.SENT] >= 10, first)
        first.process.kill()
        first.process.wait(timeout=10)
        at_kill = statuses()
    # The killed worker's last requests still reach the sandbox; let them land, as they would
    # at VoIP.ms long before the grace period ends.
    time.sleep(1.0)

    assert at_kill[MessageStatus.SENDING] > 0, f"nothing was in flight at the kill: {at_kill}"
    assert at_kill[MessageStatus.SENT] < 40

    # The new worker starts with an empty broker: every task of the old one is gone.
    with celery_worker(
        tmp_path / "second", queues="outbound,default", concurrency=8, extra_env=env
    ) as second:
        # What beat would do over the next minutes: take the stuck sends for reconciliation and
        # enqueue again the queued messages whose task was lost (older than a minute by then).
        outbox_unstick()
        Message.objects.filter(status=MessageStatus.QUEUED).update(
            created_at=timezone.now() - timedelta(minutes=2)
        )
        outbox_sweep()
        wait_for(all_sent, second)

    assert_sent_exactly_once(messages)
    # Each send cut off by the kill was settled from VoIP.ms's history, never resent blindly.
    settled = Counter(
        DeliveryAttempt.objects.filter(outcome__in=["reconciled", "resend"]).values_list(
            "outcome", flat=True
        )
    )
    assert sum(settled.values()) == at_kill[MessageStatus.SENDING], settled
