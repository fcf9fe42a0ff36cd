"""``erasure-ledger``, end to end: what each command does when it succeeds.

Every test runs the real command through ``CliRunner`` against a SQLite ledger under
``tmp_path`` and checks the exit code and what is printed. Failure paths (bad input,
tampering, wrong keys, the canary identifier) live in ``test_ledger_cli_failures.py``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from erasure_ledger import merkle
from erasure_ledger.notes import NoteVerifier, open_checkpoint
from tests.cli.conftest import DEFAULT_ORIGIN, CliLedger, InitialisedLedger, RunCli

SHREDDED_NOTICE = "(crypto-shredded: its data key was destroyed; the identifiers cannot be recovered)"

ROTATED = (
    "rotated the key-encryption key to kek-2: old copies of the destroyed key rows can no longer be unwrapped\n"
)


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_entries(ledger: CliLedger, count: int) -> CliLedger:
    for i in range(count):
        ledger.append(f"R{i}", "--email", f"person{i}@example.nl")
    return ledger


# -- init ----------------------------------------------------------------------------------------


def test_init_prints_the_verifier_key_as_origin_key_id_and_base64(cli: RunCli, tmp_path: Path) -> None:
    env = {"ERASURE_LEDGER": str(tmp_path / "l.db"), "ERASURE_KEYRING": str(tmp_path / "l.key")}

    result = cli("init", "--origin", "shop.example/ledger", env=env)

    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(r"shop\.example/ledger\+[0-9a-f]{8}\+[A-Za-z0-9+/]+={0,2}\n", result.stdout)
    assert NoteVerifier.parse(result.stdout.strip()).name == "shop.example/ledger"


def test_init_without_origin_names_the_ledger_with_a_random_suffix(cli: RunCli, tmp_path: Path) -> None:
    env = {"ERASURE_LEDGER": str(tmp_path / "l.db"), "ERASURE_KEYRING": str(tmp_path / "l.key")}

    result = cli("init", env=env)

    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(r"erasure-ledger/[0-9a-f]{12}\+[0-9a-f]{8}\+\S+\n", result.stdout)


def test_init_says_on_stderr_where_the_ledger_and_keyring_are(cli: RunCli, tmp_path: Path) -> None:
    keyring = tmp_path / "l.key"
    env = {"ERASURE_LEDGER": str(tmp_path / "l.db"), "ERASURE_KEYRING": str(keyring)}

    result = cli("init", "--origin", "shop.example/ledger", env=env)

    assert result.stderr == (
        f"created ledger shop.example/ledger at sqlite:///{tmp_path / 'l.db'}; keyring {keyring} "
        "(keep it secret, keep a copy off this machine)\n"
    )


def test_init_writes_the_keyring_readable_by_its_owner_only(initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()

    assert stat.S_IMODE(ledger.keyring.stat().st_mode) == 0o600


def test_init_writes_the_verifier_key_to_public_key_out(initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()

    assert ledger.public_key_file.read_text(encoding="utf-8") == ledger.verifier_key + "\n"


def test_init_takes_ledger_and_keyring_from_flags(cli: RunCli, tmp_path: Path) -> None:
    result = cli("init", "--ledger", tmp_path / "l.db", "--keyring", tmp_path / "l.key")

    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "l.db").is_file()
    assert (tmp_path / "l.key").is_file()


# -- append --------------------------------------------------------------------------------------


def test_append_prints_the_sequence_number_of_the_new_entry(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()

    result = cli(
        "append", "--request-id", "R1", "--kind", "erasure", "--email", "a@example.nl", env=ledger.env
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "0\n"
    assert result.stderr == ""


def test_append_numbers_entries_consecutively(initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()

    seqs = [ledger.append(f"R{i}", "--email", f"p{i}@example.nl") for i in range(3)]

    assert seqs == [0, 1, 2]


def test_append_accepts_every_typed_identifier_flag_and_every_field(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()

    result = cli(
        "append",
        "--request-id", "OBJ-7",
        "--kind", "objection",
        "--email", "jan@example.nl",
        "--phone", "+31 6 12345678",
        "--customer-number", "C-1001",
        "--iban", "NL91ABNA0417164300",
        "--username", "jdevries",
        "--ip", "192.0.2.10",
        "--cookie-id", "ck_5f2a",
        "--kvk", "12345678",
        "--id", "loyalty_card=LC-99",
        "--received", "2026-03-01T09:00:00Z",
        "--verified", "2026-03-02",
        "--effective", "2026-03-05T17:30:00+01:00",
        "--purpose", "marketing",
        "--note", "asked by phone",
        env=ledger.env,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "0\n"
    shown = json.loads(cli("show", "0", "--json", env=ledger.env).stdout)
    assert shown["identifiers"] == [
        {"type": "cookie_id", "value": "ck_5f2a"},
        {"type": "customer_number", "value": "C-1001"},
        {"type": "email", "value": "jan@example.nl"},
        {"type": "iban", "value": "NL91ABNA0417164300"},
        {"type": "ip", "value": "192.0.2.10"},
        {"type": "kvk", "value": "12345678"},
        {"type": "loyalty_card", "value": "LC-99"},
        {"type": "phone", "value": "+31612345678"},
        {"type": "username", "value": "jdevries"},
    ]
    assert (shown["received"], shown["verified"], shown["effective"]) == (
        "2026-03-01T09:00:00Z",
        "2026-03-02T00:00:00Z",
        "2026-03-05T16:30:00Z",
    )
    assert (shown["kind"], shown["purpose"], shown["note"]) == ("objection", "marketing", "asked by phone")


def test_append_json_prints_the_sequence_numbers_and_tree_size(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R0", "--email", "a@example.nl")

    result = cli(
        "append",
        "--request-id",
        "R1",
        "--kind",
        "erasure",
        "--email",
        "b@example.nl",
        "--json",
        env=ledger.env,
    )

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"seqs": [1], "tree_size": 2}


def test_append_from_jsonl_prints_the_range_of_new_sequence_numbers(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R0", "--email", "first@example.nl")
    records = [
        {"request_id": "J1", "kind": "erasure", "identifiers": {"email": "a@example.nl"}},
        {
            "request_id": "J2",
            "kind": "objection",
            "purpose": "marketing",
            "identifiers": {"phone": "0612345678"},
        },
        {
            "request_id": "J3",
            "kind": "erasure",
            "identifiers": [{"type": "iban", "value": "NL91ABNA0417164300"}],
        },
    ]
    source = ledger.directory / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n", encoding="utf-8")

    result = cli("append", "--from", source, env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1..3\n"
    assert result.stderr == "appended 3 entries; tree size 4\n"
    assert [e["request_id"] for e in ledger.listing()] == ["R0", "J1", "J2", "J3"]


def _import_lines(count: int) -> list[str]:
    return [
        json.dumps({"request_id": f"B{i}", "kind": "erasure",
                    "identifiers": {"email": f"b{i}@example.nl", "phone": f"06123{i:05d}"}})
        for i in range(count)
    ]


def test_append_from_a_large_file_is_sealed_on_every_core(
    cli: RunCli, initialised_ledger: InitialisedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from erasure_ledger import imports

    monkeypatch.setattr(imports, "PARALLEL_THRESHOLD", 10)  # the worker-process path
    monkeypatch.setattr(imports, "_CHUNK", 6)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    sealed_from: list[int] = []
    seal = imports.ParallelImport.seal
    monkeypatch.setattr(
        imports.ParallelImport, "seal", lambda self, start: sealed_from.append(start) or seal(self, start)
    )
    ledger = initialised_ledger()
    ledger.append("R0", "--email", "first@example.nl")
    source = ledger.directory / "in.jsonl"
    source.write_text("\n".join(_import_lines(30)) + "\n", encoding="utf-8")

    result = cli("append", "--from", source, env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1..30\n"
    assert sealed_from == [1]
    assert [e["request_id"] for e in ledger.listing()] == ["R0"] + [f"B{i}" for i in range(30)]
    assert cli("verify", env=ledger.public_env).exit_code == 0
    found = cli("lookup", "--phone", "+31612300017", "--json", env=ledger.env)
    assert found.exit_code == 0, found.stderr
    assert [e["request_id"] for e in json.loads(found.stdout)] == ["B17"]


def test_append_from_a_large_file_names_the_bad_line_and_appends_nothing(
    cli: RunCli, initialised_ledger: InitialisedLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from erasure_ledger import imports

    monkeypatch.setattr(imports, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(imports, "_CHUNK", 6)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    ledger = initialised_ledger()
    ledger.append("R0", "--email", "first@example.nl")
    lines = _import_lines(30)
    lines[19] = lines[19].replace("06123", "0")  # too short a phone number, on line 20
    source = ledger.directory / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = cli("append", "--from", source, env=ledger.env)

    assert result.exit_code == 2
    assert "in.jsonl:20: phone: not a " in result.stderr
    assert "nothing was appended" in result.stderr
    assert "00019" not in result.stderr  # the value is never echoed
    assert [e["request_id"] for e in ledger.listing()] == ["R0"]


def test_append_keeps_identifiers_and_note_out_of_the_ledger_file(
    initialised_ledger: InitialisedLedger,
) -> None:
    ledger = initialised_ledger()
    ledger.append(
        "R1", "--email", "sealed.person@example.nl", "--iban", "NL91ABNA0417164300", "--note", "sealed note"
    )

    stored = b"".join(p.read_bytes() for p in ledger.directory.iterdir() if p.name.startswith("ledger.db"))

    assert b"R1" in stored  # the request id is public metadata
    for secret in (b"sealed.person@example.nl", b"NL91ABNA0417164300", b"sealed note"):
        assert secret not in stored


# -- list ----------------------------------------------------------------------------------------


def test_list_prints_metadata_but_no_identifier_values(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "jan@example.nl", "--phone", "0416-853988", "--received", "2026-01-05")

    result = cli("list", env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["SEQ", "APPENDED", "KIND", "REQUEST", "RECEIVED", "DUE", "EFFECTIVE", "TYPES"]
    assert row.split()[0] == "0"
    assert row.split()[2:7] == ["erasure", "R1", "2026-01-05", "2026-02-05", "-"]
    assert "email,phone" in row
    assert "jan@example.nl" not in result.stdout
    assert "853988" not in result.stdout


def test_list_json_gives_every_metadata_field(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()
    ledger.append(
        "OBJ-1",
        "--email", "jan@example.nl",
        "--received", "2026-01-31T10:00:00Z",
        "--verified", "2026-02-01T10:00:00Z",
        "--effective", "2026-02-02T10:00:00Z",
        "--purpose", "marketing",
        kind="objection",
    )  # fmt: skip

    result = cli("list", "--json", env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    [entry] = json.loads(result.stdout)
    appended_at = entry.pop("appended_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", appended_at)
    assert entry == {
        "seq": 0,
        "request_id": "OBJ-1",
        "kind": "objection",
        "identifier_types": ["email"],
        "received": "2026-01-31T10:00:00Z",
        "verified": "2026-02-01T10:00:00Z",
        "effective": "2026-02-02T10:00:00Z",
        "due": "2026-02-28T10:00:00Z",
        "purpose": "marketing",
        "shredded": False,
        "overdue": False,
        "late": False,
    }


def test_list_overdue_shows_a_request_received_over_a_month_ago_and_not_carried_out(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("LATE", "--email", "a@example.nl", "--received", _days_ago(45))

    result = cli("list", "--overdue", "--json", env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert [(e["request_id"], e["overdue"]) for e in json.loads(result.stdout)] == [("LATE", True)]


def test_list_overdue_leaves_out_a_request_carried_out_within_the_month(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append(
        "IN-TIME", "--email", "a@example.nl", "--received", _days_ago(45), "--effective", _days_ago(40)
    )

    result = cli("list", "--overdue", "--json", env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_list_overdue_leaves_out_a_request_not_yet_due(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("FRESH", "--email", "a@example.nl", "--received", _days_ago(3))

    result = cli("list", "--overdue", "--json", env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_a_request_completed_after_its_deadline_is_listed_late_not_overdue(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    """Overdue means "received more than a month ago and not yet effective"; a request
    carried out after its deadline is done, and the list says it was done late."""
    ledger = initialised_ledger()
    ledger.append(
        "DSR-2026-120", "--email", "a@example.nl", "--iban", "NL91 ABNA 0417 1643 00", "--received", "2026-10-05"
    )
    assert cli("complete", "DSR-2026-120", "--effective", "2026-11-09T14:00:00Z", env=ledger.env).exit_code == 0

    overdue = cli("list", "--overdue", env=ledger.public_env)
    listed = cli("list", env=ledger.public_env)
    as_json = cli("list", "--json", env=ledger.public_env)

    assert overdue.stdout.splitlines()[1:] == []
    today = r"\d{4}-\d\d-\d\d"
    assert [re.sub(today, "YYYY-MM-DD", line, count=1) for line in listed.stdout.splitlines()] == [
        "   SEQ  APPENDED    KIND        REQUEST                 RECEIVED    DUE         EFFECTIVE   TYPES",
        "     0  YYYY-MM-DD  erasure     DSR-2026-120            2026-10-05  2026-11-05  2026-11-09  "
        "email,iban [LATE: effective 2026-11-09, due 2026-11-05]",
        "     1  YYYY-MM-DD  completion  DSR-2026-120#completed  -           -           2026-11-09",
    ]
    assert [(e["overdue"], e["late"]) for e in json.loads(as_json.stdout)] == [(False, True), (False, False)]


def test_list_keeps_its_classic_column_widths_for_short_values(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "a@example.nl")

    header, row = cli("list", env=ledger.public_env).stdout.splitlines()

    assert header == "   SEQ  APPENDED    KIND       REQUEST               RECEIVED    DUE         EFFECTIVE   TYPES"
    assert row.index("R1") == header.index("REQUEST")
    assert row.endswith("-           email")


def test_list_flags_overdue_requests_in_the_table(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()
    ledger.append("LATE", "--email", "a@example.nl", "--received", _days_ago(45))
    ledger.append("FRESH", "--email", "b@example.nl", "--received", _days_ago(3))

    result = cli("list", env=ledger.public_env)

    late, fresh = result.stdout.splitlines()[1:]
    assert late.endswith("email [OVERDUE]")
    assert fresh.endswith("email")


# -- show ----------------------------------------------------------------------------------------


def test_show_prints_the_normalised_identifiers_and_the_note(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", " Jan@Example.NL ", "--phone", "0416-853988", "--note", "via the web form")

    result = cli("show", "0", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "identifier: email=jan@example.nl" in lines
    assert "identifier: phone=+31416853988" in lines
    assert "note: via the web form" in lines
    assert "request_id: R1" in lines
    assert SHREDDED_NOTICE not in lines


def test_show_json_gives_metadata_identifiers_and_note(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--iban", "nl91 abna 0417 1643 00")

    result = cli("show", "0", "--json", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["identifiers"] == [{"type": "iban", "value": "NL91ABNA0417164300"}]
    assert (shown["seq"], shown["request_id"], shown["note"], shown["shredded"]) == (0, "R1", None, False)


# -- lookup --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "spelling"),
    [
        ("--email", "jan@example.nl"),
        ("--email", " JAN@Example.NL "),
        ("--phone", "0416-853988"),
        ("--phone", "+31 416 853 988"),
        ("--phone", "0031416853988"),
        ("--iban", "nl91 abna 0417 1643 00"),
        ("--id", "iban=NL91-ABNA-0417-1643-00"),
    ],
)
def test_lookup_finds_a_person_by_any_spelling_of_an_identifier(
    cli: RunCli, initialised_ledger: InitialisedLedger, flag: str, spelling: str
) -> None:
    ledger = initialised_ledger()
    ledger.append("OTHER", "--email", "someone.else@example.nl")
    ledger.append(
        "R1", "--email", "Jan@Example.nl", "--phone", "+31416853988", "--iban", "NL91ABNA0417164300"
    )

    result = cli("lookup", flag, spelling, env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1  erasure  R1\n"


def test_lookup_of_someone_not_in_the_ledger_says_so(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "jan@example.nl")

    result = cli("lookup", "--email", "piet@example.nl", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "not in the ledger\n"


def test_lookup_lists_every_entry_that_names_the_person(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "jan@example.nl")
    ledger.append("R2", "--email", "piet@example.nl")
    ledger.append(
        "O3", "--phone", "0612345678", "--email", "jan@example.nl", "--purpose", "marketing", kind="objection"
    )

    result = cli("lookup", "--email", "jan@example.nl", "--json", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert [(m["seq"], m["request_id"]) for m in json.loads(result.stdout)] == [(0, "R1"), (2, "O3")]


def test_lookup_matches_blind_index_tokens_without_decrypting(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "jan@example.nl")
    # Same index and MAC keys, but a key-encryption key that opens nothing.
    doc = json.loads(ledger.keyring.read_text(encoding="utf-8"))
    doc["keks"] = {doc["active_kek"]: {"key": base64.b64encode(os.urandom(32)).decode()}}
    no_kek = ledger.directory / "no-kek.key"
    no_kek.write_text(json.dumps(doc), encoding="utf-8")
    no_kek.chmod(0o600)
    env = {**ledger.env, "ERASURE_KEYRING": str(no_kek)}
    assert cli("show", "0", env=env).exit_code == 3  # this keyring really cannot decrypt

    result = cli("lookup", "--email", "jan@example.nl", env=env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "0  erasure  R1\n"


# -- checkpoint and verify -----------------------------------------------------------------------


def test_checkpoint_prints_the_signed_tree_head_and_writes_it_to_out(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 3)
    out = ledger.directory / "cp.txt"

    result = cli("checkpoint", "--out", out, env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert out.read_text(encoding="utf-8") == result.stdout
    cp = open_checkpoint(result.stdout, NoteVerifier.parse(ledger.verifier_key), origin=DEFAULT_ORIGIN)
    assert cp.size == 3


def test_verify_with_the_public_key_file_passes(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 3)

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"OK {DEFAULT_ORIGIN}: 3 entries, 4 signed checkpoints match\n"
    assert result.stderr == ""


def test_verify_with_the_public_key_string_passes(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 2)

    result = cli("verify", "--public-key", ledger.verifier_key, env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"OK {DEFAULT_ORIGIN}: 2 entries, 3 signed checkpoints match\n"


def test_verify_without_a_public_key_warns_it_proves_consistency_only(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 1)

    result = cli("verify", env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "note: no --public-key given; the ledger's own key was used, which proves "
        "consistency but not who signed\n"
    )


def test_verify_proves_the_ledger_extends_an_earlier_trusted_checkpoint(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 2)
    trusted = ledger.directory / "trusted.txt"
    assert cli("checkpoint", "--out", trusted, env=ledger.public_env).exit_code == 0
    ledger.append("LATER", "--email", "later@example.nl")

    result = cli(
        "verify",
        "--public-key",
        ledger.public_key_file,
        "--trusted-checkpoint",
        trusted,
        env=ledger.public_env,
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"OK {DEFAULT_ORIGIN}: 3 entries, 4 signed checkpoints match",
        "OK extends the trusted checkpoint of size 2",
    ]


def test_verify_json_reports_what_was_proven(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 2)
    trusted = ledger.directory / "trusted.txt"
    cli("checkpoint", "--out", trusted, env=ledger.public_env)

    result = cli(
        "verify",
        "--public-key", ledger.public_key_file,
        "--trusted-checkpoint", trusted,
        "--json",
        env=ledger.public_env,
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    root = open_checkpoint(
        trusted.read_text(encoding="utf-8"), NoteVerifier.parse(ledger.verifier_key)
    ).root_hash
    assert report == {
        "ok": True,
        "origin": DEFAULT_ORIGIN,
        "tree_size": 2,
        "root_hash": base64.b64encode(root).decode(),
        "checkpoints_checked": 3,
        "trusted_checkpoint_size": 2,
        "public_key": "given",
        "key_rows_checked": None,
    }


def test_verify_with_the_keyring_also_authenticates_every_key_row(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 3)

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "OK 3 key rows authenticated"


# -- prove and export ----------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [0, 3, 4])
def test_prove_prints_an_inclusion_proof_that_verifies_against_the_signed_checkpoint(
    cli: RunCli, initialised_ledger: InitialisedLedger, seq: int
) -> None:
    ledger = _with_entries(initialised_ledger(), 5)
    export_dir = ledger.directory / "public"
    cli("export", "--out", export_dir, env=ledger.public_env)
    leaf = (export_dir / "leaves.jsonl").read_bytes().split(b"\n")[seq]

    result = cli("prove", seq, env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    proof = json.loads(result.stdout)
    assert (proof["format"], proof["origin"], proof["seq"], proof["tree_size"]) == (
        "erasure-ledger-inclusion-proof/1",
        DEFAULT_ORIGIN,
        seq,
        5,
    )
    cp = open_checkpoint(proof["checkpoint"], NoteVerifier.parse(ledger.verifier_key), origin=DEFAULT_ORIGIN)
    assert base64.b64decode(proof["leaf_hash"]) == merkle.leaf_hash(leaf)
    merkle.verify_inclusion(
        merkle.leaf_hash(leaf), seq, cp.size, [base64.b64decode(h) for h in proof["hashes"]], cp.root_hash
    )


def test_prove_against_an_older_checkpoint_verifies_against_that_checkpoint(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 5)

    result = cli("prove", "1", "--tree-size", "3", env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    proof = json.loads(result.stdout)
    cp = open_checkpoint(proof["checkpoint"], NoteVerifier.parse(ledger.verifier_key), origin=DEFAULT_ORIGIN)
    assert cp.size == proof["tree_size"] == 3
    merkle.verify_inclusion(
        base64.b64decode(proof["leaf_hash"]),
        1,
        3,
        [base64.b64decode(h) for h in proof["hashes"]],
        cp.root_hash,
    )


def test_export_writes_the_public_log(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 3)
    out = ledger.directory / "public"

    result = cli("export", "--out", out, env=ledger.public_env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"exported 3 leaves and 4 checkpoints to {out}\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "README.txt",
        "checkpoint.txt",
        "checkpoints",
        "checkpoints/0.txt",
        "checkpoints/1.txt",
        "checkpoints/2.txt",
        "checkpoints/3.txt",
        "leaves.jsonl",
        "verifier-key.txt",
    ]
    assert (out / "verifier-key.txt").read_text(encoding="utf-8") == ledger.verifier_key + "\n"


def test_exported_leaves_recompute_the_signed_root_without_the_tool(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 5)
    out = ledger.directory / "public"
    cli("export", "--out", out, env=ledger.public_env)

    leaves = (out / "leaves.jsonl").read_bytes().split(b"\n")
    assert leaves.pop() == b""  # every leaf, the last one too, ends in a newline
    verifier = NoteVerifier.parse((out / "verifier-key.txt").read_text(encoding="utf-8").strip())
    cp = open_checkpoint(
        (out / "checkpoint.txt").read_text(encoding="utf-8"), verifier, origin=DEFAULT_ORIGIN
    )

    assert cp.size == len(leaves) == 5
    assert merkle.root_hash(leaves) == cp.root_hash


# -- shred ---------------------------------------------------------------------------------------


def test_shred_seq_prints_what_it_shredded(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 3)

    result = cli("shred", "--seq", "1", "--seq", "2", "--yes", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "shredded 2 entries: 1-2\n" + ROTATED
    assert result.stderr == "will shred 2 entries: 1-2\n"


def test_show_of_a_shredded_entry_prints_the_shredded_notice_and_no_identifiers(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "jan@example.nl", "--note", "private")
    cli("shred", "--seq", "0", "--yes", env=ledger.env)

    result = cli("show", "0", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == SHREDDED_NOTICE
    assert "shredded: True" in result.stdout.splitlines()
    assert "jan@example.nl" not in result.stdout
    assert "private" not in result.stdout


def test_lookup_no_longer_finds_a_shredded_entry(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "jan@example.nl")
    cli("shred", "--seq", "0", "--yes", env=ledger.env)

    result = cli("lookup", "--email", "jan@example.nl", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "not in the ledger\n"


def test_ledger_still_verifies_after_shredding(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 3)
    cli("shred", "--seq", "1", "--yes", env=ledger.env)

    result = cli("verify", "--public-key", ledger.public_key_file, env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"OK {DEFAULT_ORIGIN}: 3 entries, 4 signed checkpoints match",
        "OK 3 key rows authenticated",
    ]


def test_list_marks_shredded_entries(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 2)
    cli("shred", "--seq", "0", "--yes", env=ledger.env)

    assert [e["shredded"] for e in ledger.listing()] == [True, False]
    assert cli("list", env=ledger.public_env).stdout.splitlines()[1].endswith("email [shredded]")


def test_shred_before_date_shreds_only_entries_carried_out_before_it(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append(
        "DONE-JAN", "--email", "a@example.nl", "--received", "2026-01-02", "--effective", "2026-01-10"
    )
    ledger.append(
        "DONE-MAR", "--email", "b@example.nl", "--received", "2026-03-01", "--effective", "2026-03-10"
    )
    ledger.append("NOT-DONE", "--email", "c@example.nl", "--received", "2026-01-02")
    ledger.append(
        "ON-THE-DAY", "--email", "d@example.nl", "--received", "2026-01-02", "--effective", "2026-02-01"
    )

    result = cli("shred", "--before", "2026-02-01", "--yes", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "shredded 1 entry: 0\n" + ROTATED
    assert [e["shredded"] for e in ledger.listing()] == [True, False, False, False]


def test_shred_before_a_date_with_nothing_to_shred_says_so(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = initialised_ledger()
    ledger.append("R1", "--email", "a@example.nl", "--received", "2026-03-01", "--effective", "2026-03-10")

    result = cli("shred", "--before", "2026-02-01", "--yes", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "nothing to shred\n"
    assert [e["shredded"] for e in ledger.listing()] == [False]


# -- rotate-key ----------------------------------------------------------------------------------


def test_rotate_key_reports_the_new_key_encryption_key(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 2)

    result = cli("rotate-key", env=ledger.env)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "rotated: every data key is now wrapped by kek-2; the old key-encryption key was destroyed\n"
    )


def test_every_entry_still_opens_after_rotate_key(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 3)
    cli("shred", "--seq", "1", "--yes", env=ledger.env)
    before = [cli("show", seq, "--json", env=ledger.env).stdout for seq in range(3)]

    cli("rotate-key", env=ledger.env)

    assert [cli("show", seq, "--json", env=ledger.env).stdout for seq in range(3)] == before
    assert json.loads(before[0])["identifiers"] == [{"type": "email", "value": "person0@example.nl"}]


def test_verify_with_the_rotated_keyring_passes(cli: RunCli, initialised_ledger: InitialisedLedger) -> None:
    ledger = _with_entries(initialised_ledger(), 3)
    cli("rotate-key", env=ledger.env)

    result = cli(
        "verify", "--public-key", ledger.public_key_file, "--keyring", ledger.keyring, env=ledger.public_env
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "OK 3 key rows authenticated"


def test_rotate_key_leaves_exactly_one_key_encryption_key_in_a_0600_keyring(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 2)

    cli("rotate-key", env=ledger.env)

    with ledger.keyring.open(encoding="utf-8") as fh:
        assert list(json.load(fh)["keks"]) == ["kek-2"]
    assert stat.S_IMODE(ledger.keyring.stat().st_mode) == 0o600
    assert not [p.name for p in ledger.directory.iterdir() if p.name.startswith(".")]  # no temp files left


def test_lookup_still_finds_entries_after_rotate_key(
    cli: RunCli, initialised_ledger: InitialisedLedger
) -> None:
    ledger = _with_entries(initialised_ledger(), 2)

    cli("rotate-key", env=ledger.env)

    result = cli("lookup", "--email", "person1@example.nl", env=ledger.env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1  erasure  R1\n"


def test_complete_marks_an_earlier_request_carried_out_so_it_is_no_longer_overdue(cli, initialised_ledger):
    ledger = initialised_ledger()
    ledger.append("DSR-9", "--email", "a@b.nl", "--received", "2026-01-05")
    overdue = cli("list", "--overdue", "--json", env=ledger.env)
    assert [m["request_id"] for m in json.loads(overdue.stdout)] == ["DSR-9"]
    result = cli("complete", "DSR-9", "--effective", "2026-01-20", env=ledger.env)
    assert result.exit_code == 0
    assert result.stdout == "1\n"
    after = cli("list", "--overdue", "--json", env=ledger.env)
    assert json.loads(after.stdout) == []
    again = cli("complete", "DSR-9", "--effective", "2026-01-21", env=ledger.env)
    assert again.exit_code == 2
    assert again.stderr == "erasure-ledger: error: request DSR-9 is already marked carried out\n"
