"""The SQL store on real SQLite, PostgreSQL and MariaDB: atomic, serialised, durable."""

from __future__ import annotations

import multiprocessing

import pytest

from erasure_ledger import (
    DuplicateRequestError,
    Keyring,
    Ledger,
    StorageError,
    TamperedEntryError,
    UsageError,
    open_store,
)
from erasure_ledger.stores import AppendBatch, Head, KeyRow, StoredLeaf
from tests.conftest import FIXED_NOW, make_entry


@pytest.fixture
def sql_ledger(db_url):
    store = open_store(db_url, create=True)
    ledger = Ledger.create(store, Keyring.generate("test.example/sql"), now=FIXED_NOW)
    yield ledger
    store.close()


def test_a_ledger_round_trips_through_the_database(sql_ledger, db_url):
    sql_ledger.append([make_entry("R1", identifiers={"phone": "0416-853988"}), make_entry("R2")], now=FIXED_NOW)
    reopened = Ledger.open(open_store(db_url), sql_ledger.keyring)
    opened = reopened.show(0)
    assert opened.entry is not None
    assert opened.entry.identifiers[0].value == "+31416853988"
    assert reopened.verify().tree_size == 2
    assert [m.request_id for m in reopened.lookup([opened.entry.identifiers[0]])] == ["R1"]


def test_creating_a_second_ledger_in_the_same_place_is_refused(sql_ledger, db_url):
    with pytest.raises(UsageError, match="a ledger already exists at"):
        Ledger.create(open_store(db_url, create=True), Keyring.generate("x.example/l"), now=FIXED_NOW)


def test_opening_an_empty_database_says_there_is_no_ledger(db_url):
    store = open_store(db_url, create=True)
    with pytest.raises(UsageError, match="no ledger at"):
        Ledger.open(store)


def test_a_missing_sqlite_file_is_not_created_by_reading(tmp_path):
    path = tmp_path / "nothing.db"
    with pytest.raises(UsageError, match=r"no ledger at sqlite:///.*nothing\.db"):
        open_store(str(path))
    assert not path.exists()


def test_a_duplicate_request_id_leaves_the_database_unchanged(sql_ledger):
    sql_ledger.append([make_entry("R1")], now=FIXED_NOW)
    with pytest.raises(DuplicateRequestError, match="request R1 is already in the ledger"):
        sql_ledger.append([make_entry("R2"), make_entry("R1")], now=FIXED_NOW)
    assert [m.request_id for m in sql_ledger.list_entries()] == ["R1"]
    assert sql_ledger.store.read_head().size == 1


def test_an_append_that_fails_half_way_writes_nothing(sql_ledger):
    sql_ledger.append([make_entry("R1")], now=FIXED_NOW)
    head_before = sql_ledger.store.read_head()

    def broken_prepare(head: Head) -> AppendBatch:
        # The second key row collides with the first: the database refuses mid-transaction.
        leaves = [StoredLeaf(head.size, "X1", b"{}"), StoredLeaf(head.size + 1, "X2", b"{}")]
        row = KeyRow(head.size, "kek-1", b"w", b"", b"m")
        return AppendBatch(leaves=leaves, key_rows=[row, row], head=Head(head.size + 2, (), None))

    with pytest.raises(StorageError):
        sql_ledger.store.append(broken_prepare)
    assert sql_ledger.store.read_head() == head_before
    assert [leaf.request_id for leaf in sql_ledger.store.iter_leaves()] == ["R1"]
    sql_ledger.verify()


def test_a_deleted_leaf_row_is_reported_as_missing(sql_ledger):
    import sqlalchemy as sa

    sql_ledger.append([make_entry(f"R{i}") for i in range(3)], now=FIXED_NOW)
    engine = sql_ledger.store.engine
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM erasure_ledger_leaves WHERE seq = 1"))
    with pytest.raises(TamperedEntryError, match="entry 1: missing from the store"):
        sql_ledger.verify()


