"""The batched apply's journal: one row per run in the snapshot's table ``rc_journal``.

A run's row names what it replays (the ledger's tree size, root hash and signed checkpoint,
the data map's SHA-256, the as-of date, the batch size) and holds, as JSON in ``state``, each
operation's progress: ``pending``, ``counted`` (its counting query ran and its counts per
ledger entry are stored) and ``done``, with the rows and batches committed so far. Every batch
updates the row in its own transaction, so the journal and the snapshot never disagree.

``status`` is ``running`` until the run's staging is dropped, then ``finished`` (or
``abandoned`` after ``--discard-journal``). A finished row stays as an audit record: it holds
no personal data (sequence numbers, retention rule names, tables and counts only).

Left out on purpose: no statements of the run itself (:mod:`reconciler.batches`), no staging.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from reconciler.errors import SnapshotError
from reconciler.schema import OWN_TABLES

JOURNAL_TABLE = "rc_journal"
JOURNAL_FORMAT = 1
RUNNING, FINISHED, ABANDONED = "running", "finished", "abandoned"
assert JOURNAL_TABLE in OWN_TABLES

Counts = tuple[tuple[str, int], ...]


def journal_table(metadata: sa.MetaData | None = None) -> sa.Table:
    """The journal's definition (one row per batched run).

    Returns:
        The table.
    """
    return sa.Table(
        JOURNAL_TABLE, metadata or sa.MetaData(),
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("format", sa.Integer, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),  # hex
        sa.Column("checkpoint", sa.Text, nullable=False),  # the signed note, verbatim
        sa.Column("map_sha256", sa.String(64), nullable=False),
        sa.Column("as_of", sa.String(10), nullable=False),  # ISO date
        sa.Column("batch_rows", sa.Integer, nullable=False),
        # MariaDB's TEXT ends at 64 KiB; counts per entry of every operation can be more
        sa.Column("state", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"),
                  nullable=False),
    )


@dataclass
class OpState:
    """One operation of a run: how far it got and what it counted before its first batch."""

    label: str  # "delete orders (erase)": checked against the operations on resume
    status: str = "pending"  # pending -> counted -> done
    by_source: Counts = ()
    rows: int = 0
    batches: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Returns: the JSON-ready form."""
        return {"label": self.label, "status": self.status, "rows": self.rows,
                "batches": self.batches, "by_source": [list(c) for c in self.by_source]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpState:
        """Returns: the state read back."""
        return cls(label=str(data["label"]), status=str(data["status"]), rows=int(data["rows"]),
                   batches=int(data["batches"]), by_source=_counts(data["by_source"]))


@dataclass
class Run:
    """A batched run, as its journal row says."""

    run_id: str
    tree_size: int
    root_hash: str
    checkpoint: str
    map_sha256: str
    as_of: dt.date
    batch_rows: int
    ops: list[OpState]
    fingerprint: str  # of the schema before staging (staging tables change reflection)
    subjects: Counts = ()
    shared: tuple[tuple[str, str, int, Counts], ...] = ()  # keep-shared: table, group, rows
    drift: tuple[str, ...] = ()
    resumes: int = 0
    status: str = RUNNING
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept on save

    @property
    def batches(self) -> int:
        """Statements committed so far, over every operation."""
        return sum(op.batches for op in self.ops)

    def state_json(self) -> str:
        """Returns: the ``state`` column's JSON."""
        return json.dumps({
            **self.extra,
            "fingerprint": self.fingerprint, "resumes": self.resumes,
            "ops": [op.to_dict() for op in self.ops],
            "subjects": [list(c) for c in self.subjects],
            "shared": [[t, g, n, [list(c) for c in by]] for t, g, n, by in self.shared],
            "drift": list(self.drift),
        }, sort_keys=True)

    def values(self) -> dict[str, Any]:
        """Returns: the journal row's column values."""
        return {"run_id": self.run_id, "format": JOURNAL_FORMAT, "status": self.status,
                "tree_size": self.tree_size, "root_hash": self.root_hash,
                "checkpoint": self.checkpoint, "map_sha256": self.map_sha256,
                "as_of": self.as_of.isoformat(), "batch_rows": self.batch_rows,
                "state": self.state_json()}


def exists(conn: Connection) -> bool:
    """Returns: True when the snapshot has a journal table."""
    return sa.inspect(conn).has_table(JOURNAL_TABLE)


def pending(conn: Connection) -> Run | None:
    """The run that was started and not finished, if any (at most one is ever running).

    Raises:
        SnapshotError: the journal row cannot be read (an unknown format, damaged JSON).

    Returns:
        The run, or None.
    """
    if not exists(conn):
        return None
    table = journal_table()
    row = conn.execute(sa.select(table).where(table.c.status == RUNNING)
                       .order_by(table.c.run_id)).first()
    if row is None:
        return None
    if row.format != JOURNAL_FORMAT:
        raise SnapshotError(f"journal {JOURNAL_TABLE}: run {row.run_id} has format "
                            f"{row.format}, this reconciler reads {JOURNAL_FORMAT}")
    try:
        state = json.loads(row.state)
        return Run(
            run_id=row.run_id, tree_size=int(row.tree_size), root_hash=row.root_hash,
            checkpoint=row.checkpoint, map_sha256=row.map_sha256,
            as_of=dt.date.fromisoformat(row.as_of), batch_rows=int(row.batch_rows),
            ops=[OpState.from_dict(op) for op in state.pop("ops")],
            fingerprint=str(state.pop("fingerprint")), resumes=int(state.pop("resumes")),
            subjects=_counts(state.pop("subjects")),
            shared=tuple((str(t), str(g), int(n), _counts(by))
                         for t, g, n, by in state.pop("shared")),
            drift=tuple(str(d) for d in state.pop("drift")), status=row.status, extra=state)
    except (ValueError, KeyError, TypeError):
        raise SnapshotError(f"journal {JOURNAL_TABLE}: run {row.run_id} cannot be read "
                            "(damaged state)") from None


def insert(conn: Connection, run: Run) -> None:
    """Create the journal table if needed and add ``run``'s row."""
    table = journal_table()
    table.create(conn, checkfirst=True)
    conn.execute(table.insert().values(**run.values()))


def save(conn: Connection, run: Run) -> None:
    """Write ``run``'s state and status (in the caller's transaction)."""
    table = journal_table()
    values = run.values()
    del values["run_id"]
    conn.execute(table.update().where(table.c.run_id == run.run_id).values(**values))


def _counts(data: Any) -> Counts:
    return tuple((str(source), int(n)) for source, n in data)


__all__ = ["ABANDONED", "FINISHED", "JOURNAL_FORMAT", "JOURNAL_TABLE", "RUNNING", "OpState",
           "Run", "exists", "insert", "journal_table", "pending", "save"]
