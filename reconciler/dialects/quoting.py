"""Quote a table or column name for the way its SQL text is run.

SQLAlchemy's ``identifier_preparer.quote`` writes a name for ``Connection.exec_driver_sql``:
with a driver that formats parameters (psycopg, pymysql: paramstyle ``format`` or
``pyformat``) it doubles every ``%``, because the driver halves them again. The same text is
wrong elsewhere:

- ``sqlalchemy.text()`` doubles ``%`` itself for such drivers, and reads ``:x`` as a bound
  parameter unless it is written ``\\:x``;
- a DB-API cursor's ``execute(sql)`` without parameters takes the text as written (neither
  psycopg nor pymysql formats it then).

So a name that holds ``%`` or ``:`` needs one spelling per way of running. Every place that
puts a quoted name into SQL text takes its quote from :func:`quoter`.

Left out on purpose: no connections and no execution; only text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sqlalchemy.engine import Dialect

RunBy = Literal["text", "driver", "cursor"]


def quoter(dialect: Dialect, run_by: RunBy) -> Callable[[str], str]:
    """The quoting function for SQL text that is run by ``run_by``.

    Args:
        dialect: the connection's SQLAlchemy dialect (``conn.dialect``).
        run_by: ``"text"`` for ``sqlalchemy.text()`` (``Connection.execute``), ``"driver"``
            for ``Connection.exec_driver_sql``, ``"cursor"`` for a DB-API cursor's
            ``execute(sql)`` without parameters.

    Raises:
        ValueError: an unknown ``run_by``.

    Returns:
        A function from a name to its quoted form (quoted only where the database needs it,
        as SQLAlchemy decides).
    """
    quote = dialect.identifier_preparer.quote
    if run_by == "driver":
        return quote
    if run_by not in ("text", "cursor"):
        raise ValueError(f"unknown way to run SQL: {run_by!r}")
    # quote() doubles '%' only inside the name, and only for drivers that format
    # parameters: halving every '%%' gives the name back as the database spells it
    halve = "%%" in quote("%")

    def undoubled(name: str) -> str:
        quoted = quote(name)
        return quoted.replace("%%", "%") if halve else quoted

    if run_by == "cursor":
        return undoubled

    def for_text(name: str) -> str:
        # text() turns "\:" back into ":" and leaves it alone as a bound parameter
        return undoubled(name).replace(":", "\\:")

    return for_text


__all__ = ["RunBy", "quoter"]
