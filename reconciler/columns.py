"""Read a column's distinct values as text, a page at a time (staging and the residual scan).

Streamed per statement (``stream_results``): psycopg and pymysql would otherwise buffer the
whole result, and a column of a million e-mail addresses would sit in memory. Pages let the
cheap pre-tests of :mod:`reconciler.prefilter` run over many values at once.

Left out on purpose: no normalisation, no writes.
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers
from __future__ import annotations

import contextlib
import importlib
import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.dialects.base import DefaultDialect

PAGE = 10_000  # rows fetched at a time
_AHEAD = 2  # pages read ahead of the caller (bounded memory)
_CURSORS = itertools.count()  # names of PostgreSQL server-side cursors
_TEXT = frozenset({str})
_TEXT_OR_NULL = frozenset({str, type(None)})


def text_pages(conn: Connection, dialect: DefaultDialect, table: str, columns: Sequence[str],
               keys: Sequence[str] = (), *, where: str | None = None,
               ) -> Iterator[tuple[list[tuple[Any, ...]], list[list[str]]]]:
    """Read ``columns`` of ``table`` (all quoted) in ONE pass, a page of rows at a time.

    Yields ``(rows, texts)``: the raw rows (``keys`` first, then the columns) and, per
    column, the values as exact text (binary on MariaDB, whose collations fold case and
    trailing spaces), NULL as ``""``, anything else as ``str(value)``; only rows that match
    ``where`` (SQL text), if given. Rows are not made
    distinct: a sort of a million values costs more than reading the repeats, and the
    pre-tests turn nearly all of them away in C.
    """
    select = ", ".join([*keys, *(dialect.exact_text(c) for c in columns)])
    present = " OR ".join(f"{c} IS NOT NULL" for c in columns)
    condition = f"({present}) AND {where}" if where else present
    width = len(keys)
    for rows in stream_rows(conn, f"SELECT {select} FROM {table} WHERE {condition}"):
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


def driver_in_transaction(conn: Connection) -> Any:
    """Returns: the DB-API connection under ``conn``, inside ``conn``'s current transaction
    (which the driver begins lazily, at the first statement)."""
    conn.exec_driver_sql("SELECT 1")
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver


def stream_rows(conn: Connection, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    """Run ``sql`` (no parameters) on the connection's driver cursor; yield pages of rows.

    Names in ``sql`` are quoted for the cursor (``reconciler.dialects.quoter(dialect,
    "cursor")``: a ``%`` is not doubled there). A driver error is raised as SQLAlchemy's
    ``DBAPIError`` subclass for it, as ``Connection.execute`` would.

    The residual scan reads every row of a snapshot: SQLAlchemy's per-row result objects
    cost as much as the read itself, so this one read goes to the driver directly, inside
    the connection's current transaction, streamed: a server-side (named) cursor on
    PostgreSQL, an unbuffered cursor on MariaDB; SQLite reads incrementally anyway.
    """
    driver = driver_in_transaction(conn)
    name = conn.dialect.name
    if name == "postgresql":
        cursor = driver.cursor(name=f"rc_scan_{next(_CURSORS)}")
    elif name in ("mysql", "mariadb"):
        # imported here: pymysql is only loaded when the snapshot is on MariaDB
        cursor = driver.cursor(importlib.import_module("pymysql.cursors").SSCursor)
    else:
        cursor = driver.cursor()
    error = conn.dialect.loaded_dbapi.Error
    try:
        try:
            cursor.execute(sql)
            # Read ahead only where it was measured to pay: SQLite works on this process's
            # own thread, handing the GIL over around every row (the scan became 10-20 %
            # slower at 1M subjects); pymysql parses rows in Python, under the GIL, and
            # MariaDB already streams rows into the socket ahead of an unbuffered cursor.
            yield from (_read_ahead(cursor) if name == "postgresql" else _pages(cursor))
        finally:
            cursor.close()
    except error as exc:
        # Callers see what SQLAlchemy raises for any other failed statement (the driver's
        # class wrapped in ProgrammingError, OperationalError, ...), so that a failed read is
        # a SnapshotError like the rest, not an internal error.
        raise sa.exc.DBAPIError.instance(sql, None, exc, error,
                                         dialect=conn.dialect) from exc


def _read_ahead(cursor: Any) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of ``cursor``, the next one fetched on a thread while the caller works on this one.

    The server computes the next page while the driver waits on its socket without the GIL,
    so the server and the caller's pre-tests run on two cores instead of taking turns (the
    residual scan reads every row of the snapshot: 30 % faster on PostgreSQL at 1M subjects).
    The caller must not use the connection until the pages are done (no caller does: the
    scan and the staging only read pages).
    """
    pages: queue.Queue[list[tuple[Any, ...]] | BaseException] = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                rows = cursor.fetchmany(PAGE)
                pages.put(rows)
                if not rows:
                    return
        except BaseException as exc:  # handed to the caller's thread
            pages.put(exc)

    reader = threading.Thread(target=fetch, name="rc-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            page = pages.get()
            if isinstance(page, BaseException):
                raise page
            if not page:
                return
            yield page
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to put a page nobody takes
            with contextlib.suppress(queue.Empty):
                pages.get(timeout=0.05)
        reader.join()


def _pages(cursor: Any) -> Iterator[list[tuple[Any, ...]]]:
    while rows := cursor.fetchmany(PAGE):
        yield rows


__all__ = ["PAGE", "driver_in_transaction", "stream_rows", "text_pages"]
