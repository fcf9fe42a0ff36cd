"""The executor: runs a :class:`~reconciler.planner.Plan` on one connection, set-based.

1. Reflect the snapshot once; check the map against it (:mod:`reconciler.checks`: schema
   drift, strategies against column constraints, partitions included, ON DELETE CASCADE into
   kept rows). Problems raise before any write.
2. Apply the map's ``on_reference`` choices to the deletes, order the operations, and free
   the rows of a delete that rows of a later delete still reference (a foreign key pointing
   back along a link: an ``unlink`` first, :mod:`reconciler.references`).
3. Stage (:mod:`reconciler.staging`): ledger identifiers found in identifier columns, subject
   keys, shared rows of ``referenced_by`` links.
4. Refuse rows that would be orphaned: a row the run keeps that references a row it deletes
   (where the map says ``refuse``) or a column it anonymizes, enforced foreign key or not;
   and rows a later delete removes that reference a row deleted before them through a key
   that nothing can free (a NOT NULL column).
5. Run each operation as ONE statement (``DELETE``/``UPDATE ... WHERE EXISTS (link chain)``,
   built by :mod:`reconciler.statements`), after one grouped counting query that attributes
   rows to ledger entries.

``dry_run`` runs steps 1-4 and the counting queries only. The caller owns the transaction.
A batched apply (:mod:`reconciler.batches`) runs the same steps from the pieces here
(:func:`prepare`, :func:`stage_and_check`, :func:`count`), one transaction per batch.

Left out on purpose: no ledger access, no clock, no printing; no engine creation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from erasure_ledger import KNOWN_TYPES
from reconciler.chains import chain_delete, unlinked_changes
from reconciler.checks import Checks, trigger_warnings
from reconciler.datamap import DataMap
from reconciler.ops import AnonymizeRows, DeleteRows, Op
from reconciler.planner import Plan
from reconciler.references import (
    BackReferences,
    Expanded,
    back_references,
    expand,
    sort_ops,
    table_order,
    table_path,
)
from reconciler.schema import reflect
from reconciler.staging import Staging
from reconciler.statements import Context, Statements

logger = logging.getLogger(__name__)

#: actions that only report (rows kept as they are), never change a row
KEPT_ACTIONS = frozenset({"keep-shared"})
#: actions that are a step of another operation, not a change of their own: no result, so no
#: count in the report (``unlink``: a reference set to NULL in rows deleted right after)
STEP_ACTIONS = frozenset({"unlink"})


@dataclass(frozen=True)
class OpResult:
    """What one operation changed (or, in a dry run, would change).

    ``action`` is ``delete``, ``anonymize``, ``retain``, ``opt-out``, ``nullify`` (another
    row's reference to a deleted row set to NULL), ``keep-referenced`` (anonymized instead of
    deleted: a kept row references it) or ``keep-shared`` (left as is: rows outside the
    request reference it too; nothing changed).
    """

    table: str
    action: str
    group: str
    path: str
    rows: int
    by_source: tuple[tuple[str, int], ...]  # ("12", n) for ledger seq 12, ("retention:x", n)


@dataclass(frozen=True)
class Batches:
    """How a batched apply ran (``apply --batch-rows``; see :mod:`reconciler.batches`)."""

    run_ids: tuple[str, ...]  # journal rows (rc_journal): two when a grown ledger was replayed
    batch_rows: int
    batches: int  # statements committed, each in its own transaction, over every attempt
    resumes: int  # how often an interrupted run was taken up again

    @property
    def resumed(self) -> bool:
        """True when the apply finished a run an earlier, interrupted command started."""
        return self.resumes > 0


@dataclass(frozen=True)
class Execution:
    dry_run: bool
    results: tuple[OpResult, ...]
    drift: tuple[str, ...]
    schema_fingerprint: str
    subjects: tuple[tuple[str, int], ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # triggers, shared rows kept
    batches: Batches | None = None  # None: one transaction

    @property
    def rows_changed(self) -> int:
        """Rows changed by all operations (to be changed, in a dry run)."""
        return sum(r.rows for r in self.results if r.action not in KEPT_ACTIONS)


@dataclass
class Prepared:
    """A run after the checks that need no staging: what :func:`execute` and a batched apply
    (:mod:`reconciler.batches`) share."""

    ctx: Context
    st: Statements
    checks: Checks
    expanded: Expanded
    back: BackReferences
    ops: list[Op]
    staging: Staging

    def drift(self) -> tuple[str, ...]:
        """Returns: schema drift notes, sorted."""
        return tuple(sorted({*self.checks.drift, *self.expanded.drift}))


def prepare(conn: Connection, plan: Plan, data_map: DataMap, *, hash_key: bytes,
            default_region: str = "NL", batched: bool = False) -> Prepared:
    """Reflect, check the map against the schema and order the operations (steps 1-2).

    ``batched``: for a batched apply, whose batches commit one by one (a deferrable key then
    cannot wait for the commit).

    Raises:
        DataMapError: the map does not fit the snapshot (nothing was changed).

    Returns:
        The prepared run; nothing is staged yet.
    """
    ctx = Context.open(conn, data_map, reflect(conn))
    settings(ctx)
    st = Statements(ctx)
    checks = Checks(ctx, st)
    checks.schema()
    expanded = expand([op for op in plan.ops if op.table in ctx.usable], data_map, ctx.schema)
    back = back_references(sort_ops(expanded.ops, table_order(data_map, ctx.usable)),
                           data_map, ctx.schema, per_row=ctx.dialect.checks_keys_per_row,
                           batched=batched)
    ops = list(back.ops)
    ctx.ops = tuple(ops)
    for key in back.deferred:  # checked at commit, when the rows holding it are gone too
        conn.execute(st.defer(key))
    checks.cascades(ops)
    checks.stored_values(ops)
    staging = Staging(ctx, st, plan, hash_key=hash_key, region=default_region)
    return Prepared(ctx=ctx, st=st, checks=checks, expanded=expanded, back=back, ops=ops,
                    staging=staging)


def settings(ctx: Context) -> None:
    """Run the dialect's settings local to the current transaction."""
    for setting in ctx.dialect.transaction_settings():
        ctx.conn.execute(sa.text(setting))


