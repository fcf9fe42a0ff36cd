"""SQL that differs between databases. :class:`DefaultDialect` is standard SQL (and SQLite);
subclasses override only what differs. Pick one with :func:`dialect_for`.

Left out on purpose: no connections; these methods only build SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class DefaultDialect:
    name: ClassVar[str] = "default"
    text_type: ClassVar[str] = "TEXT"

    def create_temp_table(self, name: str, columns: Sequence[tuple[str, str]]) -> str:
        """``CREATE TEMPORARY TABLE`` for staging; it lives as long as the connection.

        Returns:
            SQL text.
        """
        cols = ", ".join(f"{col} {type_}" for col, type_ in columns)
        return f"CREATE TEMPORARY TABLE {name} ({cols})"

    def drop_temp_table(self, name: str) -> str:
        """Returns: SQL text dropping a staging table if it exists."""
        return f"DROP TABLE IF EXISTS {name}"

    def index_temp_table(self, name: str, columns: Sequence[str]) -> list[str]:
        """Statements that index a filled staging table and refresh its statistics.

        Returns:
            SQL texts, run in order.
        """
        return [f"CREATE INDEX {name}_ix ON {name} ({', '.join(columns)})", f"ANALYZE {name}"]

    def exact_eq(self, column: str, staged: str) -> str:
        """Equality that is case- and trailing-space-sensitive (staged values are exact).

        Returns:
            SQL text.
        """
        return f"{column} = {staged}"

    def cast_text(self, expr: str) -> str:
        """Returns: ``expr`` as a string."""
        return f"CAST({expr} AS {self.text_type})"

    def concat(self, parts: Sequence[str]) -> str:
        """Returns: SQL concatenating ``parts``."""
        return "(" + " || ".join(parts) + ")"

    def year_trunc(self, expr: str, *, datetime: bool) -> str:
        """Returns: ``expr`` truncated to 1 January of its year."""
        # SQLite keeps dates as ISO text ('2021-06-30', '2021-06-30 10:00:00.000000').
        # Colons are escaped: the SQL goes through sqlalchemy.text(), where ":00" is a bind.
        suffix = "-01-01 00\\:00\\:00.000000" if datetime else "-01-01"
        return f"(substr({expr}, 1, 4) || '{suffix}')"

    def distinct_values(self, column: str) -> str:
        """Select expression giving every distinct exact value of ``column``.

        Returns:
            SQL text.
        """
        return f"DISTINCT {column}"

    def decode_value(self, value: object) -> object:
        """Returns: a value read by :meth:`distinct_values` as Python data."""
        return value

    def transaction_settings(self) -> list[str]:
        """Statements run first in the reconciler's transaction (settings local to it).

        Returns:
            SQL statements.
        """
        return []

    def only(self, table: str) -> str:
        """``table`` in a FROM clause, without the rows of tables that inherit from it.

        Returns:
            SQL text.
        """
        return table

    def inheritance_sql(self) -> str | None:
        """A query giving ``(child, parent)`` table pairs, or None without inheritance.

        Returns:
            SQL text or None.
        """
        return None

    def triggers_sql(self) -> str | None:
        """A query giving ``(trigger, table, event)`` rows (event: INSERT, UPDATE, DELETE, or
        the trigger's CREATE statement), or None when triggers cannot be listed.

        Returns:
            SQL text or None.
        """
        return None


__all__ = ["DefaultDialect"]
