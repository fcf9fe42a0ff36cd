"""SQL text for the executor: which rows an operation touches, what it writes, how to count.

Everything here builds text with bound parameters; nothing is executed. One :class:`Context`
holds what the checks learnt about the snapshot (usable tables, strategies' assignments, row
keys, staged shared tables), and :class:`Statements` turns operations into SQL through the
dialect:

- ``person(table, row, group)``: the row belongs to a person of ``group``, through the map's
  links down to the staging tables (``rc_tmp_subject``, ``rc_tmp_match``, ``rc_tmp_shared*``);
- ``scope(op, row)``: the rest of an operation's condition (date filter, "would change",
  rows kept because another kept row references them, ...);
- ``released(table, row, reference)``: the row will no longer hold ``reference`` after the
  run (it is deleted, or an anonymisation nulls the reference), so the row it points at may go.

Left out on purpose: no execution, no checks, no staging (see :mod:`reconciler.executor`).
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers; every value is a bound parameter
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.datamap import DataMap, TableMap
from reconciler.dialects import DefaultDialect, dialect_for, quoter
from reconciler.errors import DataMapError
from reconciler.ops import (
    AnonymizeRows,
    DateFilter,
    DeleteRows,
    NullifyReferences,
    Op,
    Reference,
    SetColumns,
)
from reconciler.references import table_path
from reconciler.schema import ForeignKey, SnapshotSchema, TableSchema
from reconciler.strategies import Assignment, SetFakeFromKey, SetHash, SetValue, SetYear

MATCH, SUBJECT, HASHES = "rc_tmp_match", "rc_tmp_subject", "rc_tmp_hash"


class Sql:
    """SQL text plus its bound parameters."""

    def __init__(self) -> None:
        self.params: list[sa.BindParameter[Any]] = []

    def bind(self, value: object, type_: sa.types.TypeEngine[Any] | None = None) -> str:
        name = f"p{len(self.params)}"
        self.params.append(sa.bindparam(name, value, type_=type_))
        return f":{name}"

    def text(self, sql: str) -> sa.TextClause:
        # A counting query reuses the WHERE part of a statement and drops its SET clauses.
        # A ":p0" written "\:p0" is part of a quoted name (dialects.quoting), not a parameter.
        used = set(re.findall(r"(?<!\\):(p[0-9]+)\b", sql))
        return sa.text(sql).bindparams(*(p for p in self.params if p.key in used))


@dataclass
class Context:
    """What one run knows about the snapshot; filled by the checks and the staging."""

    conn: Connection
    map: DataMap
    schema: SnapshotSchema
    dialect: DefaultDialect
    quote: Callable[[str], str]  # for text() (reconciler.dialects.quoting)
    usable: dict[str, TableSchema] = field(default_factory=dict)
    assignments: dict[tuple[str, str], Assignment] = field(default_factory=dict)
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)  # reverse-linked table -> staging
    ops: tuple[Op, ...] = ()
    # tables whose rows had references set to NULL just before their delete (a cycle on a
    # database that checks keys row by row, reconciler.chains): UPDATE triggers fired there
    unlinked: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, conn: Connection, data_map: DataMap, schema: SnapshotSchema) -> Context:
        """Returns: a context for ``conn`` with nothing checked yet."""
        return cls(conn=conn, map=data_map, schema=schema,
                   dialect=dialect_for(conn.dialect.name),
                   quote=quoter(conn.dialect, "text"))

    def mapped(self, table: str) -> TableMap | None:
        """Returns: the usable mapped table ``table``, or None."""
        if table not in self.usable:
            return None
        return self.map.table(table)


class Statements:
    """Builds the SQL of one run (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.q = ctx.quote
        self.dialect = ctx.dialect
        self.aliases = 0

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    # -- columns and comparisons -------------------------------------------------------------

    def col(self, row: str, table: str, column: str) -> str:
        expr = f"{row}.{self.q(column)}"
        if self.ctx.usable[table].columns[column].kind != "string":
            return self.dialect.cast_text(expr)
        return expr

    def key_eq(self, table: str, column: str, expr: str, staged: str) -> str:
        """``expr`` (``table.column``) equals a value staged from the same column."""
        info = self.ctx.schema.tables[table].columns.get(column)
        if info is not None and info.kind == "string":
            return self.dialect.exact_eq(expr, staged)
        return f"{expr} = {staged}"

    def pairs_eq(self, left: str, left_cols: tuple[str, ...], right: str,
                 right_cols: tuple[str, ...]) -> str:
        return " AND ".join(f"{left}.{self.q(a)} = {right}.{self.q(b)}"
                            for a, b in zip(left_cols, right_cols, strict=True))

    def match_conditions(self, table: TableMap, row: str, m: str, sql: Sql) -> list[str]:
        """One equi-join condition per identifier column: unlike their OR, each can use an
        index or a hash join (docs/benchmarks.md, "Reconciler")."""
        tbl = sql.bind(table.name)
        return [
            f"{m}.tbl = {tbl} AND {m}.col = {sql.bind(column)} AND "
            f"{self.dialect.exact_eq(self.col(row, table.name, column), f'{m}.raw')}"
            for _, column in table.match
            if column in self.ctx.usable[table.name].columns
        ]

    def match_condition(self, table: TableMap, row: str, m: str, sql: Sql) -> str:
        parts = [f"({m}.col = {sql.bind(column)} AND "
                 f"{self.dialect.exact_eq(self.col(row, table.name, column), f'{m}.raw')})"
                 for _, column in table.match if column in self.ctx.usable[table.name].columns]
        if not parts:
            return ""
        return f"{m}.tbl = {sql.bind(table.name)} AND ({' OR '.join(parts)})"

    # -- who a row belongs to --------------------------------------------------------------------

    def resolvable(self, table: TableMap) -> bool:
        """True when :meth:`person` can be built: no shared table on the way is unstaged."""
        while table.link is not None:
            if table.link.reverse:
                return table.name in self.ctx.shared
            table = self.ctx.map.table(table.link.parent)
        return True

    def staged_key(self, table: TableMap, row: str, staged: str) -> str:
        if table is self.ctx.map.subject:
            return " AND ".join(self.key_eq(table.name, c, f"{row}.{self.q(c)}", f"{staged}.k{i}")
                                for i, c in enumerate(table.key))
        assert table.link is not None
        return " AND ".join(self.key_eq(table.name, mine, f"{row}.{self.q(mine)}",
                                        f"{staged}.v{i}")
                            for i, (mine, _) in enumerate(table.link.on))

    def person(self, table: TableMap, row: str, group: str, sql: Sql, *,
               semi: bool = False) -> str:
        """SQL: the row ``row`` of ``table`` belongs to a person of ``group``.

        ``semi``: where the condition is never negated, write it as ``key IN (SELECT ...)``
        where that means the same as the correlated ``EXISTS``: every database can then start
        from the few staged people and follow the key indexes, instead of testing every row
        of the table (SQLite runs a correlated ``EXISTS`` as written). ``IN`` differs from
        ``EXISTS`` on NULLs under ``NOT``, hence positive uses only.
        """
        if semi and (found := self._semi(table, row, group, sql)) is not None:
            return found
        if table is self.ctx.map.subject:
            return (f"EXISTS (SELECT 1 FROM {SUBJECT} r WHERE r.grp = {sql.bind(group)} "
                    f"AND {self.staged_key(table, row, 'r')})")
        if table.link is None:
            return (f"EXISTS (SELECT 1 FROM {MATCH} m WHERE m.grp = {sql.bind(group)} AND "
                    f"{self.match_condition(table, row, 'm', sql)})")
        if table.link.reverse:
            staged = self.ctx.shared[table.name]
            return (f"EXISTS (SELECT 1 FROM {staged} x WHERE x.grp = {sql.bind(group)} AND "
                    f"x.shared = 0 AND {self.staged_key(table, row, 'x')})")
        parent = self.ctx.map.table(table.link.parent)
        alias = self.alias()
        on = " AND ".join(f"{alias}.{self.q(p)} = {row}.{self.q(c)}" for c, p in table.link.on)
        return (f"EXISTS (SELECT 1 FROM {self.q(parent.name)} {alias} WHERE {on} AND "
                f"{self.person(parent, alias, group, sql)})")

    def _semi(self, table: TableMap, row: str, group: str, sql: Sql) -> str | None:
        """:meth:`person` as ``key IN (SELECT ...)``; None where only ``EXISTS`` is exact."""
        if table is self.ctx.map.subject:
            return self._in(row, table.key, [f"r.k{i}" for i in range(len(table.key))],
                            f"{SUBJECT} r WHERE r.grp = {sql.bind(group)}"
                            ) if self._plain(table.name, table.key) else None
        if table.link is None:
            return self._semi_match(table, row, group, sql)
        mine = tuple(c for c, _ in table.link.on)
        if table.link.reverse:
            return self._in(row, mine, [f"x.v{i}" for i in range(len(mine))],
                            f"{self.ctx.shared[table.name]} x WHERE x.grp = {sql.bind(group)} "
                            "AND x.shared = 0") if self._plain(table.name, mine) else None
        if (keys := self.subject_key_columns(table)) is not None:
            return self._in(row, keys, [f"r.k{i}" for i in range(len(keys))],
                            f"{SUBJECT} r WHERE r.grp = {sql.bind(group)}")
        parent = self.ctx.map.table(table.link.parent)
        if not self._key_in_exact(table.name, mine, parent.name, [p for _, p in table.link.on]):
            return None
        alias = self.alias()
        return self._in(row, mine, [f"{alias}.{self.q(p)}" for _, p in table.link.on],
                        f"{self.q(parent.name)} {alias} WHERE "
                        f"{self.person(parent, alias, group, sql, semi=True)}")

    def subject_key_columns(self, table: TableMap) -> tuple[str, ...] | None:
        """``table``'s columns holding the subject's whole key (in key order), when ``table``
        links straight to the subject through them and none of them holds text; else None.

        Such a row is then compared with the staged keys directly, leaving the subject table
        out of the statement: every staged key was read from a subject row, and the subject's
        own rows change after every table linked to it (children first), so the hop through
        it (a pass over a million subject rows per statement) decides nothing. Text keys keep
        the hop: collations decide equality there.
        """
        subject, link = self.ctx.map.subject, table.link
        if link is None or link.reverse or link.parent != subject.name:
            return None
        mine = {parent: column for column, parent in link.on}
        if len(mine) != len(link.on) or set(mine) != set(subject.key):
            return None
        columns = tuple(mine[key] for key in subject.key)
        return columns if self._key_in_exact(table.name, columns, subject.name, subject.key) else None

    def _semi_match(self, table: TableMap, row: str, group: str, sql: Sql) -> str | None:
        """A table matched on identifier columns: ``col IN (staged spellings)`` per column,
        where the database compares text with a plain ``=`` (not MariaDB)."""
        if not self.dialect.plain_text_equality:
            return None
        grp, tbl = sql.bind(group), sql.bind(table.name)
        parts = [f"{self.col(row, table.name, column)} IN (SELECT m.raw FROM {MATCH} m WHERE "
                 f"m.grp = {grp} AND m.tbl = {tbl} AND m.col = {sql.bind(column)})"
                 for _, column in table.match if column in self.ctx.usable[table.name].columns]
        return f"({' OR '.join(parts)})" if parts else None

    def _plain(self, table: str, columns: Sequence[str]) -> bool:
        """True when :meth:`key_eq` on these columns is a plain ``=`` (which ``IN`` is)."""
        return self.dialect.plain_text_equality or self._textless(table, columns)

    def _key_in_exact(self, child: str, columns: Sequence[str], parent: str,
                      referred: Sequence[str]) -> bool:
        """True when ``child.columns IN (SELECT parent.referred ...)`` means exactly what the
        key's ``parent.referred = child.columns`` does: no text on either side. (SQLite
        compares with the collation of the LEFT operand, so ``IN`` would use the child
        column's collation where the equality, and SQLite's own foreign keys, use the
        parent's.)"""
        return self._textless(child, columns) and self._textless(parent, referred)

    def _textless(self, table: str, columns: Sequence[str]) -> bool:
        """True when none of these columns holds text (collations play no part)."""
        info = self.ctx.schema.tables[table].columns
        return all(c in info and info[c].kind != "string" for c in columns)

    def _in(self, row: str, columns: Sequence[str], selected: Sequence[str], source: str) -> str:
        mine = [f"{row}.{self.q(c)}" for c in columns]
        left = mine[0] if len(mine) == 1 else f"({', '.join(mine)})"
        return f"{left} IN (SELECT {', '.join(selected)} FROM {source})"

    def joins(self, table: TableMap, row: str, group: str, sql: Sql) -> tuple[str, str]:
        """SQL: JOIN clauses from ``row`` up to the staging table, and the source column."""
        if table is self.ctx.map.subject:
            return (f" JOIN {SUBJECT} r ON r.grp = {sql.bind(group)} AND "
                    f"{self.staged_key(table, row, 'r')}", "r.src")
        if table.link is None:
            cond = self.match_condition(table, row, "m", sql)
            return f" JOIN {MATCH} m ON m.grp = {sql.bind(group)} AND {cond}", "m.src"
        if table.link.reverse:
            staged = self.ctx.shared[table.name]
            return (f" JOIN {staged} x ON x.grp = {sql.bind(group)} AND x.shared = 0 AND "
                    f"{self.staged_key(table, row, 'x')}", "x.src")
        if (keys := self.subject_key_columns(table)) is not None:
            on = " AND ".join(f"r.k{i} = {row}.{self.q(c)}" for i, c in enumerate(keys))
            return f" JOIN {SUBJECT} r ON r.grp = {sql.bind(group)} AND {on}", "r.src"
        parent = self.ctx.map.table(table.link.parent)
        alias = self.alias()
        on = " AND ".join(f"{alias}.{self.q(p)} = {row}.{self.q(c)}" for c, p in table.link.on)
        rest, src = self.joins(parent, alias, group, sql)
        return f" JOIN {self.q(parent.name)} {alias} ON {on}{rest}", src

    # -- what happens to a row -------------------------------------------------------------------

    def date_filter(self, table: str, row: str, flt: DateFilter | None, sql: Sql) -> str:
        if flt is None:
            return "1 = 1"
        column = f"{row}.{self.q(flt.column)}"
        kind = self.ctx.usable[table].columns[flt.column].kind
        cutoff = sql.bind(*date_param(flt.cutoff, kind))
        if flt.expired:
            return f"{column} < {cutoff}"
        return f"({column} IS NULL OR {column} >= {cutoff})"

    def new_value(self, table: str, row: str, column: str, assignment: Assignment,
                  sql: Sql) -> str:
        expr = f"{row}.{self.q(column)}"
        if isinstance(assignment, SetValue):
            return sql.bind(assignment.value, self.ctx.usable[table].types[column])
        if isinstance(assignment, SetYear):
            return self.dialect.year_trunc(expr, datetime=assignment.datetime)
        if isinstance(assignment, SetFakeFromKey):
            keys = [self.dialect.cast_text(f"{row}.{self.q(k)}") for k in self.ctx.keys[table]]
            parts = [sql.bind(assignment.prefix)]
            for index, key in enumerate(keys):
                parts.extend([sql.bind("-")] if index else [])
                parts.append(key)
            parts.append(sql.bind(assignment.suffix))
            return self.dialect.concat(parts)
        eq = self.dialect.exact_eq(expr, "h.old")
        return (f"COALESCE((SELECT h.new FROM {HASHES} h WHERE h.tbl = {sql.bind(table)} AND "
                f"h.col = {sql.bind(column)} AND {eq}), {expr})")

    def changed(self, table: str, row: str, column: str, assignment: Assignment,
                sql: Sql) -> str:
        expr = f"{row}.{self.q(column)}"
        if isinstance(assignment, SetValue) and assignment.value is None:
            return f"{expr} IS NOT NULL"
        if isinstance(assignment, SetHash):
            eq = self.dialect.exact_eq(expr, "h.old")
            return (f"EXISTS (SELECT 1 FROM {HASHES} h WHERE h.tbl = {sql.bind(table)} AND "
                    f"h.col = {sql.bind(column)} AND {eq})")
        new = self.new_value(table, row, column, assignment, sql)
        return f"({expr} IS NOT NULL AND {expr} <> {new})"

    def kept_by_reference(self, refs: tuple[Reference, ...], table: str, row: str,
                          sql: Sql) -> str:
        """SQL: a row the run keeps still references ``row`` through one of ``refs``."""
        parts = []
        for ref in refs:
            alias = self.alias()
            on = self.pairs_eq(alias, ref.columns, row, ref.referred_columns)
            released = self.released(ref, alias, sql)
            parts.append(f"EXISTS (SELECT 1 FROM {self.q(ref.table)} {alias} WHERE {on}"
                         + (f" AND NOT ({released}))" if released else ")"))
        return f"({' OR '.join(parts)})" if parts else "1 = 0"

    def deleted(self, op: DeleteRows, row: str, sql: Sql, *, semi: bool = False) -> str:
        """SQL: ``op`` deletes the row ``row`` of its table (``semi``: see :meth:`person`)."""
        table = self.ctx.map.table(op.table)
        person = self.person(table, row, op.group, sql, semi=semi)
        return f"({person} AND {self.scope(op, row, sql)[0]})"

    def referencing(self, row: str, ref: Reference, target: str, alias: str, where: str) -> str:
        """SQL: the row ``row`` of ``ref.table`` references a row ``alias`` of ``target`` for
        which ``where`` holds (never negated).

        ``key IN (SELECT ...)`` where that is exact (no text key: collations play no part), so
        the database starts from the few rows ``where`` picks and follows the foreign key's
        index; a correlated ``EXISTS`` otherwise, which tests every row of ``ref.table``.
        """
        if self._key_in_exact(ref.table, ref.columns, target, ref.referred_columns):
            return self._in(row, ref.columns, [f"{alias}.{self.q(c)}" for c in ref.referred_columns],
                            f"{self.q(target)} {alias} WHERE {where}")
        on = self.pairs_eq(alias, ref.referred_columns, row, ref.columns)
        return f"EXISTS (SELECT 1 FROM {self.q(target)} {alias} WHERE {on} AND {where})"

    def released(self, ref: Reference, row: str, sql: Sql) -> str:
        """SQL: after the run, the row ``row`` of ``ref.table`` no longer holds ``ref`` (it
        is deleted, or anonymized with NULL in every column of the reference); "" if never."""
        parts: list[str] = []
        for op in self.ctx.ops:
            if op.table != ref.table:
                continue
            if isinstance(op, DeleteRows):
                parts.append(self.deleted(op, row, sql))
            elif isinstance(op, AnonymizeRows) and all(
                    self.ctx.assignments.get((op.table, c)) == SetValue(None)
                    for c in ref.columns):
                table = self.ctx.map.table(op.table)
                where = self.anonymize_scope(op, row, sql)
                parts.append(f"({self.person(table, row, op.group, sql)} AND {where})")
        return " OR ".join(parts)

    def anonymize_scope(self, op: AnonymizeRows, row: str, sql: Sql) -> str:
        """SQL: the rows ``op`` anonymizes, whether or not a column would change."""
        where = self.date_filter(op.table, row, op.date_filter, sql)
        if op.kept_for is not None:
            where += " AND " + self.kept_by_reference(op.kept_for.keep_referenced, op.table,
                                                      row, sql)
        return where

    def scope(self, op: Op, row: str, sql: Sql) -> tuple[str, list[str]]:
        """The WHERE condition (without the person link) and the SET clauses of ``op``."""
        table = op.table
        if isinstance(op, DeleteRows):
            where = self.date_filter(table, row, op.date_filter, sql)
            if op.keep_referenced:
                where += " AND NOT " + self.kept_by_reference(op.keep_referenced, table, row,
                                                              sql)
            return where, []
        if isinstance(op, NullifyReferences):
            sets = [f"{self.q(c)} = NULL" for c in op.reference.columns]
            if op.doomed is not None:  # an unlink: the rows that later delete removes
                return self.deleted(op.doomed, row, sql, semi=True), sets
            released = self.released(op.reference, row, sql)
            return (f"NOT ({released})" if released else "1 = 1"), sets
        if isinstance(op, SetColumns):
            sets, changed = [], []
            for column, value in op.values:
                if column not in self.ctx.usable[table].columns:
                    continue
                expr = f"{row}.{self.q(column)}"
                bound = sql.bind(value, self.ctx.usable[table].types[column])
                sets.append(f"{self.q(column)} = {bound}")
                changed.append(f"{expr} IS NOT NULL" if value is None
                               else f"({expr} IS NULL OR {expr} <> {bound})")
            return f"({' OR '.join(changed) or '1 = 0'})", sets
        sets, changed = [], []
        for column, _ in op.columns:
            assignment = self.ctx.assignments.get((table, column))
            if assignment is None:
                continue
            new = self.new_value(table, row, column, assignment, sql)
            expr = f"{row}.{self.q(column)}"
            keep_null = not (isinstance(assignment, SetValue) and assignment.value is None)
            sets.append(f"{self.q(column)} = CASE WHEN {expr} IS NULL THEN NULL ELSE {new} END"
                        if keep_null else f"{self.q(column)} = NULL")
            changed.append(self.changed(table, row, column, assignment, sql))
        where = self.anonymize_scope(op, row, sql)
        return f"{where} AND ({' OR '.join(changed) or '1 = 0'})", sets

    # -- whole statements ------------------------------------------------------------------------

    def membership(self, op: Op, row: str, sql: Sql) -> str:
        """SQL: ``row`` is one of the rows ``op`` is about (before its scope)."""
        if isinstance(op, NullifyReferences):
            target = op.target
            alias = self.alias()
            on = self.pairs_eq(alias, op.reference.referred_columns, row, op.reference.columns)
            return (f"EXISTS (SELECT 1 FROM {self.q(target.table)} {alias} WHERE {on} AND "
                    f"{self.deleted(target, alias, sql)})")
        return self.person(self.ctx.map.table(op.table), row, op.group, sql, semi=True)

    def not_deleted_before(self, op: Op, row: str, sql: Sql) -> str:
        """SQL, for a dry run: `` AND NOT (...)`` excluding rows an earlier delete of the run
        removes (a row both an erasure and an objection delete is deleted once); "" if none."""
        earlier = self.ctx.ops[:self.ctx.ops.index(op)] if op in self.ctx.ops else ()
        parts = [self.deleted(prev, row, sql) for prev in earlier
                 if isinstance(prev, DeleteRows) and prev.table == op.table]
        return f" AND NOT ({' OR '.join(parts)})" if parts else ""

    def count(self, op: Op, *, dry_run: bool = False) -> sa.TextClause:
        """The grouped query counting ``op``'s rows per source (ledger seq or retention rule).

        In a dry run, rows an earlier delete of the run removes are not counted again.
        """
        sql = Sql()
        if isinstance(op, NullifyReferences):
            # attributed to the entries whose rows the references point at
            target = op.target
            alias = self.alias()
            on = self.pairs_eq(alias, op.reference.referred_columns, "t0", op.reference.columns)
            rest, src = self.joins(self.ctx.map.table(target.table), alias, target.group, sql)
            joins = f" JOIN {self.q(target.table)} {alias} ON {on}{rest}"
            target_where, _ = self.scope(target, alias, sql)
            where = f"{target_where} AND {self.scope(op, 't0', sql)[0]}"
            return sql.text(f"SELECT {src}, COUNT(*) FROM {self.q(op.table)} t0{joins} "
                            f"WHERE {where} GROUP BY {src}")
        joins, src = self.joins(self.ctx.map.table(op.table), "t0", op.group, sql)
        where, _ = self.scope(op, "t0", sql)
        if dry_run:
            where += self.not_deleted_before(op, "t0", sql)
        return sql.text(f"SELECT {src}, COUNT(*) FROM {self.q(op.table)} t0{joins} "
                        f"WHERE {where} GROUP BY {src}")

    def statement(self, op: Op, *, dry_run: bool) -> sa.TextClause | None:
        """The one statement of ``op`` (a ``COUNT(*)`` in a dry run); None if it sets nothing."""
        target = self.q(op.table)
        sql = Sql()
        person = self.membership(op, target, sql)
        where, sets = self.scope(op, target, sql)
        if dry_run:
            where += self.not_deleted_before(op, target, sql)
            return sql.text(f"SELECT COUNT(*) FROM {target} WHERE {person} AND {where}")
        if isinstance(op, DeleteRows):
            return sql.text(f"DELETE FROM {target} WHERE {person} AND {where}")
        if not sets:
            return None
        return sql.text(f"UPDATE {target} SET {', '.join(sets)} WHERE {person} AND {where}")

    def batch(self, op: Op, limit: int) -> sa.TextClause | None:
        """The statement of ``op`` for at most ``limit`` rows (a batched apply runs it until it
        changes fewer); None if it sets nothing.

        Every batch picks only rows the operation still changes (deleted rows are gone, an
        UPDATE's scope says "some column would change"), so the loop ends. Rows are picked
        by primary key, or by the database's row identity for a table without one.

        Raises:
            DataMapError: the table has no primary key and the database no row identity.
        """
        if isinstance(op, DeleteRows) and any(
                fk.table == op.table for fk in self.ctx.schema.referencing(op.table)):
            # rows that reference each other (a reply to a note) must go in one statement:
            # a batch could take a row and leave the one referencing it, breaking the key
            return self.statement(op, dry_run=False)
        target = self.q(op.table)
        sql = Sql()
        person = self.membership(op, target, sql)
        where, sets = self.scope(op, target, sql)
        if not isinstance(op, DeleteRows) and not sets:
            return None
        head = (f"DELETE FROM {target}" if isinstance(op, DeleteRows)
                else f"UPDATE {target} SET {', '.join(sets)}")
        if self.dialect.limit_in_dml:
            return sql.text(f"{head} WHERE {person} AND {where} LIMIT {int(limit)}")
        pick = "rc_b"
        ident = self.row_identity(op)
        outer = ", ".join(f"{target}.{c}" for c in ident)
        inner = ", ".join(f"{pick}.{c}" for c in ident)
        if len(ident) > 1:
            outer = f"({outer})"
        chosen, _ = self.scope(op, pick, sql)
        return sql.text(
            f"{head} WHERE {outer} IN (SELECT {inner} FROM {target} {pick} WHERE "
            f"{self.membership(op, pick, sql)} AND {chosen} LIMIT {int(limit)})")

    def defer(self, key: ForeignKey) -> sa.TextClause:
        """The statement deferring ``key``'s check to the commit (standard SQL; only
        PostgreSQL reflects a key as deferrable)."""
        return sa.text(f"SET CONSTRAINTS {self.q(key.name or '')} DEFERRED")

    def row_identity(self, op: Op) -> tuple[str, ...]:
        """Quoted columns that pick one row of ``op``'s table in a batch."""
        table = op.table
        key = self.ctx.usable[table].primary_key
        # a statement on a PostgreSQL parent reaches its partitions and inheriting tables,
        # whose rows may repeat the parent's key values
        if key and not self.ctx.schema.descendants(table):
            return tuple(self.q(c) for c in key)
        ident = self.dialect.row_identity()
        if ident is None:
            raise DataMapError(f"{self.ctx.map.where(table_path(self.ctx.map, table))}: table "
                               f"{table!r} has no primary key; a batched apply needs one on "
                               "this database")
        return ident


def date_param(day: dt.date, kind: str) -> tuple[object, sa.types.TypeEngine[Any]]:
    """Returns: ``day`` as a bound value of the column's kind."""
    if kind == "datetime":
        return dt.datetime(day.year, day.month, day.day), sa.DateTime()
    return day, sa.Date()


__all__ = ["HASHES", "MATCH", "SUBJECT", "Context", "Sql", "Statements", "date_param"]
