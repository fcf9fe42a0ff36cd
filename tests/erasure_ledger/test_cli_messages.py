"""``erasure-ledger`` messages found unclear in a new-user trial, and what they say now: one
line on stderr that names the flag, file or line at fault and never an identifier value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import CliLedger, InitialisedLedger


def error(message: str) -> str:
    return f"erasure-ledger: error: {message}\n"


@pytest.fixture
def ledger(initialised_ledger: InitialisedLedger) -> CliLedger:
    made = initialised_ledger()
    made.append("T-001", "--email", "existing@example.nl")
    return made


# -- append --------------------------------------------------------------------------------------


def test_a_request_id_already_in_the_ledger_is_named_with_its_file_and_line(ledger, monkeypatch):
    monkeypatch.chdir(ledger.directory)
    Path("in.jsonl").write_text(
        "".join(
            json.dumps({"request_id": rid, "kind": "erasure", "identifiers": {"email": f"{rid.lower()}@x.nl"}}) + "\n"
            for rid in ("T-002", "T-003", "T-001")
        ),
        encoding="utf-8",
    )
    before = ledger.listing()

    result = ledger.run("append", "--from", "in.jsonl", env=ledger.env)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == error("in.jsonl:3: request T-001 is already in the ledger; nothing was appended")
    assert ledger.listing() == before


def test_a_purpose_that_is_not_lower_case_says_so(ledger):
    result = ledger.run("append", "--request-id", "O-1", "--kind", "objection", "--email", "q@example.nl",
                        "--purpose", "Marketing", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error(
        "request O-1: --purpose must be lower-case: a letter, then letters, digits, '_' or '-' "
        "(e.g. marketing or tracking-cookies)"
    )
    assert "q@example.nl" not in result.output


# -- init ----------------------------------------------------------------------------------------


def test_an_origin_with_a_space_names_the_origin_flag_and_nothing_is_created(cli, tmp_path):
    result = cli("init", "--origin", "a b", "--ledger", tmp_path / "l.db", "--keyring", tmp_path / "l.key")

    assert result.exit_code == 2
    assert result.stderr == error(
        "invalid --origin: contains a space (give a name such as shop.example/erasure-ledger, without spaces or '+')"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_an_existing_public_key_file_before_creating_anything(cli, tmp_path):
    existing = tmp_path / "ledger.pub"
    existing.write_text("keep me\n", encoding="utf-8")

    result = cli("init", "--ledger", tmp_path / "l.db", "--keyring", tmp_path / "l.key",
                 "--public-key-out", existing)

    assert result.exit_code == 2
    assert result.stderr == error(f"--public-key-out {existing}: already exists; refusing to overwrite it "
                                  "(--force overwrites)")
    assert existing.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.pub"]


def test_init_refuses_to_write_the_public_key_over_the_keyring_it_creates(cli, tmp_path):
    key = tmp_path / "l.key"
    result = cli("init", "--ledger", tmp_path / "l.db", "--keyring", key, "--public-key-out", key)

    assert result.exit_code == 2
    assert result.stderr == error(f"--public-key-out {key}: that is the keyring; refusing to overwrite it")
    assert list(tmp_path.iterdir()) == []


# -- checkpoint --out ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "what"),
    [
        (lambda led: led.path, "the ledger file"),
        (lambda led: led.keyring, "the keyring"),
        (lambda led: led.path.with_name(led.path.name + "-wal"), "the ledger file"),
    ],
    ids=["ledger", "keyring", "ledger-wal"],
)
@pytest.mark.parametrize("force", [[], ["--force"]], ids=["", "--force"])
def test_checkpoint_out_never_overwrites_the_ledger_or_the_keyring(ledger, target, what, force):
    path = target(ledger)
    before = path.read_bytes() if path.exists() else None

    result = ledger.run("checkpoint", "--out", path, *force, env=ledger.env)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == error(f"--out {path}: that is {what}; refusing to overwrite it")
    assert (path.read_bytes() if path.exists() else None) == before


def test_checkpoint_out_never_overwrites_a_keyring_or_database_not_named_on_the_command_line(ledger, tmp_path):
    other_keyring, other_ledger = ledger.directory / "backup.key", ledger.directory / "copy.db"
    other_keyring.write_bytes(ledger.keyring.read_bytes())
    other_ledger.write_bytes(b"SQLite format 3\x00" + bytes(100))

    for path, what in ((other_keyring, "a keyring"), (other_ledger, "a database (a ledger?)")):
        result = ledger.run("checkpoint", "--out", path, "--force", env=ledger.public_env)
        assert result.exit_code == 2
        assert result.stderr == error(f"--out {path}: that is {what}; refusing to overwrite it")


def test_checkpoint_out_refuses_an_existing_file_unless_forced(ledger):
    out = ledger.directory / "checkpoint.txt"
    out.write_text("an older checkpoint\n", encoding="utf-8")

    refused = ledger.run("checkpoint", "--out", out, env=ledger.env)
    forced = ledger.run("checkpoint", "--out", out, "--force", env=ledger.env)

    assert refused.exit_code == 2
    assert refused.stderr == error(f"--out {out}: already exists; refusing to overwrite it (--force overwrites)")
    assert forced.exit_code == 0, forced.stderr
    assert out.read_text(encoding="utf-8") == forced.stdout


def test_checkpoint_out_writes_a_new_file(ledger):
    out = ledger.directory / "checkpoint.txt"
    result = ledger.run("checkpoint", "--out", out, env=ledger.env)
    assert result.exit_code == 0, result.stderr
    assert out.read_text(encoding="utf-8") == result.stdout


# -- verify --public-key -------------------------------------------------------------------------


def test_a_public_key_file_that_does_not_exist_is_named_as_missing(ledger):
    result = ledger.run("verify", "--public-key", "missing.pub", env=ledger.public_env)

    assert result.exit_code == 2
    assert result.stderr == error(
        "--public-key missing.pub: no such file (and not a verifier key: <name>+<key id>+<key>)"
    )


def test_a_malformed_public_key_file_is_named(ledger):
    bad = ledger.directory / "bad.pub"
    bad.write_text("shop+zz+zz\n", encoding="utf-8")

    result = ledger.run("verify", "--public-key", bad, env=ledger.public_env)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"erasure-ledger: error: --public-key {bad}: invalid verifier key: ")


# -- counts --------------------------------------------------------------------------------------


def test_one_of_something_is_singular(ledger):
    verified = ledger.run("verify", env=ledger.env)
    shredded = ledger.run("shred", "--seq", "0", "--yes", env=ledger.env)

    assert verified.stdout.splitlines() == [
        f"OK {ledger.origin}: 1 entry, 2 signed checkpoints match",
        "OK 1 key row authenticated",
    ]
    assert shredded.stdout.splitlines()[0] == "shredded 1 entry: 0"
    assert shredded.stderr == "will shred 1 entry: 0\n"


# -- no command at all ---------------------------------------------------------------------------


@pytest.mark.parametrize("program", ["erasure_ledger", "reconciler"])
def test_no_command_shows_the_help_on_stderr_and_exits_2(program):
    """As click does for a group without a command (click >= 8.2): the help, and the usage
    exit code of the contract, not a bare "invalid usage"."""
    code = f"import sys; sys.argv = ['{program}']; from {program}.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Usage: {program.replace('_', '-')} [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in result.stderr


def test_checkpoint_out_protects_the_write_ahead_log_whatever_the_url_spelling(ledger):
    # committed entries can sit in the -wal file until SQLite folds it in: overwriting it
    # would lose them without a trace
    wal = ledger.path.with_name(ledger.path.name + "-wal")
    for url in (f"sqlite+pysqlite:///{ledger.path}", f"sqlite:///{ledger.path}?timeout=5"):
        result = ledger.run("checkpoint", "--ledger", url, "--out", wal, "--force", env=ledger.env)
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr == error(f"--out {wal}: that is the ledger file; refusing to overwrite it")


def test_checkpoint_out_refuses_a_log_journal_or_fifo_not_named_on_the_command_line(ledger):
    log, journal, fifo = (ledger.directory / name for name in ("old.db-wal", "old.db-journal", "pipe"))
    log.write_bytes(b"\x37\x7f\x06\x82" + bytes(60))
    journal.write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" + bytes(60))
    os.mkfifo(fifo)  # reading it to see what it is would wait for a writer for ever
    for path, what in ((log, "a database's write-ahead log"), (journal, "a database's rollback journal"),
                       (fifo, "not a regular file")):
        result = ledger.run("checkpoint", "--out", path, "--force", env=ledger.env)
        assert (result.exit_code, result.stderr) == (2, error(f"--out {path}: that is {what}; refusing to overwrite it"))
    assert log.read_bytes().startswith(b"\x37\x7f\x06\x82")
