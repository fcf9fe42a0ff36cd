"""The residual scan shared by worker processes finds exactly what one process finds.

``verify`` and the scan at the end of ``apply`` hand their passes (a table's identifier
columns, its other text columns, or one range of a large table's integer key) to this
process and forked workers, each on its own connection (:mod:`reconciler.fanout`). Splitting
must neither lose nor repeat a row: sparse, negative and boundary keys included. A worker's
failure stops the scan with its exception's class name only, never a value. On PostgreSQL
every worker reads the parent's snapshot, so the scan sees one moment of the database.

Database tests run on SQLite, PostgreSQL and MariaDB (the ``db_url`` fixture).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from erasure_ledger import Ledger
from reconciler import scan as scan_module
from reconciler.datamap import DataMap
from reconciler.errors import SnapshotError
from reconciler.fanout import WorkerFailed, can_fork, default_workers, fan_out
from reconciler.replay import replay, verify
from tests.reconciler.conftest import AS_OF, HASH_KEY, SHOP_MAP, load, shop_metadata

MakeLedger = Callable[..., Ledger]

JAN = {"request_id": "DSR-1", "kind": "erasure",
       "identifiers": {"email": "jan@example.nl", "phone": "+31416853988"}}
# sparse and negative keys, spanning 1,061 (not a multiple of the test's ranges of 20)
NOTE_KEYS = [*range(-60, 0, 7), 0, 1, *range(2, 400, 3), *range(401, 1001, 19), 1000]
RANGE = 20


def names_jan(at: int, key: int) -> bool:
    """Every seventh note, and every note at either edge of a range, names Jan."""
    return at % 7 == 0 or (key - NOTE_KEYS[0]) % RANGE in (0, RANGE - 1) or key == NOTE_KEYS[-1]


def notes_metadata() -> sa.MetaData:
    md = shop_metadata()
    sa.Table("notes", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("body", sa.Text), sa.Column("extra", sa.String(80)))
    return md


def note_rows() -> dict[str, list[dict[str, Any]]]:
    notes = []
    for at, key in enumerate(NOTE_KEYS):
        body = f"note {key}: mail JAN@example.NL" if names_jan(at, key) else f"note {key}"
        extra = "bel 0416 853988" if at % 11 == 0 else None
        notes.append({"id": key, "body": body, "extra": extra})
    return {"customers": [{"id": 1, "email": " Jan@Example.NL ", "phone": "0416-853988",
                           "cust_no": "C-1", "name": "Jan", "newsletter_opt_in": True,
                           "last_active_at": None}],
            "notes": notes}


class Steps:
    """Progress that records its steps."""

    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.labels: list[str] = []

    def phase(self, name: str, total: int | None) -> None:
        self.totals.append(total)

    def step(self, label: str) -> None:
        self.labels.append(label)

    def done(self) -> None:
        pass


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split any table with 40 or more keys into ranges of 20 (the real size is 50,000)."""
    monkeypatch.setattr(scan_module, "_RANGE_KEYS", RANGE)