def test_read_key_row_reads_one_row_or_none(sql_ledger, db_url):
    sql_ledger.append([make_entry(f"R{i}") for i in range(3)], now=FIXED_NOW)
    store = open_store(db_url)
    rows = list(store.iter_key_rows())
    assert [store.read_key_row(seq) for seq in range(3)] == rows
    assert store.read_key_row(3) is None
    sql_ledger.shred([1])
    shredded = store.read_key_row(1)
    assert shredded is not None
    assert (shredded.shredded, shredded.tokens) == (True, b"")
    assert store.read_key_row(2) == rows[2]
    store.close()


def test_show_reads_only_its_own_key_row_and_still_refuses_a_missing_one(sql_ledger, db_url, monkeypatch):
    import sqlalchemy as sa

    sql_ledger.append([make_entry(f"R{i}") for i in range(3)], now=FIXED_NOW)
    store = open_store(db_url)
    ledger = Ledger.open(store, sql_ledger.keyring)

    def no_walk():
        raise AssertionError("show walked every key row")

    monkeypatch.setattr(store, "iter_key_rows", no_walk)
    opened = ledger.show(1)
    assert opened.entry is not None
    assert opened.entry.request_id == "R1"
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM erasure_ledger_keys WHERE seq = 1"))
    with pytest.raises(TamperedEntryError, match=r"^entry 1: its key row is missing$"):
        ledger.show(1)
    store.close()


def _append_many(location: str, keyring_text: str, worker: int, count: int) -> None:
    ledger = Ledger.open(open_store(location), Keyring.from_json(keyring_text))
    for i in range(count):
        ledger.append([make_entry(f"W{worker}-{i}")], now=FIXED_NOW)
    ledger.store.close()


