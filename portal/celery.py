"""Celery application: queues, routing and the beat schedule."""

from __future__ import annotations

import os

from celery import Celery, signals
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(**kwargs: object) -> None:
    # Connections are reused across tasks (CELERY_DB_REUSE_MAX); this still honours
    # CONN_MAX_AGE and drops connections that broke.
    close_old_connections()
