"""Ledger.show reads only the key row of the entry it opens (``read_key_row``), and
authenticates it exactly as strictly as the full walk does; a store without ``read_key_row``
still works through the walk."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from erasure_ledger import Keyring, Ledger, MemoryStore, TamperedEntryError
from erasure_ledger.stores import KeyRow
from tests.conftest import FIXED_NOW, make_entry


def ledger_on(store: Any) -> Ledger:
    ledger = Ledger.create(store, Keyring.generate("test.example/show"), now=FIXED_NOW)
    ledger.append([make_entry("R0"), make_entry("R1"), make_entry("R2")], now=FIXED_NOW)
    return ledger


def three_entry_ledger() -> tuple[Ledger, MemoryStore]:
    store = MemoryStore()
    return ledger_on(store), store


class WalkOnlyStore:
    """A third-party store that predates ``read_key_row``: everything but that method."""

    def __init__(self, inner: MemoryStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "read_key_row":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_show_reads_only_the_key_row_of_its_entry(monkeypatch):
    ledger, store = three_entry_ledger()
    asked: list[int] = []
    real = store.read_key_row

    def read_key_row(seq: int) -> KeyRow | None:
        asked.append(seq)
        return real(seq)

    def no_walk() -> Iterator[KeyRow]:
        raise AssertionError("show walked every key row")

    monkeypatch.setattr(store, "read_key_row", read_key_row)
    monkeypatch.setattr(store, "iter_key_rows", no_walk)
    opened = ledger.show(1)
    assert opened.entry is not None
    assert opened.entry.request_id == "R1"
    assert asked == [1]


def test_the_memory_store_reads_one_key_row_or_none():
    ledger, store = three_entry_ledger()
    assert store.read_key_row(2) == store.key_rows[2]
    assert store.read_key_row(3) is None
    ledger.shred([2])
    row = store.read_key_row(2)
    assert row is not None
    assert row.shredded


def test_show_refuses_a_missing_key_row():
    ledger, store = three_entry_ledger()
    del store.key_rows[1]
    with pytest.raises(TamperedEntryError, match=r"^entry 1: its key row is missing$"):
        ledger.show(1)


def test_show_refuses_the_key_row_of_another_entry_under_its_seq():
    ledger, store = three_entry_ledger()
    store.key_rows[1] = store.key_rows[0]  # the store hands back entry 0's row for entry 1
    with pytest.raises(TamperedEntryError, match=r"^entry 1: its key row is missing$"):
        ledger.show(1)


def test_show_refuses_a_key_row_relabelled_for_another_entry():
    ledger, store = three_entry_ledger()
    store.key_rows[1] = dataclasses.replace(store.key_rows[0], seq=1)
    with pytest.raises(TamperedEntryError, match=r"^entry 1: key row does not match its entry \(altered"):
        ledger.show(1)


def test_show_refuses_a_shredded_key_row_that_still_carries_tokens():
    ledger, store = three_entry_ledger()
    tokens = store.key_rows[1].tokens
    ledger.shred([1])
    store.key_rows[1] = dataclasses.replace(store.key_rows[1], tokens=tokens)
    with pytest.raises(TamperedEntryError, match=r"^entry 1: shredded key row still carries tokens$"):
        ledger.show(1)


def test_a_store_without_read_key_row_is_walked_as_strictly():
    memory = MemoryStore()
    ledger = ledger_on(WalkOnlyStore(memory))
    assert not hasattr(ledger.store, "read_key_row")
    opened = ledger.show(2)
    assert opened.entry is not None
    assert opened.entry.request_id == "R2"
    del memory.key_rows[1]
    with pytest.raises(TamperedEntryError, match=r"^entry 1: its key row is missing$"):
        ledger.show(1)
    memory.key_rows[1] = dataclasses.replace(memory.key_rows[0], seq=1)
    with pytest.raises(TamperedEntryError, match=r"^entry 1: key row does not match its entry"):
        ledger.show(1)
