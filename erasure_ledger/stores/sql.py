"""The SQL store: a SQLite file (the embedded default) or any SQLAlchemy URL.

Five tables, all prefixed ``erasure_ledger_`` so the ledger can share a database with other
things (it must never share one with the data it protects; see docs/getting-started.md).
Appends are serialised on the single head row: ``BEGIN IMMEDIATE`` on SQLite,
``SELECT ... FOR UPDATE`` elsewhere, with the primary key on ``seq`` and the unique request id
as a second line of defence. Reads page through leaves by sequence number, so verifying a
large ledger holds no long transaction and uses bounded memory.

SQLite runs with ``secure_delete`` on so a shredded key is overwritten on disk, not left in a
free page. On PostgreSQL the old row version survives until VACUUM (docs/operations.md).
"""

from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
import os
import sqlite3
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from erasure_ledger.errors import (
    DuplicateRequestError,
    IntegrityError,
    LedgerError,
    StorageError,
    TamperedEntryError,
    UsageError,
)
from erasure_ledger.stores.base import (
    EMPTY_HEAD,
    AppendBatch,
    Head,
    KeyRow,
    PrepareAppend,
    StoredLeaf,
    no_ledger,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

PAGE = 10_000
#: leaves per task of map_leaf_ranges (read in one transaction; one range in memory at a time)
TASK_LEAVES = 4 * PAGE
#: tasks in flight per worker process in map_leaf_ranges (bounded, so memory stays flat)
WINDOW = 4
_HASH = 32

metadata = sa.MetaData()
meta_table = sa.Table(
    "erasure_ledger_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
head_table = sa.Table(
    "erasure_ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("nodes", sa.LargeBinary, nullable=False),
    sa.Column("checkpoint", sa.Text, nullable=True),
)
leaves_table = sa.Table(
    "erasure_ledger_leaves",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("request_id", sa.String(128), nullable=False, unique=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
keys_table = sa.Table(
    "erasure_ledger_keys",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
    sa.Column("tokens", sa.LargeBinary, nullable=False),
    sa.Column("mac", sa.LargeBinary, nullable=False),
)
#: the key-row columns in KeyRow's field order (see _key_row_from)
_KEY_COLUMNS = (
    keys_table.c.seq,
    keys_table.c.kek_id,
    keys_table.c.wrapped_key,
    keys_table.c.tokens,
    keys_table.c.mac,
)
checkpoints_table = sa.Table(
    "erasure_ledger_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("note", sa.Text, nullable=False),
)


def _in_sequence(rows: Sequence[Any], lo: int) -> int:
    """How many leading rows have seq ``lo``, ``lo + 1``, ... (seq is each row's first column)."""
    seqs = [row[0] for row in rows]
    if seqs == list(range(lo, lo + len(seqs))):  # the common case, compared at C speed
        return len(seqs)
    return next((i for i, seq in enumerate(seqs) if seq != lo + i), len(seqs))


def redact_url(url: str | sa.URL) -> str:
    """A URL safe to print: the password, if any, becomes ``***``."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable URL>"


def _to_url(location: str) -> sa.URL:
    if "://" in location:
        try:
            return sa.make_url(location)
        except ArgumentError:
            raise UsageError("ledger location is not a valid SQLAlchemy URL") from None
    return sa.URL.create("sqlite", database=os.path.abspath(location))


def _is_data_error(exc: BaseException) -> bool:
    """A stored value of the wrong type (e.g. text where bytes belong): tampering, not I/O.
    The driver's message would quote the bytes, so it is never shown."""
    text = str(getattr(exc, "orig", None) or exc)
    return "Could not decode" in text or "invalid input syntax" in text


#: SQLite's result codes for a file that is not a database, or one whose pages are damaged
_DAMAGED = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def _damage(exc: BaseException, location: str, *, creating: bool) -> LedgerError | None:
    """The error for a SQLite ledger file that exists but does not read as a database.

    That is damage, not unreachability: retrying cannot help, so it is an integrity failure
    (exit 3). When the caller meant to create a ledger there, it is a wrong path instead: the
    file is someone else's, and is not overwritten (exit 2).
    """
    code = getattr(getattr(exc, "orig", None), "sqlite_errorcode", None)
    if code not in _DAMAGED:
        return None
    if creating:
        return UsageError(f"{location}: the file exists and is not a ledger database; refusing to use it")
    if code == sqlite3.SQLITE_NOTADB:
        return IntegrityError(f"{location} is not a ledger database (damaged, or the wrong file?)")
    return IntegrityError(f"{location}: the ledger database is damaged ({_describe(exc)})")


def _describe(exc: BaseException) -> str:
    # The driver's first line ("connection refused", "Access denied for user 'x'") helps ops
    # and carries no entry data: the store never puts identifier values in SQL.
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0][:200] if text else type(orig).__name__


_WORKER_STORES: dict[str, SqlStore] = {}


def _map_ranges(task: tuple[str, Callable[[list[bytes]], Any], list[tuple[int, int]]]) -> list[Any]:
    """Worker process: ``fn`` over the leaves of each range (one store per process)."""
    url, fn, ranges = task
    store = _WORKER_STORES.get(url)
    if store is None:
        store = _WORKER_STORES[url] = SqlStore(url)
    return store._map_task(fn, ranges)


def _tasks(ranges: Iterable[tuple[int, int]], leaves: int) -> Iterator[list[tuple[int, int]]]:
    """Consecutive ranges grouped into tasks of about ``leaves`` leaves, so that a run of
    small ranges costs one round trip to a worker, not one each."""
    task: list[tuple[int, int]] = []
    size = 0
    for lo, hi in ranges:
        task.append((lo, hi))
        size += hi - lo
        if size >= leaves:
            yield task
            task, size = [], 0
    if task:
        yield task


class _DuplicateInBatch(LedgerError):
    """Internal: the unique request-id index refused an append (rolls the transaction back)."""

    def __init__(self, request_ids: list[str]) -> None:
        super().__init__("duplicate request id")
        self.request_ids = request_ids


class SqlStore:
    """A ledger in a relational database."""

    def __init__(self, location: str, *, create: bool = False) -> None:
        url = _to_url(location)
        self.location = redact_url(url)
        self._url = url.render_as_string(hide_password=False)  # for worker processes only
        self._sqlite = url.get_backend_name() == "sqlite"
        self._creating = create
        if self._sqlite and not create and url.database and not os.path.exists(url.database):
            raise no_ledger(self.location)
        if self._sqlite and create and url.database and not os.path.exists(url.database):
            # Key rows are secret: create the file owner-only; SQLite gives its -wal and -shm
            # files the same permissions.
            try:
                os.close(os.open(url.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except OSError as exc:
                raise UsageError(
                    f"cannot create the ledger file {url.database} ({exc.strerror}; does its folder exist?)"
                ) from None
        #: lines the CLI should show the user after an operation (e.g. a shred that could not
        #: scrub the write-ahead log)
        self.notices: list[str] = []
        try:
            self.engine: Engine = self._make_engine(url)
        except (NoSuchModuleError, ImportError) as exc:
            raise UsageError(f"no database driver for {self.location}: {_describe(exc)}") from None
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot open {self.location}: {_describe(exc)}") from None

    def _make_engine(self, url: sa.URL) -> Engine:
        if not self._sqlite:
            return sa.create_engine(url, pool_pre_ping=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from pysqlite so BEGIN IMMEDIATE works (SQLAlchemy docs,
            # "Serializable isolation / Savepoints / Transactional DDL").
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Connection]:
        try:
            with self.engine.connect() as plain:
                conn = plain.execution_options(sqlite_begin="IMMEDIATE") if write and self._sqlite else plain
                with conn.begin():
                    yield conn
        except LedgerError:
            raise
        except SqlIntegrityError as exc:
            raise StorageError(f"{self.location}: write refused by the database: {_describe(exc)}") from None
        except SQLAlchemyError as exc:
            if _is_data_error(exc):
                raise TamperedEntryError(f"{self.location}: a stored value has the wrong type") from None
            raise _damage(exc, self.location, creating=self._creating) or StorageError(
                f"cannot use ledger at {self.location}: {_describe(exc)}"
            ) from None

    # -- protocol ------------------------------------------------------------------------------

    def exists(self) -> bool:
        try:
            with self.engine.connect() as conn:
                return sa.inspect(conn).has_table(meta_table.name)
        except SQLAlchemyError as exc:
            raise _damage(exc, self.location, creating=self._creating) or StorageError(
                f"cannot reach {self.location}: {_describe(exc)}"
            ) from None

    def create(self, meta: Mapping[str, str]) -> None:
        if self.exists():
            with self._tx() as conn:
                if conn.execute(sa.select(sa.func.count()).select_from(meta_table)).scalar():
                    raise UsageError(f"a ledger already exists at {self.location}")
        with self._tx(write=True) as conn:
            metadata.create_all(conn)
            conn.execute(meta_table.insert(), [{"name": k, "value": v} for k, v in meta.items()])
            conn.execute(head_table.insert().values(id=1, size=0, nodes=b"", checkpoint=None))

    def read_meta(self) -> dict[str, str]:
        if not self.exists():
            raise no_ledger(self.location)
        with self._tx() as conn:
            rows = conn.execute(sa.select(meta_table.c.name, meta_table.c.value)).all()
        if not rows:
            raise no_ledger(self.location)
        return {name: value for name, value in rows}

    @staticmethod
    def _head_from_row(row: Any) -> Head:
        if row is None:
            return EMPTY_HEAD
        if (
            not isinstance(row.size, int)
            or not isinstance(row.nodes, bytes | memoryview)
            or not isinstance(row.checkpoint, str | None)
        ):
            raise TamperedEntryError("the stored tree head has values of the wrong type")
        nodes = bytes(row.nodes)
        return Head(
            size=row.size,
            nodes=tuple(nodes[i : i + _HASH] for i in range(0, len(nodes), _HASH)),
            checkpoint=row.checkpoint,
        )

    def read_head(self) -> Head:
        with self._tx() as conn:
            return self._head_from_row(conn.execute(sa.select(head_table)).first())

    def request_ids_present(self, request_ids: Sequence[str]) -> set[str]:
        with self._tx() as conn:
            return self._present_in(conn, list(dict.fromkeys(request_ids)))

    def append(self, prepare: PrepareAppend) -> AppendBatch:
        try:
            return self._append(prepare)
        except _DuplicateInBatch as dup:
            # The unique index refused the batch and the transaction rolled back; find which
            # request id it was, for the message (a bulk append pays this only on failure).
            present = self.request_ids_present(dup.request_ids)
            if not present:
                # Not a request id: a leaf already sits at a sequence number past the signed
                # head, i.e. it was written outside the ledger.
                raise TamperedEntryError(
                    f"{self.location}: an entry exists beyond the signed tree head (added outside the ledger)"
                ) from None
            raise DuplicateRequestError(
                f"request {sorted(present)[0]} is already in the ledger", request_id=sorted(present)[0]
            ) from None

    def _append(self, prepare: PrepareAppend) -> AppendBatch:
        with self._tx(write=True) as conn:
            query = sa.select(head_table).where(head_table.c.id == 1)
            if not self._sqlite:
                query = query.with_for_update()  # serialise appenders on the head row
            head = self._head_from_row(conn.execute(query).first())
            batch = prepare(head)
            if batch.leaves:
                try:
                    self._insert(
                        conn, leaves_table, [(lf.seq, lf.request_id, lf.data) for lf in batch.leaves]
                    )
                except SqlIntegrityError:
                    raise _DuplicateInBatch([lf.request_id for lf in batch.leaves]) from None
                self._insert(
                    conn,
                    keys_table,
                    [(r.seq, r.kek_id, r.wrapped_key, r.tokens, r.mac) for r in batch.key_rows],
                )
            new = batch.head
            if new.checkpoint is not None:
                conn.execute(checkpoints_table.insert().values(size=new.size, note=new.checkpoint))
            conn.execute(
                head_table.update()
                .where(head_table.c.id == 1)
                .values(size=new.size, nodes=b"".join(new.nodes), checkpoint=new.checkpoint)
            )
            log.debug("appended seqs %d..%d", head.size, new.size - 1)
            return batch

    @staticmethod
    def _present_in(conn: Connection, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            found.update(
                conn.execute(
                    sa.select(leaves_table.c.request_id).where(leaves_table.c.request_id.in_(chunk))
                ).scalars()
            )
        return found

    def _insert(self, conn: Connection, table: sa.Table, rows: list[tuple[Any, ...]]) -> None:
        """Bulk insert of positional rows (columns in table order)."""
        if self._sqlite:
            # The driver's executemany skips per-row bind processing, which otherwise
            # dominates a bulk append (docs/benchmarks.md).
            marks = ", ".join("?" for _ in table.columns)
            conn.exec_driver_sql(f"INSERT INTO {table.name} VALUES ({marks})", rows)  # noqa: S608
        else:
            names = [c.name for c in table.columns]
            conn.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows])

    def _stop(self, stop: int | None) -> int:
        return self.read_head().size if stop is None else stop

    def iter_leaves(self, start: int = 0, stop: int | None = None) -> Iterator[StoredLeaf]:
        end = self._stop(stop)
        cols = (leaves_table.c.seq, leaves_table.c.request_id, leaves_table.c.data)
        for lo in range(start, end, PAGE):
            hi = min(lo + PAGE, end)
            with self._tx() as conn:
                rows = conn.execute(
                    sa.select(*cols)
                    .where(leaves_table.c.seq >= lo, leaves_table.c.seq < hi)
                    .order_by(leaves_table.c.seq)
                ).all()
            present = _in_sequence(rows, lo)
            # map() builds the page's leaves at C speed; a generator step per leaf cost more
            seqs, request_ids, data = zip(*rows[:present], strict=True) if present else ((), (), ())
            yield from map(StoredLeaf, seqs, request_ids, map(bytes, data))
            if lo + present != hi:
                raise TamperedEntryError(f"entry {lo + present}: missing from the store")

    def iter_leaf_data(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        # chain() hands out the leaves of each page at C speed; a generator resumed once per
        # leaf cost as much as hashing it (docs/benchmarks.md).
        return itertools.chain.from_iterable(self._leaf_pages(start, self._stop(stop)))

    def _leaf_pages(self, start: int, end: int) -> Iterator[list[bytes]]:
        for lo in range(start, end, PAGE):
            with self._tx() as conn:
                page = self._read_page(conn, lo, min(lo + PAGE, end))
            yield page

    def _read_page(self, conn: Connection, lo: int, hi: int) -> list[bytes]:
        """The bytes of leaves ``lo..hi-1`` (one query), each checked to be there and bytes.

        Raises:
            TamperedEntryError: a leaf is missing or not stored as bytes.
        """
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        where = f"FROM erasure_ledger_leaves WHERE seq >= {mark} AND seq < {mark} ORDER BY seq"
        # The DB-API cursor directly: this is the verify hot path, and building SQLAlchemy
        # Row objects cost more than hashing the leaves (docs/benchmarks.md). Only the data
        # column: seq is the primary key, so hi - lo rows in [lo, hi) are exactly lo..hi-1
        # (on SQLite a row planted with a fractional seq could stand in for a missing one;
        # its bytes must still hash to the signed root, and iter_leaves names the gap).
        cursor = conn.connection.cursor()
        try:
            cursor.execute(f"SELECT data {where}", (lo, hi))
            rows = cursor.fetchall()
            if len(rows) != hi - lo:
                cursor.execute(f"SELECT seq {where}", (lo, hi))
                present = {r[0] for r in cursor.fetchall()}
                missing = next((s for s in range(lo, hi) if s not in present), lo)
                raise TamperedEntryError(f"entry {missing}: missing from the store")
        finally:
            cursor.close()
        data = [row[0] for row in rows]
        if data and not all(type(d) is bytes for d in data):
            # some drivers hand out memoryview; text where bytes belong is tampering
            if any(not isinstance(d, bytes | memoryview) for d in data):
                raise TamperedEntryError(f"entries {lo}..{hi - 1}: a leaf is not stored as bytes")
            data = [bytes(d) for d in data]
        return data

    def _map_task(self, fn: Callable[[list[bytes]], T], ranges: list[tuple[int, int]]) -> list[T]:
        """``fn`` over the leaves of each range, all read in one transaction (a worker's task)."""
        with self._tx() as conn:
            out = []
            for lo, hi in ranges:
                if hi - lo <= PAGE:
                    out.append(fn(self._read_page(conn, lo, hi)))
                else:
                    leaves: list[bytes] = []
                    for start in range(lo, hi, PAGE):
                        leaves += self._read_page(conn, start, min(start + PAGE, hi))
                    out.append(fn(leaves))
            return out

    def map_leaf_ranges(
        self, fn: Callable[[list[bytes]], T], ranges: Iterable[tuple[int, int]], *, workers: int = 2
    ) -> Generator[T, None, None]:
        """``fn(leaves)`` for the leaf bytes of each ``(lo, hi)`` range, in order, computed by
        ``workers`` processes that each read their own ranges: reading and hashing leaves is
        most of a verify, and one core does not keep up with two (docs/benchmarks.md).

        ``fn`` must be picklable (a module-level function), and a range should hold at most
        a page or so of leaves: a worker holds one range's leaves at a time. ``ranges`` is
        consumed lazily and only a few tasks are in flight, so memory stays flat however long
        the ledger. Close the generator to stop early (queued work is cancelled).

        Raises:
            TamperedEntryError: a leaf is missing or not stored as bytes.
            StorageError: the database cannot be read.
        """
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            pending: collections.deque[Future[list[T]]] = collections.deque()
            for task in _tasks(ranges, TASK_LEAVES):
                pending.append(pool.submit(_map_ranges, (self._url, fn, task)))
                if len(pending) >= WINDOW * workers:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            pool.shutdown(cancel_futures=True)

    def iter_key_rows(self) -> Iterator[KeyRow]:
        last = -1
        while True:
            with self._tx() as conn:
                rows = conn.execute(
                    sa.select(*_KEY_COLUMNS)
                    .where(keys_table.c.seq > last)
                    .order_by(keys_table.c.seq)
                    .limit(PAGE)
                ).all()
            # map() builds the rows of a page at C speed around the one Python call per row
            yield from map(self._key_row_from, rows)
            if len(rows) < PAGE:
                return
            last = int(rows[-1][0])

    def read_key_row(self, seq: int) -> KeyRow | None:
        with self._tx() as conn:
            r = conn.execute(sa.select(*_KEY_COLUMNS).where(keys_table.c.seq == seq)).first()
        return None if r is None else self._key_row_from(r)

    @staticmethod
    def _key_row_from(r: Any) -> KeyRow:
        # A row of _KEY_COLUMNS, unpacked by position: reading a Row's fields by name cost
        # four times as much as building the KeyRow on bulk reads.
        seq, kek_id, wrapped_key, tokens, mac = r
        return KeyRow(
            int(seq),
            kek_id,
            None if wrapped_key is None else bytes(wrapped_key),
            bytes(tokens),
            bytes(mac),
        )

    def replace_key_rows(
        self, rows: Sequence[KeyRow], *, expected_macs: Mapping[int, bytes] | None = None
    ) -> None:
        if not rows:
            return
        with self._tx(write=True) as conn:
            if expected_macs is not None:
                self._check_unchanged(conn, expected_macs)
            stmt = (
                keys_table.update()
                .where(keys_table.c.seq == sa.bindparam("b_seq"))
                .values(
                    kek_id=sa.bindparam("kek_id"),
                    wrapped_key=sa.bindparam("wrapped_key"),
                    tokens=sa.bindparam("tokens"),
                    mac=sa.bindparam("mac"),
                )
            )
            params = [
                {
                    "b_seq": r.seq,
                    "kek_id": r.kek_id,
                    "wrapped_key": r.wrapped_key,
                    "tokens": r.tokens,
                    "mac": r.mac,
                }
                for r in rows
            ]
            for i in range(0, len(params), PAGE):
                conn.execute(stmt, params[i : i + PAGE])
        if self._sqlite:
            self._scrub_wal()

    def _check_unchanged(self, conn: Connection, expected_macs: Mapping[int, bytes]) -> None:
        """Compare-and-swap guard: refuse if any row changed since the caller read it (a
        concurrent shred must never be undone by a rotation, nor the reverse)."""
        seqs = sorted(expected_macs)
        query = sa.select(keys_table.c.seq, keys_table.c.mac)
        if not self._sqlite:
            query = query.with_for_update()
        for i in range(0, len(seqs), 500):
            chunk = seqs[i : i + 500]
            current = dict(conn.execute(query.where(keys_table.c.seq.in_(chunk))).all())
            if any(bytes(current.get(seq) or b"") != expected_macs[seq] for seq in chunk):
                raise StorageError(
                    f"{self.location}: key rows changed while this operation ran; nothing was "
                    "changed, run it again"
                )

    def _scrub_wal(self) -> None:
        """Copy the write-ahead log into the database and truncate it, so a replaced key row
        does not survive in the -wal file (secure_delete only covers the main file)."""
        try:
            with self.engine.connect() as conn:
                # Wait briefly, not the minute appends wait: a long-running reader only
                # postpones the scrub, and the notice says so.
                conn.exec_driver_sql("PRAGMA busy_timeout=2000")
                try:
                    busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
                finally:
                    conn.exec_driver_sql("PRAGMA busy_timeout=60000")
        except SQLAlchemyError:
            busy = None
        if busy is None or busy[0]:
            self.notices.append(
                "another process holds the ledger open, so its write-ahead log could not be "
                "scrubbed; old key rows stay in the -wal file until the next checkpoint "
                "(run the command again when nothing else uses the ledger)"
            )

    def iter_checkpoints(self) -> Iterator[tuple[int, str]]:
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(checkpoints_table.c.size, checkpoints_table.c.note).order_by(
                    checkpoints_table.c.size
                )
            ).all()
        for size, note in rows:
            yield int(size), note

    def close(self) -> None:
        self.engine.dispose()
