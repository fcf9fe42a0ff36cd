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

    #: batched apply: the database takes ``LIMIT`` on a single-table DELETE and UPDATE itself
    limit_in_dml: ClassVar[bool] = False
    #: :meth:`exact_eq` is a plain ``=``, so ``col IN (SELECT staged ...)`` means the same
    plain_text_equality: ClassVar[bool] = True
    #: a foreign key is checked row by row even inside one statement, so rows that reference
    #: each other are deleted in rounds, leaves first (:mod:`reconciler.chains`)
    checks_keys_per_row: ClassVar[bool] = False

    def untyped_column(self) -> str:
        """The staging type for a column whose type has no DDL here.

        Returns:
            SQL text.
        """
        return "TEXT"

    def create_temp_table(self, name: str, columns: Sequence[tuple[str, str]], *,
                          persistent: bool = False) -> str:
        """``CREATE TEMPORARY TABLE`` for staging; it lives as long as the connection.

        ``persistent``: a regular table instead, for a batched apply's staging, which must
        outlive the connection so that an interrupted apply can resume with it.

        Returns:
            SQL text.
        """
        cols = ", ".join(f"{col} {type_}" for col, type_ in columns)
        return f"CREATE {'' if persistent else 'TEMPORARY '}TABLE {name} ({cols})"

    def drop_temp_table(self, name: str, *, persistent: bool = False) -> str:
        """Returns: SQL text dropping a staging table (``persistent``: a regular one) if it
        exists."""
        return f"DROP TABLE IF EXISTS {name}"

    def field_separator(self) -> str:
        """Returns: SQL text for the character U+0001, which separates the columns of a row
        the residual scan reads as one text."""
        return "char(1)"

    def text_field(self, expr: str) -> str:
        """Returns: SQL text; ``expr`` as text, NULL as the empty string (one field of the
        residual scan's row text)."""
        return f"COALESCE({expr}, '')"

    def row_identity(self) -> tuple[str, ...] | None:
        """Columns that identify a row of any table (for batches of a table without a primary
        key), or None if the database has none.

        Returns:
            Column names, usable after ``alias.``.
        """
        return None

    def connection_settings(self) -> list[str]:
        """Statements run once on a batched apply's connection.

        Returns:
            SQL statements.
        """
        return []

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
        return f"DISTINCT {self.exact_text(column)}"

    def exact_text(self, column: str) -> str:
        """Select expression giving ``column``'s value as exactly stored (read back with
        :meth:`decode_value`).

        Returns:
            SQL text.
        """
        return column

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
