"""Share read-only work between this process and forked worker processes, each on its own
connection to the snapshot.

The residual scan reads every text column of the snapshot and tests it in Python: on one
process the pre-tests and the driver's row building take turns on one core while the
machine has more. Here the work items (a table's pass, or one key range of a large table)
go out one at a time, in the order given, from a counter shared by this process and
``workers - 1`` children, so a child that drew a long item does not hold up the rest. Each
child opens its own connection through the parent's engine, reads, and sends back what the
``work`` function returned; the parent merges the results in item order.

Why fork, not spawn: a child inherits what ``work`` needs (the scan's index of the ledger's
identifiers: hundreds of megabytes for 100,000 requests) without a copy and without sending
personal data through a pipe. Only the results (findings: table, column, row key and
sequence numbers) travel back. Where fork is not available, everything runs here.

One view of the data: on PostgreSQL the children import the parent transaction's snapshot
(``pg_export_snapshot``), so every worker reads the same committed state. SQLite and
MariaDB have no such export: each worker sees the data as of its own first read. The scan
runs on a restored copy after the reconciler's own commit, which nothing else should be
changing; :func:`fan_out` says so, it cannot enforce it.

Left out on purpose: no SQL of the work itself, no error messages (a child's failure is
re-raised here as :class:`WorkerFailed` carrying the exception's class name only: a driver's
message can quote row values).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

T = TypeVar("T")
R = TypeVar("R")

_MAX_WORKERS = 8
logger = logging.getLogger(__name__)
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")


class WorkerFailed(Exception):
    """A worker process failed; ``kind`` is the class name of what it raised (its message is
    not carried: it could quote row values)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def default_workers() -> int:
    """The processes to use: one per CPU this process may run on, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_WORKERS))


def can_fork(conn: Connection) -> bool:
    """True when worker processes can share this connection's work: the platform forks
    safely (Linux) and the database is not a private in-memory SQLite database."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    database = conn.engine.url.database
    return not (conn.dialect.name == "sqlite" and database in (None, "", ":memory:"))


def fan_out(conn: Connection, items: Sequence[T], work: Callable[[Connection, T], R], *,
            workers: int, started: Callable[[int], None] | None = None) -> list[R]:
    """``[work(c, item) for item in items]``, shared with ``workers - 1`` forked processes.

    Every process reads inside one transaction of its own, begun here: ``conn`` must not be
    in a transaction. (SQLite keeps per-file lock state in the process; a child forked
    while its parent holds a read lock would believe it holds one too, so this process
    begins only after the fork. PostgreSQL's parent begins first, to export its snapshot.)

    Args:
        conn: this process's connection, not in a transaction; nothing is written. The
            children connect through ``conn.engine``.
        items: the work, in the order it should be handed out (longest first balances best).
        work: reads through the connection it is given, changes nothing; its result must
            pickle.
        workers: processes in all, this one included; 1 (or a platform without fork) runs
            everything here, on ``conn``.
        started: told the number of items handed out so far, each time this process takes
            one (for progress).

    Raises:
        WorkerFailed: a child failed (the others are stopped).
        Exception: whatever ``work`` raised in this process.

    Returns:
        The results, in the order of ``items``.
    """
    tell = started or (lambda _count: None)
    if workers <= 1 or len(items) <= 1 or not can_fork(conn):
        with conn.begin():
            results = []
            for index, item in enumerate(items):
                tell(index + 1)
                results.append(work(conn, item))
            return results
    context = multiprocessing.get_context("fork")
    counter = context.Value("l", 0)
    children: list[tuple[Any, Pipe]] = []
    with ExitStack() as stack:
        view = None
        if conn.dialect.name == "postgresql":
            view = _export_view(conn, stack)
        for _ in range(min(workers, len(items)) - 1):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_child, args=(conn, _Shared(items, work, counter, view),
                                                         send),
                                    daemon=True, name="rc-worker")
            child.start()
            send.close()
            children.append((child, receive))
            stack.callback(_stop, child, receive)
        if view is None:
            stack.enter_context(conn.begin())
        done: dict[int, R] = {}
        while (taken := _take(counter, len(items))) is not None:
            tell(taken + 1)
            done[taken] = work(conn, items[taken])
        for child, receive in children:
            done.update(_collect(child, receive))
    return [done[index] for index in range(len(items))]


def _stop(child: Any, receive: Pipe) -> None:
    if child.is_alive():
        child.kill()
    child.join()
    receive.close()


def _take(counter: Any, total: int) -> int | None:
    with counter.get_lock():
        index = int(counter.value)
        if index >= total:
            return None
        counter.value = index + 1
    return index


def _collect(child: Any, receive: Pipe) -> dict[int, Any]:
    wait([receive, child.sentinel])
    try:
        status, payload = receive.recv()
    except EOFError:  # died without a word (killed, out of memory)
        raise WorkerFailed(f"worker exit code {child.exitcode}") from None
    if status != "ok":
        raise WorkerFailed(payload)
    return dict(payload)


def _export_view(conn: Connection, stack: ExitStack) -> str:
    # REPEATABLE READ: this process then reads the very snapshot it exports (in READ
    # COMMITTED each statement would take a newer one).
    isolation = conn.get_isolation_level()
    conn.execution_options(isolation_level="REPEATABLE READ")
    stack.callback(conn.execution_options, isolation_level=isolation)
    stack.enter_context(conn.begin())
    view = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    if not _SNAPSHOT_ID.fullmatch(view):  # it goes into SQL text: SET takes no parameters
        raise WorkerFailed("unexpected snapshot id")
    return view


@dataclass(frozen=True)
class _Shared(Generic[T, R]):
    """What a child inherits: the items, the work, the shared counter, the snapshot id."""

    items: Sequence[T]
    work: Callable[[Connection, T], R]
    counter: Any
    view: str | None


def _child(parent: Connection, shared: _Shared[T, R], send: Pipe) -> None:
    # The parent's connection object came along with the fork: never touched here. The
    # engine's pool is left to the parent (dispose(close=False), SQLAlchemy's recipe for
    # forked processes), and this process opens a connection of its own.
    try:
        engine = parent.engine
        engine.dispose(close=False)
        done: list[tuple[int, R]] = []
        with ExitStack() as stack:
            try:
                conn = stack.enter_context(engine.connect())
                if shared.view is not None:  # SET TRANSACTION SNAPSHOT needs REPEATABLE READ
                    conn.execution_options(isolation_level="REPEATABLE READ")
                stack.enter_context(conn.begin())
                if shared.view is not None:
                    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{shared.view}'")
            except Exception as exc:  # any failure to get ready means: sit this one out
                # No connection for this worker (a connection limit for the restore user,
                # say): it takes no work, and the others, the parent at least, do it all. A
                # worker only takes items once it is connected, so none is lost.
                logger.debug("a scan worker could not connect (%s); the others do its share",
                             type(exc).__name__)
                send.send(("ok", []))
                return
            while (index := _take(shared.counter, len(shared.items))) is not None:
                done.append((index, shared.work(conn, shared.items[index])))
        send.send(("ok", done))
    except BaseException as exc:
        # the class name only: a driver's message can quote row values
        send.send(("failed", type(exc).__name__))
    finally:
        send.close()


__all__ = ["WorkerFailed", "can_fork", "default_workers", "fan_out"]
