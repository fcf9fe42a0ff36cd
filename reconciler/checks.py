"""Plan-time checks: the map against the snapshot's schema, and references against its data.

Everything here runs before the first change, and raises :class:`DataMapError` (exit 2,
nothing changed) naming ``file:line: key.path``:

- schema drift: a mapped table, or an anonymize/retain column, the snapshot lacks is noted and
  skipped; a missing subject table or key, a missing link or match column of a table that is
  there (its erased people's rows could not be found), or a missing ``retain.after`` column,
  stops the run;
- every strategy against the column's type, length, NOT NULL and UNIQUE, on the table and on
  each of its partitions or inheriting tables (which may carry constraints the parent lacks);
- a strategy on a foreign-key column must write NULL (any other value points nowhere);
- ``ON DELETE CASCADE`` from a kept table into a table the run deletes from;
- after staging, against the data: rows the map leaves at ``on_reference: refuse`` that
  reference rows the run deletes, rows referencing a column the run anonymizes, and rows a
  later delete removes that reference rows deleted before them through a key nothing can
  free (:func:`reconciler.references.back_references`).

It also words the warnings about triggers on the tables the run changes.

Left out on purpose: no changes; statements come from :mod:`reconciler.statements`.
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers; every value is a bound parameter
from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa

from reconciler.datamap import DataMap, TableMap
from reconciler.errors import DataMapError
from reconciler.ops import AnonymizeRows, DeleteRows, Op, Reference, SetColumns
from reconciler.planner import link_depth
from reconciler.references import BackReference, Refusal, table_path
from reconciler.schema import SnapshotSchema
from reconciler.statements import Context, Sql, Statements
from reconciler.strategies import SetFakeFromKey, SetValue, Strategy

Scope = Callable[[str, Sql], str]  # SQL: the row (alias) is in scope
# how alike a missing name and a present one must be to be taken for a typo (difflib ratio)
_TYPO_CUTOFF = 0.8
_ROUND_TRIP = "rc_tmp_round_trip"


def not_a_typo(data_map: DataMap, path: str, what: str, name: str, *, present: Iterable[str],
               named: Iterable[str]) -> None:
    """A name the snapshot lacks, with a close one the map does not name, is a typo far more
    often than schema drift: refuse it rather than skip a table of personal data.

    Raises:
        DataMapError: ``name`` is close to one of ``present`` not in ``named``.
    """
    others = sorted(set(present) - set(named))
    close = difflib.get_close_matches(name, others, n=1, cutoff=_TYPO_CUTOFF)
    close = close or [other for other in others if other.lower() == name.lower()]
    if close:
        raise DataMapError(f"{data_map.where(path)}: {what} {name!r} is not in this snapshot; "
                           f"did you mean {close[0]!r}? (a {what} the map does not name; one "
                           "missing from an older backup would only be noted)")


def schema_drift(data_map: DataMap, schema: SnapshotSchema) -> tuple[str, ...]:
    """The map's tables and anonymized columns this snapshot lacks, for ``verify``'s report
    (``apply`` finds them while it checks the map, with the same words).

    Raises:
        DataMapError: a missing name is a typo of one the snapshot has (:func:`not_a_typo`).
    """
    notes: list[str] = []
    names = [t.name for t in data_map.all_tables()]
    for table in data_map.all_tables():
        path = table_path(data_map, table.name)
        snap = schema.tables.get(table.name)
        if snap is None:
            not_a_typo(data_map, path, "table", table.name, present=schema.tables, named=names)
            notes.append(f"{path}: table {table.name!r} not in this snapshot")
            continue
        named = {c for c, _ in table.columns} | {c for _, c in table.match}
        for column, _ in table.columns:
            if column not in snap.columns:
                not_a_typo(data_map, f"{path}.columns.{column}", "column", column,
                           present=snap.columns, named=named)
                notes.append(f"{path}.columns.{column}: column {column!r} not in this snapshot")
    notes.extend(f"{path}: column {column!r} not in this snapshot"
                 for path, column in opt_out_columns_missing(data_map, schema))
    return tuple(sorted(notes))


def opt_out_columns_missing(data_map: DataMap, schema: SnapshotSchema) -> list[tuple[str, str]]:
    """The opt-out ``set:`` columns a present table lacks, as (key path, column): nothing to
    reset there, so noted, like any mapped column an older backup lacks (a missing table is
    noted with its table).

    Raises:
        DataMapError: a missing name is a typo of one the snapshot has (:func:`not_a_typo`).
    """
    missing = []
    for index, rule in enumerate(data_map.opt_outs):
        snap = schema.tables.get(rule.table)
        if snap is None:
            continue
        named = [column for column, _ in rule.set]
        for column in named:
            if column not in snap.columns:
                path = f"opt_outs[{index}].set.{column}"
                not_a_typo(data_map, path, "column", column, present=snap.columns, named=named)
                missing.append((path, column))
    return missing


class Checks:
    def __init__(self, ctx: Context, st: Statements) -> None:
        self.ctx = ctx
        self.st = st
        self.map = ctx.map
        self.drift: list[str] = []

    def note(self, path: str, what: str) -> None:
        self.drift.append(f"{path}: {what} not in this snapshot")

    def not_a_typo(self, path: str, what: str, name: str, present: Iterable[str],
                   named: Iterable[str]) -> None:
        not_a_typo(self.map, path, what, name, present=present, named=named)

    # -- the map against the schema --------------------------------------------------------------

    def schema(self) -> None:
        """Check the map against the reflected schema; fill ``ctx.usable`` and friends.

        Raises:
            DataMapError: the map cannot work on this snapshot.
        """
        subject = self.map.subject
        snap = self.ctx.schema.tables.get(subject.name)
        if snap is None:
            raise DataMapError(f"{self.map.where('subject.table')}: table {subject.name!r} "
                               "is not in this snapshot")
        for column in subject.key:
            if column not in snap.columns:
                raise DataMapError(f"{self.map.where('subject.key')}: column {column!r} is not "
                                   f"in table {subject.name!r} of this snapshot")
        for rule in self.map.retention:
            if rule.column not in snap.columns:
                raise DataMapError(f"{self.map.where('retention')}: column {rule.column!r} is "
                                   f"not in table {subject.name!r} of this snapshot")
        # parents before children, whatever the order in the map
        for table in sorted(self.map.all_tables(), key=lambda t: link_depth(self.map, t)):
            self.table(table)
        for path, column in opt_out_columns_missing(self.map, self.ctx.schema):
            self.note(path, f"column {column!r}")

    def table(self, table: TableMap) -> None:
        path = table_path(self.map, table.name)
        snap = self.ctx.schema.tables.get(table.name)
        if snap is None:
            self.not_a_typo(path, "table", table.name, self.ctx.schema.tables,
                            (t.name for t in self.map.all_tables()))
            self.note(path, f"table {table.name!r}")
            return
        if table.link is not None:
            key = "referenced_by" if table.link.reverse else "parent"
            parent = self.ctx.usable.get(table.link.parent)
            if parent is None:
                if table.link.parent in self.ctx.schema.tables:
                    # the parent is there but was skipped: its own parent is missing
                    self.drift.append(f"{path}.link.{key}: {key.replace('_', ' ')} table "
                                      f"{table.link.parent!r} skipped (its parent is not in "
                                      "this snapshot)")
                else:
                    self.note(f"{path}.link.{key}", f"{key.replace('_', ' ')} table "
                                                    f"{table.link.parent!r}")
                return
            self.link_columns(table, path, snap.columns, parent.columns)
        for id_type, column in table.match:
            if column not in snap.columns:
                # the table is there, so the erased people's rows are too: they cannot be found
                key = "identifiers" if table is self.map.subject else "match"
                where = self.map.where(f"{path}.{key}.{id_type}")
                raise DataMapError(f"{where}: column {table.name}.{column} is not in this "
                                   "snapshot, so the rows of erased people cannot be found")
        if table.retain is not None and table.retain.after not in snap.columns:
            raise DataMapError(f"{self.map.where(f'{path}.retain.after')}: column "
                               f"{table.retain.after!r} is not in this snapshot")
        self.ctx.keys[table.name] = table.key or snap.primary_key
        named = {c for c, _ in table.columns} | {c for _, c in table.match}
        for column, strategy in table.columns:
            if column not in snap.columns:
                self.not_a_typo(f"{path}.columns.{column}", "column", column, snap.columns,
                                named)
                self.note(f"{path}.columns.{column}", f"column {column!r}")
                continue
            self.strategy(table, column, strategy)
        self.ctx.usable[table.name] = snap

    def link_columns(self, table: TableMap, path: str, mine: Iterable[str],
                     theirs: Iterable[str]) -> None:
        """Both tables of a link exist: each of its columns must too.

        Raises:
            DataMapError: a link column is missing (the rows could not be found).
        """
        assert table.link is not None
        present = {table.name: set(mine), table.link.parent: set(theirs)}
        for column, other in table.link.on:
            # the map's key is the referencing table's column: ours, or the parent's if reverse
            key = other if table.link.reverse else column
            for owner, name in ((table.name, column), (table.link.parent, other)):
                if name not in present[owner]:
                    where = self.map.where(f"{path}.link.on.{key}")
                    raise DataMapError(f"{where}: column {owner}.{name} is not in this "
                                       "snapshot, so the rows of erased people cannot be found")

    def strategy(self, table: TableMap, column: str, strategy: Strategy) -> None:
        where = self.map.where(f"{table_path(self.map, table.name)}.columns.{column}")
        schema = self.ctx.schema
        assignment = None
        # a partition or inheriting table may be stricter than its parent (NOT NULL, UNIQUE)
        for name in (table.name, *schema.descendants(table.name)):
            info = schema.tables[name].columns.get(column)
            if info is None:
                continue
            try:
                found = strategy.assignment(info)
            except ValueError as exc:
                inside = "" if name == table.name else (f" in {name!r}, which inherits from "
                                                        f"{table.name!r},")
                raise DataMapError(f"{where}: {exc}{inside} in this snapshot") from None
            assignment = assignment or found
        if isinstance(assignment, SetFakeFromKey) and not self.ctx.keys[table.name]:
            raise DataMapError(f"{where}: distinct fake values need a primary key (add key: "
                               "to the table)")
        if assignment != SetValue(None):
            for fk in schema.tables[table.name].foreign_keys:
                if column in fk.columns:
                    ref = Reference(fk.table, fk.columns, fk.referred_columns)
                    raise DataMapError(
                        f"{where}: column {column!r} is in the foreign key "
                        f"{ref.describe(fk.referred_table)}: only NULL keeps it valid, any "
                        "other value would point nowhere; use the null strategy")
        assert assignment is not None
        self.ctx.assignments[(table.name, column)] = assignment

    def stored_values(self, ops: Sequence[Op]) -> None:
        """Every fixed value (``{fixed: ...}``, an opt-out's ``set:``) must be stored as
        written: a column that rounds it (1.234 in NUMERIC(10,2), fractional seconds in
        DATETIME(0)) would keep "would change" true for ever, so a second apply would change
        the rows again and a batched apply would never finish. Each value is written to a
        temporary column of the same type and compared back the way the statements compare.

        Raises:
            DataMapError: a value the column cannot hold as written.
        """
        wanted: dict[tuple[str, str], tuple[str, object]] = {}
        for (table, column), assignment in self.ctx.assignments.items():
            if isinstance(assignment, SetValue) and assignment.value is not None:
                where = self.map.where(f"{table_path(self.map, table)}.columns.{column}")
                wanted[(table, column)] = (where, assignment.value)
        for op in ops:
            if isinstance(op, SetColumns):
                for column, value in op.values:
                    if value is not None and column in self.ctx.usable[op.table].columns:
                        wanted.setdefault((op.table, column), (self.map.where(op.path), value))
        for (table, column), (where, value) in wanted.items():
            if not self.stored_as_written(table, column, value):
                raise DataMapError(f"{where}: the value for column {table}.{column} is not stored "
                                   "as written (the column rounds or truncates it); write it as "
                                   "the column stores it")

    def stored_as_written(self, table: str, column: str, value: object) -> bool:
        snap = self.ctx.usable[table]
        try:
            kind = str(snap.types[column].compile(dialect=self.ctx.conn.dialect))
        except sa.exc.CompileError:
            return True  # a type we cannot recreate: not checked
        dialect = self.ctx.dialect
        conn = self.ctx.conn
        bound = sa.bindparam("v", value, type_=snap.types[column])
        conn.execute(sa.text(dialect.drop_temp_table(_ROUND_TRIP)))
        conn.execute(sa.text(dialect.create_temp_table(_ROUND_TRIP, [("v", kind)])))
        try:
            with conn.begin_nested():  # a refused value must not abort the transaction
                conn.execute(sa.text(f"INSERT INTO {_ROUND_TRIP} (v) VALUES (:v)")
                             .bindparams(bound))
                changed = int(conn.execute(sa.text(
                    f"SELECT COUNT(*) FROM {_ROUND_TRIP} WHERE v IS NULL OR v <> :v")
                    .bindparams(bound)).scalar_one())
        except sa.exc.DBAPIError:
            changed = 1  # the column refuses the value outright
        conn.execute(sa.text(dialect.drop_temp_table(_ROUND_TRIP)))
        return not changed

    def cascades(self, ops: Sequence[Op]) -> None:
        """Refuse ``ON DELETE CASCADE`` from kept rows into rows the run deletes.

        Raises:
            DataMapError: such a foreign key exists.
        """
        deleted = {op.table for op in ops if isinstance(op, DeleteRows)}
        kept = {t.name for t in self.map.all_tables() if t.action != "delete"}
        for fk in (fk for t in self.ctx.usable.values() for fk in t.foreign_keys):
            if fk.referred_table in deleted and fk.table in kept and fk.ondelete == "CASCADE":
                path = table_path(self.map, fk.table)
                raise DataMapError(
                    f"{self.map.where(path)}: foreign key {fk.table}({', '.join(fk.columns)}) "
                    f"-> {fk.referred_table} ON DELETE CASCADE would delete kept rows when "
                    f"{fk.referred_table!r} rows are deleted; refusing")

    # -- references against the data (after staging) ---------------------------------------------

    def refusals(self, refusals: Iterable[Refusal]) -> None:
        """Refuse the run if a row the run keeps references a row it deletes, where the map
        leaves that reference at ``on_reference: refuse``.

        Raises:
            DataMapError: names the table, the foreign key and the count; nothing changed.
        """
        for refusal in refusals:
            op, ref = refusal.op, refusal.reference
            if self.deleted_with_parent(ref, op):
                continue
            blocked = self.count_referencing(
                ref, op.table, functools.partial(self.st.deleted, op, semi=True))
            if blocked:
                path = table_path(self.map, op.table)
                also = "" if self.ctx.mapped(ref.table) else (
                    f", or map {ref.table!r} (link it to {op.table!r})")
                raise DataMapError(
                    f"{self.map.where(op.path)}: {blocked} row(s) of {ref.table!r} reference "
                    f"{op.table!r} rows this run deletes ({ref.describe(op.table)}); add "
                    f"on_reference: {{{ref.table}: nullify or anonymize}} to {path}{also}; "
                    "nothing was changed")

    def back_references(self, blocked: Iterable[tuple[BackReference, str]]) -> None:
        """Refuse the run if rows a later delete removes reference rows an earlier delete
        removes through a key that can be neither set to NULL first nor left to the database:
        the earlier delete would fail halfway (a database that checks the key refuses it),
        or leave the rows pointing nowhere until the later one (SQLite).

        Raises:
            DataMapError: names the tables, the key, its column and the count; nothing
                changed.
        """
        for back, why in blocked:
            first, later, ref = back.first, back.later, back.reference
            sql = Sql()
            alias = self.st.alias()
            referenced = self.st.deleted(first, alias, sql, semi=True)
            query = (f"SELECT COUNT(*) FROM {self.ctx.quote(ref.table)} c WHERE "
                     f"{self.st.referencing('c', ref, first.table, alias, referenced)} "
                     f"AND {self.st.deleted(later, 'c', sql, semi=True)}")
            blocked_rows = int(self.ctx.conn.execute(sql.text(query)).scalar_one())
            if blocked_rows:
                raise DataMapError(
                    f"{self.map.where(later.path)}: {blocked_rows} row(s) of {ref.table!r} this "
                    f"run deletes reference {first.table!r} rows it deletes before them "
                    f"({ref.describe(first.table)}, a key pointing back along the links); "
                    f"{why}; nothing was changed")

    def deleted_with_parent(self, ref: Reference, op: DeleteRows) -> bool:
        """True when the run deletes every row of ``ref.table`` that references a row ``op``
        deletes, so no such row can be kept: a delete of ``ref.table`` in ``op``'s group,
        linked to ``op.table`` through exactly this foreign key, with no date filter and no
        rows kept. (Counting it is a query over every such row: 3 s at 1M subjects.)"""
        pairs = set(zip(ref.columns, ref.referred_columns, strict=True))
        for other in self.ctx.ops:
            if not (isinstance(other, DeleteRows) and other.table == ref.table
                    and other.group == op.group and other.date_filter is None
                    and not other.keep_referenced):
                continue
            link = self.map.table(other.table).link
            if (link is not None and not link.reverse and link.parent == op.table
                    and set(link.on) == pairs):
                return True
        return False

    def referenced_columns(self, ops: Sequence[Op]) -> None:
        """Refuse anonymizing a column other kept rows reference through a foreign key.

        Raises:
            DataMapError: names the column, the foreign key and the count; nothing changed.
        """
        for op in ops:
            if not isinstance(op, AnonymizeRows):
                continue
            changed = {c for c, _ in op.columns if (op.table, c) in self.ctx.assignments}
            table = self.map.table(op.table)
            for fk in self.ctx.schema.referencing(op.table):
                hit = [c for c in fk.referred_columns if c in changed]
                if not hit:
                    continue
                ref = Reference(fk.table, fk.columns, fk.referred_columns)

                def scope(row: str, sql: Sql, op: AnonymizeRows = op,
                          table: TableMap = table) -> str:
                    return (f"({self.st.person(table, row, op.group, sql, semi=True)} AND "
                            f"{self.st.anonymize_scope(op, row, sql)})")

                blocked = self.count_referencing(ref, op.table, scope)
                if blocked:
                    raise DataMapError(
                        f"{self.map.where(f'{op.path}.{hit[0]}')}: {blocked} row(s) of "
                        f"{ref.table!r} reference column {hit[0]!r} of {op.table!r} rows this "
                        f"run anonymizes ({ref.describe(op.table)}); they would point nowhere; "
                        "nothing was changed")

    def count_referencing(self, ref: Reference, table: str, scope: Scope) -> int:
        """Rows of ``ref.table`` the run keeps that reference rows of ``table`` in ``scope``
        (a condition never negated: it may use ``IN`` forms)."""
        sql = Sql()
        alias = self.st.alias()
        inner = scope(alias, sql)
        released = self.st.released(ref, "c", sql)
        query = (f"SELECT COUNT(*) FROM {self.ctx.quote(ref.table)} c WHERE "
                 f"{self.st.referencing('c', ref, table, alias, inner)}")
        if released:
            query += f" AND NOT ({released})"
        return int(self.ctx.conn.execute(sql.text(query)).scalar_one())


def trigger_warnings(schema: SnapshotSchema, changes: Iterable[tuple[str, str]]) -> list[str]:
    """Warnings for triggers that fire on what the run changes.

    Args:
        schema: the reflected schema (with its triggers).
        changes: ``(table, "UPDATE" | "DELETE")`` for every operation that changed rows.

    Returns:
        One line per trigger and event, naming trigger and table (never data).
    """
    events: dict[str, set[str]] = {}
    for table, event in changes:
        for name in (table, *schema.descendants(table)):
            events.setdefault(name, set()).add(event)
    out = []
    for trigger in schema.triggers:
        for event in trigger.events:
            if event in events.get(trigger.table, ()):
                out.append(f"trigger {trigger.name!r} on {trigger.table!r} fires on {event}: "
                           "what it writes is not in the plan; the residual scan after apply "
                           "covers it")
    return out


__all__ = ["Checks", "trigger_warnings"]
