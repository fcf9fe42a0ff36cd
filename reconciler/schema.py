"""Reflect a snapshot's schema once (SQLAlchemy inspector) into frozen, plain data.

Besides tables, columns and keys it records what the inspector does not say: which tables
inherit from which (PostgreSQL partitions and ``INHERITS`` children, whose rows statements on
the parent reach), and the triggers (a trigger that fires on UPDATE or DELETE can copy
personal data elsewhere while the reconciler runs). A foreign key PostgreSQL clones onto
partitions (or points at each partition of a referenced partitioned table) is kept once, on
the parent, the table statements go through.

Left out on purpose: no writes; nothing here changes the snapshot.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.dialects import dialect_for
from reconciler.strategies import ColumnInfo, TypeKind

#: Tables the reconciler keeps in a snapshot itself (the backup watermark, see
#: reconciler.watermark; a batched apply's journal, reconciler.journal). They hold no
#: personal data, so reflection leaves them out of every check, the residual scan, the
#: schema fingerprint and discover's draft map.
OWN_TABLES = frozenset({"erasure_reconciler_watermark", "rc_journal"})


@dataclass(frozen=True)
class ForeignKey:
    table: str
    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]
    ondelete: str | None
    name: str | None = None
    deferrable: bool = False  # PostgreSQL: checked at commit when deferred (SET CONSTRAINTS)


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: Mapping[str, ColumnInfo]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...]
    types: Mapping[str, sa.types.TypeEngine[object]]
    inherits: str | None = None  # PostgreSQL: the partitioned or INHERITS parent


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    events: tuple[str, ...]  # "INSERT", "UPDATE", "DELETE"


@dataclass(frozen=True)
class SnapshotSchema:
    tables: Mapping[str, TableSchema]
    fingerprint: str  # SHA-256 over table, column and type names
    triggers: tuple[Trigger, ...] = field(default=())

    def referencing(self, table: str) -> list[ForeignKey]:
        """Every foreign key that points at ``table``.

        Returns:
            Foreign keys, in table order.
        """
        return [fk for t in self.tables.values() for fk in t.foreign_keys
                if fk.referred_table == table]

    def descendants(self, table: str) -> list[str]:
        """Partitions and inheriting tables of ``table``, at any depth.

        Returns:
            Table names, parents before their children.
        """
        found: list[str] = []
        frontier = [table]
        while frontier:
            parent = frontier.pop(0)
            children = [t.name for t in self.tables.values() if t.inherits == parent]
            found += children
            frontier += children
        return found


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
        (sa.JSON, "json"),
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
    with warnings.catch_warnings():
        # SQLAlchemy warns (to stderr) about what it cannot reflect, e.g. expression indexes
        # on SQLite; they do not matter here, and the CLI promises one line on errors only.
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        columns = insp.get_multi_columns()
        pks = insp.get_multi_pk_constraint()
        fks = insp.get_multi_foreign_keys()
        uniques = insp.get_multi_unique_constraints()
        indexes = insp.get_multi_indexes()
    if conn.dialect.name in ("mysql", "mariadb"):
        _unescape_backticks(columns, pks, fks, uniques, indexes)
    parents = _inheritance(conn)
    tables: dict[str, TableSchema] = {}
    digest = hashlib.sha256()
    for key in sorted(columns, key=lambda k: k[1]):
        name = key[1]
        if name in OWN_TABLES:
            continue
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
                       ondelete=_ondelete(fk.get("options")), name=fk.get("name"),
                       deferrable=_deferrable(fk.get("options")))
            for fk in fks.get(key, [])
        )
        tables[name] = TableSchema(name=name, columns=infos, primary_key=pk,
                                   foreign_keys=foreign, types=types, inherits=parents.get(name))
    tables = {name: _without_cloned_keys(table, tables, parents)
              for name, table in tables.items()}
    return SnapshotSchema(tables=tables, fingerprint=digest.hexdigest(),
                          triggers=_triggers(conn, set(tables)))


def _unescape_backticks(columns: Mapping[Any, list[Any]], *keys: Mapping[Any, Any]) -> None:
    """Undo the doubled backtick SQLAlchemy's MySQL reflection leaves in column names.

    It parses ``SHOW CREATE TABLE``, where every backtick in a name is written twice, and
    keeps the column names (not the table names) as written there: ``k``n`` for ``k`n``.
    Halving each pair gives the name back. Changed in place: the names of ``columns`` and
    the column lists of ``keys`` (primary keys, foreign keys, unique constraints, indexes).
    A foreign key into a table whose name holds a backtick is not reflected at all
    (SQLAlchemy's pattern for it refuses the name).
    """
    for entries in columns.values():
        for column in entries:
            column["name"] = column["name"].replace("``", "`")
    for per_table in keys:
        for found in per_table.values():
            for key in found if isinstance(found, list) else [found]:
                if not isinstance(key, dict):
                    continue
                for field_ in ("constrained_columns", "referred_columns", "column_names"):
                    if key.get(field_):
                        key[field_] = [c.replace("``", "`") if isinstance(c, str) else c
                                       for c in key[field_]]


