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
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from reconciler.dialects.base import DefaultDialect

PAGE = 10_000  # rows fetched at a time
_CURSORS = itertools.count()  # names of PostgreSQL server-side cursors
_TEXT = frozenset({str})
_TEXT_OR_NULL = frozenset({str, type(None)})


def text_pages(conn: Connection, dialect: DefaultDialect, table: str, columns: Sequence[str],
               keys: Sequence[str] = ()) -> Iterator[tuple[list[tuple[Any, ...]], list[list[str]]]]:
    """Read ``columns`` of ``table`` (all quoted) in ONE pass, a page of rows at a time.

    Yields ``(rows, texts)``: the raw rows (``keys`` first, then the columns) and, per
    column, the values as exact text (binary on MariaDB, whose collations fold case and
    trailing spaces), NULL as ``""``, anything else as ``str(value)``. Rows are not made
    distinct: a sort of a million values costs more than reading the repeats, and the
    pre-tests turn nearly all of them away in C.
    """
    select = ", ".join([*keys, *(dialect.exact_text(c) for c in columns)])
    where = " OR ".join(f"{c} IS NOT NULL" for c in columns)
    width = len(keys)
    for rows in stream_rows(conn, f"SELECT {select} FROM {table} WHERE {where}"):
        texts: list[list[str]] = []
        for values in list(zip(*rows, strict=True))[width:]:
            kinds = set(map(type, values))  # in C: the common cases need no call per value
            if kinds <= _TEXT:
                texts.append(list(values))
            elif kinds <= _TEXT_OR_NULL:
                texts.append([value or "" for value in values])
            else:
                texts.append([_text(dialect.decode_value(value)) for value in values])
        yield rows, texts


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


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


__all__ = ["PAGE", "stream_rows", "text_pages"]
