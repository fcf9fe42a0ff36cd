"""``erasure-ledger``, end to end: how each command fails.

The contract: exit 2 for usage, configuration or input errors (and nothing changed), exit 3
for integrity failures (tampering, rollback, wrong key); either way exactly one line on
stderr, ``erasure-ledger: error: ...``, no traceback, never a personal identifier, never a
password. Tampering is done the way an attacker with database access would: by editing the
SQLite file directly.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from click.testing import Result

from erasure_ledger.notes import Checkpoint, NoteSigner, sign_checkpoint
from tests.cli.conftest import DEFAULT_ORIGIN, CliLedger, InitialisedLedger, RunCli
from tests.conftest import CANARY_EMAIL

BAD_SIGNATURE = "signature does not verify with the given public key (forged checkpoint or wrong key)"


def error(message: str) -> str:
    """The one stderr line of a failed command."""
    return f"erasure-ledger: error: {message}\n"


@contextmanager
def tamper(ledger: CliLedger) -> Iterator[sqlite3.Connection]:
    """Edit the ledger's SQLite file directly, as an attacker with database access would."""
    with closing(sqlite3.connect(ledger.path)) as db:
        yield db
        db.commit()


def leaf_data(ledger: CliLedger, seq: int) -> bytes:
    with closing(sqlite3.connect(ledger.path)) as db:
        data: bytes = db.execute("SELECT data FROM erasure_ledger_leaves WHERE seq = ?", (seq,)).fetchone()[0]
    return data


