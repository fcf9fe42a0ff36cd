"""Batched apply (``reconciler apply --batch-rows N``), for tables too large for one transaction.

1. **Setup**, one transaction: the checks and the staging of a one-transaction apply
   (:mod:`reconciler.executor`), staged into regular tables (``rc_tmp_*``), then the run's
   journal row (:mod:`reconciler.journal`). Nothing else is committed before the first batch.
   On MariaDB, DDL commits by itself: staging tables without a journal row are leftovers of
   a setup that never finished, and are dropped before the next setup (and when the setup
   fails), so a refused run leaves nothing behind.
2. **Operations**, in the one-transaction order (children before parents, so no foreign key
   breaks between batches). In the transaction of an operation's first batch: staging that
   depends on earlier operations (``hash`` pairs, identifiers a trigger copied) and the
   counting query that attributes its rows to ledger entries, stored in the journal. Then
   batches: one statement for at most N rows (:meth:`Statements.batch`), committed with the
   journal's update, until a batch changes fewer than N rows.
3. **End**: the staging tables are dropped and the run is marked finished. A finished journal
   row stays as an audit record; it holds no personal data.

**Resume.** The staging is computed from values the apply deletes or anonymizes (a shared
address is found through the customer row that references it), so a resumed run reuses the
journaled run's staging, never stages again, and skips what the journal says is done. The
journal and the snapshot change in the same transactions, so a resumed run converges to the
end state (and the counts) of a one-transaction apply.

Left out on purpose: no ledger reading, no residual scan, no object storage (refused by
:func:`reconciler.replay.replay`); no printing.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from erasure_ledger import Ledger, OpenedEntry
from reconciler import journal
from reconciler.chains import ChainDelete, chain_delete, unlinked_changes
from reconciler.checks import trigger_warnings
from reconciler.datamap import DataMap
from reconciler.dialects import dialect_for, quoter
from reconciler.errors import SnapshotError
from reconciler.executor import (
    KEPT_ACTIONS,
    STEP_ACTIONS,
    Batches,
    Execution,
    OpResult,
    Prepared,
    cascaded_by,
    change_of,
    count,
    counted,
    identifier_type_warnings,
    kept_shared,
    label,
    matched_directly,
    ordered,
    prepare,
    remaining,
    settings,
    shared_warning,
    stage_and_check,
)
from reconciler.journal import OpState, Run
from reconciler.ops import AnonymizeRows, Op
from reconciler.planner import Plan, make_plan
from reconciler.references import table_path

if TYPE_CHECKING:
    from reconciler.replay import LedgerState

logger = logging.getLogger(__name__)

STAGING_PREFIX = "rc_tmp_"


def apply_in_batches(conn: Connection, data_map: DataMap, ledger: Ledger, head: LedgerState,
                     entries: Sequence[OpenedEntry], *, as_of: dt.date, hash_key: bytes,
                     region: str, batch_rows: int, discard: bool, shown: str,
                     progress: Callable[[str], None] | None = None) -> Execution:
    """Apply the ledger in batches of at most ``batch_rows`` rows, resuming a journaled run.

    An unfinished run in the journal is finished first (with the map and as-of date it was
    started with, and the ledger entries it started with). If the ledger has grown since,
    a new run then replays the whole ledger; the returned execution covers both.

    Args:
        conn: a connection outside any transaction; every batch commits on its own.
        data_map: the validated data map.
        ledger: the opened ledger (to prove it extends an unfinished run's checkpoint).
        head: the checkpoint ``entries`` were verified against.
        entries: every ledger entry.
        as_of: retention periods are measured to this date.
        hash_key: key of the ``hash`` strategy.
        region: region for phone numbers written without a country code.
        batch_rows: at most this many rows per statement and transaction.
        discard: abandon an unfinished run (drop its staging) and start a new one.
        shown: the snapshot's name for messages (redacted).
        progress: called with a short label before each operation.

    Raises:
        SnapshotError: an unfinished run was started with another data map or as-of date, or
            planned other operations (the schema changed); or a statement failed (what was
            committed is journaled: the same command resumes).
        DataMapError: the map does not fit the snapshot (nothing was changed).
        erasure_ledger.IntegrityError: the ledger does not extend the checkpoint an
            unfinished run replayed.

    Returns:
        What the run (or runs) changed, with how it was batched.
    """
    _connection_settings(conn)
    with conn.begin():
        run = journal.pending(conn)
    if run is not None and discard:
        _abandon(conn, run)
        logger.debug("abandoned batched run %s", run.run_id)
        run = None
    done: list[Execution] = []
    if run is not None:
        if run.map_sha256 != data_map.sha256 or run.as_of != as_of:
            raise SnapshotError(
                f"snapshot {shown}: an unfinished batched apply (run {run.run_id}) used data "
                f"map sha256 {run.map_sha256[:16]}... and --as-of {run.as_of.isoformat()}; "
                "finish it with that map and --as-of, or start over with --discard-journal")
        if run.extra.get("hash_key", hash_key_fingerprint(hash_key)) != hash_key_fingerprint(
                hash_key):
            # values hashed before the interruption would not join those hashed after it
            raise SnapshotError(
                f"snapshot {shown}: an unfinished batched apply (run {run.run_id}) hashed values "
                "with another key (another keyring?); finish it with the keyring it started "
                "with, or start over with --discard-journal")
        if (run.tree_size, run.root_hash) != (head.tree_size, head.root_hash):
            # its staging holds the entries it started with; they must still be this ledger's
            ledger.verify(trusted_checkpoint=run.checkpoint)
        older = [e for e in entries if e.meta.seq < run.tree_size]
        runner = _Runner(conn, make_plan(older, data_map, as_of=as_of), data_map,
                         hash_key=hash_key, region=region, batch_rows=batch_rows, shown=shown,
                         progress=progress)
        done.append(runner.resume(run))
        if run.tree_size >= head.tree_size:
            return done[0]
        logger.debug("ledger grew from %d to %d entries: replaying it again",
                     run.tree_size, head.tree_size)
    runner = _Runner(conn, make_plan(entries, data_map, as_of=as_of), data_map,
                     hash_key=hash_key, region=region, batch_rows=batch_rows, shown=shown,
                     progress=progress)
    done.append(runner.start(head))
    return merged(done)


def hash_key_fingerprint(hash_key: bytes) -> str:
    """Which ``hash`` key a run used, without the key (an HMAC of a fixed label)."""
    return hmac.new(hash_key, b"reconciler journal: hash key", hashlib.sha256).hexdigest()[:32]


def run_batch(conn: Connection, statement: sa.TextClause | ChainDelete) -> int:
    """Run one batch statement (or the rounds of a delete of rows that reference each other).

    Returns:
        The rows it changed.
    """
    if isinstance(statement, ChainDelete):
        return statement.run(conn)
    return int(conn.execute(statement).rowcount)


class _Runner:
    """One journaled run: setup or resume, then every operation in batches, then the end."""

    def __init__(self, conn: Connection, plan: Plan, data_map: DataMap, *, hash_key: bytes,
                 region: str, batch_rows: int, shown: str,
                 progress: Callable[[str], None] | None) -> None:
        self.conn = conn
        self.plan = plan
        self.map = data_map
        self.hash_key = hash_key
        self.region = region
        self.batch_rows = batch_rows
        self.shown = shown
        self.progress = progress

    def _prepare(self) -> Prepared:
        prep = prepare(self.conn, self.plan, self.map, hash_key=self.hash_key,
                       default_region=self.region, batched=True)
        prep.staging.persist = True
        return prep

    def start(self, head: LedgerState) -> Execution:
        """Set up a new run (staging and journal row, committed), then run it.

        Returns:
            What it changed.
        """
        _drop_staging(self.conn)  # of a setup that died before its journal row (MariaDB)
        step = "setup"
        try:
            with self.conn.begin():
                prep = self._prepare()
                fingerprint = prep.ctx.schema.fingerprint  # before staging tables exist
                stage_and_check(prep)
                shared = kept_shared(prep)
                run = Run(run_id=secrets.token_hex(8), tree_size=head.tree_size,
                          root_hash=head.root_hash, checkpoint=head.checkpoint,
                          map_sha256=self.map.sha256, as_of=self.plan.as_of,
                          batch_rows=self.batch_rows, ops=[OpState(_key(op)) for op in prep.ops],
                          fingerprint=fingerprint,
                          subjects=ordered(prep.staging.subject_counts()),
                          shared=tuple((r.table, r.group, r.rows, r.by_source) for r in shared),
                          drift=prep.drift(),
                          extra={"hash_key": hash_key_fingerprint(self.hash_key)})
                step = "journal"
                journal.insert(self.conn, run)
        except BaseException as exc:
            # MariaDB committed the staging DDL whatever happened: nothing may stay behind
            _drop_staging(self.conn, quiet=True)
            if isinstance(exc, sa.exc.SQLAlchemyError):
                logger.debug("setup failed", exc_info=True)
                raise SnapshotError(f"snapshot {self.shown}: a statement failed (batched apply "
                                    f"{step}): {type(exc).__name__}; nothing was changed"
                                    ) from None
            raise
        logger.debug("batched run %s: staged, %d operation(s)", run.run_id, len(run.ops))
        return self._run(prep, run)

    def resume(self, run: Run) -> Execution:
        """Take up ``run`` with its own staging.

        Raises:
            SnapshotError: this snapshot now gives other operations than the run planned.

        Returns:
            What the run changed, its earlier attempts included.
        """
        with self.conn.begin():
            prep = self._prepare()
            if [_key(op) for op in prep.ops] != [op.label for op in run.ops]:
                raise SnapshotError(
                    f"snapshot {self.shown}: the unfinished batched apply (run {run.run_id}) "
                    "planned other operations than this snapshot's schema gives now; start "
                    "over with --discard-journal")
            prep.staging.attach()
            run.batch_rows = self.batch_rows
            run.resumes += 1
            journal.save(self.conn, run)
        logger.debug("batched run %s: resumed", run.run_id)
        return self._run(prep, run)

    def _run(self, prep: Prepared, run: Run) -> Execution:
        schema = prep.ctx.schema
        results = [OpResult(t, "keep-shared", g, f"{table_path(self.map, t)}.link", n, by)
                   for t, g, n, by in run.shared]
        warnings = [shared_warning(r) for r in results]
        changes: list[tuple[str, str]] = []
        # references set to NULL before a delete by an earlier attempt (see reconciler.chains)
        prep.ctx.unlinked.update(run.extra.get("unlinked", ()))
        step = "finish"
        try:
            for op, state in zip(prep.ops, run.ops, strict=True):
                if self.progress is not None:
                    self.progress(label(op))
                if state.status != "done":
                    step = label(op)
                    fired = any(trigger_warnings(schema, [c]) for c in changes)
                    self._op(prep, op, state, run, restage=fired)
                if op.action not in STEP_ACTIONS:
                    results.append(OpResult(op.table, op.action, op.group, op.path, state.rows,
                                            state.by_source))
                if state.rows:
                    changes += [change_of(op), *unlinked_changes(prep.ctx, op)]
            step = "drop staging"
            self._finish(run)
        except sa.exc.SQLAlchemyError as exc:
            # The driver's message can quote row values: only the error class is named.
            logger.debug("batch failed", exc_info=True)
            raise SnapshotError(
                f"snapshot {self.shown}: a statement failed ({step}): {type(exc).__name__}; "
                f"{run.batches} batch(es) committed and journaled (run {run.run_id}); run "
                "the same apply again to resume") from None
        warnings += trigger_warnings(schema, changes)
        warnings += identifier_type_warnings(self.map, self.plan)
        return Execution(dry_run=False, results=tuple(results), drift=run.drift,
                         schema_fingerprint=run.fingerprint, subjects=run.subjects,
                         warnings=tuple(dict.fromkeys(warnings)),
                         batches=Batches(run_ids=(run.run_id,), batch_rows=self.batch_rows,
                                         batches=run.batches, resumes=run.resumes))

    def _op(self, prep: Prepared, op: Op, state: OpState, run: Run, *, restage: bool) -> None:
        while state.status != "done":
            # a batch may also count a later operation (see _batch)
            before = [(s.status, s.by_source, s.rows, s.batches) for s in run.ops]
            extra = copy.deepcopy(run.extra)
            try:
                self._batch(prep, op, state, run, restage=restage)
            except BaseException:
                # rolled back: the state is what the journal holds
                for saved, values in zip(run.ops, before, strict=True):
                    saved.status, saved.by_source, saved.rows, saved.batches = values
                run.extra = extra
                raise
            logger.debug("%s (%s): %d row(s) in %d batch(es)", label(op), op.group,
                         state.rows, state.batches)

    def _batch(self, prep: Prepared, op: Op, state: OpState, run: Run, *,
               restage: bool) -> None:
        ctx, st, staging = prep.ctx, prep.st, prep.staging
        with self.conn.begin():
            settings(ctx)
            if state.status == "pending":
                # once per operation, atomically with its first batch: staged twice, the
                # hash pairs would repeat and the counts cover less than the whole apply
                if restage and matched_directly(self.map, op):
                    staging.stage_matches(self.map.table(op.table), again=True)
                if isinstance(op, AnonymizeRows):
                    staging.stage_hashes(op)
                state.by_source = count(ctx, st, op)
                state.status = "counted"
                self._count_cascaded(prep, op, run)
            if (early := run.extra.get(_CASCADED, {}).pop(_key(op), None)) is not None:
                # the rows of its set an earlier delete's ON DELETE CASCADE took
                state.rows += int(early) - remaining(ctx, st, op)
            # every row a batch changes was counted at least once, so the counts bound
            # the rows; a statement that went on changing rows would never end
            bound = sum(n for _, n in state.by_source)
            # rows that reference each other go in one batch, in rounds where keys are checked
            # row by row (reconciler.chains)
            statement = (chain_delete(st, op) or st.batch(op, self.batch_rows)) if bound else None
            if statement is None:
                state.status = "done"
            else:
                rows = run_batch(self.conn, statement)
                state.rows += rows
                state.batches += 1
                if ctx.unlinked:  # journaled, so a resumed run still warns of the UPDATE
                    run.extra["unlinked"] = sorted(ctx.unlinked)
                if state.rows > bound:
                    raise SnapshotError(
                        f"snapshot {self.shown}: {label(op)} changed more rows than it "
                        f"counted ({state.rows} > {bound}); batch rolled back, run "
                        f"{run.run_id} stays journaled")
                if rows < self.batch_rows:
                    state.status = "done"
            journal.save(self.conn, run)

    def _count_cascaded(self, prep: Prepared, op: Op, run: Run) -> None:
        """Count the later deletes whose rows ``op``'s delete may take with it through an ON
        DELETE CASCADE key, before it does (:func:`reconciler.executor.counted`): their
        counts then are what a one-transaction apply reports. Journaled with ``op``'s first
        batch."""
        states = {s.label: s for s in run.ops}
        for later in cascaded_by(prep.back, op):
            state = states[_key(later)]
            if state.status == "pending":
                early = counted(prep.ctx, prep.st, later)
                state.by_source, state.status = early.by_source, "counted"
                run.extra.setdefault(_CASCADED, {})[_key(later)] = early.rows

    def _finish(self, run: Run) -> None:
        # Staging first, then the status: a run whose staging is gone but is still marked
        # running only drops nothing and is marked finished when taken up again.
        with self.conn.begin():
            _drop_tables(self.conn)
            run.status = journal.FINISHED
            journal.save(self.conn, run)


def merged(executions: Sequence[Execution]) -> Execution:
    """One execution for a journaled run and the run that replayed a grown ledger after it.

    Rows changed add up per operation; rows kept as shared and subjects are the larger count
    (the second run sees the same shared rows and retention subjects again).

    Returns:
        The execution.
    """
    first = executions[0]
    if len(executions) == 1:
        return first
    rows: dict[tuple[str, str, str, str], int] = {}
    sources: dict[tuple[str, str, str, str], dict[str, int]] = {}
    subjects: dict[str, int] = {}
    for execution in executions:
        for r in execution.results:
            key = (r.table, r.action, r.group, r.path)
            keep = r.action in KEPT_ACTIONS
            rows[key] = max(rows.get(key, 0), r.rows) if keep else rows.get(key, 0) + r.rows
            into = sources.setdefault(key, {})
            for src, n in r.by_source:
                into[src] = max(into.get(src, 0), n) if keep else into.get(src, 0) + n
        for src, n in execution.subjects:
            subjects[src] = max(subjects.get(src, 0), n)
    batches = [e.batches for e in executions if e.batches is not None]
    return Execution(
        dry_run=False,
        results=tuple(OpResult(*key, rows[key], ordered(tuple(sources[key].items())))
                      for key in rows),
        drift=tuple(sorted({d for e in executions for d in e.drift})),
        schema_fingerprint=first.schema_fingerprint, subjects=ordered(tuple(subjects.items())),
        warnings=tuple(dict.fromkeys(w for e in executions for w in e.warnings)),
        batches=Batches(run_ids=tuple(i for b in batches for i in b.run_ids),
                        batch_rows=batches[-1].batch_rows,
                        batches=sum(b.batches for b in batches),
                        resumes=sum(b.resumes for b in batches)))


#: journal key (``state``): rows of later deletes counted before a cascade could take them
_CASCADED = "cascaded"


def _key(op: Op) -> str:
    return f"{label(op)} ({op.group}) {op.path}"


def _connection_settings(conn: Connection) -> None:
    statements = dialect_for(conn.dialect.name).connection_settings()
    if statements:
        with conn.begin():
            for statement in statements:
                conn.execute(sa.text(statement))


def _abandon(conn: Connection, run: Run) -> None:
    with conn.begin():
        _drop_tables(conn)
        run.status = journal.ABANDONED
        journal.save(conn, run)


def _drop_staging(conn: Connection, *, quiet: bool = False) -> None:
    try:
        with conn.begin():
            _drop_tables(conn)
    except sa.exc.SQLAlchemyError:
        if not quiet:
            raise
        # the connection may be what failed; the next setup drops them
        logger.debug("staging tables not dropped", exc_info=True)


def _drop_tables(conn: Connection) -> None:
    dialect = dialect_for(conn.dialect.name)
    quote = quoter(conn.dialect, "text")
    for name in sa.inspect(conn).get_table_names():
        if name.startswith(STAGING_PREFIX):
            conn.execute(sa.text(dialect.drop_temp_table(quote(name), persistent=True)))


__all__ = ["STAGING_PREFIX", "apply_in_batches", "merged", "run_batch"]
