"""Pages are read one ahead on a thread: the caller sees every page in order, exactly once,
errors arrive on the caller's thread, and nothing keeps reading after the caller stops."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler import columns
from reconciler.columns import stream_rows


class PagedCursor:
    """A DB-API cursor over ``pages`` pages of two rows; ``fail_at`` raises on that fetch."""

    def __init__(self, pages: int, *, fail_at: int | None = None,
                 error: BaseException | None = None) -> None:
        self.left = pages
        self.fetches = 0
        self.fail_at = fail_at
        self.error = error or RuntimeError("connection lost")
        self.threads: set[str] = set()

    def fetchmany(self, _size: int) -> list[tuple[Any, ...]]:
        self.threads.add(threading.current_thread().name)
        self.fetches += 1
        if self.fetches == self.fail_at:
            raise self.error
        if self.left == 0:
            return []
        self.left -= 1
        return [(self.fetches, "a"), (self.fetches, "b")]


def test_every_page_arrives_once_in_order_and_is_fetched_off_the_callers_thread() -> None:
    cursor = PagedCursor(5)
    pages = list(columns._read_ahead(cursor))
    assert [page[0][0] for page in pages] == [1, 2, 3, 4, 5]
    assert threading.current_thread().name not in cursor.threads


def test_a_failed_fetch_is_raised_to_the_caller_after_the_pages_before_it() -> None:
    cursor = PagedCursor(5, fail_at=3)
    reader = columns._read_ahead(cursor)
    assert [next(reader)[0][0], next(reader)[0][0]] == [1, 2]
    with pytest.raises(RuntimeError, match="connection lost"):
        next(reader)


def test_a_caller_that_stops_early_stops_the_reading() -> None:
    cursor = PagedCursor(1000)
    reader = columns._read_ahead(cursor)
    assert next(reader)[0][0] == 1
    reader.close()
    assert not any(t.name == "rc-read-ahead" for t in threading.enumerate())
    # the reader may have been one or two pages ahead, never more
    assert cursor.fetches <= 2 + columns._AHEAD


def test_stream_rows_reads_a_whole_table_inside_the_current_transaction(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE pages_t (n INTEGER)")
            conn.execute(sa.text("INSERT INTO pages_t VALUES (:n)"),
                         [{"n": n} for n in range(columns.PAGE * 2 + 7)])
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("DELETE FROM pages_t WHERE n < 3")  # seen: same transaction
            got = sorted(n for page in stream_rows(conn, "SELECT n FROM pages_t") for (n,) in page)
            assert got == list(range(3, columns.PAGE * 2 + 7))
            # the connection is usable again afterwards
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM pages_t").scalar_one() == len(got)
    finally:
        engine.dispose()
