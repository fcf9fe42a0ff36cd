"""``erasure-ledger append``: custom identifier types, end to end.

Any name ``[a-z][a-z0-9_]*`` is a custom type (``loyalty_card``, ``ticket_no``), normalised
as an opaque key. A NEW identifier whose custom type looks like a misspelt known type
(``emial``) is refused with exit 2 and a hint, whether it comes from ``--id`` or an import
file (the line is named): it would be sealed forever under a type the reconciler never
matches. Entries stored before that check keep opening and can still be looked up.
"""

from __future__ import annotations

from pathlib import Path

from erasure_ledger import Entry, Identifier, Keyring, Ledger, open_store
from tests.cli.conftest import CliLedger, InitialisedLedger
from tests.conftest import FIXED_NOW

HINT = "is not a known type (did you mean 'email'? a custom type must not look like a known one)"


def write_jsonl(ledger: CliLedger, *lines: str) -> Path:
    path = ledger.directory / "requests.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_an_import_line_with_a_misspelt_identifier_type_is_refused_by_line(
    initialised_ledger: InitialisedLedger,
) -> None:
    ledger = initialised_ledger()
    path = write_jsonl(
        ledger,
        '{"request_id": "DSR-2026-112", "kind": "erasure", "identifiers": {"email": "y@example.nl"}}',
        '{"request_id": "DSR-2026-113", "kind": "erasure", "identifiers": {"emial": "x@example.nl"}}',
    )

    result = ledger.run("append", "--from", path, env=ledger.env)

    assert result.exit_code == 2
    assert result.stderr == f"erasure-ledger: error: {path}:2: identifier type 'emial' {HINT}; nothing was appended\n"
    assert "x@example.nl" not in result.output
    assert ledger.listing() == []


def test_a_misspelt_type_given_with_id_is_refused(initialised_ledger: InitialisedLedger) -> None:
    ledger = initialised_ledger()

    result = ledger.run(
        "append", "--request-id", "DSR-1", "--kind", "erasure", "--id", "e_mail=x@example.nl", env=ledger.env
    )

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"erasure-ledger: error: identifier type 'e_mail' {HINT}\n"
    assert ledger.listing() == []


def test_legitimate_custom_types_are_appended_from_flags_and_files(
    initialised_ledger: InitialisedLedger,
) -> None:
    ledger = initialised_ledger()
    ledger.append("DSR-1", "--id", "loyalty_card=Gold 0042")
    path = write_jsonl(
        ledger, '{"request_id": "DSR-2", "kind": "erasure", "identifiers": {"ticket_no": "T-77"}}'
    )
    assert ledger.run("append", "--from", path, env=ledger.env).exit_code == 0

    assert [e["identifier_types"] for e in ledger.listing()] == [["loyalty_card"], ["ticket_no"]]


def test_an_entry_stored_under_a_near_miss_type_still_opens_and_is_found(
    initialised_ledger: InitialisedLedger,
) -> None:
    ledger = initialised_ledger()
    # As an older version of the tool stored it, before near misses were refused on input.
    old = Ledger.open(open_store(str(ledger.path)), Keyring.from_file(ledger.keyring))
    old.append(
        [Entry(request_id="DSR-OLD", kind="erasure", identifiers=(Identifier("emial", "x@example.nl"),))],
        now=FIXED_NOW,
    )
    old.store.close()

    shown = ledger.run("show", "0", env=ledger.env)
    found = ledger.run("lookup", "--id", "emial=x@example.nl", env=ledger.env)

    assert shown.exit_code == 0, shown.stderr
    assert "identifier: emial=x@example.nl" in shown.stdout
    assert (found.exit_code, found.stdout) == (0, "0  erasure  DSR-OLD\n")
