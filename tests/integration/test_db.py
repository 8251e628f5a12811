"""The pool's prepared-statement cursor against a real Postgres."""

from __future__ import annotations

import pytest

from shared.db import Database
from tests.conftest import query

pytestmark = pytest.mark.integration


def test_a_statement_is_prepared_once_per_connection_and_binds_fresh_values(database_url: str) -> None:
    db = Database.for_url(database_url, size=1)
    try:
        sql = "SELECT %s::int + 1 AS n, 17 %% 5 AS remainder, %s::text AS word"
        assert query(db, sql, 1, "um") == [{"n": 2, "remainder": 2, "word": "um"}]
        assert query(db, sql, 41, "dois") == [{"n": 42, "remainder": 2, "word": "dois"}]
        with db.connection() as conn:
            assert list(conn._ct_prepared) == [sql]  # one statement, prepared once, reused
            assert conn._ct_prepared[sql][0] == "SELECT $1::int + 1 AS n, 17 % 5 AS remainder, $2::text AS word"
    finally:
        db.close()


def test_a_failed_statement_drops_the_connection_with_its_statements(database_url: str) -> None:
    db = Database.for_url(database_url, size=1)
    try:
        assert query(db, "SELECT %s::int AS n", 7) == [{"n": 7}]
        with pytest.raises(Exception, match="invalid input syntax"):
            query(db, "SELECT %s::int AS n", "sete")
        assert query(db, "SELECT %s::int AS n", 8) == [{"n": 8}]
        with db.connection() as conn:
            assert list(conn._ct_prepared) == ["SELECT %s::int AS n"]  # a new connection, prepared again
    finally:
        db.close()
