"""``erasure-ledger`` with an old copy of the keyring file, end to end.

``shred`` and ``rotate-key`` rotate the key-encryption key and rewrite the keyring file; a
copy made before that holds only a destroyed key. Every command that would write with such a
copy refuses with exit 3 and one line, and changes neither the ledger nor the copy.
"""

from __future__ import annotations

import shutil

import pytest

from tests.cli.conftest import CliLedger, InitialisedLedger

STALE = (
    "erasure-ledger: error: the keyring's active key is not this ledger's current key "
    "(kek-2, the ledger is at kek-3): use the current keyring file "
    "(an old copy cannot be used after a rotation or shred)\n"
)


@pytest.fixture
def shredded(initialised_ledger: InitialisedLedger) -> CliLedger:
    """A ledger whose keyring was copied to old.key, then shredded (kek-2 -> kek-3)."""
    ledger = initialised_ledger()
    ledger.append("DSR-1", "--email", "a@example.nl", "--received", "2026-01-01", "--effective", "2026-01-05")
    ledger.append("DSR-2", "--email", "b@example.nl", "--received", "2026-03-01")
    assert ledger.run("rotate-key", env=ledger.env).exit_code == 0  # kek-1 -> kek-2
    shutil.copy2(ledger.keyring, ledger.directory / "old.key")
    result = ledger.run("shred", "--before", "2026-02-01", "--yes", env=ledger.env)
    assert result.exit_code == 0, result.stderr
    assert "rotated the key-encryption key to kek-3" in result.stdout
    return ledger


@pytest.mark.parametrize(
    "command",
    [
        ["append", "--request-id", "DSR-X", "--kind", "erasure", "--email", "q@q.nl"],
        ["complete", "DSR-2", "--effective", "2026-11-09T14:00:00Z"],
        ["append", "--from", "{jsonl}"],
        ["rotate-key"],
        ["shred", "--seq", "1", "--yes"],
    ],
    ids=["append", "complete", "append --from", "rotate-key", "shred"],
)
def test_an_old_keyring_copy_is_refused_and_nothing_changes(shredded, command):
    old_key = shredded.directory / "old.key"
    jsonl = shredded.directory / "requests.jsonl"
    jsonl.write_text('{"request_id": "DSR-Y", "kind": "erasure", "identifiers": {"email": "y@y.nl"}}\n')
    before, old_text = shredded.listing(), old_key.read_text()

    result = shredded.run(
        *[a.format(jsonl=jsonl) for a in command], "--keyring", old_key, env=shredded.env
    )

    assert (result.exit_code, result.stdout, result.stderr) == (3, "", STALE)
    assert "q@q.nl" not in result.output
    assert "y@y.nl" not in result.output
    assert shredded.listing() == before
    assert old_key.read_text() == old_text


def test_the_current_keyring_still_opens_everything_after_an_old_copy_was_refused(shredded):
    shredded.run(
        "append", "--request-id", "DSR-X", "--kind", "erasure", "--email", "q@q.nl",
        "--keyring", shredded.directory / "old.key", env=shredded.env,
    )  # fmt: skip

    assert shredded.append("DSR-X", "--email", "q@q.nl") == 2
    verified = shredded.run("verify", env=shredded.env)
    assert verified.exit_code == 0, verified.stderr
    assert "OK 3 key rows authenticated" in verified.stdout
    assert shredded.run("rotate-key", env=shredded.env).exit_code == 0
