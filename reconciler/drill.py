"""Disaster-recovery drill: scratch copy -> apply -> verify -> report -> clean up.

:func:`drill` copies the snapshot file (or downloads ``s3://bucket/key`` first) into a
temporary directory and looks at its first bytes. A SQLite file is drilled on that copy, or
copied table by table into an EMPTY scratch database server (``scratch_db``); a server dump
(``pg_dump -Fc`` or plain SQL, ``mariadb-dump``) is restored into ``scratch_db`` by
:mod:`reconciler.restore`. The ledger is then replayed there (``apply``, which ends with the
residual scan) and the result returned. The scratch (the temporary directory, and what the
drill created in ``scratch_db``) is removed afterwards, also when anything fails.

The source is never written: a local file is only opened for reading, once, and hashed while
it is copied (the SHA-256 goes into the report); SQLite and the dump tools only ever open the
copy. An s3:// source is only read (GET).

Left out on purpose: no printing, no environment, no clock (``as_of`` is a parameter), no
subprocesses (the dump tools run in :mod:`reconciler.restore`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.pool import NullPool

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.errors import SnapshotError, cannot_connect, redact_url
from reconciler.objects import ObjectStore
from reconciler.progress import NullProgress, Progress
from reconciler.replay import ReplayResult, replay
from reconciler.restore import DumpKind, restored, sniff

logger = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 1 << 20
_ROWS = 1000  # rows per INSERT batch when copying into a server
RESTORE_TIMEOUT = 3600.0  # seconds a dump's client tool may run


@dataclass(frozen=True)
class DrillResult:
    """What a drill did: where the snapshot came from, where it ran, and the replay."""

    source: str  # the --snapshot location (passwords redacted)
    source_sha256: str  # of the snapshot file's bytes, as read
    source_bytes: int
    scratch: str  # "temporary SQLite copy" or the scratch database's redacted URL
    replay: ReplayResult
    source_format: str = "SQLite database file"  # or the dump's kind, e.g. "pg_dump ..."

    def to_dict(self) -> dict[str, Any]:
        """Returns: the JSON-ready form (the report's ``drill``)."""
        return {"source": self.source, "source_sha256": self.source_sha256,
                "source_bytes": self.source_bytes, "source_format": self.source_format,
                "scratch": self.scratch, "scratch_removed": True, "source_written": False}


def drill(snapshot: str, data_map: DataMap, ledger: Ledger, *, as_of: dt.date, hash_key: bytes,
          scratch_db: str | None = None, objects: ObjectStore | None = None,
          snapshot_time: dt.datetime | None = None,
          progress: Progress | None = None,
          workdir: Path | None = None,
          restore_timeout: float = RESTORE_TIMEOUT,
          trust_dump: bool = False, workers: int | None = None) -> DrillResult:
    """Apply and verify the ledger on a scratch copy of ``snapshot``; never touch the source.

    Args:
        snapshot: a SQLite snapshot file (path or ``sqlite:///`` URL), a ``pg_dump``
            (custom format or plain SQL) or ``mariadb-dump`` file, or ``s3://bucket/key``
            holding one of them.
        data_map: the validated data map.
        ledger: the opened ledger with its keyring.
        as_of: retention is measured to this day.
        hash_key: key of the ``hash`` strategy.
        scratch_db: an EMPTY database (SQLAlchemy URL) to copy the snapshot into; by default
            a SQLite snapshot is drilled on a temporary copy. A dump needs one: PostgreSQL
            for a ``pg_dump``, MariaDB/MySQL for a ``mariadb-dump``.
        objects: the object store an s3:// snapshot is downloaded from, and the map's
            ``objects:`` are reconciled in (default: AWS S3).
        snapshot_time: dates the snapshot when it has no watermark.
        progress: told about each copied table (phase ``copy``) or the restore (phase
            ``restore``), each operation and each table of the residual scan.
        workdir: where the temporary directory goes (default: the system's).
        workers: processes for the residual scan (default: one per CPU, at most 8).
        restore_timeout: seconds a dump's client tool (``pg_restore``, ``psql``,
            ``mariadb``) may run before it is stopped.
        trust_dump: restore a dump even when the scratch user's rights reach beyond the
            scratch database (superuser, CREATEDB, server files, other databases): the dump
            comes from a source the caller trusts. Without it such a user is refused.

    Raises:
        SnapshotError: the snapshot cannot be read or copied, is neither SQLite nor a dump
            this drill restores, the scratch database is missing, of the wrong kind or not
            empty, its user could leave it (without ``trust_dump``), or the dump's client
            tool is missing, too old or fails; and everything
            :func:`reconciler.replay.replay` raises.

    Returns:
        The drill's result; the scratch is gone when this returns or raises.
    """
    shown = redact_url(snapshot)
    with tempfile.TemporaryDirectory(prefix="reconciler-drill-", dir=workdir) as tmp:
        local = Path(tmp) / "snapshot.db"
        store = objects or ObjectStore()
        if snapshot.startswith("s3://"):
            store.download(snapshot, local)
            digest, size = _hash_file(local)
        else:
            digest, size = _copy_file(_source_path(snapshot), local)
        kind = None if _is_sqlite(local) else _dump_kind(local, shown)
        scratch = "temporary SQLite copy"
        target = f"sqlite:///{local}"
        if kind is None:
            loaded = _scratch_tables(local, scratch_db, progress)
        else:
            loaded = _restored_dump(local, kind, scratch_db, shown=shown,
                                    timeout=restore_timeout, progress=progress,
                                    trust_dump=trust_dump)
        with loaded as server:
            if server is not None:
                scratch, target = redact_url(server), server
            result = replay(target, data_map, ledger, as_of=as_of, dry_run=False,
                            hash_key=hash_key, progress=progress, snapshot_time=snapshot_time,
                            objects=store, workers=workers)
    logger.debug("drill of %s finished; scratch removed", shown)
    return DrillResult(source=shown, source_sha256=digest, source_bytes=size, scratch=scratch,
                       replay=result,
                       source_format=kind.label if kind else "SQLite database file")


def _source_path(snapshot: str) -> Path:
    if snapshot.startswith("sqlite:///"):
        snapshot = snapshot.removeprefix("sqlite:///").split("?", 1)[0]
    elif "://" in snapshot:
        raise SnapshotError(f"--snapshot {redact_url(snapshot)}: expected a SQLite snapshot "
                            "file or s3://bucket/key")
    path = Path(snapshot)
    if not path.is_file():
        raise SnapshotError(f"snapshot {snapshot}: no such file")
    return path


def _copy_file(source: Path, dest: Path) -> tuple[str, int]:
    """Copy ``source`` (opened read-only) to ``dest``, hashing what was read."""
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as src, dest.open("xb") as out:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        # A snapshot taken from a live WAL-mode database may keep recent pages in its -wal file.
        wal = source.with_name(source.name + "-wal")
        if wal.is_file():
            shutil.copyfile(wal, dest.with_name(dest.name + "-wal"))
    except OSError as exc:
        raise SnapshotError(f"snapshot {source}: cannot copy it "
                            f"({exc.strerror or type(exc).__name__})") from None
    return digest.hexdigest(), size


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as src:
        return src.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _dump_kind(path: Path, shown: str) -> DumpKind:
    kind = sniff(path, shown)
    if kind is None:
        raise SnapshotError(f"{shown}: neither a SQLite database file nor a pg_dump (custom "
                            "format or plain SQL) or mariadb-dump file")
    return kind


@contextmanager
def _restored_dump(local: Path, kind: DumpKind, scratch_db: str | None, *, shown: str,
                   timeout: float, progress: Progress | None,
                   trust_dump: bool = False) -> Iterator[str]:
    """Restore the dump into ``scratch_db`` with its own client tool; empty it afterwards."""
    if scratch_db is None:
        raise SnapshotError(f"{shown} is a {kind.label}: give --scratch-db, the URL of an "
                            f"empty {kind.database} database to restore it into")
    report = progress or NullProgress()
    report.phase("restore", 1)
    report.step(f"restore with {kind.tools[0]}")
    with restored(local, kind, scratch_db, shown=shown, timeout=timeout,
                  trust_dump=trust_dump) as server:
        report.done()
        yield server


@contextmanager
def _scratch_tables(local: Path, scratch_db: str | None,
                    progress: Progress | None) -> Iterator[str | None]:
    """Copy the SQLite file into ``scratch_db`` table by table; drop those tables afterwards."""
    if scratch_db is None:
        yield None
        return
    shown = redact_url(scratch_db)
    if "://" not in scratch_db:
        raise SnapshotError(f"--scratch-db {shown}: expected a database URL")
    try:
        target = sa.create_engine(scratch_db, poolclass=NullPool)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError):
        raise SnapshotError(f"scratch database {shown}: not a usable database URL") from None
    source = sa.create_engine(f"sqlite:///{local}", poolclass=NullPool)
    copied = sa.MetaData()
    try:
        _require_empty(target, shown)
        try:
            _copy_tables(source, target, copied, progress or NullProgress())
        except sa.exc.SQLAlchemyError as exc:
            logger.debug("scratch copy failed", exc_info=True)
            raise SnapshotError(f"scratch database {shown}: the snapshot does not fit "
                                f"({type(exc).__name__}); removed what was copied") from None
        yield scratch_db
    finally:
        try:
            copied.drop_all(target)
        except sa.exc.SQLAlchemyError:
            logger.warning("scratch database %s: could not drop the copied tables", shown)
        source.dispose()
        target.dispose()


