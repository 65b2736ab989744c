"""The background sender: many VoIP.ms calls in flight, none of them holding a database
connection, every answer recorded once."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
import responses
from django.db import connection

from sms import tasks
from sms.models import DeliveryAttempt, Direction, Message, MessageStatus, SmsConfiguration
from sms.outbound.sender import OutboundSender, outbound_sender, sender_drain
from tests.factories import World
from tests.sms.helpers import make_configuration
from tests.sms.test_outbound import form_fields
from tests.sms.test_outbound_worker import (
    _fresh_limits,  # noqa: F401 - autouse fixture: fresh rate limits per test
    api_url,  # noqa: F401 - fixture
    assert_sent_exactly_once,
    configuration,  # noqa: F401 - fixture
    queue,
    statuses,
    wait_for,
    worker_env,
)
from tests.worker import celery_worker, session_database_url
from trunks.voipms.sandbox.services import sandbox_account_ensure

VOIPMS = "https://voip.ms/api/v1/rest.php"


@pytest.fixture
def voipms_url(settings: Any) -> str:
    settings.VOIPMS_API_URL = VOIPMS
    return VOIPMS


@pytest.mark.django_db(transaction=True)
def test_calls_in_flight_hold_no_database_connection_and_each_answer_is_recorded_once(
    world: World, voipms_url: str
) -> None:
    account = make_configuration(world.tenant_a, daily_send_limit=1000)
    messages = queue(account, [f"Sender text {n:02d}" for n in range(12)])
    all_in_flight = threading.Barrier(12, timeout=30)
    connected_during_call: list[bool] = []
    sent_texts: list[str] = []

    def send_sms(request: Any) -> tuple[int, dict[str, str], str]:
        # The call thread must not have opened a database connection of its own.
        connected_during_call.append(connection.connection is not None)
        all_in_flight.wait()  # all twelve calls are in flight at once
        sent_texts.append(form_fields(request)["message"])
        return 200, {}, f'{{"status": "success", "sms": {1000 + len(sent_texts)}}}'

    sender = OutboundSender(concurrency=12, db_threads=2)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, VOIPMS, callback=send_sms)
        for message in messages:
            assert sender.submit(message_id=message.pk) is None
        assert sender.close(timeout=60)

    assert connected_during_call == [False] * 12
    assert Counter(sent_texts) == Counter(m.body for m in messages)
    assert Counter(statuses()) == {MessageStatus.SENT: 12}
    outcomes = Counter(DeliveryAttempt.objects.values_list("outcome", flat=True))
    assert outcomes == {"sent": 12}
    provider_ids = set(
        Message.objects.filter(direction=Direction.OUT).values_list("provider_id", flat=True)
    )
    assert len(provider_ids) == 12


@pytest.mark.django_db(transaction=True)
def test_a_busy_sender_takes_no_more_than_its_slots(world: World, voipms_url: str) -> None:
    account = make_configuration(world.tenant_a, daily_send_limit=1000)
    messages = queue(account, [f"Slot text {n}" for n in range(3)])
    release = threading.Event()

    def send_sms(request: Any) -> tuple[int, dict[str, str], str]:
        release.wait(30)
        return 200, {}, '{"status": "success", "sms": 1}'

    sender = OutboundSender(concurrency=2, db_threads=1)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, VOIPMS, callback=send_sms)
        sender.submit(message_id=messages[0].pk)
        sender.submit(message_id=messages[1].pk)

        def submit_third() -> None:
            try:
                sender.submit(message_id=messages[2].pk)
            finally:
                connection.close()  # this thread's own connection, as a task thread's

        third = threading.Thread(target=submit_third)
        third.start()
        third.join(timeout=0.5)
        # Both slots are taken: the third message waits, unclaimed, instead of piling up.
        assert third.is_alive()
        assert Message.objects.get(pk=messages[2].pk).status == MessageStatus.QUEUED
        release.set()
        third.join(timeout=30)
        assert sender.close(timeout=30)
    assert Counter(statuses()) == {MessageStatus.SENT: 3}


@pytest.mark.django_db(transaction=True)
def test_a_transient_failure_goes_back_to_the_queue_with_a_retry(
    world: World, voipms_url: str, settings: Any
) -> None:
    settings.SMS_RETRY_BASE_SECONDS = 60
    account = make_configuration(world.tenant_a, daily_send_limit=1000)
    (message,) = queue(account, ["Try me again"])
    sender = OutboundSender(concurrency=2, db_threads=1)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, VOIPMS, body="<html>cloudflare</html>", status=502)
        sender.submit(message_id=message.pk)
        assert sender.close(timeout=30)
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    assert message.next_attempt_at is not None
    assert list(DeliveryAttempt.objects.values_list("outcome", flat=True)) == ["retry"]


def _connections_of(application_name: str) -> int:
    with psycopg.connect(session_database_url(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        ).fetchone()
    return int(row[0])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_forty_sends_in_flight_on_a_few_connections(
    configuration: SmsConfiguration,  # noqa: F811
    api_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    sandbox_account_ensure(username=configuration.username, api_password=None, latency_ms=2500)
    name = "outbound-sender-test"
    env = worker_env(
        api_url,
        "40",
        OUTBOUND_SENDER_DB_THREADS="2",
        DATABASE_URL=f"{session_database_url()}?application_name={name}",
    )
    with celery_worker(tmp_path, queues="outbound,default", concurrency=2, extra_env=env) as w:
        messages = queue(configuration, [f"In flight {n:02d}" for n in range(40)])
        most_sending = most_connections = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = statuses()
            most_sending = max(most_sending, counts[MessageStatus.SENDING])
            most_connections = max(most_connections, _connections_of(name))
            if counts[MessageStatus.SENT] == 40:
                break
            time.sleep(0.1)
        wait_for(lambda: statuses()[MessageStatus.SENT] == 40, w)

    assert_sent_exactly_once(messages)
    # Two task threads claim, two database threads settle: the 2.5 s calls hold no connection.
    assert most_sending >= 30, most_sending
    assert 1 <= most_connections <= 5, most_connections


def _call_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("voipms-call-")]


def test_the_call_threads_start_with_the_sender_and_stop_when_it_closes() -> None:
    before = _call_threads()

    sender = OutboundSender(concurrency=7, db_threads=1)
    started = [thread for thread in _call_threads() if thread not in before]

    # All started at once, before any send: none is started while a task thread waits for it.
    assert len(started) == 7
    assert sender.close(timeout=10)
    assert not any(thread.is_alive() for thread in started)


@pytest.mark.parametrize(("concurrency", "threads"), [(3, 3), (0, 0)])
def test_an_outbound_worker_starts_its_sender_when_it_is_ready(
    settings: Any, concurrency: int, threads: int
) -> None:
    settings.OUTBOUND_SENDER_CONCURRENCY = concurrency
    settings.OUTBOUND_SENDER_DB_THREADS = 1
    outbound_sender.cache_clear()
    before = _call_threads()
    try:
        tasks._start_the_sender()  # what the worker_ready signal runs
        assert len([t for t in _call_threads() if t not in before]) == threads
    finally:
        assert sender_drain(10)
        outbound_sender.cache_clear()


def test_a_forked_child_does_not_inherit_the_parents_sender(settings: Any) -> None:
    settings.OUTBOUND_SENDER_CONCURRENCY = 2
    settings.OUTBOUND_SENDER_DB_THREADS = 1
    outbound_sender.cache_clear()
    parents = outbound_sender()
    try:
        pid = os.fork()
        if pid == 0:  # the child: the parent's call threads do not run here
            code = 1
            try:
                code = 0 if outbound_sender() is not parents else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert outbound_sender() is parents
    finally:
        assert sender_drain(10)
        outbound_sender.cache_clear()
