"""What a writer to the store (without the keyring) can and cannot do: every change below is
refused with an IntegrityError (exit 3), never accepted and never an internal error."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from erasure_ledger import (
    Identifier,
    IntegrityError,
    Keyring,
    Ledger,
    StorageError,
    TamperedEntryError,
    UsageError,
    open_store,
)
from erasure_ledger.stores import KeyRow
from tests.conftest import FIXED_NOW, make_entry


@pytest.fixture
def sqlite_ledger(tmp_path):
    path = tmp_path / "ledger.db"
    keyring = Keyring.generate("tamper.example/ledger")
    ledger = Ledger.create(open_store(str(path), create=True), keyring, now=FIXED_NOW)
    ledger.append([make_entry("R1", identifiers={"email": "jan@example.nl", "phone": "030 2345678"})], now=FIXED_NOW)
    ledger.append([make_entry("R2", identifiers={"email": "piet@example.nl"})], now=FIXED_NOW)
    ledger.store.close()
    return path, keyring


def sql(path, statement):
    con = sqlite3.connect(path)
    con.execute(statement)
    con.commit()
    con.close()


def reopen(path, keyring=None):
    return Ledger.open(open_store(str(path)), keyring)


def test_changing_the_default_phone_region_is_detected(sqlite_ledger):
    path, keyring = sqlite_ledger
    sql(path, "UPDATE erasure_ledger_meta SET value='DE' WHERE name='default_region'")
    with pytest.raises(TamperedEntryError, match="its settings were altered"):
        reopen(path, keyring)


def test_a_truncated_head_cannot_hide_a_person_from_lookup(sqlite_ledger):
    path, keyring = sqlite_ledger
    sql(path, "UPDATE erasure_ledger_head SET size=1")
    with pytest.raises(IntegrityError):
        reopen(path, keyring).lookup([Identifier.parse("email", "piet@example.nl")])


def test_a_leaf_stored_as_text_is_tampering_not_an_internal_error(sqlite_ledger):
    path, _ = sqlite_ledger
    sql(path, "UPDATE erasure_ledger_leaves SET data = CAST(data AS TEXT) WHERE seq = 1")
    with pytest.raises(TamperedEntryError):
        reopen(path).verify()


def test_a_head_size_that_is_not_a_number_is_tampering(sqlite_ledger):
    path, _ = sqlite_ledger
    sql(path, "UPDATE erasure_ledger_head SET size='two'")
    with pytest.raises(TamperedEntryError, match="wrong type"):
        reopen(path).verify()


def test_missing_or_garbled_settings_are_tampering(sqlite_ledger):
    path, _ = sqlite_ledger
    sql(path, "UPDATE erasure_ledger_meta SET value='garbage' WHERE name='verifier_key'")
    with pytest.raises(IntegrityError, match="verifier key is malformed"):
        reopen(path)
    sql(path, "DELETE FROM erasure_ledger_meta WHERE name='origin'")
    with pytest.raises(IntegrityError, match="settings are incomplete"):
        reopen(path)


def test_a_leaf_planted_beyond_the_signed_head_blocks_appends_as_tampering(sqlite_ledger):
    path, keyring = sqlite_ledger
    sql(path, "INSERT INTO erasure_ledger_leaves VALUES (2, 'PLANTED', x'00')")
    with pytest.raises(TamperedEntryError, match="beyond the signed tree head"):
        reopen(path, keyring).append([make_entry("R3")], now=FIXED_NOW)


def test_the_ledger_file_is_created_owner_only(sqlite_ledger):
    path, _ = sqlite_ledger
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_replaced_key_row_leaves_nothing_in_the_write_ahead_log(sqlite_ledger):
    path, keyring = sqlite_ledger
    ledger = reopen(path, keyring)
    wrapped = next(ledger.store.iter_key_rows()).wrapped_key
    assert wrapped is not None
    ledger.shred([0])
    assert ledger.store.notices == []
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wrapped not in wal.read_bytes()


def test_a_shred_that_cannot_scrub_the_log_says_so(sqlite_ledger):
    path, keyring = sqlite_ledger
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM erasure_ledger_leaves").fetchone()  # holds a read snapshot
    ledger = reopen(path, keyring)
    ledger.shred([0])
    reader.close()
    assert any("write-ahead log could not be scrubbed" in n for n in ledger.store.notices)


def test_a_key_row_changed_meanwhile_is_never_overwritten(sqlite_ledger):
    path, keyring = sqlite_ledger
    ledger = reopen(path, keyring)
    row = next(ledger.store.iter_key_rows())
    stale = {row.seq: b"\x00" * 32}
    replacement = KeyRow(row.seq, None, None, b"", b"\x01" * 32)
    with pytest.raises(StorageError, match="key rows changed while this operation ran"):
        ledger.store.replace_key_rows([replacement], expected_macs=stale)
    assert next(ledger.store.iter_key_rows()) == row


@pytest.mark.parametrize("field", ["request_id", "purpose"])
def test_a_trailing_newline_never_reaches_a_leaf_header(field):
    fields = {"request_id": "R1\n"} if field == "request_id" else {"kind": "objection", "purpose": "marketing\n"}
    request_id = fields.pop("request_id", "R1")
    with pytest.raises(UsageError):
        make_entry(request_id, **fields)


def test_a_note_that_is_not_valid_unicode_is_refused():
    with pytest.raises(UsageError, match="note is not valid Unicode"):
        make_entry("R1", note="broken \ud800 surrogate")


def test_a_key_row_restored_after_shred_and_rotation_no_longer_opens(sqlite_ledger, tmp_path):
    path, keyring = sqlite_ledger
    ledger = reopen(path, keyring)
    before = next(ledger.store.iter_key_rows())
    ledger.shred([before.seq])
    ledger.rotate_key(lambda kr: None)  # what `shred` does by default
    # The store writer puts the old row back (from a ledger backup, a WAL, a dead tuple).
    ledger.store.replace_key_rows([before])
    with pytest.raises(IntegrityError):
        ledger.show(before.seq)


def test_an_altered_request_id_column_is_tampering(sqlite_ledger):
    # the column beside the leaf is what duplicate checks read: renaming R1 there would let
    # a second "R1" in, so every reader that parses leaves compares it with the signed entry
    path, keyring = sqlite_ledger
    sql(path, "UPDATE erasure_ledger_leaves SET request_id='R9' WHERE seq=0")
    ledger = reopen(path, keyring)
    with pytest.raises(TamperedEntryError, match="entry 0: its stored request id is not the signed"):
        list(ledger.list_entries())
    with pytest.raises(TamperedEntryError, match="entry 0: its stored request id"):
        ledger.open_all()
    with pytest.raises(TamperedEntryError, match="entry 0: its stored request id"):
        ledger.show(0)
