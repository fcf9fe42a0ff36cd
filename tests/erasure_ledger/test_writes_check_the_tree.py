"""A write never builds on a ledger that does not verify.

``append`` (single, bulk, completion) and ``checkpoint`` first establish that the stored tree
is what its newest signed checkpoint says (ledger-format §7.2): no checkpoint was signed past
the head, the head's tree nodes fold to its signed root, and every stored leaf is there and
hashes to that root. Otherwise they raise the IntegrityError that names the failure (exit 3),
prefixed with what was refused, and write nothing: no entry, no key row, no checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

import erasure_ledger.ledger as ledger_module
from erasure_ledger import (
    Entry,
    IntegrityError,
    Keyring,
    Ledger,
    MemoryStore,
    TamperedEntryError,
    imports,
    open_store,
)
from erasure_ledger.stores import Head, StoredLeaf
from tests.cli.conftest import CliLedger, InitialisedLedger
from tests.conftest import FIXED_NOW, make_entry

REFUSED_APPEND = "refusing to append to a ledger that does not verify: "
ALTERED = "checkpoint at size 3 does not match the stored entries: entries 0..2 altered, swapped or removed"


def snapshot(ledger: Ledger) -> tuple[Head, list[StoredLeaf], list[tuple[int, str]], int]:
    """Everything a refused write must leave as it was."""
    store = ledger.store
    return (
        store.read_head(),
        list(store.iter_leaves(0, store.read_head().size + 5)) if isinstance(store, MemoryStore) else [],
        list(store.iter_checkpoints()),
        len(list(store.iter_key_rows())),
    )


def flip_a_byte(store: MemoryStore, seq: int) -> None:
    leaf = store.leaves[seq]
    data = bytearray(leaf.data)
    data[40] ^= 0x01
    store.leaves[seq] = StoredLeaf(leaf.seq, leaf.request_id, bytes(data))


@pytest.fixture
def three(memory_ledger: Callable[..., Ledger]) -> Ledger:
    return memory_ledger([make_entry("R0"), make_entry("R1"), make_entry("R2")])


# -- what is refused ---------------------------------------------------------------------------


def test_an_altered_entry_stops_an_append_and_nothing_is_written(three):
    flip_a_byte(three.store, 1)
    before = snapshot(three)

    with pytest.raises(TamperedEntryError, match=f"^{REFUSED_APPEND}{ALTERED}$"):
        three.append([make_entry("Z-9")], now=FIXED_NOW)

    assert snapshot(three) == before


def test_a_removed_last_entry_stops_an_append(three):
    store = three.store
    del store.leaves[2]
    before = snapshot(three)

    with pytest.raises(TamperedEntryError, match=f"^{REFUSED_APPEND}entry 2: missing from the store$"):
        three.append([make_entry("Z-9")], now=FIXED_NOW)

    assert snapshot(three) == before


def test_a_head_rolled_back_behind_a_signed_checkpoint_stops_an_append(three):
    store = three.store
    older = store.checkpoints[2]
    nodes = tuple(ledger_module.merkle.CompactRange.from_nodes(3, store.head.nodes).nodes())[:1]
    store.head = Head(size=2, nodes=nodes, checkpoint=older)  # a consistent older head
    del store.leaves[2]
    before = snapshot(three)

    with pytest.raises(
        TamperedEntryError,
        match=f"^{REFUSED_APPEND}checkpoint at size 3 was signed but the ledger holds 2 entries: "
        r"entries 2\.\.2 were removed$",
    ):
        three.append([make_entry("Z-9")], now=FIXED_NOW)

    assert snapshot(three) == before


def test_a_completion_is_refused_like_any_other_entry(three):
    flip_a_byte(three.store, 0)
    with pytest.raises(TamperedEntryError, match=f"^{REFUSED_APPEND}"):
        three.append([Entry.completion("R0", effective="2026-11-09T14:00:00Z")], now=FIXED_NOW)


@pytest.mark.parametrize("lines", [3, 12], ids=["serial", "parallel workers"])
def test_an_import_file_is_refused_before_it_is_sealed(three, tmp_path, monkeypatch, lines):
    monkeypatch.setattr(imports, "PARALLEL_THRESHOLD", 10)
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "".join(
            json.dumps({"request_id": f"B{i}", "kind": "erasure", "identifiers": {"email": f"b{i}@x.nl"}}) + "\n"
            for i in range(lines)
        ),
        encoding="utf-8",
    )
    flip_a_byte(three.store, 2)
    before = snapshot(three)

    with pytest.raises(TamperedEntryError, match=f"^{REFUSED_APPEND}{ALTERED}$"):
        three.append_jsonl(path, now=FIXED_NOW, workers=2)

    assert snapshot(three) == before


def test_no_checkpoint_is_signed_or_given_out_for_an_altered_ledger(three):
    flip_a_byte(three.store, 1)
    before = snapshot(three)

    with pytest.raises(
        TamperedEntryError, match=f"^refusing to give out a checkpoint of a ledger that does not verify: {ALTERED}$"
    ):
        three.checkpoint()

    assert snapshot(three) == before


def test_a_forged_head_checkpoint_is_refused(three, memory_ledger):
    other = memory_ledger([make_entry("X0"), make_entry("X1"), make_entry("X2")], origin="test.example/ledger")
    store = three.store
    store.head = Head(size=3, nodes=other.store.head.nodes, checkpoint=other.store.head.checkpoint)
    with pytest.raises(IntegrityError, match=f"^{REFUSED_APPEND}"):
        three.append([make_entry("Z-9")], now=FIXED_NOW)


# -- what still works --------------------------------------------------------------------------


def test_an_intact_ledger_appends_and_checkpoints_as_before(three):
    assert three.verify_head().size == 3
    assert three.append([make_entry("R3")], now=FIXED_NOW).seqs == (3,)
    assert three.checkpoint().checkpoint.size == 4
    assert three.verify().tree_size == 4


def test_a_new_ledger_is_checked_and_signed_from_its_empty_tree():
    ledger = Ledger.create(MemoryStore(), Keyring.generate("test.example/new"), now=FIXED_NOW)
    assert ledger.verify_head().size == 0
    assert ledger.append([make_entry("R0")], now=FIXED_NOW).seqs == (0,)


# -- the same on SQL stores, serial and on every core ------------------------------------------


def sql_ledger(location: str, entries: int) -> Ledger:
    ledger = Ledger.create(open_store(location, create=True), Keyring.generate("test.example/sql"), now=FIXED_NOW)
    ledger.append([make_entry(f"R{i}") for i in range(entries)], now=FIXED_NOW)
    ledger.append([make_entry(f"S{i}") for i in range(3)], now=FIXED_NOW)
    return ledger


def test_an_altered_entry_stops_an_append_on_sqlite_postgresql_and_mariadb(db_url):
    ledger = sql_ledger(db_url, 5)
    try:
        engine = ledger.store.engine  # type: ignore[attr-defined]
        with engine.begin() as conn:
            data = conn.exec_driver_sql("SELECT data FROM erasure_ledger_leaves WHERE seq = 3").scalar_one()
            altered = bytes(data[:40]) + bytes([data[40] ^ 1]) + bytes(data[41:])
            conn.exec_driver_sql(
                "UPDATE erasure_ledger_leaves SET data = ? WHERE seq = 3"
                if engine.dialect.paramstyle == "qmark"
                else "UPDATE erasure_ledger_leaves SET data = %s WHERE seq = 3",
                (altered,),
            )
        before = (ledger.store.read_head(), list(ledger.store.iter_checkpoints()))

        with pytest.raises(TamperedEntryError, match=f"^{REFUSED_APPEND}checkpoint at size 8 does not match"):
            ledger.append([make_entry("Z-9")], now=FIXED_NOW)
        with pytest.raises(TamperedEntryError, match=r"^refusing to give out a checkpoint"):
            ledger.checkpoint()

        assert (ledger.store.read_head(), list(ledger.store.iter_checkpoints())) == before
    finally:
        ledger.store.close()


def test_the_check_runs_on_every_core_for_a_large_sql_ledger(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_THRESHOLD", 8)
    monkeypatch.setattr(ledger_module, "PARALLEL_VERIFY_SUBTREE", 4)
    monkeypatch.setattr(ledger_module.os, "cpu_count", lambda: 2)
    path = tmp_path / "ledger.db"
    ledger = sql_ledger(str(path), 20)
    assert ledger.append([make_entry("OK")], now=FIXED_NOW).seqs == (23,)
    with closing(sqlite3.connect(path)) as db:
        db.execute("DELETE FROM erasure_ledger_leaves WHERE seq = 9")
        db.commit()

    with pytest.raises(TamperedEntryError, match=f"^{REFUSED_APPEND}entry 9: missing from the store$"):
        ledger.append([make_entry("Z-9")], now=FIXED_NOW)

    assert ledger.store.read_head().size == 24


# -- end to end: the trial's repro -------------------------------------------------------------


def altered_cli_ledger(initialised_ledger: InitialisedLedger) -> CliLedger:
    ledger = initialised_ledger()
    for i in range(3):
        ledger.append(f"R-{i}", "--email", f"a{i}@example.nl")
    with closing(sqlite3.connect(ledger.path)) as db:
        data = bytearray(db.execute("SELECT data FROM erasure_ledger_leaves WHERE seq = 1").fetchone()[0])
        data[40] ^= 0x01
        db.execute("UPDATE erasure_ledger_leaves SET data = ? WHERE seq = 1", (bytes(data),))
        db.commit()
    return ledger


def table_counts(path: Path) -> tuple[int, int, int]:
    with closing(sqlite3.connect(path)) as db:
        return tuple(  # type: ignore[return-value]
            db.execute(f"SELECT count(*) FROM erasure_ledger_{table}").fetchone()[0]
            for table in ("leaves", "keys", "checkpoints")
        )


@pytest.mark.parametrize(
    ("command", "refused"),
    [
        (["append", "--request-id", "Z-9", "--kind", "erasure", "--email", "z@z.nl"], "append to"),
        (["complete", "R-0", "--effective", "2026-11-09T14:00:00Z"], "append to"),
        (["checkpoint", "--out", "cp.txt"], "give out a checkpoint of"),
    ],
    ids=["append", "complete", "checkpoint"],
)
def test_the_cli_refuses_to_write_to_an_altered_ledger_with_exit_3_and_one_line(
    initialised_ledger, command, refused, monkeypatch
):
    ledger = altered_cli_ledger(initialised_ledger)
    monkeypatch.chdir(ledger.directory)
    before = table_counts(ledger.path)

    result = ledger.run(*command, env=ledger.env)

    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"erasure-ledger: error: refusing to {refused} a ledger that does not verify: "
        "checkpoint at size 3 does not match the stored entries: entries 0..2 altered, swapped or removed\n"
    )
    assert "z@z.nl" not in result.output
    assert table_counts(ledger.path) == before
    assert not (ledger.directory / "cp.txt").exists()


def test_a_head_that_goes_back_while_an_append_waits_for_the_lock_is_refused(three, monkeypatch):
    store = three.store
    head_before, leaves_before, checkpoints_before = store.head, list(store.leaves), dict(store.checkpoints)
    three.append([make_entry("R3")], now=FIXED_NOW)
    checked = store.head  # what the check saw; then the store is rolled back behind its back
    store.head, store.leaves, store.checkpoints = head_before, leaves_before, checkpoints_before
    monkeypatch.setattr(three, "verify_head", lambda **_: checked)

    with pytest.raises(
        IntegrityError,
        match=r"^the tree head went back from size 4 to 3 during this operation \(rolled back outside the ledger\)$",
    ):
        three.append([make_entry("Z-9")], now=FIXED_NOW)

    assert store.head == head_before