def stage_and_check(prep: Prepared) -> None:
    """Stage (step 3), then refuse rows that would be orphaned (step 4).

    Raises:
        DataMapError: a kept row references a row or column the run changes.
    """
    prep.staging.stage(op.group for op in prep.ops)
    prep.checks.refusals(prep.expanded.refusals)
    prep.checks.back_references(prep.back.blocked)
    prep.checks.referenced_columns(prep.ops)


def kept_shared(prep: Prepared) -> list[OpResult]:
    """Returns: a ``keep-shared`` result per table and group with shared rows left as is."""
    return [OpResult(table, "keep-shared", group, f"{table_path(prep.ctx.map, table)}.link",
                     rows, ordered(by_source))
            for table, group, rows, by_source in prep.staging.shared_counts(prep.ops)]


def shared_warning(result: OpResult) -> str:
    """Returns: the warning line of a ``keep-shared`` result."""
    return (f"{result.path}: {result.rows} row(s) of {result.table!r} kept: rows outside this "
            f"request reference them too ({result.group})")


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
        Per-operation counts, drift notes, warnings and the schema fingerprint.
    """
    prep = prepare(conn, plan, data_map, hash_key=hash_key, default_region=default_region)
    ctx, st, staging, ops = prep.ctx, prep.st, prep.staging, prep.ops
    stage_and_check(prep)
    subject_counts = ordered(staging.subject_counts())
    results = kept_shared(prep)
    warnings = [shared_warning(r) for r in results]
    changes: list[tuple[str, str]] = []
    fired = 0  # statements so far that fired a trigger
    staged_at: dict[str, int] = {}  # table -> ``fired`` when it was last staged
    before: dict[DeleteRows, Counted] = {}  # counted before a cascade took rows of theirs
    for op in ops:
        if progress is not None:
            progress(label(op))
        if fired > staged_at.get(op.table, 0) and matched_directly(data_map, op):
            # a trigger fired by an earlier statement may have copied identifiers here
            staging.stage_matches(data_map.table(op.table), again=True)
            staged_at[op.table] = fired
        try:
            if not dry_run:
                for later in cascaded_by(prep.back, op):
                    if later not in before:
                        before[later] = counted(ctx, st, later)
            early = before.get(op) if isinstance(op, DeleteRows) else None
            result = _run(ctx, st, staging, op, dry_run, early=early)
        except sa.exc.SQLAlchemyError as exc:
            exc.add_note(f"reconciler step: {label(op)}")
            raise
        logger.debug("%s %s (%s): %d row(s)", op.action, op.table, op.group, result.rows)
        if op.action not in STEP_ACTIONS:
            results.append(result)
        if result.rows:
            new = [change_of(op), *unlinked_changes(ctx, op)]
            changes += new
            fired += bool(not dry_run and trigger_warnings(ctx.schema, new))
    warnings += trigger_warnings(ctx.schema, changes)
    warnings += identifier_type_warnings(data_map, plan)
    return Execution(dry_run=dry_run, results=tuple(results), drift=prep.drift(),
                     schema_fingerprint=ctx.schema.fingerprint, subjects=subject_counts,
                     warnings=tuple(dict.fromkeys(warnings)))


def label(op: Op) -> str:
    """Returns: ``<action> <table>``, how progress and errors name an operation."""
    return f"{op.action} {op.table}"


def change_of(op: Op) -> tuple[str, str]:
    """Returns: ``(table, DELETE|UPDATE)``, the trigger event ``op`` causes."""
    return (op.table, "DELETE" if isinstance(op, DeleteRows) else "UPDATE")


def count(ctx: Context, st: Statements, op: Op, *, dry_run: bool = False
          ) -> tuple[tuple[str, int], ...]:
    """Returns: ``op``'s rows per source (ledger seq or ``retention:<rule>``), ordered."""
    rows = ctx.conn.execute(st.count(op, dry_run=dry_run))
    return ordered(tuple((str(s), int(n)) for s, n in rows))