def _inheritance(conn: Connection) -> dict[str, str]:
    sql = dialect_for(conn.dialect.name).inheritance_sql()
    if sql is None:
        return {}
    return {str(child): str(parent) for child, parent in conn.execute(sa.text(sql))}


def _without_cloned_keys(table: TableSchema, tables: Mapping[str, TableSchema],
                         parents: Mapping[str, str]) -> TableSchema:
    # PostgreSQL clones a partitioned table's foreign keys onto every partition, and a key
    # into a partitioned table gets one hidden twin per partition. Statements go through the
    # parent, so each relation is kept once, as declared on (and into) the parent.
    def ancestor_has(fk: ForeignKey) -> bool:
        owner = parents.get(fk.table)
        while owner is not None:
            inherited = tables[owner].foreign_keys if owner in tables else ()
            if any(f.columns == fk.columns and f.referred_table == fk.referred_table
                   for f in inherited):
                return True
            owner = parents.get(owner)
        return False

    def into_partition(fk: ForeignKey) -> bool:
        target = parents.get(fk.referred_table)
        return target is not None and any(
            f.columns == fk.columns and f.referred_table == target for f in table.foreign_keys)

    kept = tuple(fk for fk in table.foreign_keys
                 if not ancestor_has(fk) and not into_partition(fk))
    if kept == table.foreign_keys:
        return table
    return TableSchema(name=table.name, columns=table.columns, primary_key=table.primary_key,
                       foreign_keys=kept, types=table.types, inherits=table.inherits)


_EVENT = re.compile(r"\b(INSERT|UPDATE|DELETE)\b(?:\s+OF\s+.+?)?\s+ON\s", re.IGNORECASE | re.DOTALL)


def _triggers(conn: Connection, tables: set[str]) -> tuple[Trigger, ...]:
    events: dict[tuple[str, str], set[str]] = {}
    sql = dialect_for(conn.dialect.name).triggers_sql()
    if sql is None:
        return ()
    for name, table, event in conn.execute(sa.text(sql)):
        if table not in tables:
            continue
        text = str(event).strip().upper()
        if text not in ("INSERT", "UPDATE", "DELETE"):
            # SQLite keeps only the CREATE TRIGGER statement
            match = _EVENT.search(str(event))
            if match is None:
                continue
            text = match.group(1).upper()
        events.setdefault((str(table), str(name)), set()).add(text)
    return tuple(Trigger(name=name, table=table, events=tuple(sorted(found)))
                 for (table, name), found in sorted(events.items()))


def _deferrable(options: object) -> bool:
    return isinstance(options, dict) and bool(options.get("deferrable"))


def _ondelete(options: object) -> str | None:
    value = options.get("ondelete") if isinstance(options, dict) else None
    return value.upper() if isinstance(value, str) else None


__all__ = ["OWN_TABLES", "ForeignKey", "SnapshotSchema", "TableSchema", "Trigger", "reflect",
           "type_kind"]
