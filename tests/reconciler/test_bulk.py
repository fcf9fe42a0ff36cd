"""Staging rows arrive in the staging table exactly as given, on every database (PostgreSQL
takes them through COPY, whose text format escapes tabs, newlines and backslashes)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reconciler.bulk import insert_rows

AWKWARD = ["plain", " Jan@Example.NL ", "tab\there", "new\nline", "back\\slash\\N", "\\.",
           "crème brûlée ☎ 0416-853988", "", "trailing space "]


def test_awkward_values_are_staged_byte_for_byte(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    rows = [(str(n), value, None if n % 2 else "x") for n, value in enumerate(AWKWARD)]
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("CREATE TABLE bulk_t (n VARCHAR(10), raw TEXT, maybe TEXT)")
            insert_rows(conn, "bulk_t", ("n", "raw", "maybe"), rows)
            insert_rows(conn, "bulk_t", ("n", "raw", "maybe"), [])  # nothing to do
            got = conn.exec_driver_sql("SELECT n, raw, maybe FROM bulk_t").all()
        assert sorted(map(tuple, got)) == sorted(rows)
    finally:
        engine.dispose()


def test_a_failed_insert_is_a_sqlalchemy_error_on_every_database(db_url: str) -> None:
    # replay turns SQLAlchemy errors into one line, exit 2; a bare driver error (COPY on
    # PostgreSQL) would be an "internal error" instead
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("CREATE TABLE bulk_n (n INTEGER NOT NULL)")
            with pytest.raises(sa.exc.DBAPIError):
                insert_rows(conn, "bulk_n", ("n",), [(None,)])
    finally:
        engine.dispose()
