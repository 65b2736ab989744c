"""core.db: hot-path statements run prepared on PostgreSQL, and behave as a Django cursor's."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.db import fetch_one

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
