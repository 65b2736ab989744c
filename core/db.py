"""Hot-path statements that PostgreSQL parses and plans once per connection, not once per call.

Django binds parameters on the client and never prepares a statement. For the few statements
that run for every webhook or every inbound message, planning costs more than running them
(the DID owner lookup plans in about three times as long as it executes), so they run here as
server-side prepared statements. A PgBouncer older than 1.21 in transaction mode cannot keep
prepared statements: `DATABASE_PREPARED_STATEMENTS=false` runs them as plain statements.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

# psycopg's own default: how often a server-bound statement runs before it is prepared.
PREPARE_THRESHOLD = 5


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run a statement and return its first row; on PostgreSQL as a prepared statement.

    Query capture (DEBUG, tests) sees it as any other statement. Database errors arrive as
    Django's, as from a Django cursor.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy looks it up
    with db.cursor() as cursor:  # connected and health-checked by Django
        if db.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
            cursor.execute(sql, params)
            return cursor.fetchone()
        raw = db.connection
        if raw.prepare_threshold is None:
            # Django switches psycopg's statement preparation off for poolers' sake. Its own
            # cursors bind parameters on the client and never prepare, so turning it back on
            # changes nothing but the statements that ask for it, like this one.
            raw.prepare_threshold = PREPARE_THRESHOLD
        started = time.monotonic()
        with db.wrap_database_errors, psycopg.Cursor(raw) as prepared:
            prepared.execute(sql, params, prepare=True)
            row = prepared.fetchone()
        if db.queries_logged:
            db.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
        return row
