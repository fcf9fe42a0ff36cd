"""Dialect registry: SQLAlchemy dialect name -> the reconciler's SQL differences; and
:func:`quoter`, a name quoted for the way its SQL text is run."""

from __future__ import annotations

from reconciler.dialects.base import DefaultDialect
from reconciler.dialects.mysql import MySQLDialect
from reconciler.dialects.postgresql import PostgreSQLDialect
from reconciler.dialects.quoting import RunBy, quoter
from reconciler.dialects.sqlite import SQLiteDialect

_REGISTRY: dict[str, type[DefaultDialect]] = {
    "sqlite": SQLiteDialect,
    "postgresql": PostgreSQLDialect,
    "mysql": MySQLDialect,
    "mariadb": MySQLDialect,
}


def dialect_for(name: str) -> DefaultDialect:
    """The dialect for a SQLAlchemy dialect name; unknown names get standard SQL.

    Returns:
        A dialect instance.
    """
    return _REGISTRY.get(name, DefaultDialect)()


__all__ = ["DefaultDialect", "MySQLDialect", "PostgreSQLDialect", "RunBy", "SQLiteDialect",
           "dialect_for", "quoter"]
