"""Reflect a snapshot's schema once (SQLAlchemy inspector) into frozen, plain data.

Left out on purpose: no writes; nothing here changes the snapshot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.strategies import ColumnInfo, TypeKind


@dataclass(frozen=True)
class ForeignKey:
    table: str
    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]
    ondelete: str | None


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: Mapping[str, ColumnInfo]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...]
    types: Mapping[str, sa.types.TypeEngine[object]]


@dataclass(frozen=True)
class SnapshotSchema:
    tables: Mapping[str, TableSchema]
    fingerprint: str  # SHA-256 over table, column and type names

    def referencing(self, table: str) -> list[ForeignKey]:
        """Every foreign key that points at ``table``.

        Returns:
            Foreign keys, in table order.
        """
        return [fk for t in self.tables.values() for fk in t.foreign_keys
                if fk.referred_table == table]


def type_kind(type_: sa.types.TypeEngine[object]) -> TypeKind:
    """Classify a reflected column type.

    Returns:
        The kind the anonymisation strategies reason about.
    """
    checks: list[tuple[type[sa.types.TypeEngine[Any]], TypeKind]] = [
        (sa.Boolean, "boolean"),
        (sa.DateTime, "datetime"),
        (sa.Date, "date"),
        (sa.Integer, "integer"),
        (sa.Numeric, "numeric"),
        (sa.String, "string"),
    ]
    for cls, kind in checks:
        if isinstance(type_, cls):
            return kind
    return "other"


def reflect(conn: Connection) -> SnapshotSchema:
    """Read tables, columns, keys and unique constraints of the connection's default schema.

    Returns:
        The schema.
    """
    insp = sa.inspect(conn)
    columns = insp.get_multi_columns()
    pks = insp.get_multi_pk_constraint()
    fks = insp.get_multi_foreign_keys()
    uniques = insp.get_multi_unique_constraints()
    indexes = insp.get_multi_indexes()
    tables: dict[str, TableSchema] = {}
    digest = hashlib.sha256()
    for key in sorted(columns, key=lambda k: k[1]):
        name = key[1]
        pk_constraint = pks.get(key)
        pk = tuple(pk_constraint["constrained_columns"] or ()) if pk_constraint else ()
        unique_sets = [tuple(u["column_names"]) for u in uniques.get(key, [])]
        unique_sets += [tuple(c for c in i["column_names"] if c is not None)
                        for i in indexes.get(key, []) if i.get("unique")]
        unique_sets.append(pk)
        single_unique = {cols[0] for cols in unique_sets if len(cols) == 1}
        infos: dict[str, ColumnInfo] = {}
        types: dict[str, sa.types.TypeEngine[object]] = {}
        for col in columns[key]:
            type_ = col["type"]
            length = getattr(type_, "length", None)
            infos[col["name"]] = ColumnInfo(
                name=col["name"], kind=type_kind(type_),
                length=length if isinstance(length, int) else None,
                nullable=bool(col.get("nullable", True)), unique=col["name"] in single_unique)
            types[col["name"]] = type_
            digest.update(f"{name}\0{col['name']}\0{type_!r}\n".encode())
        foreign = tuple(
            ForeignKey(table=name, columns=tuple(fk["constrained_columns"]),
                       referred_table=fk["referred_table"],
                       referred_columns=tuple(fk["referred_columns"]),
                       ondelete=_ondelete(fk.get("options")))
            for fk in fks.get(key, [])
        )
        tables[name] = TableSchema(name=name, columns=infos, primary_key=pk,
                                   foreign_keys=foreign, types=types)
    return SnapshotSchema(tables=tables, fingerprint=digest.hexdigest())


def _ondelete(options: object) -> str | None:
    value = options.get("ondelete") if isinstance(options, dict) else None
    return value.upper() if isinstance(value, str) else None


__all__ = ["ForeignKey", "SnapshotSchema", "TableSchema", "reflect", "type_kind"]