def copy_ledger(ledger: CliLedger, target: Path) -> CliLedger:
    """A consistent copy of the ledger file (the online backup API also copies the WAL)."""
    with closing(sqlite3.connect(ledger.path)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return CliLedger(
        directory=ledger.directory,
        path=target,
        keyring=ledger.keyring,
        public_key_file=ledger.public_key_file,
        verifier_key=ledger.verifier_key,
        origin=ledger.origin,
        run=ledger.run,
    )


def with_entries(ledger: CliLedger, count: int) -> CliLedger:
    for i in range(count):
        ledger.append(f"R{i}", "--email", f"person{i}@example.nl")
    return ledger


# -- init ----------------------------------------------------------------------------------------


def test_init_refuses_to_overwrite_an_existing_keyring(cli: RunCli, tmp_path: Path) -> None:
    keyring = tmp_path / "l.key"
    keyring.write_text("the only copy\n", encoding="utf-8")

    result = cli("init", "--ledger", tmp_path / "l.db", "--keyring", keyring)

    assert result.exit_code == 2
    assert result.stderr == error(f"keyring {keyring}: already exists; refusing to overwrite")
    assert keyring.read_text(encoding="utf-8") == "the only copy\n"
    assert not (tmp_path / "l.db").exists()


def test_init_refuses_an_existing_ledger_without_writing_a_keyring(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    second_keyring = ledger.directory / "second.key"

    result = cli("init", "--ledger", ledger.path, "--keyring", second_keyring)

    assert result.exit_code == 2
    assert result.stderr == error(f"a ledger already exists at sqlite:///{ledger.path}")
    assert not second_keyring.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["show", "0"],
        ["lookup", "--email", "a@example.nl"],
        ["append", "--request-id", "R9", "--kind", "erasure", "--email", "b@example.nl"],
    ],
    ids=["show", "lookup", "append"],
)
def test_a_keyring_readable_by_group_is_refused_with_a_chmod_600_hint(
    cli: RunCli, initialised_ledger: InitialisedLedger, command: list[str]
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "a@example.nl")
    ledger.keyring.chmod(0o640)

    result = cli(*command, env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error(
        f"keyring {ledger.keyring}: readable by group or others (mode 0640); run: chmod 600 {ledger.keyring}"
    )
    assert result.stdout == ""


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_the_public_key_file_given_as_keyring_is_named_as_such(
    cli: RunCli, initialised_ledger: InitialisedLedger, mode: int
) -> None:
    """Checked before the file mode: "chmod 600 erasures.pub" would be the wrong advice."""
    ledger = initialised_ledger()
    ledger.public_key_file.chmod(mode)

    result = cli("show", "0", "--keyring", ledger.public_key_file, env=ledger.public_env)

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == error(
        f"{ledger.public_key_file} is a public verifier key, not a keyring "
        "(give the keyring file that init wrote with --keyring)"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [("garbage\n", "not a JSON keyring file"), ("{}\n", "not an erasure-ledger-keyring/1 file")],
)
def test_a_file_that_is_not_a_keyring_is_named(
    cli: RunCli, initialised_ledger: InitialisedLedger, content: str, problem: str
) -> None:
    ledger = initialised_ledger()
    other = ledger.directory / "notes.txt"
    other.write_text(content, encoding="utf-8")
    other.chmod(0o600)

    result = cli("show", "0", "--keyring", other, env=ledger.public_env)

    assert result.exit_code == 2
    assert result.stderr == error(f"keyring {other}: {problem}")


def test_init_writes_the_public_key_file_as_one_line_and_verify_reads_it_with_or_without_newline(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    assert ledger.public_key_file.read_text(encoding="utf-8") == ledger.verifier_key + "\n"
    bare = ledger.directory / "bare.pub"
    bare.write_text(ledger.verifier_key, encoding="utf-8")

    for key_file in (ledger.public_key_file, bare):
        result = cli("verify", "--public-key", key_file, env=ledger.public_env)
        assert result.exit_code == 0, result.stderr


def test_init_with_an_unwritable_public_key_out_fails_cleanly_and_leaves_nothing(
    cli: RunCli, tmp_path: Path
) -> None:
    keyring = tmp_path / "l.key"

    result = cli(
        "init",
        "--ledger",
        tmp_path / "l.db",
        "--keyring",
        keyring,
        "--public-key-out",
        tmp_path / "no-dir" / "k",
    )

    assert result.exit_code == 2
    assert result.stderr.startswith("erasure-ledger: error: ")
    assert result.stderr.count("\n") == 1
    assert "internal error" not in result.stderr
    assert not keyring.exists()


# -- append: bad input changes nothing -----------------------------------------------------------


ENTRY = ["--request-id", "NEW-1", "--kind", "erasure"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(
            [*ENTRY, "--iban", "NL91ABNA0417164301"], "iban: checksum does not match", id="bad-iban-checksum"
        ),
        pytest.param(
            [*ENTRY, "--phone", "call me maybe"], "phone: not a phone number", id="unparsable-phone"
        ),
        pytest.param(
            [*ENTRY, "--phone", "+31 6 1234"], "phone: not a valid number for region NL", id="short-phone"
        ),
        pytest.param(
            [*ENTRY, "--email", "no-at-sign"], "email: must contain exactly one '@'", id="bad-email"
        ),
        pytest.param(
            ["--request-id", "R0", "--kind", "erasure", "--email", "x@example.nl"],
            "request R0 is already in the ledger",
            id="duplicate-request-id",
        ),
        pytest.param(
            ["--request-id", "OBJ-1", "--kind", "objection", "--email", "x@example.nl"],
            "request OBJ-1: an objection needs --purpose (lower-case, e.g. marketing or tracking-cookies)",
            id="objection-without-purpose",
        ),
        pytest.param(
            [*ENTRY, "--email", "x@example.nl", "--purpose", "marketing"],
            "request NEW-1: --purpose applies to objections only",
            id="purpose-on-an-erasure",
        ),
        pytest.param(
            [*ENTRY, "--email", "x@example.nl", "--received", "2026-02-01", "--effective", "2026-01-31"],
            "request NEW-1: timestamps must be in order received <= verified <= effective",
            id="timestamps-out-of-order",
        ),
        pytest.param(
            [*ENTRY, "--email", "x@example.nl", "--received", "last tuesday"],
            "received: not an ISO 8601 date or date-time (e.g. 2026-11-01T09:30:00Z)",
            id="unparsable-timestamp",
        ),
        pytest.param(
            ["--request-id", "NEW-1", "--email", "x@example.nl"],
            "--request-id and --kind are required (or use --from FILE.jsonl)",
            id="missing-kind",
        ),
        pytest.param([*ENTRY, "--id", "loyalty_card"], "--id takes TYPE=VALUE", id="id-without-equals"),
        pytest.param(ENTRY, "request NEW-1: at least one identifier is required", id="no-identifier"),
        pytest.param(
            ["--request-id", "bad id!", "--kind", "erasure", "--email", "x@example.nl"],
            "request_id: 1-128 characters of letters, digits and ._:/#- starting with a letter or digit",
            id="bad-request-id",
        ),
        pytest.param(
            [*ENTRY, "--from", "in.jsonl"],
            "--from cannot be combined with entry flags",
            id="from-with-entry-flags",
        ),
    ],
)
def test_append_of_bad_input_exits_2_with_one_line_and_changes_nothing(
    cli: RunCli, initialised_ledger: InitialisedLedger, flags: list[str], message: str
) -> None:
    ledger = initialised_ledger()
    ledger.append("R0", "--email", "existing@example.nl")
    before = ledger.listing()

    result = cli("append", *flags, env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error(message)
    assert result.stdout == ""
    assert ledger.listing() == before


def _record(request_id: str, **fields: object) -> str:
    record = {
        "request_id": request_id,
        "kind": "erasure",
        "identifiers": {"email": f"{request_id}@example.nl"},
    }
    return json.dumps({**record, **fields}) + "\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            _record("J1") + _record("J2", recieved="2026-01-01"),
            "in.jsonl:2: unknown field 'recieved'; nothing was appended",
            id="unknown-field",
        ),
        pytest.param(
            _record("J1") + '{"request_id": "J2", "kind": \n',
            "in.jsonl:2: not valid JSON; nothing was appended",
            id="malformed-json-line",
        ),
        pytest.param(
            '["J1", "erasure"]\n',
            "in.jsonl:1: each line must be a JSON object; nothing was appended",
            id="not-an-object",
        ),
        pytest.param(
            _record("J1") + "\n" + _record("J2", identifiers={"iban": "NL91ABNA0417164301"}),
            "in.jsonl:3: iban: checksum does not match; nothing was appended",
            id="bad-iban-on-line-3",
        ),
        pytest.param(
            _record("J1", received="2026-02-01", verified="2026-01-01"),
            "in.jsonl:1: request J1: timestamps must be in order received <= verified <= effective; "
            "nothing was appended",
            id="timestamps-out-of-order",
        ),
        pytest.param(
            _record("J1", kind="objection"),
            "in.jsonl:1: request J1: an objection needs --purpose (lower-case, e.g. marketing or "
            "tracking-cookies); nothing was appended",
            id="objection-without-purpose",
        ),
        pytest.param(
            _record("J1") + _record("R0"),
            "in.jsonl:2: request R0 is already in the ledger; nothing was appended",
            id="request-id-already-in-ledger",
        ),
        pytest.param(
            _record("J1") + _record("J2") + _record("J1"),
            "in.jsonl:3: request J1 appears twice in the file; nothing was appended",
            id="request-id-twice-in-file",
        ),
        pytest.param("", "in.jsonl: no entries", id="empty-file"),
        pytest.param("\n  \n", "in.jsonl: no entries", id="blank-lines-only"),
    ],
)
def test_append_from_a_bad_jsonl_file_exits_2_names_the_line_and_appends_nothing(
    cli: RunCli,
    initialised_ledger: InitialisedLedger,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    message: str,
) -> None:
    ledger = initialised_ledger()
    ledger.append("R0", "--email", "existing@example.nl")
    before = ledger.listing()
    monkeypatch.chdir(ledger.directory)
    Path("in.jsonl").write_text(content, encoding="utf-8")

    result = cli("append", "--from", "in.jsonl", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error(message)
    assert result.stdout == ""
    assert ledger.listing() == before


def test_append_from_a_missing_file_exits_2(
    cli: RunCli, initialised_ledger: InitialisedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = initialised_ledger()
    monkeypatch.chdir(ledger.directory)

    result = cli("append", "--from", "missing.jsonl", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error("missing.jsonl: cannot read (No such file or directory)")


def _write_latin1_jsonl(directory: Path) -> None:
    (directory / "in.jsonl").write_bytes(
        _record("J1").encode() + b'{"request_id": "J2", "kind": "erasure", "note": "caf\xe9", '
        b'"identifiers": {"email": "b@example.nl"}}\n'
    )


def test_append_from_a_file_that_is_not_utf8_exits_2_and_appends_nothing(
    cli: RunCli, initialised_ledger: InitialisedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = initialised_ledger()
    monkeypatch.chdir(ledger.directory)
    _write_latin1_jsonl(ledger.directory)

    result = cli("append", "--from", "in.jsonl", env=ledger.env)

    assert result.exit_code == 2
    assert ledger.listing() == []


def test_append_from_a_file_that_is_not_utf8_names_the_line(
    cli: RunCli, initialised_ledger: InitialisedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = initialised_ledger()
    monkeypatch.chdir(ledger.directory)
    _write_latin1_jsonl(ledger.directory)

    result = cli("append", "--from", "in.jsonl", env=ledger.env)

    assert result.stderr == error("in.jsonl:2: not UTF-8; nothing was appended")


# -- other usage errors --------------------------------------------------------------------------


def test_show_of_an_entry_that_does_not_exist_exits_2(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)

    result = cli("show", "5", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error("no entry 5 (the ledger holds entries 0..1)")
    assert result.stdout == ""


def test_lookup_without_an_identifier_exits_2(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()

    result = cli("lookup", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error("give at least one identifier, e.g. --email")


def test_lookup_of_an_invalid_identifier_exits_2(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()

    result = cli("lookup", "--iban", "NL91ABNA0417164301", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error("iban: checksum does not match")


def test_prove_of_an_entry_outside_the_tree_exits_2(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)

    result = cli("prove", "9", env=ledger.public_env)

    assert result.exit_code == 2
    assert result.stderr == error("entry 9 is not in the tree of size 2")


def test_prove_against_a_tree_size_that_was_never_signed_exits_2(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)

    result = cli("prove", "1", "--tree-size", "7", env=ledger.public_env)

    assert result.exit_code == 2
    assert result.stderr == error("no signed checkpoint of size 7")


def test_export_into_a_non_empty_directory_exits_2(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 1)
    out = ledger.directory / "public"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")

    result = cli("export", "--out", out, env=ledger.public_env)

    assert result.exit_code == 2
    assert result.stderr == error(f"{out}: exists and is not empty")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("command", [["list"], ["verify"], ["show", "0"], ["checkpoint"]], ids=lambda c: c[0])
def test_a_ledger_that_does_not_exist_exits_2_and_asks_to_check_the_path(
    cli: RunCli, tmp_path: Path, command: list[str]
) -> None:
    missing = tmp_path / "missing.db"
    keyring = tmp_path / "some.key"
    keyring.write_text("{}", encoding="utf-8")
    keyring.chmod(0o600)

    result = cli(*command, env={"ERASURE_LEDGER": str(missing), "ERASURE_KEYRING": str(keyring)})

    assert result.exit_code == 2
    assert result.stderr == error(f"no ledger at sqlite:///{missing}: check the path (erasure-ledger init creates a NEW ledger)")
    assert not missing.exists()


def test_verify_with_a_malformed_public_key_exits_2(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()

    result = cli("verify", "--public-key", "not-a-key", env=ledger.public_env)

    assert result.exit_code == 2
    assert result.stderr == error(
        "--public-key not-a-key: no such file (and not a verifier key: <name>+<key id>+<key>)"
    )


# -- verify: wrong keys, forgeries and rollback ----------------------------------------------------


def test_verify_with_another_ledgers_public_key_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger("ours"), 2)
    impostor = initialised_ledger("theirs")  # same origin, different signing key

    result = cli("verify", "--public-key", impostor.public_key_file, env=ledger.public_env)

    assert result.exit_code == 3
    assert result.stderr == error(f"checkpoint at size 0: {BAD_SIGNATURE}")
    assert result.stdout == ""


def test_verify_against_a_trusted_checkpoint_forged_with_another_key_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)
    forger = NoteSigner.generate(DEFAULT_ORIGIN)
    forged = ledger.directory / "forged.txt"
    forged.write_text(sign_checkpoint(Checkpoint(DEFAULT_ORIGIN, 2, bytes(32)), forger), encoding="utf-8")

    result = cli(
        "verify",
        "--public-key",
        ledger.public_key_file,
        "--trusted-checkpoint",
        forged,
        env=ledger.public_env,
    )

    assert result.exit_code == 3
    assert result.stderr == error(f"trusted checkpoint: {BAD_SIGNATURE}")


def test_verify_of_a_rolled_back_copy_against_a_newer_trusted_checkpoint_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)
    backup = copy_ledger(ledger, ledger.directory / "backup.db")
    ledger.append("AFTER-BACKUP", "--email", "later@example.nl")
    newer = ledger.directory / "newer.txt"
    assert cli("checkpoint", "--out", newer, env=ledger.public_env).exit_code == 0

    result = cli(
        "verify", "--public-key", ledger.public_key_file, "--trusted-checkpoint", newer, env=backup.public_env
    )

    assert result.exit_code == 3
    assert result.stderr == error(
        "ledger has 2 entries but the trusted checkpoint has 3: rolled back or truncated"
    )


def test_verify_of_a_rewritten_history_against_a_trusted_checkpoint_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)
    fork = copy_ledger(ledger, ledger.directory / "fork.db")
    ledger.append("REAL", "--email", "real@example.nl")
    trusted = ledger.directory / "trusted.txt"
    cli("checkpoint", "--out", trusted, env=ledger.public_env)
    fork.append("REWRITTEN", "--email", "other@example.nl")

    result = cli(
        "verify", "--public-key", ledger.public_key_file, "--trusted-checkpoint", trusted, env=fork.public_env
    )

    assert result.exit_code == 3
    assert result.stderr == error(
        "ledger does not extend the trusted checkpoint (size 3): history was rewritten"
    )


# -- tampering with the SQLite file --------------------------------------------------------------


def _flip_a_bit_in_the_sealed_payload(ledger: CliLedger, seq: int) -> None:
    data = bytearray(leaf_data(ledger, seq))
    position = data.index(b'"sealed":"') + 20
    data[position] ^= 0x01
    with tamper(ledger) as db:
        db.execute("UPDATE erasure_ledger_leaves SET data = ? WHERE seq = ?", (bytes(data), seq))


def test_verify_of_a_leaf_with_a_flipped_bit_exits_3_naming_the_entry(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 4)
    _flip_a_bit_in_the_sealed_payload(ledger, 1)

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.public_env)

    assert result.exit_code == 3
    assert result.stderr == error(
        "checkpoint at size 2 does not match the stored entries: entry 1 altered, swapped or removed"
    )


def test_show_of_a_leaf_with_a_flipped_bit_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 4)
    _flip_a_bit_in_the_sealed_payload(ledger, 1)

    result = cli("show", "1", env=ledger.env)

    assert result.exit_code == 3
    # show verifies the signed tree before it opens anything, so the flip is named there
    assert result.stderr == error(
        "checkpoint at size 2 does not match the stored entries: entry 1 altered, swapped or removed"
    )
    assert result.stdout == ""


def _swap_leaves(ledger: CliLedger, a: int, b: int) -> None:
    data_a, data_b = leaf_data(ledger, a), leaf_data(ledger, b)
    with tamper(ledger) as db:
        db.execute("UPDATE erasure_ledger_leaves SET data = ? WHERE seq = ?", (data_b, a))
        db.execute("UPDATE erasure_ledger_leaves SET data = ? WHERE seq = ?", (data_a, b))


def test_verify_of_two_swapped_leaves_exits_3(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = with_entries(initialised_ledger(), 4)
    _swap_leaves(ledger, 1, 2)

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.public_env)

    assert result.exit_code == 3
    assert result.stderr == error(
        "checkpoint at size 2 does not match the stored entries: entry 1 altered, swapped or removed"
    )


def test_list_of_two_swapped_leaves_exits_3(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = with_entries(initialised_ledger(), 4)
    _swap_leaves(ledger, 1, 2)

    result = cli("list", env=ledger.public_env)

    assert result.exit_code == 3
    # list verifies the signed tree first, so the swap is named there
    assert result.stderr == error(
        "checkpoint at size 2 does not match the stored entries: entry 1 altered, swapped or removed"
    )


def test_verify_of_a_ledger_whose_last_leaf_was_deleted_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 4)
    with tamper(ledger) as db:
        db.execute("DELETE FROM erasure_ledger_leaves WHERE seq = 3")
        db.execute("DELETE FROM erasure_ledger_keys WHERE seq = 3")

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.public_env)

    assert result.exit_code == 3
    assert result.stderr == error("entry 3: missing from the store")


@pytest.mark.parametrize(
    "command", [["show", "1"], ["lookup", "--email", "person1@example.nl"]], ids=["show", "lookup"]
)
def test_a_deleted_key_row_makes_show_and_lookup_exit_3(
    cli: RunCli, initialised_ledger: InitialisedLedger, command: list[str]
) -> None:
    ledger = with_entries(initialised_ledger(), 3)
    with tamper(ledger) as db:
        db.execute("DELETE FROM erasure_ledger_keys WHERE seq = 1")

    result = cli(*command, env=ledger.env)

    assert result.exit_code == 3
    assert result.stderr == error("entry 1: its key row is missing")
    assert result.stdout == ""


def test_lookup_over_swapped_blind_index_tokens_exits_3_instead_of_missing_the_person(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 3)
    with tamper(ledger) as db:
        tokens = dict(
            db.execute("SELECT seq, tokens FROM erasure_ledger_keys WHERE seq IN (1, 2)").fetchall()
        )
        db.execute("UPDATE erasure_ledger_keys SET tokens = ? WHERE seq = 1", (tokens[2],))
        db.execute("UPDATE erasure_ledger_keys SET tokens = ? WHERE seq = 2", (tokens[1],))

    result = cli("lookup", "--email", "person1@example.nl", env=ledger.env)

    assert result.exit_code == 3
    assert result.stderr == error("entry 1: key row does not match its entry (altered, swapped or forged)")
    assert "not in the ledger" not in result.stdout


def test_verify_with_the_keyring_detects_an_altered_key_row(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 3)
    with tamper(ledger) as db:
        (tokens,) = db.execute("SELECT tokens FROM erasure_ledger_keys WHERE seq = 1").fetchone()
        db.execute("UPDATE erasure_ledger_keys SET tokens = ? WHERE seq = 0", (tokens,))

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.env)

    assert result.exit_code == 3
    assert result.stderr == error("entry 0: key row does not match its entry (altered, swapped or forged)")
    assert result.stdout == ""


def test_verify_of_a_checkpoint_with_an_altered_signature_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 3)
    with tamper(ledger) as db:
        (note,) = db.execute("SELECT note FROM erasure_ledger_checkpoints WHERE size = 2").fetchone()
        body, signature_line = note.rstrip("\n").rsplit("\n", 1)
        prefix, signature = signature_line.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(signature))
        raw[-1] ^= 0x01
        altered = f"{body}\n{prefix} {base64.b64encode(bytes(raw)).decode()}\n"
        db.execute("UPDATE erasure_ledger_checkpoints SET note = ? WHERE size = 2", (altered,))

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.public_env)

    assert result.exit_code == 3
    assert result.stderr == error(f"checkpoint at size 2: {BAD_SIGNATURE}")


