"""The executor: runs a :class:`~reconciler.planner.Plan` on one connection, set-based.

1. Reflect the snapshot once; check the map against it (schema drift, strategies against
   column constraints, ON DELETE CASCADE into kept rows). Problems raise before any write.
2. Stage: read the distinct values of every identifier column (subject and ``match``
   tables), normalise them in Python with ``erasure_ledger.normalize`` and keep the exact
   spellings whose normal form is a ledger identifier, in the temporary table ``rc_tmp_match``.
   Subject keys are resolved from it with one ``INSERT ... SELECT`` join per subject (plus one
   per retention rule) into ``rc_tmp_subject``.
3. Refuse rows that would be orphaned: a row outside the map that references a row this run
   deletes (enforced foreign key or not).
4. Run each operation as ONE statement (``DELETE``/``UPDATE ... WHERE EXISTS (link chain)``),
   after one grouped counting query that attributes rows to ledger entries.

``dry_run`` runs steps 1-3 and the counting queries only. The caller owns the transaction.

Left out on purpose: no ledger access, no clock, no printing; no engine creation.
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers; every value is a bound parameter
from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from erasure_ledger import InvalidIdentifierError, normalize
from reconciler.datamap import DataMap, TableMap
from reconciler.dialects import dialect_for
from reconciler.errors import DataMapError
from reconciler.ops import AnonymizeRows, DateFilter, DeleteRows, Op, SetColumns
from reconciler.planner import Plan, link_depth
from reconciler.schema import SnapshotSchema, TableSchema, reflect
from reconciler.strategies import (
    Assignment,
    SetFakeFromKey,
    SetHash,
    SetValue,
    SetYear,
    hash_value,
    is_hashed,
)

logger = logging.getLogger(__name__)

MATCH, SUBJECT, HASHES = "rc_tmp_match", "rc_tmp_subject", "rc_tmp_hash"


@dataclass(frozen=True)
class OpResult:
    """What one operation changed (or, in a dry run, would change)."""

    table: str
    action: str
    group: str
    path: str
    rows: int
    by_source: tuple[tuple[str, int], ...]  # ("12", n) for ledger seq 12, ("retention:x", n)


@dataclass(frozen=True)
class Execution:
    dry_run: bool
    results: tuple[OpResult, ...]
    drift: tuple[str, ...]
    schema_fingerprint: str
    subjects: tuple[tuple[str, int], ...] = field(default=())

    @property
    def rows_changed(self) -> int:
        """Rows changed by all operations (to be changed, in a dry run)."""
        return sum(result.rows for result in self.results)


class _Sql:
    """SQL text plus its bound parameters."""

    def __init__(self) -> None:
        self.params: list[sa.BindParameter[Any]] = []

    def bind(self, value: object, type_: sa.types.TypeEngine[Any] | None = None) -> str:
        name = f"p{len(self.params)}"
        self.params.append(sa.bindparam(name, value, type_=type_))
        return f":{name}"

    def text(self, sql: str) -> sa.TextClause:
        # A counting query reuses the WHERE part of a statement and drops its SET clauses.
        used = set(re.findall(r":(p[0-9]+)\b", sql))
        return sa.text(sql).bindparams(*(p for p in self.params if p.key in used))


def execute(conn: Connection, plan: Plan, data_map: DataMap, *, dry_run: bool,
            hash_key: bytes, default_region: str = "NL",
            progress: Callable[[str], None] | None = None) -> Execution:
    """Check, stage and run (or count) the plan on ``conn``.

    Args:
        conn: a connection inside a transaction the caller commits or rolls back.
        plan: from :func:`reconciler.planner.make_plan`.
        data_map: the map the plan was made from.
        dry_run: count only; change nothing but temporary tables.
        hash_key: key of the ``hash`` strategy.
        default_region: region for phone numbers written without a country code.
        progress: called with a short label before each operation.

    Raises:
        DataMapError: the map does not fit the snapshot (nothing was changed).
        sqlalchemy.exc.SQLAlchemyError: a statement failed; the caller rolls back.

    Returns:
        Per-operation counts, drift notes and the schema fingerprint.
    """
    return _Run(conn, plan, data_map, hash_key, default_region).run(dry_run, progress)


class _Run:
    def __init__(self, conn: Connection, plan: Plan, data_map: DataMap, hash_key: bytes,
                 default_region: str) -> None:
        self.conn = conn
        self.plan = plan
        self.map = data_map
        self.hash_key = hash_key
        self.region = default_region
        self.dialect = dialect_for(conn.dialect.name)
        self.quote = conn.dialect.identifier_preparer.quote
        self.schema: SnapshotSchema = reflect(conn)
        self.drift: list[str] = []
        self.usable: dict[str, TableSchema] = {}
        self.assignments: dict[tuple[str, str], Assignment] = {}
        self.keys: dict[str, tuple[str, ...]] = {}
        self.aliases = 0
        self.order: dict[str, int] | None = None

    # -- 1. checks -------------------------------------------------------------------------------

    def check(self) -> None:
        subject = self.map.subject
        snap = self.schema.tables.get(subject.name)
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
            self.check_table(table)

    def note(self, path: str, what: str) -> None:
        self.drift.append(f"{path}: {what} not in this snapshot")

    def check_table(self, table: TableMap) -> None:
        path = "subject" if table is self.map.subject else f"tables.{table.name}"
        snap = self.schema.tables.get(table.name)
        if snap is None:
            self.note(path, f"table {table.name!r}")
            return
        if table.link is not None:
            parent = self.usable.get(table.link.parent)
            if parent is None:
                self.note(f"{path}.link.parent", f"parent table {table.link.parent!r}")
                return
            missing = [c for c, p in table.link.on
                       if c not in snap.columns or p not in parent.columns]
            if missing:
                self.note(f"{path}.link.on", f"column {missing[0]!r}")
                return
        present = [(t, c) for t, c in table.match if c in snap.columns]
        for _, column in table.match:
            if column not in snap.columns:
                self.note(f"{path}.match" if table.link is None and table is not self.map.subject
                          else f"{path}.identifiers", f"column {column!r}")
        if table.match and not present:
            return
        if table.retain is not None and table.retain.after not in snap.columns:
            raise DataMapError(f"{self.map.where(f'{path}.retain.after')}: column "
                               f"{table.retain.after!r} is not in this snapshot")
        self.keys[table.name] = table.key or snap.primary_key
        for column, strategy in table.columns:
            info = snap.columns.get(column)
            if info is None:
                self.note(f"{path}.columns.{column}", f"column {column!r}")
                continue
            try:
                assignment = strategy.assignment(info)
            except ValueError as exc:
                raise DataMapError(f"{self.map.where(f'{path}.columns.{column}')}: {exc} "
                                   "in this snapshot") from None
            if isinstance(assignment, SetFakeFromKey) and not self.keys[table.name]:
                raise DataMapError(f"{self.map.where(f'{path}.columns.{column}')}: distinct "
                                   "fake values need a primary key (add key: to the table)")
            self.assignments[(table.name, column)] = assignment
        self.usable[table.name] = snap

    def check_cascades(self, ops: Sequence[Op]) -> None:
        deleted = {op.table for op in ops if isinstance(op, DeleteRows)}
        kept = {t.name for t in self.map.all_tables() if t.action != "delete"}
        for fk in (fk for t in self.usable.values() for fk in t.foreign_keys):
            if fk.referred_table in deleted and fk.table in kept and fk.ondelete == "CASCADE":
                path = "subject" if fk.table == self.map.subject.name else f"tables.{fk.table}"
                raise DataMapError(
                    f"{self.map.where(path)}: foreign key {fk.table}({', '.join(fk.columns)}) "
                    f"-> {fk.referred_table} ON DELETE CASCADE would delete kept rows when "
                    f"{fk.referred_table!r} rows are deleted; refusing")

    # -- 2. staging ------------------------------------------------------------------------------

    def temp(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        self.conn.execute(sa.text(self.dialect.drop_temp_table(name)))
        self.conn.execute(sa.text(self.dialect.create_temp_table(name, columns)))

    def stage(self) -> None:
        text = "TEXT"
        self.temp(MATCH, [("grp", "VARCHAR(100)"), ("src", "VARCHAR(100)"),
                          ("tbl", "VARCHAR(128)"), ("col", "VARCHAR(128)"), ("raw", text)])
        self.temp(HASHES, [("tbl", "VARCHAR(128)"), ("col", "VARCHAR(128)"), ("old", text),
                           ("new", text)])
        subject = self.map.subject
        snap = self.usable[subject.name]
        key_types = [(f"k{i}", self.compile_type(snap, col)) for i, col in enumerate(subject.key)]
        self.temp(SUBJECT, [("grp", "VARCHAR(100)"), ("src", "VARCHAR(100)"), *key_types])
        wanted: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for item in self.plan.wanted:
            wanted.setdefault((item.id_type, item.value), []).append((item.group, item.seq))
        rows: list[dict[str, object]] = []
        for table in self.map.all_tables():
            if table.name not in self.usable:
                continue
            for id_type, column in table.match:
                if column in self.usable[table.name].columns:
                    rows.extend(self.match_column(table.name, id_type, column, wanted))
        if rows:
            self.conn.execute(sa.text(f"INSERT INTO {MATCH} (grp, src, tbl, col, raw) "
                                      "VALUES (:grp, :src, :tbl, :col, :raw)"), rows)
        keys = ", ".join(f"s.{self.quote(c)}" for c in subject.key)
        knames = ", ".join(f"k{i}" for i in range(len(subject.key)))
        sql = _Sql()
        on = self.match_condition(subject, "s", "m", sql)
        if on:
            self.conn.execute(sql.text(
                f"INSERT INTO {SUBJECT} (grp, src, {knames}) SELECT DISTINCT m.grp, m.src, "
                f"{keys} FROM {self.quote(subject.name)} s JOIN {MATCH} m ON {on}"))
        for cut in self.plan.retention:
            sql = _Sql()
            info = snap.columns[cut.column]
            cutoff = sql.bind(*_date_param(cut.cutoff, info.kind))
            src = sql.bind(f"retention:{cut.name}")
            self.conn.execute(sql.text(
                f"INSERT INTO {SUBJECT} (grp, src, {knames}) SELECT DISTINCT 'erase', {src}, "
                f"{keys} FROM {self.quote(subject.name)} s "
                f"WHERE s.{self.quote(cut.column)} < {cutoff}"))

    def compile_type(self, snap: TableSchema, column: str) -> str:
        try:
            return str(snap.types[column].compile(dialect=self.conn.dialect))
        except sa.exc.CompileError:
            return "TEXT"

    def match_column(self, table: str, id_type: str, column: str,
                     wanted: dict[tuple[str, str], list[tuple[str, int]]]
                     ) -> Iterable[dict[str, object]]:
        types = {t for t, _ in wanted}
        if id_type not in types:
            return []
        sql = (f"SELECT {self.dialect.distinct_values(self.quote(column))} FROM "
               f"{self.quote(table)} WHERE {self.quote(column)} IS NOT NULL")
        out: list[dict[str, object]] = []
        for (raw,) in self.conn.execute(sa.text(sql)):
            value = self.dialect.decode_value(raw)
            if value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            try:
                normal = normalize(id_type, text, default_region=self.region)
            except InvalidIdentifierError:
                continue  # not a valid identifier of this type, so no ledger identifier
            for group, seq in wanted.get((id_type, normal), ()):
                out.append({"grp": group, "src": str(seq), "tbl": table, "col": column,
                            "raw": text})
        return out

    # -- SQL building ----------------------------------------------------------------------------

    def alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases}"

    def col(self, row: str, table: str, column: str) -> str:
        expr = f"{row}.{self.quote(column)}"
        if self.usable[table].columns[column].kind != "string":
            return self.dialect.cast_text(expr)
        return expr

    def match_condition(self, table: TableMap, row: str, m: str, sql: _Sql) -> str:
        parts = [f"({m}.col = {sql.bind(column)} AND "
                 f"{self.dialect.exact_eq(self.col(row, table.name, column), f'{m}.raw')})"
                 for _, column in table.match if column in self.usable[table.name].columns]
        if not parts:
            return ""
        return f"{m}.tbl = {sql.bind(table.name)} AND ({' OR '.join(parts)})"

    def exists(self, table: TableMap, row: str, group: str, sql: _Sql) -> str:
        """SQL: the row ``row`` of ``table`` belongs to a person of ``group``."""
        if table is self.map.subject:
            keys = " AND ".join(self.dialect.exact_eq(f"{row}.{self.quote(c)}", f"r.k{i}")
                                for i, c in enumerate(table.key))
            return (f"EXISTS (SELECT 1 FROM {SUBJECT} r WHERE r.grp = {sql.bind(group)} "
                    f"AND {keys})")
        if table.link is None:
            return (f"EXISTS (SELECT 1 FROM {MATCH} m WHERE m.grp = {sql.bind(group)} AND "
                    f"{self.match_condition(table, row, 'm', sql)})")
        parent = self.map.table(table.link.parent)
        alias = self.alias()
        on = " AND ".join(f"{alias}.{self.quote(p)} = {row}.{self.quote(c)}"
                          for c, p in table.link.on)
        return (f"EXISTS (SELECT 1 FROM {self.quote(parent.name)} {alias} WHERE {on} AND "
                f"{self.exists(parent, alias, group, sql)})")

    def joins(self, table: TableMap, row: str, group: str, sql: _Sql) -> tuple[str, str]:
        """SQL: JOIN clauses from ``row`` up to the staging table, and the source column."""
        if table is self.map.subject:
            keys = " AND ".join(self.dialect.exact_eq(f"{row}.{self.quote(c)}", f"r.k{i}")
                                for i, c in enumerate(table.key))
            return f" JOIN {SUBJECT} r ON r.grp = {sql.bind(group)} AND {keys}", "r.src"
        if table.link is None:
            cond = self.match_condition(table, row, "m", sql)
            return f" JOIN {MATCH} m ON m.grp = {sql.bind(group)} AND {cond}", "m.src"
        parent = self.map.table(table.link.parent)
        alias = self.alias()
        on = " AND ".join(f"{alias}.{self.quote(p)} = {row}.{self.quote(c)}"
                          for c, p in table.link.on)
        rest, src = self.joins(parent, alias, group, sql)
        return f" JOIN {self.quote(parent.name)} {alias} ON {on}{rest}", src

    def date_filter(self, table: str, row: str, flt: DateFilter | None, sql: _Sql) -> str:
        if flt is None:
            return "1 = 1"
        column = f"{row}.{self.quote(flt.column)}"
        cutoff = sql.bind(*_date_param(flt.cutoff, self.usable[table].columns[flt.column].kind))
        if flt.expired:
            return f"{column} < {cutoff}"
        return f"({column} IS NULL OR {column} >= {cutoff})"

    def new_value(self, table: str, row: str, column: str, assignment: Assignment,
                  sql: _Sql) -> str:
        expr = f"{row}.{self.quote(column)}"
        if isinstance(assignment, SetValue):
            return sql.bind(assignment.value, self.usable[table].types[column])
        if isinstance(assignment, SetYear):
            return self.dialect.year_trunc(expr, datetime=assignment.datetime)
        if isinstance(assignment, SetFakeFromKey):
            keys = [self.dialect.cast_text(f"{row}.{self.quote(k)}") for k in self.keys[table]]
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
                sql: _Sql) -> str:
        expr = f"{row}.{self.quote(column)}"
        if isinstance(assignment, SetValue) and assignment.value is None:
            return f"{expr} IS NOT NULL"
        if isinstance(assignment, SetHash):
            eq = self.dialect.exact_eq(expr, "h.old")
            return (f"EXISTS (SELECT 1 FROM {HASHES} h WHERE h.tbl = {sql.bind(table)} AND "
                    f"h.col = {sql.bind(column)} AND {eq})")
        new = self.new_value(table, row, column, assignment, sql)
        return f"({expr} IS NOT NULL AND {expr} <> {new})"

    # -- 3 + 4. operations -----------------------------------------------------------------------

    def op_parts(self, op: Op, row: str, sql: _Sql) -> tuple[str, list[str]]:
        """The WHERE condition (without the person link) and the SET clauses of ``op``."""
        table = op.table
        if isinstance(op, DeleteRows):
            return self.date_filter(table, row, op.date_filter, sql), []
        if isinstance(op, SetColumns):
            sets, changed = [], []
            for column, value in op.values:
                if column not in self.usable[table].columns:
                    continue
                expr = f"{row}.{self.quote(column)}"
                bound = sql.bind(value, self.usable[table].types[column])
                sets.append(f"{self.quote(column)} = {bound}")
                changed.append(f"{expr} IS NOT NULL" if value is None
                               else f"({expr} IS NULL OR {expr} <> {bound})")
            return f"({' OR '.join(changed) or '1 = 0'})", sets
        sets, changed = [], []
        for column, _ in op.columns:
            assignment = self.assignments.get((table, column))
            if assignment is None:
                continue
            new = self.new_value(table, row, column, assignment, sql)
            expr = f"{row}.{self.quote(column)}"
            keep_null = not (isinstance(assignment, SetValue) and assignment.value is None)
            sets.append(f"{self.quote(column)} = CASE WHEN {expr} IS NULL THEN NULL ELSE {new} END"
                        if keep_null else f"{self.quote(column)} = NULL")
            changed.append(self.changed(table, row, column, assignment, sql))
        flt = self.date_filter(table, row, op.date_filter, sql)
        return f"{flt} AND ({' OR '.join(changed) or '1 = 0'})", sets

    def stage_hashes(self, op: AnonymizeRows) -> None:
        table = self.map.table(op.table)
        rows: list[dict[str, object]] = []
        for column, _ in op.columns:
            assignment = self.assignments.get((op.table, column))
            if not isinstance(assignment, SetHash):
                continue
            sql = _Sql()
            target = self.quote(op.table)
            person = self.exists(table, target, op.group, sql)
            flt = self.date_filter(op.table, target, op.date_filter, sql)
            expr = f"{target}.{self.quote(column)}"
            query = (f"SELECT {self.dialect.distinct_values(expr)} FROM {target} "
                     f"WHERE {expr} IS NOT NULL AND {person} AND {flt}")
            for (raw,) in self.conn.execute(sql.text(query)):
                value = self.dialect.decode_value(raw)
                if isinstance(value, str) and not is_hashed(value):
                    rows.append({"tbl": op.table, "col": column, "old": value,
                                 "new": hash_value(self.hash_key, value, assignment.length)})
        if rows:
            self.conn.execute(sa.text(f"INSERT INTO {HASHES} (tbl, col, old, new) "
                                      "VALUES (:tbl, :col, :old, :new)"), rows)

    def count(self, op: Op) -> tuple[tuple[str, int], ...]:
        table = self.map.table(op.table)
        sql = _Sql()
        joins, src = self.joins(table, "t0", op.group, sql)
        where, _ = self.op_parts(op, "t0", sql)
        query = (f"SELECT {src}, COUNT(*) FROM {self.quote(op.table)} t0{joins} "
                 f"WHERE {where} GROUP BY {src}")
        counts = {str(s): int(n) for s, n in self.conn.execute(sql.text(query))}
        return tuple(sorted(counts.items(), key=lambda item: _source_order(item[0])))

    def run_op(self, op: Op, dry_run: bool) -> int:
        table = self.map.table(op.table)
        target = self.quote(op.table)
        sql = _Sql()
        person = self.exists(table, target, op.group, sql)
        where, sets = self.op_parts(op, target, sql)
        if dry_run:
            query = f"SELECT COUNT(*) FROM {target} WHERE {person} AND {where}"
            return int(self.conn.execute(sql.text(query)).scalar_one())
        if isinstance(op, DeleteRows):
            statement = f"DELETE FROM {target} WHERE {person} AND {where}"
        else:
            if not sets:
                return 0
            statement = f"UPDATE {target} SET {', '.join(sets)} WHERE {person} AND {where}"
        return int(self.conn.execute(sql.text(statement)).rowcount)

    def check_orphans(self, ops: Sequence[Op]) -> None:
        deletes = [op for op in ops if isinstance(op, DeleteRows)]
        for op in deletes:
            for fk in self.schema.referencing(op.table):
                if fk.table not in self.schema.tables:
                    continue
                own = [o for o in deletes if o.table == fk.table]
                blocked = self.count_blocked(op, fk.table, fk.columns, fk.referred_columns, own)
                if blocked:
                    raise DataMapError(
                        f"{self.map.where(op.path)}: {blocked} row(s) of {fk.table!r} "
                        f"reference {op.table!r} rows this run deletes "
                        f"({fk.table}({', '.join(fk.columns)}) -> {op.table}); map "
                        f"{fk.table!r} (link it to {op.table!r}) or anonymize {op.table!r} "
                        "instead; nothing was changed")

    def count_blocked(self, op: DeleteRows, child: str, columns: Sequence[str],
                      referred: Sequence[str], own: Sequence[DeleteRows]) -> int:
        sql = _Sql()
        parent = self.map.table(op.table)
        alias = self.alias()
        on = " AND ".join(f"{alias}.{self.quote(p)} = c.{self.quote(c)}"
                          for c, p in zip(columns, referred, strict=True))
        flt = self.date_filter(op.table, alias, op.date_filter, sql)
        query = (f"SELECT COUNT(*) FROM {self.quote(child)} c WHERE EXISTS (SELECT 1 FROM "
                 f"{self.quote(op.table)} {alias} WHERE {on} AND {flt} AND "
                 f"{self.exists(parent, alias, op.group, sql)})")
        if child in self.usable and child in {t.name for t in self.map.all_tables()}:
            child_map = self.map.table(child)
            # rows the run deletes itself (also through this same statement) are no orphans
            for other in own:
                cond = self.exists(child_map, "c", other.group, sql)
                flt_c = self.date_filter(child, "c", other.date_filter, sql)
                query += f" AND NOT ({cond} AND {flt_c})"
        return int(self.conn.execute(sql.text(query)).scalar_one())

    def run(self, dry_run: bool, progress: Callable[[str], None] | None) -> Execution:
        self.check()
        ops = [op for op in self.plan.ops if op.table in self.usable]
        ops.sort(key=self.rank)
        self.check_cascades(ops)
        self.stage()
        self.check_orphans(ops)
        subjects = self.conn.execute(sa.text(f"SELECT src, COUNT(*) FROM {SUBJECT} GROUP BY src"))
        subject_counts = tuple(sorted(((str(s), int(n)) for s, n in subjects),
                                      key=lambda item: _source_order(item[0])))
        results: list[OpResult] = []
        for op in ops:
            if progress is not None:
                progress(f"{op.action} {op.table}")
            if isinstance(op, AnonymizeRows):
                self.stage_hashes(op)
            try:
                by_source = self.count(op)
                rows = self.run_op(op, dry_run)
            except sa.exc.SQLAlchemyError as exc:
                exc.add_note(f"reconciler step: {op.action} {op.table}")
                raise
            logger.debug("%s %s (%s): %d row(s)", op.action, op.table, op.group, rows)
            results.append(OpResult(table=op.table, action=op.action, group=op.group,
                                    path=op.path, rows=rows, by_source=by_source))
        return Execution(dry_run=dry_run, results=tuple(results), drift=tuple(sorted(self.drift)),
                         schema_fingerprint=self.schema.fingerprint, subjects=subject_counts)

    def rank(self, op: Op) -> int:
        """Children first: a table referenced (by link or foreign key) by another comes later."""
        if self.order is None:
            self.order = self.table_order()
        return self.order.get(op.table, 0)

    def table_order(self) -> dict[str, int]:
        mapped = list(self.usable)
        edges: dict[str, set[str]] = {name: set() for name in mapped}  # child -> parents
        for name in mapped:
            table = self.map.table(name)
            if table.link is not None:
                edges[name].add(table.link.parent)
            for fk in self.usable[name].foreign_keys:
                if fk.referred_table in edges and fk.referred_table != name:
                    edges[name].add(fk.referred_table)
        order: dict[str, int] = {}
        visiting: set[str] = set()

        def depth(name: str) -> int:
            # depth = longest chain of tables referencing ``name``; children get lower ranks
            if name in order:
                return order[name]
            if name in visiting:
                return 0
            visiting.add(name)
            children = [c for c, parents in edges.items() if name in parents]
            order[name] = 1 + max((depth(c) for c in children), default=0)
            visiting.discard(name)
            return order[name]

        for name in mapped:
            depth(name)
        return order


def _date_param(day: dt.date, kind: str) -> tuple[object, sa.types.TypeEngine[Any]]:
    if kind == "datetime":
        return dt.datetime(day.year, day.month, day.day), sa.DateTime()
    return day, sa.Date()


def _source_order(src: str) -> tuple[int, str]:
    return (0, f"{int(src):012d}") if src.isdigit() else (1, src)


__all__ = ["Execution", "OpResult", "execute"]