@dataclass(frozen=True)
class Counted:
    """An operation's counts, taken early: per source, and its rows."""

    by_source: tuple[tuple[str, int], ...]
    rows: int


def cascaded_by(back: BackReferences, op: Op) -> list[DeleteRows]:
    """Returns: the later deletes whose rows ``op``'s delete may take with it through an ``ON
    DELETE CASCADE`` key (:func:`reconciler.references.back_references`), in order."""
    return list(dict.fromkeys(b.later for b in back.cascaded if b.first == op))


def counted(ctx: Context, st: Statements, op: Op) -> Counted:
    """Count ``op`` now, as a plan would (rows an earlier delete of its table removes left
    out): the rows a cascade deletes before ``op`` runs are still there to count.

    Returns:
        The counts.
    """
    return Counted(count(ctx, st, op, dry_run=True), remaining(ctx, st, op))


def remaining(ctx: Context, st: Statements, op: Op) -> int:
    """Returns: the rows ``op`` would change now (its statement in a dry run)."""
    statement = st.statement(op, dry_run=True)
    return 0 if statement is None else int(ctx.conn.execute(statement).scalar_one())


def identifier_type_warnings(data_map: DataMap, plan: Plan) -> list[str]:
    """A warning per identifier type that one side names and the other never uses.

    A custom type of the map that no ledger entry uses matches nobody, and a type of the
    ledger that no column of the map matches finds nobody by it: often one of the two is
    misspelt (``loyalty_card`` and ``loyaltycard``, or an ``emial`` key in a bulk import).

    Returns:
        One line per such type: the map's unused custom types in map order, then the
        ledger's unmatched types by name.
    """
    entries: dict[str, set[int]] = {}
    for wanted in plan.wanted:
        entries.setdefault(wanted.id_type, set()).add(wanted.seq)
    matched = dict.fromkeys(id_type for table in data_map.all_tables()
                            for id_type, _ in table.match)
    warnings = [f"identifier type {id_type!r} is used by no ledger entry"
                for id_type in matched if id_type not in KNOWN_TYPES and id_type not in entries]
    warnings += [f"identifier type {id_type!r} of {len(seqs)} ledger entr"
                 f"{'y' if len(seqs) == 1 else 'ies'} is matched by no column of the map: "
                 "nobody is found by it"
                 for id_type, seqs in sorted(entries.items()) if id_type not in matched]
    return warnings


def _run(ctx: Context, st: Statements, staging: Staging, op: Op, dry_run: bool, *,
         early: Counted | None = None) -> OpResult:
    if isinstance(op, AnonymizeRows):
        staging.stage_hashes(op)
    rows = 0
    if early is None:
        by_source = count(ctx, st, op, dry_run=dry_run)
    else:
        # rows of the set an earlier delete's ON DELETE CASCADE took went all the same
        by_source = early.by_source
        rows = early.rows - remaining(ctx, st, op)
    statement = st.statement(op, dry_run=dry_run)
    if statement is None:
        pass
    elif dry_run:
        rows = int(ctx.conn.execute(statement).scalar_one())
    elif (chain := chain_delete(st, op)) is not None:  # rows that reference each other
        rows += chain.run(ctx.conn)
    else:
        rows += int(ctx.conn.execute(statement).rowcount)
    return OpResult(table=op.table, action=op.action, group=op.group, path=op.path, rows=rows,
                    by_source=by_source)


def matched_directly(data_map: DataMap, op: Op) -> bool:
    table = next((t for t in data_map.tables if t.name == op.table), None)
    return table is not None and table.link is None


def ordered(counts: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    merged: dict[str, int] = {}
    for source, count in counts:
        merged[source] = merged.get(source, 0) + count
    # ledger entries by sequence number, then retention rules by name (plain tuples sort in C)
    entries = sorted([(int(s), s, n) for s, n in merged.items() if s.isdigit()])
    rules = sorted([(s, n) for s, n in merged.items() if not s.isdigit()])
    return tuple([(s, n) for _, s, n in entries] + rules)


__all__ = ["KEPT_ACTIONS", "STEP_ACTIONS", "Batches", "Counted", "Execution", "OpResult",
           "Prepared", "cascaded_by", "change_of", "count", "counted", "execute", "kept_shared",
           "label", "matched_directly", "ordered", "prepare", "remaining", "settings",
           "shared_warning", "stage_and_check", "identifier_type_warnings"]
