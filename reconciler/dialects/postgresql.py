"""PostgreSQL: temporary tables dropped at commit, native date truncation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from reconciler.dialects.base import DefaultDialect


class PostgreSQLDialect(DefaultDialect):
    name: ClassVar[str] = "postgresql"

    def create_temp_table(self, name: str, columns: Sequence[tuple[str, str]]) -> str:
        """Returns: SQL text; the table is dropped at the end of the transaction."""
        return super().create_temp_table(name, columns) + " ON COMMIT DROP"

    def year_trunc(self, expr: str, *, datetime: bool) -> str:
        """Returns: SQL text."""
        if datetime:
            return f"date_trunc('year', {expr})"
        return f"CAST(date_trunc('year', {expr}) AS DATE)"


__all__ = ["PostgreSQLDialect"]
