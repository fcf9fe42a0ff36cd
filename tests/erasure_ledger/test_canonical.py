"""The leaf and payload parsers: exactly one encoding of each entry is accepted (ledger-format §2).

``parse_leaf`` reads nearly every leaf on a fast path (a pattern of the canonical header, no
json) and falls back to the full path (json, then re-encoding to compare) for anything else.
These tests pin both: every non-canonical spelling is rejected, and on every input the fast
path either declines or reads exactly what the full path reads.
"""

from __future__ import annotations

import base64
import json

import pytest

from erasure_ledger import IntegrityError, TamperedEntryError
from erasure_ledger.canonical import (
    _parse_any_leaf,
    _parse_plain_leaf,
    _parse_plain_payload,
    canonical_json,
    entry_from_payload,
    leaf_bytes,
    leaf_header,
    parse_leaf,
    payload_bytes,
)
from erasure_ledger.model import Entry
from tests.conftest import make_entry

ORIGIN = "bloemist.nl/ledgér"
SEALED = bytes(range(61))  # any blob (parsing never opens it); its base64 ends in "=="


def header_of(entry: Entry, *, origin: str = ORIGIN, seq: int = 7) -> dict:
    return leaf_header(entry, origin=origin, seq=seq, appended_at="2026-11-01T12:00:00Z")


def canonical_leaf(entry: Entry | None = None, **kw) -> bytes:
    header = header_of(entry or make_entry("REQ-1"), **kw)
    return leaf_bytes(canonical_json(header), SEALED)


def both_paths_agree(data: bytes, seq: int = 7) -> None:
    """The fast path declines (None) or returns what the full path returns, key order too."""
    fast = _parse_plain_leaf(data)
    try:
        full = _parse_any_leaf(data, seq)
    except (TamperedEntryError, IntegrityError):
        assert fast is None
        return
    if fast is not None:
        assert fast == full
        assert list(fast[0]) == list(full[0])


# -- the canonical leaf and what is not --------------------------------------------------------


def test_a_canonical_leaf_takes_the_fast_path_and_reads_as_the_full_path_does():
    data = canonical_leaf()
    assert _parse_plain_leaf(data) is not None
    both_paths_agree(data)
    leaf = parse_leaf(data, expected_seq=7, origin=ORIGIN)
    assert leaf.header == json.loads(data)["header"]
    assert leaf.header_bytes == canonical_json(leaf.header)
    assert leaf.sealed == SEALED


