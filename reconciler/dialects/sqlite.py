"""SQLite: the default dialect as is (dates are ISO text, temporary tables per connection)."""

from __future__ import annotations

from typing import ClassVar

from reconciler.dialects.base import DefaultDialect


class SQLiteDialect(DefaultDialect):
    name: ClassVar[str] = "sqlite"

    def triggers_sql(self) -> str:
        """Returns: SQL text; SQLite keeps only each trigger's CREATE statement."""
        return "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"


__all__ = ["SQLiteDialect"]
