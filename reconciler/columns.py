"""Read a column's distinct values as text, a page at a time (staging and the residual scan).

Streamed per statement (``stream_results``): psycopg and pymysql would otherwise buffer the
whole result, and a column of a million e-mail addresses would sit in memory. Pages let the
cheap pre-tests of :mod:`reconciler.prefilter` run over many values at once.

Left out on purpose: no normalisation, no writes.
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers
from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.dialects.base import DefaultDialect

PAGE = 10_000  # rows fetched at a time


def distinct_text_pages(conn: Connection, dialect: DefaultDialect, table: str,
                        column: str) -> Iterator[list[str]]:
    """Yield the distinct non-NULL values of ``table.column`` (both quoted) as text.

    Each distinct exact spelling comes once (binary on MariaDB, whose collations fold case
    and trailing spaces); values that are not text are given as ``str(value)``.
    """
    sql = f"SELECT {dialect.distinct_values(column)} FROM {table} WHERE {column} IS NOT NULL"
    result = conn.execute(sa.text(sql).execution_options(stream_results=True, yield_per=PAGE))
    for rows in result.partitions(PAGE):
        page: list[str] = []
        for (raw,) in rows:
            value = dialect.decode_value(raw)
            if value is not None:
                page.append(value if isinstance(value, str) else str(value))
        yield page


__all__ = ["PAGE", "distinct_text_pages"]
