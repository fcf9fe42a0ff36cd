"""SQLite: the default dialect as is (dates are ISO text, temporary tables per connection)."""

from __future__ import annotations

from typing import ClassVar

from reconciler.dialects.base import DefaultDialect


class SQLiteDialect(DefaultDialect):
    name: ClassVar[str] = "sqlite"

    def untyped_column(self) -> str:
        """Returns: no type at all. A column declared without a type has no affinity and keeps
        1 as an integer; staged as TEXT it became '1', and 1 = '1' is false in SQLite, so the
        person was never found."""
        return ""

    def row_identity(self) -> tuple[str, ...]:
        """Returns: ``rowid`` (a WITHOUT ROWID table has a primary key, which is used instead)."""
        return ("rowid",)

    def connection_settings(self) -> list[str]:
        """Returns: SQL statements. Deleted rows and dropped staging tables are overwritten
        in the file, not left in free pages: a finished batched apply must leave no copy of
        an identifier behind."""
        return ["PRAGMA secure_delete = ON"]

    def triggers_sql(self) -> str:
        """Returns: SQL text; SQLite keeps only each trigger's CREATE statement."""
        return "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"


__all__ = ["SQLiteDialect"]