def _respell(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data, old
    return data.replace(old, new, 1)


def _with_spare_bits(data: bytes) -> bytes:
    """The last base64 digit before "==" carries 4 unused bits: set one (same blob decoded)."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    end = data.rindex(b'=="}')
    digit = alphabet[alphabet.index(data[end - 1]) ^ 1]
    return data[: end - 1] + bytes([digit]) + data[end:]


NON_CANONICAL = {
    "white space after a colon": lambda d: _respell(d, b'"kind":', b'"kind": '),
    "white space after a comma": lambda d: _respell(d, b',"kind"', b', "kind"'),
    "white space inside the frame": lambda d: _respell(d, b',"sealed":', b' ,"sealed":'),
    "a leading space": lambda d: b" " + d,
    "a trailing newline": lambda d: d + b"\n",
    "header keys unsorted": lambda d: _respell(
        _respell(d, b'"format":1,', b""), b'"kind":', b'"format":1,"kind":'
    ),
    "leaf keys unsorted": lambda d: (
        b'{"sealed":' + d[d.rindex(b',"sealed":') + 10 : -1] + b',"header":' + d[10 : d.rindex(b',"sealed":')] + b"}"
    ),
    "non-ASCII escaped": lambda d: _respell(d, "é".encode(), b"\\u00e9"),
    "ASCII escaped": lambda d: _respell(d, b'"kind":"erasure"', b'"kind":"er\\u0061sure"'),
    "a slash escaped": lambda d: _respell(d, b"bloemist.nl/", b"bloemist.nl\\/"),
    "the format written 1.0": lambda d: _respell(d, b'"format":1,', b'"format":1.0,'),
    "the format written true": lambda d: _respell(d, b'"format":1,', b'"format":true,'),
    "the seq written 7.0": lambda d: _respell(d, b'"seq":7,', b'"seq":7.0,'),
    "the seq written 7e0": lambda d: _respell(d, b'"seq":7,', b'"seq":7e0,'),
    "the seq with a leading zero": lambda d: _respell(d, b'"seq":7,', b'"seq":07,'),
    "a key given twice": lambda d: _respell(d, b'"kind":"erasure"', b'"kind":"objection","kind":"erasure"'),
    "base64 with spare bits set": _with_spare_bits,
    "base64 without padding": lambda d: _respell(d, b'=="}', b'"}'),
    "base64 with a line break": lambda d: _respell(d, b'"sealed":"', b'"sealed":"\\n'),
}


@pytest.mark.parametrize("spelling", sorted(NON_CANONICAL))
def test_every_other_spelling_of_a_leaf_is_rejected(spelling):
    data = NON_CANONICAL[spelling](canonical_leaf())
    assert data != canonical_leaf()
    assert _parse_plain_leaf(data) is None, "the fast path must decline what is not canonical"
    with pytest.raises(TamperedEntryError):
        parse_leaf(data, expected_seq=7, origin=ORIGIN)


def test_the_spare_bits_case_really_decodes_to_the_same_blob():
    # only re-encoding tells the two spellings apart
    sealed_text = json.loads(NON_CANONICAL["base64 with spare bits set"](canonical_leaf()))["sealed"]
    assert base64.b64decode(sealed_text, validate=True) == SEALED
    assert base64.b64encode(SEALED) != sealed_text.encode()


def test_a_format_this_tool_does_not_know_is_still_an_integrity_error():
    data = _respell(canonical_leaf(), b'"format":1,', b'"format":2,')
    with pytest.raises(IntegrityError, match="leaf format 2 is not supported"):
        parse_leaf(data, expected_seq=7, origin=ORIGIN)


@pytest.mark.parametrize(
    ("seq", "origin", "message"),
    [(8, ORIGIN, "leaf says it is entry 7"), (7, "other.example/l", "belongs to another ledger")],
)
def test_position_and_ledger_are_checked_on_the_fast_path(seq, origin, message):
    with pytest.raises(TamperedEntryError, match=message):
        parse_leaf(canonical_leaf(), expected_seq=seq, origin=origin)


# -- the fast path declines what it cannot prove, and the full path decides -------------------


@pytest.mark.parametrize(
    "origin",
    ['quote"and\\backslash', "tab\tand\nnewline", "del\x7f and line sep\u2028", "emoji \U0001f337", "plain.example/l"],
)
def test_origins_with_any_characters_read_the_same_on_both_paths(origin):
    data = canonical_leaf(origin=origin)
    both_paths_agree(data)
    assert parse_leaf(data, expected_seq=7, origin=origin).header["origin"] == origin


@pytest.mark.parametrize(
    "entry",
    [
        make_entry("R1"),
        make_entry("R2", kind="objection", purpose="tracking-cookies"),
        make_entry("R3", received="2026-01-31T10:00:00Z", verified="2026-02-01", effective="2026-02-02"),
        make_entry("R4", identifiers={"email": "a@b.nl", "iban": "NL91ABNA0417164300", "kvk": "12345678"}),
        Entry.completion("R5", effective="2026-03-01"),
    ],
)
def test_every_kind_of_entry_reads_the_same_on_both_paths(entry):
    data = canonical_leaf(entry)
    assert _parse_plain_leaf(data) is not None
    both_paths_agree(data)


def test_a_header_field_this_version_does_not_know_is_kept_by_the_full_path():
    header = header_of(make_entry("R1")) | {"zz_later": [1, {"a": None}]}
    data = leaf_bytes(canonical_json(header), SEALED)
    assert _parse_plain_leaf(data) is None
    assert parse_leaf(data, expected_seq=7, origin=ORIGIN).header["zz_later"] == [1, {"a": None}]


def test_the_characters_json_writes_verbatim_are_those_the_fast_path_calls_plain():
    # The fast patterns rest on this: with non-ASCII written as itself, the canonical encoder
    # escapes only the quote, the backslash and the control characters below U+0020.
    plain = "".join(chr(c) for c in range(0x20, 0x110000) if chr(c) not in '"\\' and not 0xD800 <= c < 0xE000)
    assert canonical_json(plain) == b'"' + plain.encode() + b'"'
    for c in '"\\' + "".join(chr(c) for c in range(0x20)):
        assert canonical_json(c) != b'"' + c.encode() + b'"'


def test_the_fast_path_declines_a_leaf_that_is_not_bytes_or_not_utf8():
    assert _parse_plain_leaf(canonical_leaf().decode()) is None  # type: ignore[arg-type]
    bad = _respell(canonical_leaf(), "é".encode(), b"\xed\xa0\x80")  # an encoded surrogate
    assert _parse_plain_leaf(bad) is None


# -- the sealed payload ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [
        payload_bytes(make_entry("R1")),
        payload_bytes(make_entry("R2", identifiers={"email": "a@b.nl", "phone": "0416-853988"})),
        payload_bytes(make_entry("R3", note="called twice")),
        payload_bytes(make_entry("R4", note='a "quoted" note\nover two lines')),
        payload_bytes(make_entry("R5", identifiers={"username": 'o"brien\\x', "loyalty_card": "],[\"x"})),
        '{"identifiers":[["cookie_id",""],["username","tulpë"]],"note":""}'.encode(),
        payload_bytes(Entry.completion("R7", effective="2026-03-01")),
        b'{"identifiers": [["email", "a@b.nl"]], "note": null}',
        b'{"note":null,"identifiers":[["email","a@b.nl"]]}',
        b'{"identifiers":[["email","\\u0061@b.nl"]],"note":null}',
    ],
)
def test_payloads_read_the_same_with_or_without_json(plaintext):
    obj = json.loads(plaintext)
    fast = _parse_plain_payload(plaintext)
    if fast is not None:
        identifiers, note = fast
        assert [[i.type, i.value] for i in identifiers] == obj["identifiers"]
        assert note == obj.get("note")
        assert type(identifiers) is tuple


def test_an_opened_entry_equals_the_entry_that_was_sealed():
    for entry in [
        make_entry("R1", identifiers={"email": "a@b.nl", "phone": "0416-853988", "iban": "NL91ABNA0417164300"}),
        make_entry("R2", kind="objection", purpose="marketing", received="2026-01-02", note="x"),
    ]:
        header = header_of(entry)
        leaf = parse_leaf(leaf_bytes(canonical_json(header), SEALED), expected_seq=7, origin=ORIGIN)
        assert entry_from_payload(leaf.meta(), payload_bytes(entry)) == entry


def test_a_payload_whose_types_differ_from_the_header_is_tampering():
    leaf = parse_leaf(canonical_leaf(make_entry("R1")), expected_seq=7, origin=ORIGIN)
    other = payload_bytes(make_entry("R1", identifiers={"phone": "0416-853988"}))
    with pytest.raises(TamperedEntryError, match="identifier types differ"):
        entry_from_payload(leaf.meta(), other)


def test_payloads_as_this_tool_seals_them_take_the_fast_path():
    for entry in [make_entry("R1", identifiers={"email": "a@b.nl", "phone": "0416-853988"}, note="x"),
                  Entry.completion("R7", effective="2026-03-01")]:
        assert _parse_plain_payload(payload_bytes(entry)) is not None
