"""core.db: hot-path statements run prepared on PostgreSQL, and behave as a Django cursor's.

With `reconnect`, a statement skips Django's health check and survives a broken connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test.utils import CaptureQueriesContext

from core.db import fetch_one
from tests.worker import session_database_url

pytestmark = pytest.mark.django_db

PROBE = "SELECT %s::int + 1 AS core_db_probe"


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_once_and_answers_every_call(settings: Any) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = True

    assert [fetch_one(PROBE, [n]) for n in range(3)] == [(1,), (2,), (3,)]
    prepared = [sql for sql in _prepared_statements() if "core_db_probe" in sql]
    assert len(prepared) == 1


def test_switched_off_nothing_is_prepared_and_the_answers_are_the_same(settings: Any) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = False
    plain = PROBE.replace("core_db_probe", "core_db_plain_probe")

    assert [fetch_one(plain, [n]) for n in range(3)] == [(1,), (2,), (3,)]
    assert not [sql for sql in _prepared_statements() if "core_db_plain_probe" in sql]


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "client-bound"])
def test_query_capture_sees_the_statement(settings: Any, prepared: bool) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = prepared

    with CaptureQueriesContext(connection) as queries:
        assert fetch_one(PROBE + " WHERE false", [1]) is None

    assert len(queries) == 1
    assert "core_db_probe" in queries[0]["sql"]


@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "client-bound"])
def test_a_database_error_arrives_as_django_s(settings: Any, prepared: bool) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE core_db_unique (n int PRIMARY KEY)")

    insert = "INSERT INTO core_db_unique (n) VALUES (%s) RETURNING n"
    assert fetch_one(insert, [1]) == (1,)
    with pytest.raises(IntegrityError), transaction.atomic():
        fetch_one(insert, [1])
    assert fetch_one("SELECT count(*) FROM core_db_unique", []) == (1,)


# reconnect ------------------------------------------------------------------------------------


@pytest.fixture
def checked() -> Iterator[tuple[BaseDatabaseWrapper, list[int]]]:
    """The default connection, open, with health checks on; a list counting its checks."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    enabled = db.health_check_enabled
    db.health_check_enabled = True
    checks: list[int] = []
    is_usable = db.is_usable

    def counting() -> bool:
        checks.append(1)
        return is_usable()

    db.is_usable = counting  # type: ignore[method-assign]
    try:
        yield db, checks
    finally:
        del db.is_usable
        db.health_check_enabled = enabled


def _kill(db: BaseDatabaseWrapper) -> None:
    """Terminate the connection's server process and wait until it is gone."""
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(session_database_url(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone() == (True,)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "client-bound"])
def test_reconnect_sends_the_statement_without_a_health_check_first(
    checked: tuple[BaseDatabaseWrapper, list[int]], settings: Any, prepared: bool
) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    db, checks = checked

    db.health_check_done = False  # as at the start of a request
    assert fetch_one(PROBE, [1], reconnect=True) == (2,)
    assert checks == []

    db.health_check_done = False
    assert fetch_one(PROBE, [1]) == (2,)
    assert checks == [1]  # without reconnect, Django checks first


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prepared", [True, False], ids=["prepared", "client-bound"])
def test_reconnect_runs_the_statement_again_on_a_new_connection_once_the_old_one_broke(
    checked: tuple[BaseDatabaseWrapper, list[int]], settings: Any, prepared: bool
) -> None:
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    db, _ = checked
    fetch_one(PROBE, [0], reconnect=True)
    broken = db.connection
    _kill(db)

    db.health_check_done = True  # checked a moment ago: only running it again can help now
    assert fetch_one(PROBE, [1], reconnect=True) == (2,)
    assert db.connection is not broken
    assert fetch_one(PROBE, [2], reconnect=True) == (3,)


@pytest.mark.django_db(transaction=True)
def test_without_reconnect_or_health_check_a_broken_connection_fails_the_statement(
    checked: tuple[BaseDatabaseWrapper, list[int]],
) -> None:
    db, _ = checked
    db.health_check_enabled = False
    _kill(db)

    with pytest.raises(OperationalError):
        fetch_one(PROBE, [1])
    db.close()


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_reconnect_never_runs_a_statement_again(
    checked: tuple[BaseDatabaseWrapper, list[int]],
) -> None:
    db, _ = checked
    # The transaction's earlier work went with the old connection: running on is never right.
    with pytest.raises(OperationalError), transaction.atomic():
        fetch_one(PROBE, [0], reconnect=True)
        _kill(db)
        fetch_one(PROBE, [1], reconnect=True)
    db.close()


@pytest.mark.django_db(transaction=True)
def test_a_statement_that_fails_on_a_sound_connection_is_not_run_again(
    checked: tuple[BaseDatabaseWrapper, list[int]],
) -> None:
    db, _ = checked
    with db.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY SEQUENCE core_db_runs")
        cursor.execute("SET statement_timeout = '50ms'")
    try:
        # A cancelled statement is an OperationalError too, but the connection is sound.
        with pytest.raises(OperationalError, match="statement timeout"):
            fetch_one("SELECT nextval('core_db_runs'), pg_sleep(5)", [], reconnect=True)
    finally:
        with db.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    assert fetch_one("SELECT last_value FROM core_db_runs", []) == (1,)
