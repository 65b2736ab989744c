"""A real Celery worker runs the portal's tasks, and /healthz tells whether one is alive."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from portal.celery import app
from portal.health import heartbeat, heartbeat_record
from portal.models import WorkerHeartbeat
from tests.worker import WorkerProcess, celery_worker

POLL_TIMEOUT = 30.0


def _poll(condition: Callable[[], bool], timeout: float = POLL_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture
def worker(transactional_db: None, tmp_path: Path) -> Iterator[WorkerProcess]:
    """Return a running Celery worker; it stops before the test database is flushed."""
    with celery_worker(tmp_path / "worker") as running:
        yield running


def _healthz() -> tuple[int, dict[str, Any]]:
    response = Client(HTTP_HOST="127.0.0.1").get("/healthz")
    return response.status_code, response.json()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_runs_the_heartbeat_task(worker: WorkerProcess) -> None:
    # The worker recorded a heartbeat when it started; set it back so only the task can renew it.
    long_ago = timezone.now() - timedelta(days=1)
    assert WorkerHeartbeat.objects.update(seen_at=long_ago) >= 1

    heartbeat.delay()

    assert _poll(lambda: WorkerHeartbeat.objects.filter(seen_at__gt=long_ago).exists()), (
        f"No heartbeat was recorded by the worker:\n{worker.log()}"
    )
    assert "portal.heartbeat" in worker.log()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_healthz_is_ok_while_a_worker_runs_and_fails_when_it_is_gone(
    worker: WorkerProcess, settings: Any
) -> None:
    status, report = _healthz()
    assert status == 200, report
    assert report["status"] == "ok"
    assert report["failing"] == []
    assert {name for name, check in report["checks"].items() if check["ok"]} == {
        "database",
        "broker",
        "worker",
    }

    worker.stop()
    settings.HEALTH_WORKER_MAX_AGE = 2
    time.sleep(3)

    status, report = _healthz()
    assert status == 503, report
    assert report["status"] == "unavailable"
    assert report["failing"] == ["worker"]
    assert report["checks"]["worker"]["ok"] is False
    assert report["checks"]["database"]["ok"] is True
    assert report["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_fails_when_no_worker_ever_reported() -> None:
    status, report = _healthz()
    assert status == 503
    assert "worker" in report["failing"]
    assert report["checks"]["worker"]["detail"] == "no worker has reported"


@pytest.mark.django_db
def test_healthz_names_the_broker_when_it_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    heartbeat_record(hostname="worker-1")
    status, report = _healthz()
    assert status == 200, report

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    status, report = _healthz()
    assert status == 503
    assert report["failing"] == ["broker"]
    assert report["checks"]["broker"]["detail"].startswith("unreachable")
    assert report["checks"]["database"]["ok"] is True


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_starts_the_embedded_beat_scheduler(tmp_path: Path) -> None:
    with celery_worker(tmp_path, beat=True) as running:
        assert _poll(lambda: "beat: Starting" in running.log(), timeout=15), running.log()
        assert _poll(lambda: any(tmp_path.glob("celerybeat-schedule*")), timeout=15)
        assert "ERROR" not in running.log()


@pytest.mark.django_db(transaction=True)
def test_a_worker_starting_records_its_heartbeat_and_keeps_no_connection_open() -> None:
    from django.db import connection

    from portal.models import WorkerHeartbeat
    from portal.tasks import _record_heartbeat_on_start

    class Consumer:
        hostname = "outbound-1@host"

    _record_heartbeat_on_start(sender=Consumer())
    # Its own thread runs no task: an outbound worker's connections are its threads' only.
    assert connection.connection is None
    assert WorkerHeartbeat.objects.filter(hostname="outbound-1@host").exists()