# -- wrong key files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["show", "0"], ["lookup", "--email", "person0@example.nl"], ["verify"]], ids=lambda c: c[0]
)
def test_a_keyring_from_another_ledger_exits_3(
    cli: RunCli, initialised_ledger: InitialisedLedger, command: list[str]
) -> None:
    ledger = with_entries(initialised_ledger("ours"), 1)
    other = initialised_ledger("theirs")

    result = cli(*command, env={**ledger.env, "ERASURE_KEYRING": str(other.keyring)})

    assert result.exit_code == 3
    assert result.stderr == error("the keyring does not belong to this ledger (wrong key file)")
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["show", "0"], ["verify"]], ids=lambda c: c[0])
def test_the_keyring_from_before_rotate_key_no_longer_opens_entries(
    cli: RunCli, initialised_ledger: InitialisedLedger, command: list[str]
) -> None:
    ledger = with_entries(initialised_ledger(), 2)
    old_copy = ledger.directory / "before-rotation.key"
    old_copy.write_bytes(ledger.keyring.read_bytes())
    old_copy.chmod(0o600)
    assert cli("rotate-key", env=ledger.env).exit_code == 0

    result = cli(*command, env={**ledger.env, "ERASURE_KEYRING": str(old_copy)})

    assert result.exit_code == 3
    assert result.stderr == error(
        "the keyring does not hold the key these entries were sealed with "
        "(the key was rotated since this copy was made? use the current keyring file)"
    )


