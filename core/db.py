"""Hot-path statements: prepared once per connection, and without a health check round trip.

Django binds parameters on the client and never prepares a statement. For the few statements
that run for every webhook or every inbound message, planning costs more than running them
(the DID owner lookup plans in about three times as long as it executes), so they run here as
server-side prepared statements. A PgBouncer older than 1.21 in transaction mode cannot keep
prepared statements: `DATABASE_PREPARED_STATEMENTS=false` runs them as plain statements.

With `CONN_HEALTH_CHECKS`, Django sends `SELECT 1` before the first statement of every request.
A request that makes one statement, such as the webhook's INSERT, may instead ask to skip it
(`reconnect=True`): its statement goes straight out, and if the connection turns out to be
broken it is closed, a new one is opened and the statement runs again, once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

# psycopg's own default: how often a server-bound statement runs before it is prepared.
PREPARE_THRESHOLD = 5


def fetch_one(
    sql: str, params: Sequence[Any], *, reconnect: bool = False
) -> tuple[Any, ...] | None:
    """Run a statement and return its first row; on PostgreSQL as a prepared statement.

    `reconnect`: outside a transaction, use an open connection without Django's health check,
    and on a broken connection run the statement again, once, on a new one. Only for statements
    that may run twice when a connection breaks after the server ran one but before its answer
    arrived (the webhook's INSERT: processing marks the second delivery a duplicate).

    Query capture (DEBUG, tests) sees the statement as any other. Database errors arrive as
    Django's, as from a Django cursor.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy looks it up
    if not reconnect or db.connection is None or db.in_atomic_block or not db.autocommit:
        return _fetch_one(db, sql, params)
    db.health_check_done = True  # the statement itself is the check
    try:
        return _fetch_one(db, sql, params)
    except (OperationalError, InterfaceError):
        if db.is_usable():
            raise  # the statement failed, not the connection
        db.close()
    return _fetch_one(db, sql, params)


def _fetch_one(db: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with db.cursor() as cursor:  # connected (and health-checked, unless skipped) by Django
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
