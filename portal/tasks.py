"""Celery entry points of the portal app."""

from __future__ import annotations

import socket
from typing import Any

from celery.signals import worker_ready
from django.db import connection

from portal.health import heartbeat, heartbeat_record

__all__ = ["heartbeat"]


@worker_ready.connect
def _record_heartbeat_on_start(sender: Any = None, **kwargs: Any) -> None:
    heartbeat_record(hostname=getattr(sender, "hostname", None) or socket.gethostname())
    # The worker's own thread runs no task: it keeps no connection open after this, so a
    # worker holds connections for its task (and sender database) threads only.
    if not connection.in_atomic_block:
        connection.close()