# -- shred ---------------------------------------------------------------------------------------


def test_shred_without_yes_off_a_terminal_exits_2_and_shreds_nothing(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)
    before = ledger.listing()

    result = cli("shred", "--seq", "0", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr.endswith(error("refusing to shred without --yes when not on a terminal"))
    assert result.stdout == ""
    assert ledger.listing() == before


def test_shred_without_yes_off_a_terminal_prints_exactly_one_error_line(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)

    result = cli("shred", "--seq", "0", env=ledger.env)

    assert result.stderr == error("refusing to shred without --yes when not on a terminal")


def test_shred_of_an_entry_that_does_not_exist_exits_2_and_shreds_nothing(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)
    before = ledger.listing()

    result = cli("shred", "--seq", "0", "--seq", "7", "--yes", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr.endswith(error("no entry 7 (the ledger holds entries 0..1)"))
    assert ledger.listing() == before


def test_shred_of_an_entry_that_does_not_exist_prints_exactly_one_error_line(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = with_entries(initialised_ledger(), 2)

    result = cli("shred", "--seq", "0", "--seq", "7", "--yes", env=ledger.env)

    assert result.stderr == error("no entry 7 (the ledger holds entries 0..1)")


@pytest.mark.parametrize(
    "selection", [["--before", "2026-01-01", "--seq", "0"], []], ids=["both-before-and-seq", "neither"]
)
def test_shred_needs_exactly_one_of_before_or_seq(
    cli: RunCli, initialised_ledger: InitialisedLedger, selection: list[str]
) -> None:
    ledger = with_entries(initialised_ledger(), 1)
    before = ledger.listing()

    result = cli("shred", *selection, "--yes", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error("give exactly one of --before DATE or --seq N")
    assert ledger.listing() == before


def test_shred_before_an_unparsable_date_exits_2(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = with_entries(initialised_ledger(), 1)

    result = cli("shred", "--before", "last year", "--yes", env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == error("--before: not an ISO 8601 date or date-time (e.g. 2026-11-01T09:30:00Z)")


# -- unreachable databases and passwords ---------------------------------------------------------

UNREACHABLE_COMMANDS = [
    ["init"],
    ["append", "--request-id", "R1", "--kind", "erasure", "--email", "a@example.nl"],
    ["list"],
    ["show", "0"],
    ["lookup", "--email", "a@example.nl"],
    ["verify"],
    ["checkpoint"],
]


def _keyring_for(directory: Path, command: list[str], initialised_ledger: InitialisedLedger) -> str:
    if command == ["init"]:
        return str(directory / "new.key")
    return str(initialised_ledger("keys").keyring)


@pytest.mark.parametrize("command", UNREACHABLE_COMMANDS, ids=lambda c: c[0])
def test_an_unreachable_database_exits_2_with_one_line(
    cli: RunCli, initialised_ledger: InitialisedLedger, tmp_path: Path, command: list[str]
) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/x"
    keyring = _keyring_for(tmp_path, command, initialised_ledger)

    result = cli(*command, env={"ERASURE_LEDGER": url, "ERASURE_KEYRING": keyring})

    assert result.exit_code == 2
    assert result.stderr.startswith(f"erasure-ledger: error: cannot reach {url}: ")
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


@pytest.mark.parametrize("command", UNREACHABLE_COMMANDS, ids=lambda c: c[0])
def test_a_database_password_is_never_printed(
    cli: RunCli, initialised_ledger: InitialisedLedger, tmp_path: Path, command: list[str]
) -> None:
    keyring = _keyring_for(tmp_path, command, initialised_ledger)

    result = cli(
        *command,
        env={"ERASURE_LEDGER": "postgresql+psycopg://u:sekrit@127.0.0.1:1/x", "ERASURE_KEYRING": keyring},
    )

    assert result.exit_code == 2
    assert "sekrit" not in result.stderr
    assert "sekrit" not in result.stdout
    assert "postgresql+psycopg://u:***@127.0.0.1:1/x" in result.stderr


def test_init_against_an_unreachable_database_writes_no_keyring(cli: RunCli, tmp_path: Path) -> None:
    keyring = tmp_path / "new.key"

    cli("init", "--ledger", "postgresql+psycopg://nobody@127.0.0.1:1/x", "--keyring", keyring)

    assert not keyring.exists()


# -- the canary: identifiers never reach output or logs ------------------------------------------

CANARY_PHONE = "+31 6 12345678"
CANARY_IBAN = "NL91ABNA0417164300"
CANARY_NOTE = "canary note"
CANARY_BAD_IBAN = "NL91ABNA0417164301"  # the canary IBAN with a wrong check digit
CANARY_BAD_PHONE = "+31 6 1234"  # too short to be a Dutch number
# Raw and normalised spellings of every canary value, compared with lower-cased output.
CANARY_TRACES = (
    CANARY_EMAIL,
    CANARY_NOTE,
    "12345678",  # +31 6 12345678, +31612345678, 0612345678
    "6 1234",
    "+3161234",
    "nl91abna",
    "nl91 abna",
    "0417164300",
    "0417164301",
)
CANARY_IDS = ["--email", CANARY_EMAIL, "--phone", CANARY_PHONE, "--iban", CANARY_IBAN]
_CANARY_IDENTIFIERS = {"email": CANARY_EMAIL, "phone": CANARY_PHONE, "iban": CANARY_IBAN}
# JSONL files for append --from: one that imports the canary, then one per failure path.
CANARY_JSONL = {
    "ok.jsonl": json.dumps(
        {"request_id": "C-2", "kind": "objection", "purpose": "marketing", "identifiers": _CANARY_IDENTIFIERS}
        | {"note": CANARY_NOTE}
    ),
    "unknown-field.jsonl": json.dumps(
        {"request_id": "C-3", "kind": "erasure", "recieved": "2026-01-01", "identifiers": _CANARY_IDENTIFIERS}
    ),
    "bad-iban.jsonl": json.dumps(
        {"request_id": "C-3", "kind": "erasure", "identifiers": {"iban": CANARY_BAD_IBAN}}
    ),
    "bad-phone.jsonl": json.dumps(
        {
            "request_id": "C-3",
            "kind": "erasure",
            "identifiers": {"phone": CANARY_BAD_PHONE},
            "note": CANARY_NOTE,
        }
    ),
    "malformed.jsonl": '{"request_id": "C-3", "identifiers": {"email": "' + CANARY_EMAIL + '"',
    "duplicate.jsonl": json.dumps(
        {"request_id": "C-1", "kind": "erasure", "identifiers": _CANARY_IDENTIFIERS}
    ),
}


def _traces(text: str) -> list[str]:
    lowered = text.lower()
    return [trace for trace in CANARY_TRACES if trace in lowered]


def test_canary_identifiers_never_appear_in_output_or_logs_except_in_show(
    cli: RunCli, initialised_ledger: InitialisedLedger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="erasure_ledger")
    ledger = initialised_ledger("main")
    other = initialised_ledger("other")
    tampered = initialised_ledger("tampered")
    for name, line in CANARY_JSONL.items():
        (ledger.directory / name).write_text(line + "\n", encoding="utf-8")

    results: list[tuple[str, Result]] = []

    def run(expected_exit: int, *args: str | Path, env: dict[str, str] | None = None) -> Result:
        result = cli(*args, env=ledger.env if env is None else env)
        label = " ".join(str(a) for a in args)
        assert result.exit_code == expected_exit, (label, result.stderr)
        results.append((label, result))
        return result

    entry = ["append", "--request-id", "C-1", "--kind", "erasure"]
    new_erasure = ["append", "--request-id", "C-9", "--kind", "erasure"]
    run(0, *entry, *CANARY_IDS, "--note", CANARY_NOTE, "--received", "2026-01-05")
    run(0, "append", "--from", ledger.directory / "ok.jsonl")
    run(0, "append", "--request-id", "C-4", "--kind", "erasure", "--email", "someone@example.nl", "--json")
    tampered.append("T-1", *CANARY_IDS)
    tampered.append("T-2", "--email", "someone@example.nl")
    # failures while appending
    run(2, *new_erasure, "--email", CANARY_EMAIL, "--iban", CANARY_BAD_IBAN)
    run(2, *new_erasure, "--email", CANARY_EMAIL, "--phone", CANARY_BAD_PHONE)
    run(2, *new_erasure, "--phone", CANARY_PHONE + " 999")
    run(2, *entry, *CANARY_IDS, "--note", CANARY_NOTE)  # duplicate request id
    run(2, "append", "--request-id", "C-9", "--kind", "objection", *CANARY_IDS, "--note", CANARY_NOTE)
    run(2, *new_erasure, *CANARY_IDS, "--purpose", "marketing")
    run(2, *new_erasure, *CANARY_IDS, "--received", "2026-02-01", "--effective", "2026-01-01")
    run(2, "append", "--request-id", "C-9", *CANARY_IDS, "--note", CANARY_NOTE)  # missing --kind
    run(2, *new_erasure, "--id", CANARY_EMAIL)
    run(2, *new_erasure, "--id", f"{CANARY_EMAIL}=email")
    run(2, *new_erasure, "--id", f"{CANARY_PHONE}=phone")
    run(2, *new_erasure, "--email", CANARY_EMAIL.replace("@", " at "))
    run(2, *new_erasure, "--ip", CANARY_PHONE)
    run(2, *new_erasure, "--kvk", CANARY_IBAN)
    run(2, "append", "--from", ledger.directory / "ok.jsonl", *CANARY_IDS)
    for name in CANARY_JSONL:
        if name != "ok.jsonl":
            run(2, "append", "--from", ledger.directory / name)
    # reading, without and with the keyring
    run(0, "list")
    run(0, "list", "--json")
    run(0, "list", "--overdue")
    for flag, value in zip(CANARY_IDS[::2], CANARY_IDS[1::2], strict=True):
        run(0, "lookup", flag, value)
    run(0, "lookup", "--email", CANARY_EMAIL.upper(), "--json")
    run(0, "lookup", "--email", "not-" + CANARY_EMAIL)
    run(2, "lookup", "--iban", CANARY_BAD_IBAN)
    run(2, "lookup", "--phone", CANARY_BAD_PHONE)
    run(2, "show", "99")
    run(3, "show", "0", env={**ledger.env, "ERASURE_KEYRING": str(other.keyring)})
    run(3, "lookup", "--email", CANARY_EMAIL, env={**ledger.env, "ERASURE_KEYRING": str(other.keyring)})
    shown = cli("show", "0", env=ledger.env)
    shown_json = cli("show", "1", "--json", env=ledger.env)
    # auditing
    trusted = ledger.directory / "cp.txt"
    run(0, "checkpoint", "--out", trusted)
    run(0, "verify", "--public-key", ledger.public_key_file, "--trusted-checkpoint", trusted)
    run(0, "verify", "--json")
    run(0, "prove", "0")
    run(0, "export", "--out", ledger.directory / "public")
    run(3, "verify", "--public-key", other.public_key_file)
    # tampering
    with tamper(tampered) as db:
        tokens = dict(db.execute("SELECT seq, tokens FROM erasure_ledger_keys").fetchall())
        db.execute("UPDATE erasure_ledger_keys SET tokens = ? WHERE seq = 0", (tokens[1],))
        db.execute("UPDATE erasure_ledger_keys SET tokens = ? WHERE seq = 1", (tokens[0],))
    run(3, "lookup", "--email", CANARY_EMAIL, env=tampered.env)
    run(3, "show", "0", env=tampered.env)
    _flip_a_bit_in_the_sealed_payload(tampered, 0)
    run(3, "verify", env=tampered.env)
    # keys and shredding
    run(0, "rotate-key")
    run(2, "shred", "--seq", "0")  # no --yes, not a terminal
    run(0, "shred", "--seq", "0", "--seq", "1", "--yes")
    run(0, "show", "0")
    run(0, "show", "1", "--json")
    run(0, "lookup", *CANARY_IDS)

    assert (shown.exit_code, shown_json.exit_code) == (0, 0)
    assert {CANARY_EMAIL, "+31612345678", CANARY_IBAN, CANARY_NOTE} <= set(
        line.split("=", 1)[-1].removeprefix("note: ") for line in shown.stdout.splitlines()
    )
    assert CANARY_EMAIL in shown_json.stdout  # show is the one command that prints them
    leaks = {label: _traces(r.stdout + r.stderr) for label, r in results if _traces(r.stdout + r.stderr)}
    assert leaks == {}
    assert _traces(caplog.text) == []
    exported = b"".join(p.read_bytes() for p in (ledger.directory / "public").rglob("*") if p.is_file())
    assert _traces(exported.decode("utf-8")) == []


@pytest.mark.parametrize("command", ["append", "lookup"])
def test_an_identifier_given_in_place_of_an_id_type_is_not_echoed(
    cli: RunCli, initialised_ledger: InitialisedLedger, command: str
) -> None:
    ledger = initialised_ledger()
    entry = ["--request-id", "C-1", "--kind", "erasure"] if command == "append" else []

    result = cli(command, *entry, "--id", f"{CANARY_IBAN}=iban", env=ledger.env)

    assert result.exit_code == 2
    assert _traces(result.stderr) == []


def test_a_jsonl_field_named_by_an_identifier_is_not_echoed(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    source = ledger.directory / "in.jsonl"
    record = {
        "request_id": "C-1",
        "kind": "erasure",
        "identifiers": {"email": "a@example.nl"},
        CANARY_EMAIL: "email",
    }
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")

    result = cli("append", "--from", source, env=ledger.env)

    assert result.exit_code == 2
    assert _traces(result.stderr) == []
