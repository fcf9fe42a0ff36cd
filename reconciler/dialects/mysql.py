"""MariaDB / MySQL: CONCAT(), binary comparison against case-insensitive collations, in UTF-8
whatever the column's character set (a latin1 column's ``Müller`` must match too)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from reconciler.dialects.base import DefaultDialect


class MySQLDialect(DefaultDialect):
    name: ClassVar[str] = "mysql"
    text_type: ClassVar[str] = "CHAR"

    # DELETE/UPDATE ... LIMIT n: the target table cannot appear in a subquery of its own
    # statement here ("can't specify target table"), so no ``key IN (SELECT ... LIMIT n)``.
    limit_in_dml: ClassVar[bool] = True
    # exact_eq compares UTF-8 bytes: '=' alone folds case and trailing spaces
    plain_text_equality: ClassVar[bool] = False
    # InnoDB refuses to delete a row another row still references (error 1451), even one the
    # same statement deletes next, and even a row that references itself
    checks_keys_per_row: ClassVar[bool] = True

    def create_temp_table(self, name: str, columns: Sequence[tuple[str, str]], *,
                          persistent: bool = False) -> str:
        """Returns: SQL text (utf8mb4, so any staged value fits). A ``persistent`` table is
        created by DDL, which commits the open transaction on MariaDB."""
        cols = ", ".join(f"{col} {type_.replace('TEXT', 'LONGTEXT')}" for col, type_ in columns)
        kind = "TABLE" if persistent else "TEMPORARY TABLE"
        return f"CREATE {kind} {name} ({cols}) DEFAULT CHARSET=utf8mb4"

    def field_separator(self) -> str:
        """Returns: SQL text (UTF-8, so CONCAT stays text, not a binary string)."""
        return "CHAR(1 USING utf8mb4)"

    def text_field(self, expr: str) -> str:
        """Returns: SQL text; converted to UTF-8 first, so columns of different character
        sets can be concatenated."""
        return f"COALESCE(CONVERT({expr} USING utf8mb4), '')"

    def index_temp_table(self, name: str, columns: Sequence[str]) -> list[str]:
        """Returns: SQL texts. Text columns are indexed by prefix (LONGTEXT cannot be indexed
        whole); ANALYZE is left to InnoDB, which samples statistics itself."""
        cols = ", ".join(f"{c}(191)" if c == "raw" else c for c in columns)
        return [f"CREATE INDEX {name}_ix ON {name} ({cols})"]

    def drop_temp_table(self, name: str, *, persistent: bool = False) -> str:
        """Returns: SQL text; without ``persistent`` a regular table of that name is never
        dropped."""
        return f"DROP {'' if persistent else 'TEMPORARY '}TABLE IF EXISTS {name}"

    def exact_eq(self, column: str, staged: str) -> str:
        """Returns: SQL text.

        The default collations ignore case and trailing spaces ('AbC' = 'abc '); a staged
        value must match only the exact spelling it was read as. Staged values are UTF-8, so
        the column is compared as UTF-8 bytes: a latin1 column's bytes differ from the same
        text in UTF-8. The plain ``=`` in front keeps an index on the column usable; exact
        equality implies it.
        """
        return f"({column} = {staged} AND BINARY CONVERT({column} USING utf8mb4) = BINARY {staged})"

    def concat(self, parts: Sequence[str]) -> str:
        """Returns: SQL text."""
        return f"CONCAT({', '.join(parts)})"

    def year_trunc(self, expr: str, *, datetime: bool) -> str:
        """Returns: SQL text."""
        day = f"MAKEDATE(YEAR({expr}), 1)"
        return f"CAST({day} AS DATETIME)" if datetime else day

    def exact_text(self, column: str) -> str:
        """Returns: SQL text; binary so 'Jan' and 'jan' stay two values, UTF-8 whatever the
        column's character set."""
        return f"BINARY CONVERT({column} USING utf8mb4)"

    def triggers_sql(self) -> str:
        """Returns: SQL text."""
        return ("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION "
                "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")

    def decode_value(self, value: object) -> object:
        """Returns: text for the binary strings :meth:`distinct_values` yields."""
        if isinstance(value, bytes | bytearray):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return None
        return value


__all__ = ["MySQLDialect"]
