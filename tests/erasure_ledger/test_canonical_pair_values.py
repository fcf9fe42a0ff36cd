"""The fast payload parser reads exactly what ``json.loads`` reads, whatever the values.

A value may spell the text between two identifier pairs: ``],[`` (a valid customer number or
username) between its quotes is ``"],["``. A split on that text made such an entry unreadable,
and with it every ``plan``, ``apply``, ``verify`` and ``show`` (they open every entry).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from erasure_ledger import Entry, Keyring, Ledger, MemoryStore
from erasure_ledger.canonical import _parse_plain_payload
from erasure_ledger.identifiers import Identifier

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def json_path(plaintext: bytes) -> tuple[tuple[Identifier, ...], str | None]:
    obj = json.loads(plaintext)
    return tuple(Identifier(type=t, value=v) for t, v in obj["identifiers"]), obj.get("note")


@pytest.mark.parametrize("pairs", [
    [["customer_number", "],["], ["email", "jan@example.nl"]],
    [["email", "a@b.nl"], ["username", "],["], ["username", "zed"]],
    [["customer_number", "],["], ["customer_number", "x"]],
])
def test_a_value_that_spells_the_pair_separator_reads_as_json_reads_it(pairs: list[list[str]]
                                                                        ) -> None:
    plaintext = json.dumps({"identifiers": pairs, "note": None}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False).encode()
    assert _parse_plain_payload(plaintext) in (None, json_path(plaintext))


def test_an_entry_with_such_a_customer_number_opens() -> None:
    ledger = Ledger.create(MemoryStore(), Keyring.generate("test.example/ledger"), now=NOW)
    entry = Entry.from_dict({"request_id": "DSR-1", "kind": "erasure",
                             "identifiers": {"customer_number": "],[",
                                             "email": "jan@example.nl"}})
    ledger.append([entry], now=NOW)

    _, opened = ledger.open_all()

    [only] = opened
    assert only.entry is not None
    assert {(i.type, i.value) for i in only.entry.identifiers} == {
        ("customer_number", "],["), ("email", "jan@example.nl")}
