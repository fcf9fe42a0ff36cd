"""Read a column's distinct values as text, a page at a time (staging and the residual scan).

Streamed per statement (``stream_results``): psycopg and pymysql would otherwise buffer the
whole result, and a column of a million e-mail addresses would sit in memory. Pages let the
cheap pre-tests of :mod:`reconciler.prefilter` run over many values at once.

Left out on purpose: no normalisation, no writes.
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers
from __future__ import annotations

import importlib
import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Connection

from reconciler.dialects.base import DefaultDialect

PAGE = 10_000  # rows fetched at a time
_CURSORS = itertools.count()  # names of PostgreSQL server-side cursors


def distinct_text_pages(conn: Connection, dialect: DefaultDialect, table: str,
                        column: str) -> Iterator[list[str]]:
    """Yield the distinct non-NULL values of ``table.column`` (both quoted) as text.

    Each distinct exact spelling comes once (binary on MariaDB, whose collations fold case
    and trailing spaces); values that are not text are given as ``str(value)``.
    """
    sql = f"SELECT {dialect.distinct_values(column)} FROM {table} WHERE {column} IS NOT NULL"
    for rows in stream_rows(conn, sql):
        values = [row[0] for row in rows]
        if all(type(value) is str for value in values):  # the common case, without a call each
            yield values
            continue
        page: list[str] = []
        for raw in values:
            value = dialect.decode_value(raw)
            if value is not None:
                page.append(value if isinstance(value, str) else str(value))
        yield page


def stream_rows(conn: Connection, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    """Run ``sql`` (no parameters) on the connection's driver cursor; yield pages of rows.

    The residual scan reads every row of a snapshot: SQLAlchemy's per-row result objects
    cost as much as the read itself, so this one read goes to the driver directly, inside
    the connection's current transaction, streamed: a server-side (named) cursor on
    PostgreSQL, an unbuffered cursor on MariaDB; SQLite reads incrementally anyway.
    """
    conn.exec_driver_sql("SELECT 1")  # the transaction has begun on the driver's connection
    driver = conn.connection.driver_connection
    assert driver is not None
    name = conn.dialect.name
    if name == "postgresql":
        cursor = driver.cursor(name=f"rc_scan_{next(_CURSORS)}")
    elif name in ("mysql", "mariadb"):
        # imported here: pymysql is only loaded when the snapshot is on MariaDB
        cursor = driver.cursor(importlib.import_module("pymysql.cursors").SSCursor)
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(PAGE):
            yield rows
    finally:
        cursor.close()


__all__ = ["PAGE", "distinct_text_pages", "stream_rows"]
