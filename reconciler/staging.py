"""Staging: who the ledger's people are in this snapshot, read once into temporary tables.

- ``rc_tmp_match``: for every identifier column (the subject's ``identifiers`` and every
  ``match`` column) the distinct values are read once, normalised in Python with
  ``erasure_ledger.normalize`` and the exact spellings whose normal form is a ledger
  identifier are kept, with the entry's sequence number.
- ``rc_tmp_subject``: subject keys, resolved from it with one ``INSERT ... SELECT`` join (plus
  one per retention rule).
- ``rc_tmp_shared<n>``: per table with a ``referenced_by`` link (a row the person's rows point
  at, such as an address), the referenced values of each group, flagged ``shared`` when a row
  outside the group (a shop, another customer, an unmapped table) references the row too.
  Staged before any change, because the person's own rows may lose the reference later.
- ``rc_tmp_hash``: ``old -> HMAC`` pairs of the ``hash`` strategy, per operation.

Left out on purpose: no checks and no changes to the snapshot's own tables.
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers; every value is a bound parameter
from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from erasure_ledger import InvalidIdentifierError, normalize
from reconciler.bulk import insert_rows
from reconciler.columns import text_pages
from reconciler.datamap import TableMap
from reconciler.dialects import quoter
from reconciler.ops import AnonymizeRows, Op
from reconciler.planner import Plan, link_depth
from reconciler.prefilter import ValueFilter
from reconciler.schema import TableSchema
from reconciler.statements import HASHES, MATCH, SUBJECT, Context, Sql, Statements, date_param
from reconciler.strategies import SetHash, hash_value, is_hashed

Wanted = dict[tuple[str, str], list[tuple[str, int]]]


class Staging:
    def __init__(self, ctx: Context, st: Statements, plan: Plan, *, hash_key: bytes,
                 region: str) -> None:
        self.ctx = ctx
        self.st = st
        self.plan = plan
        self.hash_key = hash_key
        self.region = region
        self.q = ctx.quote
        # text_pages() runs its SELECT on the driver's cursor, not through text()
        self.cursor_q = quoter(ctx.conn.dialect, "cursor")
        self.wanted: Wanted = {}
        by_type: dict[str, set[str]] = {}
        for item in plan.wanted:
            self.wanted.setdefault((item.id_type, item.value), []).append((item.group, item.seq))
            by_type.setdefault(item.id_type, set()).add(item.value)
        # most values of a snapshot belong to nobody in the ledger: a cheap key says which
        # ones are worth normalising (reconciler.prefilter)
        self.pretest = ValueFilter(by_type)

    #: regular tables instead of temporary ones: a batched apply (reconciler.batches) commits
    #: its staging before the first change and reuses it when it resumes, because the changes
    #: remove the values it was computed from
    persist: bool = False

    def temp(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        dialect = self.ctx.dialect
        self.ctx.conn.execute(sa.text(dialect.drop_temp_table(name, persistent=self.persist)))
        self.ctx.conn.execute(sa.text(dialect.create_temp_table(name, columns,
                                                                persistent=self.persist)))

    def names(self) -> list[str]:
        """Returns: every staging table of this run (the shared ones from the map)."""
        return [MATCH, HASHES, SUBJECT, *self.shared_names().values()]

    def attach(self) -> None:
        """Use staging tables filled by an earlier connection (a resumed batched apply)."""
        self.ctx.shared.update(self.shared_names())

    def shared_names(self) -> dict[str, str]:
        """Returns: table with a ``referenced_by`` link -> its staging table, in the order
        they are staged (parents first)."""
        data_map = self.ctx.map
        shared = [t for t in data_map.tables
                  if t.name in self.ctx.usable and t.link is not None and t.link.reverse]
        ordered = sorted(shared, key=lambda t: link_depth(data_map, t))
        return {table.name: f"rc_tmp_shared{index}" for index, table in enumerate(ordered)}

    def compile_type(self, snap: TableSchema, column: str) -> str:
        """The staging column type for values of ``snap``'s ``column``: the column's own."""
        try:
            return str(snap.types[column].compile(dialect=self.ctx.conn.dialect))
        except sa.exc.CompileError:  # no DDL for the type (SQLite: declared without one)
            return self.ctx.dialect.untyped_column()

    # -- identifiers and subjects ----------------------------------------------------------------

    def stage(self, groups: Iterable[str]) -> None:
        """Create and fill the staging tables (see the module docstring)."""
        text = "TEXT"
        self.temp(MATCH, [("grp", "VARCHAR(100)"), ("src", "VARCHAR(100)"),
                          ("tbl", "VARCHAR(128)"), ("col", "VARCHAR(128)"), ("raw", text)])
        self.temp(HASHES, [("tbl", "VARCHAR(128)"), ("col", "VARCHAR(128)"), ("old", text),
                           ("new", text)])
        subject = self.ctx.map.subject
        snap = self.ctx.usable[subject.name]
        key_types = [(f"k{i}", self.compile_type(snap, col)) for i, col in enumerate(subject.key)]
        self.temp(SUBJECT, [("grp", "VARCHAR(100)"), ("src", "VARCHAR(100)"), *key_types])
        for table in self.ctx.map.all_tables():
            if table.name in self.ctx.usable:
                self.stage_matches(table)
        keys = ", ".join(f"s.{self.q(c)}" for c in subject.key)
        knames = ", ".join(f"k{i}" for i in range(len(subject.key)))
        self.index_staged(MATCH, ["tbl", "col", "raw"])
        sql = Sql()
        # One equi-join per identifier column, combined with UNION (which also removes the
        # duplicates of a person found by two columns): an OR of them made every database
        # compare every subject row with every staged value.
        arms = [
            f"SELECT m.grp, m.src, {keys} FROM {self.q(subject.name)} s JOIN {MATCH} m ON {on}"
            for on in self.st.match_conditions(subject, "s", "m", sql)
        ]
        if arms:
            self.ctx.conn.execute(sql.text(
                f"INSERT INTO {SUBJECT} (grp, src, {knames}) " + " UNION ".join(arms)))
        for cut in self.plan.retention:
            sql = Sql()
            info = snap.columns[cut.column]
            cutoff = sql.bind(*date_param(cut.cutoff, info.kind))
            src = sql.bind(f"retention:{cut.name}")
            self.ctx.conn.execute(sql.text(
                f"INSERT INTO {SUBJECT} (grp, src, {knames}) SELECT DISTINCT 'erase', {src}, "
                f"{keys} FROM {self.q(subject.name)} s "
                f"WHERE s.{self.q(cut.column)} < {cutoff}"))
        self.index_staged(SUBJECT, ["grp", *(f"k{i}" for i in range(len(subject.key)))])
        self.stage_shared(sorted(set(groups)))

    def index_staged(self, name: str, columns: Sequence[str]) -> None:
        """Index a filled staging table and give the planner its statistics: without them
        SQLite scans the staging table once per target row (docs/benchmarks.md)."""
        statements = self.ctx.dialect.index_temp_table(name, columns)
        for statement in statements:
            self.ctx.conn.execute(sa.text(statement))

    def subject_counts(self) -> tuple[tuple[str, int], ...]:
        """Returns: staged subjects per source (ledger seq or ``retention:<rule>``)."""
        rows = self.ctx.conn.execute(sa.text(f"SELECT src, COUNT(*) FROM {SUBJECT} GROUP BY src"))
        return tuple((str(s), int(n)) for s, n in rows)

    def stage_matches(self, table: TableMap, *, again: bool = False) -> None:
        """Stage the exact spellings of ledger identifiers in ``table``'s identifier columns.

        ``again``: replace what was staged for the table (after a trigger may have written
        to it).
        """
        if again:
            self.ctx.conn.execute(sa.text(f"DELETE FROM {MATCH} WHERE tbl = :tbl"),
                                  {"tbl": table.name})
        rows = self.match_columns(table.name, [
            (id_type, column) for id_type, column in table.match
            if column in self.ctx.usable[table.name].columns and self.pretest.holds(id_type)])
        insert_rows(self.ctx.conn, MATCH, ("grp", "src", "tbl", "col", "raw"), rows)

    def match_columns(self, table: str, columns: Sequence[tuple[str, str]]
                      ) -> list[tuple[str, str, str, str, str]]:
        """The staging rows for the ledger identifiers in these ``(type, column)`` pairs of
        ``table``, read in one pass; each exact spelling once."""
        if not columns:
            return []
        found: dict[tuple[str, str, str, str], None] = {}
        quoted = [self.cursor_q(column) for _, column in columns]
        for _, texts in text_pages(self.ctx.conn, self.ctx.dialect, self.cursor_q(table),
                                   quoted):
            for (id_type, column), page in zip(columns, texts, strict=True):
                for at in self.pretest.candidates(id_type, page):
                    text = page[at]
                    try:
                        normal = normalize(id_type, text, default_region=self.region)
                    except InvalidIdentifierError:
                        continue  # not a valid identifier of this type: no ledger identifier
                    for group, seq in self.wanted.get((id_type, normal), ()):
                        found[(group, str(seq), column, text)] = None
        return [(group, src, table, column, raw) for group, src, column, raw in found]

    # -- shared rows (referenced_by links) -------------------------------------------------------

    def stage_shared(self, groups: Sequence[str]) -> None:
        data_map = self.ctx.map
        for table_name, name in self.shared_names().items():
            table = data_map.table(table_name)
            assert table.link is not None
            snap = self.ctx.usable[table.name]
            values = [(f"v{i}", self.compile_type(snap, mine))
                      for i, (mine, _) in enumerate(table.link.on)]
            self.temp(name, [("grp", "VARCHAR(100)"), ("src", "VARCHAR(100)"),
                             ("shared", "INTEGER"), *values])
            owner = data_map.table(table.link.parent)
            names = ", ".join(v for v, _ in values)
            for group in groups:
                sql = Sql()
                joins, src = self.st.joins(owner, "o", group, sql)
                theirs = ", ".join(f"o.{self.q(c)}" for _, c in table.link.on)
                present = " AND ".join(f"o.{self.q(c)} IS NOT NULL" for _, c in table.link.on)
                self.ctx.conn.execute(sql.text(
                    f"INSERT INTO {name} (grp, src, shared, {names}) SELECT DISTINCT "
                    f"{sql.bind(group)}, {src}, 0, {theirs} FROM {self.q(owner.name)} o{joins} "
                    f"WHERE {present}"))
                self.mark_shared(table, name, group)
            self.ctx.shared[table.name] = name

    def mark_shared(self, table: TableMap, staged: str, group: str) -> None:
        """Flag staged rows that a row outside ``group`` references too."""
        assert table.link is not None
        sql = Sql()
        q = self.q
        this = self.st.staged_key(table, "t", staged)
        outside: list[str] = []
        owner = self.ctx.map.table(table.link.parent)
        on = " AND ".join(self.st.key_eq(table.name, mine, f"o.{q(theirs)}", f"{staged}.v{i}")
                          for i, (mine, theirs) in enumerate(table.link.on))
        outside.append(f"EXISTS (SELECT 1 FROM {q(owner.name)} o WHERE {on} AND NOT "
                       f"{self.st.person(owner, 'o', group, sql)})")
        for fk in self.ctx.schema.referencing(table.name):
            mapped = self.ctx.mapped(fk.table)
            inside = ""
            if mapped is not None and fk.table != table.name and self.st.resolvable(mapped):
                inside = f" AND NOT {self.st.person(mapped, 'c', group, sql)}"
            join = self.st.pairs_eq("c", fk.columns, "t", fk.referred_columns)
            outside.append(f"EXISTS (SELECT 1 FROM {q(table.name)} t JOIN {q(fk.table)} c ON "
                           f"{join} WHERE {this}{inside})")
        self.ctx.conn.execute(sql.text(
            f"UPDATE {staged} SET shared = 1 WHERE grp = {sql.bind(group)} AND "
            f"({' OR '.join(outside)})"))

    def shared_counts(self, ops: Sequence[Op]) -> list[tuple[str, str, int,
                                                              tuple[tuple[str, int], ...]]]:
        """Rows kept because they are shared, per table and group with an operation there.

        Returns:
            ``(table, group, rows, rows per source)`` tuples.
        """
        out = []
        for table_name, staged in self.ctx.shared.items():
            table = self.ctx.map.table(table_name)
            for group in sorted({op.group for op in ops if op.table == table_name}):
                sql = Sql()
                on = self.st.staged_key(table, "t", "x")
                cond = f"x.grp = {sql.bind(group)} AND x.shared = 1 AND {on}"
                rows = int(self.ctx.conn.execute(sql.text(
                    f"SELECT COUNT(*) FROM {self.q(table_name)} t WHERE EXISTS "
                    f"(SELECT 1 FROM {staged} x WHERE {cond})")).scalar_one())
                if not rows:
                    continue
                by_source = self.ctx.conn.execute(sql.text(
                    f"SELECT x.src, COUNT(*) FROM {self.q(table_name)} t JOIN {staged} x "
                    f"ON {cond} GROUP BY x.src"))
                out.append((table_name, group, rows,
                            tuple((str(s), int(n)) for s, n in by_source)))
        return out

    # -- hash strategy ---------------------------------------------------------------------------

    def stage_hashes(self, op: AnonymizeRows) -> None:
        """Stage ``old -> HMAC`` for the distinct values ``op`` hashes."""
        table = self.ctx.map.table(op.table)
        rows: list[tuple[str, str, str, str]] = []
        dialect = self.ctx.dialect
        for column, _ in op.columns:
            assignment = self.ctx.assignments.get((op.table, column))
            if not isinstance(assignment, SetHash):
                continue
            sql = Sql()
            target = self.q(op.table)
            person = self.st.person(table, target, op.group, sql)
            scope = self.st.anonymize_scope(op, target, sql)
            expr = f"{target}.{self.q(column)}"
            query = (f"SELECT {dialect.distinct_values(expr)} FROM {target} "
                     f"WHERE {expr} IS NOT NULL AND {person} AND {scope}")
            for (raw,) in self.ctx.conn.execute(sql.text(query)):
                value = dialect.decode_value(raw)
                if isinstance(value, str) and not is_hashed(value):
                    rows.append((op.table, column, value,
                                 hash_value(self.hash_key, value, assignment.length)))
        insert_rows(self.ctx.conn, HASHES, ("tbl", "col", "old", "new"), rows)


__all__ = ["Staging"]
