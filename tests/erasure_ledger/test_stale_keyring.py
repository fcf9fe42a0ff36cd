"""An old copy of the keyring (made before the last ``rotate-key`` or ``shred``) is refused
before anything is written: it would wrap new entries under a key-encryption key that no
longer exists, and then no keyring at all could open the ledger.

The ledger's current KEK is that of its newest key row that is not shredded (every live row
shares it: appends wrap under the active KEK, a rotation re-wraps every row). Appending
(single, bulk, completion) needs a keyring whose *active* KEK is that one; ``shred`` and
``rotate-key`` need a keyring that *holds* it (which admits the keyring left by a rotation
that did not finish)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure_ledger import (
    Entry,
    Identifier,
    Keyring,
    Ledger,
    MemoryStore,
    StaleKeyringError,
    TamperedEntryError,
    imports,
    open_store,
)
from erasure_ledger.stores import KeyRow
from tests.conftest import FIXED_NOW, make_entry

STALE = (
    r"the keyring's active key is not this ledger's current key \(kek-1, the ledger is at kek-2\): "
    r"use the current keyring file \(an old copy cannot be used after a rotation or shred\)"
)


def state(ledger: Ledger) -> tuple[int, list[KeyRow]]:
    """Tree size and key rows: what a refused operation must leave as it was."""
    return ledger.store.read_head().size, list(ledger.store.iter_key_rows())


def rotated(ledger: Ledger) -> tuple[Ledger, Ledger]:
    """(the ledger with the current keyring, the same ledger opened with the copy of the
    keyring made before a rotation)."""
    old = ledger.keyring
    ledger.rotate_key(lambda kr: None)
    return ledger, Ledger.open(ledger.store, old)


@pytest.fixture
def old_copy(memory_ledger: Callable[..., Ledger]) -> tuple[Ledger, Ledger]:
    return rotated(memory_ledger([make_entry("R1"), make_entry("R2")]))


def test_an_old_keyring_copy_cannot_append_and_nothing_is_written(old_copy):
    current, stale = old_copy
    before = state(current)

    with pytest.raises(StaleKeyringError, match=STALE):
        stale.append([make_entry("R3")], now=FIXED_NOW)

    assert state(current) == before
    assert current.append([make_entry("R3")], now=FIXED_NOW).seqs == (2,)
    assert current.check_key_rows() == 3


def test_an_old_keyring_copy_cannot_mark_a_request_carried_out(old_copy):
    current, stale = old_copy
    before = state(current)
    with pytest.raises(StaleKeyringError, match=STALE):
        stale.append([Entry.completion("R1", effective="2026-11-09T14:00:00Z")], now=FIXED_NOW)
    assert state(current) == before


@pytest.mark.parametrize("lines", [3, 12], ids=["serial", "parallel workers"])
def test_an_old_keyring_copy_cannot_import_a_file(old_copy, tmp_path, monkeypatch, lines):
    monkeypatch.setattr(imports, "PARALLEL_THRESHOLD", 10)
    current, stale = old_copy
    before = state(current)
    path = tmp_path / "requests.jsonl"
    path.write_text(
        "".join(
            json.dumps({"request_id": f"B{i}", "kind": "erasure", "identifiers": {"email": f"b{i}@x.nl"}})
            + "\n"
            for i in range(lines)
        ),
        encoding="utf-8",
    )

    with pytest.raises(StaleKeyringError, match=STALE):
        stale.append_jsonl(path, now=FIXED_NOW, workers=2)

    assert state(current) == before


def test_an_old_keyring_copy_can_neither_rotate_nor_shred(old_copy):
    current, stale = old_copy
    before = state(current)
    saved: list[Keyring] = []

    with pytest.raises(StaleKeyringError, match=STALE):
        stale.rotate_key(saved.append)
    with pytest.raises(StaleKeyringError, match=STALE):
        stale.shred([0])

    assert saved == []  # not even the old copy's file is rewritten
    assert state(current) == before
    assert current.show(0).entry is not None


def test_shred_then_rotate_with_the_current_keyring_keeps_the_ledger_appendable(memory_ledger):
    ledger = memory_ledger([make_entry("R1", effective="2026-01-05"), make_entry("R2")])
    old = ledger.keyring
    ledger.shred([0])
    ledger.rotate_key(lambda kr: None)

    assert ledger.current_kek_id() == "kek-2"
    with pytest.raises(StaleKeyringError, match=STALE):
        Ledger.open(ledger.store, old).append([make_entry("R3")], now=FIXED_NOW)
    ledger.append([make_entry("R3")], now=FIXED_NOW)
    assert ledger.check_key_rows() == 3


def test_the_keyring_of_an_interrupted_rotation_finishes_it_but_does_not_append(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    both = ledger.keyring.rotated()  # step 1 of rotate-key saved this, then the process died
    resumed = Ledger.open(ledger.store, both)

    with pytest.raises(
        StaleKeyringError,
        match=r"\(kek-2, the ledger is at kek-1\): a key rotation did not finish; "
        r"run erasure-ledger rotate-key again",
    ):
        resumed.append([make_entry("R2")], now=FIXED_NOW)
    final = resumed.rotate_key(lambda kr: None)

    assert final.active_kek_id == "kek-3"
    assert resumed.append([make_entry("R2")], now=FIXED_NOW).seqs == (1,)
    assert resumed.check_key_rows() == 2


def test_a_new_ledger_has_no_current_key_and_accepts_its_keyring(memory_ledger):
    ledger = memory_ledger()
    assert ledger.current_kek_id() is None
    assert ledger.append([make_entry("R1")], now=FIXED_NOW).seqs == (0,)
    assert ledger.current_kek_id() == "kek-1"


def test_the_current_key_is_found_behind_many_shredded_entries(memory_ledger):
    ledger = memory_ledger([make_entry(f"R{i}", effective="2026-01-05") for i in range(40)])
    ledger.shred(range(1, 40))
    ledger.rotate_key(lambda kr: None)
    assert ledger.current_kek_id() == "kek-2"


def test_with_every_entry_shredded_nothing_records_the_key_so_the_current_keyring_names_the_copy(
    memory_ledger,
):
    """The one case the check cannot prevent (no live key row records the current KEK):
    an old copy appends, and the current keyring then says what happened and how to recover
    instead of appending an entry that the copy could not open."""
    ledger = memory_ledger([make_entry("R1", effective="2026-01-05")])
    old = ledger.keyring
    ledger.shred([0])
    ledger.rotate_key(lambda kr: None)
    copy = Ledger.open(ledger.store, old)
    copy.append([make_entry("R2")], now=FIXED_NOW)

    with pytest.raises(
        StaleKeyringError,
        match=r"\(kek-2, the ledger is at kek-1\): entries were appended with an older copy of the "
        r"keyring, which holds kek-1; open the ledger with that copy and run erasure-ledger "
        r"rotate-key with it",
    ):
        ledger.append([make_entry("R3")], now=FIXED_NOW)
    copy.rotate_key(lambda kr: None)
    assert copy.append([make_entry("R3")], now=FIXED_NOW).seqs == (2,)
    assert copy.check_key_rows() == 3


def test_a_key_row_whose_key_id_was_edited_is_tampering_not_a_stale_keyring(old_copy):
    current, stale = old_copy
    store = current.store
    assert isinstance(store, MemoryStore)
    store.key_rows[1] = KeyRow(1, "kek-1", store.key_rows[1].wrapped_key, store.key_rows[1].tokens,
                               store.key_rows[1].mac)
    with pytest.raises(TamperedEntryError, match="entry 1: key row does not match its entry"):
        stale.append([make_entry("R3")], now=FIXED_NOW)


def test_an_old_keyring_copy_is_refused_on_sqlite_postgresql_and_mariadb(db_url):
    store = open_store(db_url, create=True)
    try:
        ledger = Ledger.create(store, Keyring.generate("test.example/sql"), now=FIXED_NOW)
        ledger.append([make_entry("R1", effective="2026-01-05")], now=FIXED_NOW)
        ledger.append([make_entry("R2")], now=FIXED_NOW)
        current, stale = rotated(ledger)
        before = state(current)
        with pytest.raises(StaleKeyringError, match=STALE):
            stale.append([make_entry("R3")], now=FIXED_NOW)
        assert state(current) == before
    finally:
        store.close()


def test_the_keyring_file_of_an_old_copy_is_left_as_it_was(old_copy, tmp_path: Path):
    _, stale = old_copy
    path = tmp_path / "old.key"
    stale.keyring.save(path)
    text = path.read_text(encoding="utf-8")
    with pytest.raises(StaleKeyringError):
        stale.rotate_key(lambda kr: kr.save(path, overwrite=True))
    assert path.read_text(encoding="utf-8") == text


# -- lookup ------------------------------------------------------------------------------------


def test_an_old_keyring_copy_cannot_look_anyone_up(old_copy):
    """The blind-index key does not rotate, so the copy could still compute tokens: lookup
    refuses it as show and append do, rather than answer who is in the ledger."""
    current, stale = old_copy
    wanted = [Identifier.parse("email", "r1@example.nl")]

    with pytest.raises(StaleKeyringError, match=STALE):
        stale.lookup(wanted)

    assert [m.request_id for m in current.lookup(wanted)] == ["R1"]


def test_the_keyring_of_an_interrupted_rotation_still_looks_up(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    both = ledger.keyring.rotated()  # holds the current KEK and the next one
    found = Ledger.open(ledger.store, both).lookup([Identifier.parse("email", "r1@example.nl")])
    assert [m.request_id for m in found] == ["R1"]


def test_lookup_with_an_old_keyring_copy_exits_3_with_the_stale_keyring_line(initialised_ledger):
    ledger = initialised_ledger()
    ledger.append("DSR-1", "--email", "a@example.nl", "--received", "2026-01-01", "--effective", "2026-01-05")
    ledger.append("DSR-2", "--email", "b@example.nl")
    old_key = ledger.directory / "old.key"
    old_key.write_bytes(ledger.keyring.read_bytes())
    old_key.chmod(0o600)
    assert ledger.run("shred", "--seq", "0", "--yes", env=ledger.env).exit_code == 0  # kek-1 -> kek-2

    stale = ledger.run("lookup", "--email", "b@example.nl", "--keyring", old_key, env=ledger.env)
    current = ledger.run("lookup", "--email", "b@example.nl", env=ledger.env)

    assert (stale.exit_code, stale.stdout) == (3, "")
    assert stale.stderr == (
        "erasure-ledger: error: the keyring's active key is not this ledger's current key (kek-1, "
        "the ledger is at kek-2): use the current keyring file (an old copy cannot be used after a "
        "rotation or shred)\n"
    )
    assert "b@example.nl" not in stale.output
    assert (current.exit_code, current.stdout) == (0, "1  erasure  DSR-2\n")
