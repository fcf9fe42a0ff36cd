"""The backup watermark: which ledger checkpoint a database had seen when its backup was taken.

``reconciler stamp`` runs just before each backup and writes the ledger's current signed
checkpoint (tree size, root hash, the signed note and the time) as one new row of the table
``erasure_reconciler_watermark`` in the live database; the backup carries it. After a restore,
plan / apply / verify read the newest row back from the snapshot, prove with
``Ledger.verify(trusted_checkpoint=note)`` that it is a checkpoint of THIS ledger and that the
ledger extends it, and so know exactly which entries were in the ledger when the backup was
taken (``seq < tree_size``). Without a watermark, ``--snapshot-time`` dates the snapshot
instead (by time only); :class:`SnapshotDating` says which was used.

The table holds no personal data; :data:`reconciler.schema.OWN_TABLES` keeps it out of
reflection, so the residual scan, the checks and discover never see it.

Left out on purpose: no clock (``now`` is a parameter), no printing, no environment.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection

from erasure_ledger import BadSignatureError, IntegrityError, Ledger, LedgerVerifier, OpenedEntry
from reconciler.errors import SnapshotError, cannot_connect, redact_url
from reconciler.schema import OWN_TABLES

logger = logging.getLogger(__name__)

WATERMARK_TABLE = "erasure_reconciler_watermark"
WATERMARK_FORMAT = 1
assert WATERMARK_TABLE in OWN_TABLES

DatingMethod = Literal["watermark", "snapshot-time", "none"]


def watermark_table(metadata: sa.MetaData | None = None) -> sa.Table:
    """The watermark table's definition (one row per stamp; the highest ``id`` is newest).

    Returns:
        The table.
    """
    return sa.Table(
        WATERMARK_TABLE, metadata or sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("format", sa.Integer, nullable=False),
        # UTC, without a zone; microseconds kept on MariaDB too
        sa.Column("stamped_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql",
                                                            "mariadb"), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),  # hex
        sa.Column("checkpoint", sa.Text, nullable=False),  # the signed note, verbatim
    )


@dataclass(frozen=True)
class Watermark:
    """One stamp: the ledger checkpoint a database had seen at ``stamped_at``."""

    origin: str
    tree_size: int
    root_hash: str  # hex
    checkpoint: str  # the signed checkpoint note
    stamped_at: dt.datetime  # UTC

    def to_dict(self) -> dict[str, Any]:
        """Returns: the JSON-ready form."""
        return {"origin": self.origin, "tree_size": self.tree_size, "root_hash": self.root_hash,
                "stamped_at": self.stamped_at.isoformat(), "checkpoint": self.checkpoint}


@dataclass(frozen=True)
class SnapshotDating:
    """How a snapshot was dated, and which entries its backup should no longer have held.

    ``erased_at_backup`` holds the sequence numbers of erasure entries that were effective in
    production when the backup was taken (with a watermark: also already in the ledger, i.e.
    ``seq < tree_size``). Data found for one of them means the production erasure was
    incomplete.
    """

    method: DatingMethod
    taken_at: dt.datetime | None = None
    watermark: Watermark | None = None
    ignored_snapshot_time: dt.datetime | None = None  # --snapshot-time, when a watermark won
    erased_at_backup: frozenset[int] = field(default=frozenset())

    @staticmethod
    def erased_before(seq: int, kind: str, effective: dt.datetime | None, *,
                      taken_at: dt.datetime | None, tree_size: int | None) -> bool:
        """The rule: an erasure already effective (and, with a watermark, in the ledger)
        when the backup was taken.

        Returns:
            True when the backup should not have held the entry's data.
        """
        if kind != "erasure" or effective is None or taken_at is None:
            return False
        if tree_size is not None and seq >= tree_size:
            return False
        return effective <= taken_at

    def to_dict(self) -> dict[str, Any]:
        """Returns: the JSON-ready form (the report's ``snapshot.dated_by``)."""
        out: dict[str, Any] = {"method": self.method,
                               "taken_at": self.taken_at.isoformat() if self.taken_at else None}
        if self.watermark is not None:
            out["watermark"] = {**self.watermark.to_dict(), "signature_verified": True,
                                "ledger_extends_it": True}
        if self.ignored_snapshot_time is not None:
            out["snapshot_time_ignored"] = self.ignored_snapshot_time.isoformat()
        return out

    def describe(self) -> str:
        """Returns: one line for people."""
        if self.watermark is not None:
            text = (f"watermark (ledger tree size {self.watermark.tree_size}, stamped "
                    f"{self.watermark.stamped_at.isoformat()}; signature verified, the ledger "
                    "extends it)")
            if self.ignored_snapshot_time is not None:
                text += "; --snapshot-time ignored"
            return text
        if self.taken_at is not None:
            return f"--snapshot-time {self.taken_at.isoformat()} (no watermark in the snapshot)"
        return ("unknown (no watermark in the snapshot, no --snapshot-time): incomplete "
                "production erasures are not assessed")


def write_watermark(conn: Connection, watermark: Watermark) -> None:
    """Create the table if needed and add one row (the caller commits).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database refused.
    """
    table = watermark_table()
    table.create(conn, checkfirst=True)
    conn.execute(table.insert().values(
        format=WATERMARK_FORMAT, stamped_at=watermark.stamped_at.astimezone(dt.UTC).replace(
            tzinfo=None), origin=watermark.origin, tree_size=watermark.tree_size,
        root_hash=watermark.root_hash, checkpoint=watermark.checkpoint))


def read_watermark(conn: Connection) -> Watermark | None:
    """The newest watermark row of the snapshot, unverified; None when there is none.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the table cannot be read.

    Returns:
        The watermark as stored.
    """
    if not sa.inspect(conn).has_table(WATERMARK_TABLE):
        return None
    table = watermark_table()
    row = conn.execute(sa.select(table.c.origin, table.c.tree_size, table.c.root_hash,
                                 table.c.checkpoint, table.c.stamped_at)
                       .order_by(table.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    origin, size, root, note, stamped = row
    if isinstance(stamped, str):  # a table written by hand, or an odd driver
        stamped = dt.datetime.fromisoformat(stamped)
    if not isinstance(stamped, dt.datetime):
        raise IntegrityError(f"snapshot watermark: {WATERMARK_TABLE}.stamped_at is not a time")
    stamped = stamped.replace(tzinfo=dt.UTC) if stamped.tzinfo is None else stamped
    return Watermark(origin=str(origin), tree_size=int(size), root_hash=str(root),
                     checkpoint=str(note), stamped_at=stamped.astimezone(dt.UTC))


def check_watermark(watermark: Watermark, ledger: Ledger) -> None:
    """Prove the watermark is a checkpoint of this ledger, which the ledger extends.

    Raises:
        erasure_ledger.BadSignatureError: forged, or signed by another ledger's key (exit 3).
        erasure_ledger.RollbackError: the ledger does not extend it: rolled back (exit 3).
        erasure_ledger.IntegrityError: malformed, another ledger's origin, or the row's
            tree size / root hash do not match its signed note (exit 3).
    """
    try:
        verified = LedgerVerifier(ledger.verifier, origin=ledger.origin).open_checkpoint(
            watermark.checkpoint, label="checkpoint")
        if (verified.size != watermark.tree_size or verified.root_hash.hex() != watermark.root_hash
                or verified.origin != watermark.origin):
            raise IntegrityError("the row's tree size or root hash differ from its signed note")
        ledger.verify(trusted_checkpoint=watermark.checkpoint)
    except BadSignatureError:
        # no public key was given here: the ledger's own key did not sign this checkpoint
        raise BadSignatureError(
            f"snapshot watermark ({WATERMARK_TABLE}): not signed by this ledger's key (stamped "
            "by another ledger, or forged); check --ledger, or date the snapshot with "
            "--snapshot-time after removing the watermark row") from None
    except IntegrityError as exc:
        raise type(exc)(f"snapshot watermark ({WATERMARK_TABLE}): {exc}") from None


def date_snapshot(conn: Connection, ledger: Ledger, entries: Sequence[OpenedEntry], *,
                  snapshot_time: dt.datetime | None = None,
                  location: str = "") -> SnapshotDating:
    """Date the snapshot by its watermark (exact) or by ``snapshot_time`` (by time only).

    Args:
        conn: a connection to the snapshot (only read; the caller owns no transaction).
        ledger: the ledger the watermark must belong to.
        entries: the ledger's entries (for ``erased_at_backup``).
        snapshot_time: ``--snapshot-time``, used when the snapshot has no watermark.
        location: the snapshot's redacted location, for messages.

    Raises:
        SnapshotError: the watermark table cannot be read.
        erasure_ledger.IntegrityError: the watermark is forged, another ledger's, or the
            ledger was rolled back behind it (exit 3).

    Returns:
        How the snapshot is dated.
    """
    try:
        with conn.begin():
            watermark = read_watermark(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise SnapshotError(f"snapshot {location}: cannot read {WATERMARK_TABLE}: "
                            f"{type(exc).__name__}") from None
    if watermark is not None:
        check_watermark(watermark, ledger)
        taken_at: dt.datetime | None = watermark.stamped_at
        tree_size: int | None = watermark.tree_size
        method: DatingMethod = "watermark"
    else:
        taken_at, tree_size = snapshot_time, None
        method = "snapshot-time" if snapshot_time is not None else "none"
    erased = frozenset(
        e.meta.seq for e in entries
        if SnapshotDating.erased_before(e.meta.seq, e.meta.kind, e.meta.effective,
                                        taken_at=taken_at, tree_size=tree_size))
    logger.debug("snapshot dated by %s", method)
    return SnapshotDating(method=method, taken_at=taken_at, watermark=watermark,
                          ignored_snapshot_time=snapshot_time if watermark else None,
                          erased_at_backup=erased)


def stamp(db: str, ledger: Ledger, *, now: dt.datetime) -> Watermark:
    """Write the ledger's current signed checkpoint into the database at ``db``.

    Run it just before each backup. The checkpoint is signed first if the head is not yet
    (that needs the keyring), and the ledger is verified to extend it.

    Args:
        db: the live database (SQLAlchemy URL or SQLite path).
        ledger: the opened ledger.
        now: the time to record (UTC).

    Raises:
        erasure_ledger.IntegrityError: the ledger does not verify (exit 3); nothing written.
        erasure_ledger.UsageError: the head is unsigned and there is no keyring.
        SnapshotError: the database cannot be reached or written.

    Returns:
        The watermark written.
    """
    from reconciler.replay import open_snapshot  # replay imports this module

    signed = ledger.checkpoint()
    ledger.verify(trusted_checkpoint=signed.note)
    watermark = Watermark(origin=signed.checkpoint.origin, tree_size=signed.checkpoint.size,
                          root_hash=signed.checkpoint.root_hash.hex(), checkpoint=signed.note,
                          stamped_at=now.astimezone(dt.UTC))
    shown = redact_url(db)
    with open_snapshot(db) as engine:
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            reason = cannot_connect(exc, engine.url.password)
            raise SnapshotError(f"snapshot {shown}: {reason}") from None
        with conn:
            try:
                with conn.begin():
                    write_watermark(conn, watermark)
            except sa.exc.SQLAlchemyError as exc:
                logger.debug("stamp failed", exc_info=True)
                raise SnapshotError(f"snapshot {shown}: cannot write {WATERMARK_TABLE}: "
                                    f"{type(exc).__name__}") from None
    logger.debug("stamped tree size %d", watermark.tree_size)
    return watermark


__all__ = ["WATERMARK_TABLE", "SnapshotDating", "Watermark", "check_watermark", "date_snapshot",
           "read_watermark", "stamp", "watermark_table", "write_watermark"]
