"""SQLite: the default dialect as is (dates are ISO text, temporary tables per connection)."""

from __future__ import annotations

from typing import ClassVar

from reconciler.dialects.base import DefaultDialect


class SQLiteDialect(DefaultDialect):
    name: ClassVar[str] = "sqlite"


__all__ = ["SQLiteDialect"]
