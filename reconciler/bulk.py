"""Fill a staging table with many rows at once, on the driver.

Staging holds every spelling of a ledger identifier found in the snapshot: at 100,000 requests
that is a few hundred thousand rows. PostgreSQL takes them through ``COPY`` (one stream; its
``executemany`` sends a statement per row and took 7 s at 1M subjects); SQLite's and pymysql's
``executemany`` already run a C loop or batch rows into multi-row ``INSERT``.

Left out on purpose: no SQL other than the INSERT or COPY, no transaction handling (the rows
join the connection's current transaction).
"""

# ruff: noqa: S608 - the table and column names are the reconciler's own staging names
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.columns import driver_in_transaction


def insert_rows(conn: Connection, table: str, columns: Sequence[str],
                rows: Sequence[Sequence[object]]) -> None:
    """Insert ``rows`` (values in the order of ``columns``) into the staging table ``table``."""
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        copy_sql = f"COPY {table} ({names}) FROM STDIN"
        error = conn.dialect.loaded_dbapi.Error
        try:
            with driver_in_transaction(conn).cursor() as cursor, cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except error as exc:  # as SQLAlchemy raises it for any other statement (a SnapshotError)
            raise sa.exc.DBAPIError.instance(copy_sql, None, exc, error,
                                             dialect=conn.dialect) from exc
        return
    marks = ", ".join(f":c{i}" for i in range(len(columns)))
    conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({marks})"),
                 [{f"c{i}": value for i, value in enumerate(row)} for row in rows])


__all__ = ["insert_rows"]
