"""Celery entry points of the portal app."""

from __future__ import annotations

import socket
from typing import Any

from celery.signals import worker_ready

from portal.health import heartbeat, heartbeat_record

__all__ = ["heartbeat"]


@worker_ready.connect
def _record_heartbeat_on_start(sender: Any = None, **kwargs: Any) -> None:
    heartbeat_record(hostname=getattr(sender, "hostname", None) or socket.gethostname())