def test_concurrent_appenders_in_several_processes_never_lose_or_reuse_a_sequence_number(sql_ledger, db_url):
    keyring_text = sql_ledger.keyring.to_json()
    sql_ledger.store.close()
    ctx = multiprocessing.get_context("spawn")
    workers, per_worker = 4, 8
    procs = [ctx.Process(target=_append_many, args=(db_url, keyring_text, w, per_worker)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * workers
    ledger = Ledger.open(open_store(db_url), sql_ledger.keyring)
    metas = list(ledger.list_entries())
    assert [m.seq for m in metas] == list(range(workers * per_worker))
    assert {m.request_id for m in metas} == {f"W{w}-{i}" for w in range(workers) for i in range(per_worker)}
    result = ledger.verify()
    assert result.tree_size == workers * per_worker
    assert result.checkpoints_checked == workers * per_worker + 1
    assert ledger.check_key_rows() == workers * per_worker


def test_sqlite_overwrites_a_shredded_key_on_disk(tmp_path):
    path = tmp_path / "ledger.db"
    ledger = Ledger.create(open_store(str(path), create=True), Keyring.generate("t.example/l"), now=FIXED_NOW)
    ledger.append([make_entry("R1")], now=FIXED_NOW)
    wrapped = next(ledger.store.iter_key_rows()).wrapped_key
    assert wrapped is not None
    ledger.shred([0])
    ledger.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("ledger.db"))
    assert wrapped not in raw


def test_an_unreachable_server_is_a_storage_error_with_the_password_redacted():
    store = open_store("postgresql+psycopg://user:sekrit@127.0.0.1:1/nothing")
    with pytest.raises(StorageError) as caught:
        Ledger.open(store)
    assert "sekrit" not in str(caught.value)
    assert "postgresql+psycopg://user:***@127.0.0.1:1/nothing" in str(caught.value)


def test_a_url_without_a_driver_is_a_usage_error():
    with pytest.raises(UsageError, match="no database driver for"):
        open_store("nosuchdialect://x/y")


def test_store_location_never_shows_a_password():
    store = open_store("postgresql+psycopg://user:sekrit@127.0.0.1:1/nothing")
    assert store.location == "postgresql+psycopg://user:***@127.0.0.1:1/nothing"


def test_a_large_ledger_is_verified_on_several_cores_with_the_same_result(sql_ledger, monkeypatch):
    import erasure_ledger.ledger as ledger_module
    import erasure_ledger.stores.sql as sql_module

    sql_ledger.append([make_entry(f"R{i}") for i in range(25)], now=FIXED_NOW)
    sql_ledger.append([make_entry(f"S{i}") for i in range(7)], now=FIXED_NOW)
    serial = sql_ledger.verify()
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_THRESHOLD", 1)
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_SUBTREE", 4)  # many subtrees, so the
    monkeypatch.setattr(sql_module, "PAGE", 4)  # workers share the work, in several tasks
    parallel = sql_ledger.verify()
    assert parallel == serial


def test_tampering_is_found_on_the_parallel_path_too(sql_ledger, monkeypatch):
    import sqlalchemy as sa

    import erasure_ledger.ledger as ledger_module
    import erasure_ledger.stores.sql as sql_module

    sql_ledger.append([make_entry(f"R{i}") for i in range(10)], now=FIXED_NOW)
    with sql_ledger.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE erasure_ledger_leaves SET data = :d WHERE seq = 3"), {"d": b"{}"})
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_THRESHOLD", 1)
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_SUBTREE", 4)
    monkeypatch.setattr(sql_module, "PAGE", 4)
    with pytest.raises(TamperedEntryError, match=r"checkpoint at size 10 does not match the stored entries: "
                                                 r"entries 0\.\.9 altered"):
        sql_ledger.verify()


@pytest.mark.parametrize("missing", [0, 5, 13])
def test_a_missing_leaf_is_named_on_the_parallel_path(sql_ledger, monkeypatch, missing):
    import sqlalchemy as sa

    import erasure_ledger.ledger as ledger_module
    import erasure_ledger.stores.sql as sql_module

    sql_ledger.append([make_entry(f"R{i}") for i in range(7)], now=FIXED_NOW)
    sql_ledger.append([make_entry(f"S{i}") for i in range(7)], now=FIXED_NOW)
    with sql_ledger.store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM erasure_ledger_leaves WHERE seq = :s"), {"s": missing})
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_THRESHOLD", 1)
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_SUBTREE", 4)
    monkeypatch.setattr(sql_module, "PAGE", 4)
    with pytest.raises(TamperedEntryError, match=rf"^entry {missing}: missing from the store$"):
        sql_ledger.verify()
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_THRESHOLD", 1 << 62)  # the same on one core
    with pytest.raises(TamperedEntryError, match=rf"^entry {missing}: missing from the store$"):
        sql_ledger.verify()


@pytest.mark.parametrize("missing", [0, 5, 6, 13])
def test_reading_leaves_stops_at_a_missing_one_and_names_it(sql_ledger, monkeypatch, missing):
    import sqlalchemy as sa

    import erasure_ledger.stores.sql as sql_module

    sql_ledger.append([make_entry(f"R{i}") for i in range(14)], now=FIXED_NOW)
    with sql_ledger.store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM erasure_ledger_leaves WHERE seq = :s"), {"s": missing})
    monkeypatch.setattr(sql_module, "PAGE", 4)  # a gap at a page's start, middle and end
    read = []
    with pytest.raises(TamperedEntryError, match=rf"^entry {missing}: missing from the store$"):
        read.extend(leaf.seq for leaf in sql_ledger.store.iter_leaves())
    assert read == list(range(missing))  # every leaf before the gap, in order, then the error
    with pytest.raises(TamperedEntryError, match=rf"^entry {missing}: missing from the store$"):
        sql_ledger.open_all()


def test_key_rows_read_in_pages_are_the_rows_written(sql_ledger, monkeypatch):
    import erasure_ledger.stores.sql as sql_module

    sql_ledger.append([make_entry(f"R{i}") for i in range(9)], now=FIXED_NOW)
    sql_ledger.shred([4])
    monkeypatch.setattr(sql_module, "PAGE", 4)
    rows = list(sql_ledger.store.iter_key_rows())
    assert [r.seq for r in rows] == list(range(9))
    assert rows == [sql_ledger.store.read_key_row(s) for s in range(9)]
    assert rows[4].shredded
    assert rows[4].kek_id is None
    assert rows[4].tokens == b""
    assert all(type(r.mac) is bytes and type(r.tokens) is bytes for r in rows)
    assert [o.seq for o in sql_ledger.open_all()[1]] == list(range(9))
