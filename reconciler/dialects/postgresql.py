"""PostgreSQL: temporary tables dropped at commit, native date truncation, partitions and
table inheritance (``ONLY``, ``pg_inherits``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from reconciler.dialects.base import DefaultDialect


class PostgreSQLDialect(DefaultDialect):
    name: ClassVar[str] = "postgresql"

    def create_temp_table(self, name: str, columns: Sequence[tuple[str, str]], *,
                          persistent: bool = False) -> str:
        """Returns: SQL text; a temporary table is dropped at the end of the transaction."""
        if persistent:
            return super().create_temp_table(name, columns, persistent=True)
        return super().create_temp_table(name, columns) + " ON COMMIT DROP"

    def field_separator(self) -> str:
        """Returns: SQL text."""
        return "chr(1)"

    def row_identity(self) -> tuple[str, ...]:
        """Returns: ``tableoid, ctid``; a ctid alone repeats across partitions and inheriting
        tables, which a statement on the parent reaches too."""
        return ("tableoid", "ctid")

    def year_trunc(self, expr: str, *, datetime: bool) -> str:
        """Returns: SQL text."""
        if datetime:
            return f"date_trunc('year', {expr})"
        return f"CAST(date_trunc('year', {expr}) AS DATE)"

    def transaction_settings(self) -> list[str]:
        """Returns: SQL statements.

        JIT compilation is switched off for the transaction: a freshly restored snapshot has
        no planner statistics, the nested EXISTS conditions then look expensive, and compiling
        each small statement costs about half a second.
        """
        return ["SET LOCAL jit = off"]

    def only(self, table: str) -> str:
        """Returns: SQL text; the rows of partitions and inheriting tables are left out."""
        return f"ONLY {table}"

    def inheritance_sql(self) -> str:
        """Returns: SQL text listing partitions and INHERITS children of the current schema."""
        return ("SELECT c.relname, p.relname FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')")

    def triggers_sql(self) -> str:
        """Returns: SQL text (one row per trigger and event; constraint triggers excluded)."""
        return ("SELECT trigger_name, event_object_table, event_manipulation "
                "FROM information_schema.triggers WHERE event_object_schema = current_schema()")


__all__ = ["PostgreSQLDialect"]