def _require_empty(target: sa.Engine, shown: str) -> None:
    try:
        with target.connect() as conn:
            existing = sa.inspect(conn).get_table_names()
    except sa.exc.SQLAlchemyError as exc:
        reason = cannot_connect(exc, target.url.password)
        raise SnapshotError(f"scratch database {shown}: {reason}") from None
    if existing:
        # Never run a drill against a database that holds anything: it may be production.
        raise SnapshotError(f"scratch database {shown} is not empty ({len(existing)} "
                            "table(s)); a drill needs an empty scratch database")


def _copy_tables(source: sa.Engine, target: sa.Engine, copied: sa.MetaData,
                 progress: Progress) -> None:
    reflected = sa.MetaData()
    reflected.reflect(source)
    for table in reflected.sorted_tables:
        clone = table.to_metadata(copied)
        for column in clone.columns:
            column.type = _portable(column.type, target.dialect.name)
            column.server_default = None  # SQLite expressions need not parse elsewhere
        for constraint in [c for c in clone.constraints if isinstance(c, sa.CheckConstraint)]:
            clone.constraints.discard(constraint)
    copied.create_all(target)
    progress.phase("copy", len(reflected.sorted_tables))
    with source.connect() as read, target.begin() as write:
        for table in reflected.sorted_tables:
            progress.step(f"copy {table.name}")
            rows = read.execution_options(stream_results=True).execute(sa.select(table))
            while batch := rows.fetchmany(_ROWS):
                write.execute(copied.tables[table.name].insert(),
                              [dict(row._mapping) for row in batch])
    progress.done()


def _portable(type_: sa.types.TypeEngine[Any], dialect: str) -> sa.types.TypeEngine[Any]:
    try:
        generic = type_.as_generic()
    except NotImplementedError:
        return sa.Text()
    if isinstance(generic, sa.types.NullType):
        return sa.Text()
    if isinstance(generic, sa.String) and not isinstance(generic, sa.Text) and (
            generic.length is None and dialect in ("mysql", "mariadb")):
        return sa.Text()
    if isinstance(generic, sa.DateTime) and dialect in ("mysql", "mariadb"):
        return mysql.DATETIME(fsp=6)
    return generic


__all__ = ["DrillResult", "drill"]
