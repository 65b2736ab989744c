"""Enqueue Celery tasks by name, after commit, without letting a broker outage fail the caller.

Services name the task they wake up (`"sms.deliver_message"`) instead of importing it: the tasks
module imports the services, so the services cannot import the tasks without a cycle. The row a
task works on is always committed first; the broker is only a wake-up, and every kind of row has
a sweeper that enqueues it again when a publish was lost.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


def publish(
    name: str, args: tuple[Any, ...], kwargs: dict[str, Any], countdown: float | None
) -> None:
    """Send one task message to the broker now (the one place a task is published)."""
    # A short retry budget: a request must not hang on a broker outage (the sweeper covers it).
    current_app.send_task(
        name, args=args, kwargs=kwargs, countdown=countdown, retry_policy=PUBLISH_RETRY_POLICY
    )


def publish_quietly(name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> bool:
    """Publish now; on a broker error log it and return False (a sweeper will enqueue again)."""
    try:
        publish(name, args, kwargs, countdown)
    except Exception:
        logger.warning(
            "could not publish %s %r; a sweeper will enqueue it", name, args, exc_info=True
        )
        return False
    return True


def enqueue(name: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> None:
    """Publish task `name` with these ids once the current transaction commits."""
    transaction.on_commit(lambda: publish_quietly(name, *args, countdown=countdown, **kwargs))
