"""The executor: runs a :class:`~reconciler.planner.Plan` on one connection, set-based.

1. Reflect the snapshot once; check the map against it (:mod:`reconciler.checks`: schema
   drift, strategies against column constraints, partitions included, ON DELETE CASCADE into
   kept rows). Problems raise before any write.
2. Apply the map's ``on_reference`` choices to the deletes (:mod:`reconciler.references`).
3. Stage (:mod:`reconciler.staging`): ledger identifiers found in identifier columns, subject
   keys, shared rows of ``referenced_by`` links.
4. Refuse rows that would be orphaned: a row the run keeps that references a row it deletes
   (where the map says ``refuse``) or a column it anonymizes, enforced foreign key or not.
5. Run each operation as ONE statement (``DELETE``/``UPDATE ... WHERE EXISTS (link chain)``,
   built by :mod:`reconciler.statements`), after one grouped counting query that attributes
   rows to ledger entries.

``dry_run`` runs steps 1-4 and the counting queries only. The caller owns the transaction.

Left out on purpose: no ledger access, no clock, no printing; no engine creation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from erasure_ledger import KNOWN_TYPES
from reconciler.checks import Checks, trigger_warnings
from reconciler.datamap import DataMap
from reconciler.ops import AnonymizeRows, DeleteRows, Op
from reconciler.planner import Plan
from reconciler.references import expand, sort_ops, table_order, table_path
from reconciler.schema import reflect
from reconciler.staging import Staging
from reconciler.statements import Context, Statements

logger = logging.getLogger(__name__)

#: actions that only report (rows kept as they are), never change a row
KEPT_ACTIONS = frozenset({"keep-shared"})


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
class Execution:
    dry_run: bool
    results: tuple[OpResult, ...]
    drift: tuple[str, ...]
    schema_fingerprint: str
    subjects: tuple[tuple[str, int], ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # triggers, shared rows kept

    @property
    def rows_changed(self) -> int:
        """Rows changed by all operations (to be changed, in a dry run)."""
        return sum(r.rows for r in self.results if r.action not in KEPT_ACTIONS)


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
    ctx = Context.open(conn, data_map, reflect(conn))
    for setting in ctx.dialect.transaction_settings():
        conn.execute(sa.text(setting))
    st = Statements(ctx)
    checks = Checks(ctx, st)
    checks.schema()
    expanded = expand([op for op in plan.ops if op.table in ctx.usable], data_map, ctx.schema)
    ops = sort_ops(expanded.ops, table_order(data_map, ctx.usable))
    ctx.ops = tuple(ops)
    checks.cascades(ops)
    staging = Staging(ctx, st, plan, hash_key=hash_key, region=default_region)
    staging.stage(op.group for op in ops)
    checks.refusals(expanded.refusals)
    checks.referenced_columns(ops)
    subject_counts = _ordered(staging.subject_counts())
    results: list[OpResult] = []
    warnings: list[str] = []
    for table, group, rows, by_source in staging.shared_counts(ops):
        path = f"{table_path(data_map, table)}.link"
        results.append(OpResult(table, "keep-shared", group, path, rows, _ordered(by_source)))
        warnings.append(f"{path}: {rows} row(s) of {table!r} kept: rows outside this "
                        f"request reference them too ({group})")
    changes: list[tuple[str, str]] = []
    fired = 0  # statements so far that fired a trigger
    staged_at: dict[str, int] = {}  # table -> ``fired`` when it was last staged
    for op in ops:
        if progress is not None:
            progress(f"{op.action} {op.table}")
        if fired > staged_at.get(op.table, 0) and _matched_directly(data_map, op):
            # a trigger fired by an earlier statement may have copied identifiers here
            staging.stage_matches(data_map.table(op.table), again=True)
            staged_at[op.table] = fired
        try:
            result = _run(ctx, st, staging, op, dry_run)
        except sa.exc.SQLAlchemyError as exc:
            exc.add_note(f"reconciler step: {op.action} {op.table}")
            raise
        logger.debug("%s %s (%s): %d row(s)", op.action, op.table, op.group, result.rows)
        results.append(result)
        if result.rows:
            change = (op.table, "DELETE" if isinstance(op, DeleteRows) else "UPDATE")
            changes.append(change)
            fired += bool(not dry_run and trigger_warnings(ctx.schema, [change]))
    warnings += trigger_warnings(ctx.schema, changes)
    warnings += unused_custom_types(data_map, plan)
    drift = sorted({*checks.drift, *expanded.drift})
    return Execution(dry_run=dry_run, results=tuple(results), drift=tuple(drift),
                     schema_fingerprint=ctx.schema.fingerprint, subjects=subject_counts,
                     warnings=tuple(dict.fromkeys(warnings)))


def unused_custom_types(data_map: DataMap, plan: Plan) -> list[str]:
    """A warning per custom identifier type of the map that no ledger entry uses.

    Such a map matches nobody: often the type is misspelt (the ledger says ``loyalty_card``,
    the map ``loyaltycard``).

    Returns:
        One line per unused custom type, in map order.
    """
    used = {wanted.id_type for wanted in plan.wanted}
    custom = dict.fromkeys(id_type for table in data_map.all_tables()
                           for id_type, _ in table.match if id_type not in KNOWN_TYPES)
    return [f"identifier type {id_type!r} is used by no ledger entry"
            for id_type in custom if id_type not in used]


def _run(ctx: Context, st: Statements, staging: Staging, op: Op, dry_run: bool) -> OpResult:
    if isinstance(op, AnonymizeRows):
        staging.stage_hashes(op)
    by_source = _ordered(tuple((str(s), int(n)) for s, n in ctx.conn.execute(st.count(op, dry_run=dry_run))))
    statement = st.statement(op, dry_run=dry_run)
    if statement is None:
        rows = 0
    elif dry_run:
        rows = int(ctx.conn.execute(statement).scalar_one())
    else:
        rows = int(ctx.conn.execute(statement).rowcount)
    return OpResult(table=op.table, action=op.action, group=op.group, path=op.path, rows=rows,
                    by_source=by_source)


def _matched_directly(data_map: DataMap, op: Op) -> bool:
    table = next((t for t in data_map.tables if t.name == op.table), None)
    return table is not None and table.link is None


def _ordered(counts: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    merged: dict[str, int] = {}
    for source, count in counts:
        merged[source] = merged.get(source, 0) + count
    return tuple(sorted(merged.items(), key=lambda item: _source_order(item[0])))


def _source_order(src: str) -> tuple[int, str]:
    return (0, f"{int(src):012d}") if src.isdigit() else (1, src)


__all__ = ["KEPT_ACTIONS", "Execution", "OpResult", "execute", "unused_custom_types"]
