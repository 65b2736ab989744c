"""Health of the parts the portal depends on: database, broker and a live worker."""

from __future__ import annotations

import socket
from typing import Any

from celery import Task, current_app, shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone

from portal.models import WorkerHeartbeat


def _check_database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return False, f"unreachable: {type(error).__name__}"
    return True, "ok"


def _check_broker() -> tuple[bool, str]:
    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:
        return False, f"unreachable: {type(error).__name__}"
    return True, "ok"


def _check_worker() -> tuple[bool, str]:
    try:
        latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    except Exception:
        return False, "unknown (database unreachable)"
    if latest is None:
        return False, "no worker has reported"
    age = (timezone.now() - latest.seen_at).total_seconds()
    if age > settings.HEALTH_WORKER_MAX_AGE:
        return False, f"no heartbeat for {int(age)} s"
    return True, f"ok ({int(age)} s ago)"


def health_report() -> dict[str, Any]:
    """Return the state of each part and an overall status."""
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
        "worker": _check_worker(),
    }
    failing = [name for name, (ok, _) in checks.items() if not ok]
    return {
        "status": "ok" if not failing else "unavailable",
        "failing": failing,
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
    }


def heartbeat_record(*, hostname: str) -> None:
    """Record that a worker on this host is alive now."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"seen_at": timezone.now()}
    )


@shared_task(name="portal.heartbeat", bind=True, ignore_result=True)
def heartbeat(self: Task) -> None:
    """Record this worker's heartbeat (run by beat every 30 s)."""
    # The Celery node name, so several workers on one host each keep their own row.
    heartbeat_record(hostname=self.request.hostname or socket.gethostname())