def test_workers_find_exactly_what_one_process_finds(
        db_url: str, make_ledger: MakeLedger, small_ranges: None) -> None:
    load(db_url, notes_metadata(), note_rows())
    data_map, ledger = DataMap.from_text(SHOP_MAP), make_ledger(JAN)
    alone, shared = Steps(), Steps()
    one = verify(db_url, data_map, ledger, progress=alone, workers=1).scan
    three = verify(db_url, data_map, ledger, progress=shared, workers=3).scan
    assert one == three
    expected = {str(key) for at, key in enumerate(NOTE_KEYS)
                if names_jan(at, key) or at % 11 == 0}
    assert {f.row_key for f in three.findings if f.table == "notes"} == expected
    assert {(f.column, f.how) for f in three.findings if f.table == "notes"} == {
        ("body", "free text"), ("extra", "free text")}
    # one pass per table alone; the notes table in ranges of its key when shared
    assert alone.labels.count("scan notes") == 1
    # and one for a NULL key, which SQLite allows in a key not declared INTEGER PRIMARY KEY
    assert shared.labels.count("scan notes") == -(-(1000 + 1 + 60) // RANGE) + 1
    assert shared.totals == [len(shared.labels)]


def test_after_apply_with_workers_the_scan_is_clean_and_names_no_value(
        db_url: str, make_ledger: MakeLedger, small_ranges: None) -> None:
    load(db_url, notes_metadata(), note_rows())
    result = replay(db_url, DataMap.from_text(SHOP_MAP), make_ledger(JAN), as_of=AS_OF,
                    dry_run=False, hash_key=HASH_KEY, workers=2)
    assert result.scan is not None
    # the notes table is not in the map: its free text stays, found and reported by key
    assert sorted((f.row_key, f.column) for f in result.scan.findings) == sorted(
        [(str(key), "body") for at, key in enumerate(NOTE_KEYS) if names_jan(at, key)]
        + [(str(key), "extra") for at, key in enumerate(NOTE_KEYS) if at % 11 == 0])
    shown = repr(result).lower()
    for value in ("jan@example.nl", "853988"):
        assert value not in shown


def test_a_failing_worker_stops_the_scan_with_its_error_class_only(db_url: str) -> None:
    parent = os.getpid()

    def work(conn: sa.Connection, item: int) -> int:
        if os.getpid() != parent:
            raise ValueError("jan@example.nl is not here")
        time.sleep(0.01)  # leave items for the worker
        return item

    engine = sa.create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn, pytest.raises(WorkerFailed) as failed:
        fan_out(conn, list(range(50)), work, workers=2)
    engine.dispose()
    assert failed.value.kind == "ValueError"
    assert "jan" not in str(failed.value)


def test_a_scan_whose_worker_fails_is_a_snapshot_error(
        shop: str, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    real_run = scan_module._Scanner.run

    def run(self: Any, conn: sa.Connection, one: Any) -> Any:
        if os.getpid() != parent:
            raise sa.exc.OperationalError("SELECT", {}, Exception("jan@example.nl"))
        time.sleep(0.05)
        return real_run(self, conn, one)

    monkeypatch.setattr(scan_module._Scanner, "run", run)
    with pytest.raises(SnapshotError, match=r"the residual scan failed: OperationalError$"):
        verify(shop, DataMap.from_text(SHOP_MAP), make_ledger(JAN), workers=2)


def test_every_process_takes_work_and_results_keep_their_order(db_url: str) -> None:
    started = multiprocessing.get_context("fork").Array("l", 2)

    def work(conn: sa.Connection, item: int) -> tuple[int, int, int]:
        # each item waits (up to 10 s) until both processes have started one: the test fails
        # instead of passing vacuously when only this process did the work
        with started.get_lock():
            if os.getpid() not in started[:]:
                started[started[:].index(0)] = os.getpid()
        deadline = time.monotonic() + 10
        while 0 in started[:] and time.monotonic() < deadline:
            time.sleep(0.005)
        return item, os.getpid(), conn.exec_driver_sql("SELECT 1").scalar_one()

    engine = sa.create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        results = fan_out(conn, list(range(6)), work, workers=2)
        assert not conn.in_transaction()
    engine.dispose()
    assert [item for item, _, _ in results] == list(range(6))
    assert {pid for _, pid, _ in results} == set(started[:])
    assert os.getpid() in started[:]
    assert all(one == 1 for _, _, one in results)


@pytest.mark.postgresql
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_on_postgresql_workers_read_the_parents_snapshot(db_url: str) -> None:
    engine = sa.create_engine(db_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
    context = multiprocessing.get_context("fork")
    started, inserted = context.Array("l", 2), context.Event()
    parent = os.getpid()

    def work(conn: sa.Connection, item: int) -> int:
        with started.get_lock():
            started[item] = os.getpid()
        deadline = time.monotonic() + 10
        while 0 in started[:] and time.monotonic() < deadline:
            time.sleep(0.005)
        if os.getpid() == parent:  # another session commits a row after the export
            with engine.begin() as other:
                other.exec_driver_sql("INSERT INTO t VALUES (3)")
            inserted.set()
        else:
            inserted.wait(10)
        return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())

    with engine.connect() as conn:
        counts = fan_out(conn, [0, 1], work, workers=2)
    assert 0 not in started[:]
    assert parent in started[:]
    assert counts == [2, 2]  # neither process sees the row committed after the export
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 3
    engine.dispose()


def test_an_in_memory_sqlite_database_is_scanned_in_this_process() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        assert not can_fork(conn)
        assert fan_out(conn, [1, 2, 3], lambda _c, item: (item, os.getpid()), workers=4) == [
            (1, os.getpid()), (2, os.getpid()), (3, os.getpid())]
    assert 1 <= default_workers() <= 8


def test_the_cli_takes_workers_and_refuses_zero(tmp_path: Path) -> None:
    from tests.reconciler.test_cli import common, invoke, make_files

    shop = str(tmp_path / "shop.db")
    load(f"sqlite:///{shop}", notes_metadata(), note_rows())
    files = make_files(tmp_path, [JAN])
    for command in ("apply", "verify"):
        args = common(shop, files)
        if command == "verify":
            args = args[:8]  # verify has no --as-of
        result = invoke(command, *args, "--workers", "2")
        # the notes are not in the map: their free text is found (exit 1), by both commands
        assert result.exit_code == 1, result.stderr
        assert "residual personal data found" in result.stderr
    refused = invoke("verify", *common(shop, files)[:8], "--workers", "0")
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1
    assert "--workers" in refused.stderr


def test_a_worker_that_cannot_connect_sits_out_and_the_others_do_its_share(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. a connection limit on the restore user: after an apply has committed, the scan
    # must still run (in fewer processes), never fail for want of a second connection
    parent = os.getpid()
    real_connect = sa.engine.Engine.connect

    def connect(self: sa.engine.Engine) -> sa.Connection:
        if os.getpid() != parent:
            raise sa.exc.OperationalError("connect", {}, Exception("too many connections"))
        return real_connect(self)

    monkeypatch.setattr(sa.engine.Engine, "connect", connect)
    engine = sa.create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        results = fan_out(conn, list(range(8)), lambda _c, item: (item, os.getpid()), workers=3)
    engine.dispose()
    assert results == [(item, parent) for item in range(8)]


def test_a_scan_that_fails_after_apply_committed_is_exit_1_with_the_report(
        tmp_path: Path, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    # The changes stand: the run must not read as "nothing changed" (exit 2), and its report
    # must be written (a second apply finds nothing left to report). Nothing is proven: exit 1.
    from tests.reconciler.test_cli import common, invoke, make_files

    def run(self: Any, conn: sa.Connection, one: Any) -> Any:
        raise sa.exc.OperationalError("SELECT", {}, Exception("jan@example.nl"))

    shop = str(tmp_path / "shop.db")
    load(f"sqlite:///{shop}", shop_metadata(), note_rows())
    files = make_files(tmp_path, [JAN])
    report = tmp_path / "r.json"
    monkeypatch.setattr(scan_module._Scanner, "run", run)
    result = invoke("apply", *common(shop, files), "--report", str(report), "--workers", "1")
    assert (result.exit_code, result.stderr) == (1, (
        f"reconciler: error: snapshot {shop}: the residual scan failed: OperationalError; the "
        "changes were applied and committed, nothing is proven: run reconciler verify to scan "
        "again; see the report\n"))
    written = json.loads(report.read_text())
    assert written["residual_scan_failed"].endswith("the residual scan failed: OperationalError")
    assert written["totals"]["rows_changed"] > 0
    assert "not proven" in report.with_suffix(".md").read_text()
    assert "jan" not in result.stderr + result.stdout + report.read_text().lower()
    engine = sa.create_engine(f"sqlite:///{shop}", poolclass=NullPool)
    with engine.connect() as conn:  # the apply did commit: Jan is anonymized
        assert conn.exec_driver_sql("SELECT email FROM customers WHERE id = 1").scalar_one() != (
            " Jan@Example.NL ")
    engine.dispose()



def test_rows_with_a_null_key_are_scanned_when_the_table_is_split(
        tmp_path: Path, make_ledger: MakeLedger, small_ranges: None) -> None:
    # SQLite lets a BIGINT (or INT) PRIMARY KEY be NULL; MIN/MAX and every key range skip it
    url = f"sqlite:///{tmp_path / 'memo.db'}"
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE memo (id BIGINT PRIMARY KEY, body TEXT)")
        conn.exec_driver_sql("INSERT INTO memo VALUES " + ", ".join(
            f"({key}, 'memo {key}')" for key in range(200)))
        conn.exec_driver_sql("INSERT INTO memo VALUES (NULL, 'mail JAN@example.nl')")
    engine.dispose()
    load(url, shop_metadata(), {})
    data_map, ledger = DataMap.from_text(SHOP_MAP), make_ledger(JAN)
    for workers in (1, 2):
        steps = Steps()
        found = verify(url, data_map, ledger, workers=workers, progress=steps).scan.findings
        assert [(f.table, f.column, f.row_key) for f in found] == [("memo", "body", None)]
        assert steps.labels.count("scan memo") == (1 if workers == 1 else 200 // RANGE + 1)
