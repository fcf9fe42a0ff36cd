"""A SQLite ledger file that exists but does not read as a database is damage, not an
unreachable store: exit 3 (integrity, never retried) with a line that says so. ``init``
pointed at such a file is a wrong path instead: exit 2, and the file is left alone."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from erasure_ledger import IntegrityError, Ledger, UsageError, open_store
from tests.cli.conftest import InitialisedLedger


def damaged(initialised_ledger: InitialisedLedger, *, offset: int, length: int = 1):
    ledger = initialised_ledger()
    ledger.append("R-1", "--email", "a@example.nl")
    with closing(sqlite3.connect(ledger.path)) as db:  # fold the write-ahead log into the file
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(ledger.path.read_bytes())
    for i in range(offset, offset + length):
        data[i] ^= 0xFF
    ledger.path.write_bytes(bytes(data))
    return ledger


@pytest.mark.parametrize("command", [["list"], ["verify"], ["checkpoint"],
                                     ["append", "--request-id", "Z-9", "--kind", "erasure", "--email", "z@z.nl"]])
def test_a_file_whose_header_was_overwritten_is_not_a_ledger_database_exit_3(initialised_ledger, command):
    ledger = damaged(initialised_ledger, offset=0)

    result = ledger.run(*command, env=ledger.env)

    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"erasure-ledger: error: sqlite:///{ledger.path} is not a ledger database (damaged, or the wrong file?)\n"
    )


def test_a_file_with_damaged_pages_is_a_damaged_ledger_database_exit_3(initialised_ledger):
    ledger = damaged(initialised_ledger, offset=4096, length=600)

    result = ledger.run("verify", env=ledger.env)

    assert result.exit_code == 3
    assert result.stderr.startswith(f"erasure-ledger: error: sqlite:///{ledger.path}: the ledger database is damaged (")


def test_the_library_raises_an_integrity_error(initialised_ledger):
    ledger = damaged(initialised_ledger, offset=0)
    with pytest.raises(IntegrityError, match="is not a ledger database"):
        Ledger.open(open_store(str(ledger.path)))


def test_init_on_a_file_that_is_not_a_database_exits_2_and_leaves_it_alone(cli, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a ledger\n" * 100, encoding="utf-8")

    result = cli("init", "--ledger", notes, "--keyring", tmp_path / "new.key")

    assert result.exit_code == 2
    assert result.stderr == (
        f"erasure-ledger: error: sqlite:///{notes}: the file exists and is not a ledger database; "
        "refusing to use it\n"
    )
    assert notes.read_text(encoding="utf-8") == "not a ledger\n" * 100
    assert not (tmp_path / "new.key").exists()
    with pytest.raises(UsageError):
        open_store(str(notes), create=True).exists()
