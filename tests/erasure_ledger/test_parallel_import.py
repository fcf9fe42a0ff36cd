"""Ledger.append_jsonl: large files parsed and sealed by worker processes write exactly what
Ledger.append writes, name the first bad line, and append nothing on failure."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from erasure_ledger import (
    DuplicateRequestError,
    Keyring,
    Ledger,
    MemoryStore,
    UsageError,
    imports,
    open_store,
)
from erasure_ledger.imports import ParallelImport, read_jsonl
from tests.conftest import FIXED_NOW, make_entry


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """The parallel path from 10 lines on, in chunks of 7, so a few dozen lines cross chunks."""
    monkeypatch.setattr(imports, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(imports, "_CHUNK", 7)


def record(i: int, **fields: object) -> str:
    ids: dict[str, object] = {"email": f"P{i}@Example.NL "}
    if i % 3 == 0:
        ids["phone"] = "0416-853988"
    if i % 4 == 0:
        ids["customer_number"] = [f"C{i}", f"D{i}"]
    return json.dumps({"request_id": f"R{i}", "kind": "erasure", "identifiers": ids, **fields})


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def new_ledger(keyring: Keyring) -> Ledger:
    return Ledger.create(MemoryStore(), keyring, now=FIXED_NOW)


def contents(ledger: Ledger) -> tuple[list[object], list[object], object]:
    store = ledger.store
    assert isinstance(store, MemoryStore)
    return list(store.leaves), [store.key_rows[s] for s in sorted(store.key_rows)], store.head


def test_workers_write_byte_for_byte_what_a_plain_append_writes(tmp_path, monkeypatch):
    """With the randomness fixed, the parallel import and Ledger.append of the same entries
    give identical leaves, key rows, tree head and signed checkpoint."""
    keyring = Keyring.generate("test.example/import")
    serial, parallel = new_ledger(keyring), new_ledger(keyring)
    monkeypatch.setattr(os, "urandom", bytes)  # all zeros; inherited by the forked workers
    serial.append([make_entry("X0")], now=FIXED_NOW)
    parallel.append([make_entry("X0")], now=FIXED_NOW)
    # blank lines too: they shift line numbers but not sequence numbers
    path = write(tmp_path / "in.jsonl", [record(i) if i % 11 else "" for i in range(1, 41)])
    serial.append(read_jsonl(path, workers=1), now=FIXED_NOW)
    result = parallel.append_jsonl(path, now=FIXED_NOW, workers=2)
    assert contents(parallel) == contents(serial)
    assert result.seqs == tuple(range(1, 38))
    assert result.tree_size == 38


def test_a_parallel_import_verifies_and_every_entry_opens(tmp_path):
    ledger = new_ledger(Keyring.generate("test.example/import"))
    path = write(tmp_path / "in.jsonl", [record(i) for i in range(1, 41)])
    ledger.append_jsonl(path, now=FIXED_NOW, workers=2)
    assert ledger.verify().tree_size == 40
    assert ledger.check_key_rows() == 40
    _, opened = ledger.open_all()
    assert [o.entry for o in opened] == read_jsonl(path, workers=1)
    phone = next(i for i in opened[2].entry.identifiers if i.type == "phone")  # type: ignore[union-attr]
    assert phone.value == "+31416853988"
    assert [m.request_id for m in ledger.lookup([phone])] == [f"R{i}" for i in range(3, 41, 3)]


@pytest.mark.parametrize(
    ("bad", "number", "message"),
    [
        ("{oops", 23, "not valid JSON"),
        (
            json.dumps({"request_id": "B", "kind": "erasure", "identifiers": {"iban": "NL00BAD"}}),
            23,
            "iban: ",
        ),
        ("[1, 2]", 9, "each line must be a JSON object"),
    ],
)
def test_the_first_bad_line_is_named_by_number_and_nothing_is_appended(tmp_path, bad, number, message):
    ledger = new_ledger(Keyring.generate("test.example/import"))
    ledger.append([make_entry("X0")], now=FIXED_NOW)
    before = contents(ledger)
    lines = [record(i) for i in range(1, 41)]
    lines[number - 1] = bad
    lines[30] = "{also bad"  # a later bad line, in another chunk, is not the one named
    lines[4] = ""  # blank lines count as lines
    with pytest.raises(UsageError, match=rf"in.jsonl:{number}: {message}.*nothing was appended$"):
        ledger.append_jsonl(write(tmp_path / "in.jsonl", lines), now=FIXED_NOW, workers=2)
    assert contents(ledger) == before


def test_a_request_id_repeated_across_chunks_names_its_second_line(tmp_path):
    ledger = new_ledger(Keyring.generate("test.example/import"))
    lines = [record(i) for i in range(1, 41)]
    lines[32] = record(2)
    with pytest.raises(UsageError, match=r"in.jsonl:33: request R2 appears twice in the file"):
        ledger.append_jsonl(write(tmp_path / "in.jsonl", lines), now=FIXED_NOW, workers=2)
    assert ledger.store.read_head().size == 0


def test_a_request_id_already_stored_appends_nothing(tmp_path):
    ledger = new_ledger(Keyring.generate("test.example/import"))
    ledger.append([make_entry("R17")], now=FIXED_NOW)
    before = contents(ledger)
    with pytest.raises(DuplicateRequestError, match="request R17 is already in the ledger"):
        ledger.append_jsonl(
            write(tmp_path / "in.jsonl", [record(i) for i in range(1, 41)]), now=FIXED_NOW, workers=2
        )
    assert contents(ledger) == before


def test_a_file_of_blank_lines_has_no_entries(tmp_path):
    ledger = new_ledger(Keyring.generate("test.example/import"))
    with pytest.raises(UsageError, match="no entries"):
        ledger.append_jsonl(write(tmp_path / "in.jsonl", [""] * 30), now=FIXED_NOW, workers=2)


def test_a_completion_record_is_refused_by_line_number(tmp_path):
    ledger = new_ledger(Keyring.generate("test.example/import"))
    lines = [record(i) for i in range(1, 30)]
    lines[20] = json.dumps({"request_id": "R5#completed", "kind": "completion", "identifiers": {}})
    with pytest.raises(UsageError, match=r"in\.jsonl:21: a completion names the request it completes"):
        ledger.append_jsonl(write(tmp_path / "in.jsonl", lines), now=FIXED_NOW, workers=2)


def test_when_another_appender_moves_the_head_the_file_is_sealed_again(tmp_path, monkeypatch):
    ledger = new_ledger(Keyring.generate("test.example/import"))
    other = Ledger.open(ledger.store, ledger.keyring)
    calls: list[int] = []
    seal = ParallelImport.seal

    def seal_then_interfere(self: ParallelImport, start: int):  # type: ignore[no-untyped-def]
        calls.append(start)
        sealed = seal(self, start)
        if len(calls) == 1:
            other.append([make_entry("INTERLOPER")], now=FIXED_NOW)
        return sealed

    monkeypatch.setattr(ParallelImport, "seal", seal_then_interfere)
    result = ledger.append_jsonl(
        write(tmp_path / "in.jsonl", [record(i) for i in range(1, 41)]), now=FIXED_NOW, workers=2
    )
    assert calls == [0, 1]
    assert result.seqs == tuple(range(1, 41))
    assert ledger.verify().tree_size == 41
    _, opened = ledger.open_all()
    assert [o.meta.request_id for o in opened] == ["INTERLOPER"] + [f"R{i}" for i in range(1, 41)]


def test_small_files_and_one_worker_take_the_plain_path(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the process pool was used")

    monkeypatch.setattr(ParallelImport, "__enter__", refuse)
    ledger = new_ledger(Keyring.generate("test.example/import"))
    assert ledger.append_jsonl(
        write(tmp_path / "a.jsonl", [record(i) for i in range(1, 8)]), now=FIXED_NOW
    ).seqs == (tuple(range(7)))
    path = write(tmp_path / "b.jsonl", [record(i) for i in range(10, 40)])
    assert ledger.append_jsonl(path, now=FIXED_NOW, workers=1).tree_size == 37


def test_a_parallel_import_into_sqlite_round_trips(tmp_path):
    keyring = Keyring.generate("test.example/import")
    ledger = Ledger.create(open_store(str(tmp_path / "l.db"), create=True), keyring, now=FIXED_NOW)
    ledger.append_jsonl(
        write(tmp_path / "in.jsonl", [record(i) for i in range(1, 41)]), now=FIXED_NOW, workers=2
    )
    ledger.store.close()
    reopened = Ledger.open(open_store(str(tmp_path / "l.db")), keyring)
    assert reopened.verify().tree_size == 40
    _, opened = reopened.open_all()
    assert [o.entry for o in opened] == read_jsonl(tmp_path / "in.jsonl", workers=1)
    reopened.store.close()
