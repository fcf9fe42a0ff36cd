"""The one place that turns ledger objects into bytes for hashing, sealing and signing.

A leaf is canonical JSON (UTF-8, keys sorted, no insignificant white space) of::

    {"header": {"format": 1, "origin": ..., "seq": N, "appended_at": ..., "request_id": ...,
                "kind": ..., "id_types": [...], "received": ..., "verified": ...,
                "effective": ..., "purpose": ...},
     "sealed": "<base64 nonce || AES-GCM ciphertext>"}

The canonical bytes of the header are the AES-GCM associated data, so a ciphertext moved to
another position or another ledger does not open (docs/ledger-format.md §3). Because
``header`` sorts before ``sealed``, the leaf is the header bytes spliced into a fixed frame:
the header is encoded once per append. The sealed plaintext is canonical JSON of
``{"identifiers": [[type, value], ...], "note": ...}``.

No cryptography and no I/O here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from erasure_ledger.errors import IntegrityError, TamperedEntryError
from erasure_ledger.identifiers import Identifier
from erasure_ledger.model import (
    COMPLETION,
    FORMAT_VERSION,
    KINDS,
    Entry,
    EntryMeta,
    format_timestamp,
    parse_timestamp,
)

_HEADER_FIELDS = (
    "format",
    "origin",
    "seq",
    "appended_at",
    "request_id",
    "kind",
    "id_types",
    "received",
    "verified",
    "effective",
    "purpose",
)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

# The fast parsers (_parse_plain_leaf, _parse_plain_payload). A *plain* string is one JSON
# writes verbatim: no quote, no backslash, no control character (the only characters the
# canonical encoder escapes, as it writes non-ASCII as itself). It decodes to exactly the
# text between its quotes, and encodes back to the same bytes.
_PLAIN_TEXT = r'"[^"\\\x00-\x1f]*"'
_PLAIN = r'"([^"\\\x00-\x1f]*)"'
_PLAIN_OR_NULL = r"(?:null|" + _PLAIN + ")"
# The canonical header of format 1 whose values are all plain strings, null, the format 1, a
# decimal seq (no sign, no leading zero) and a list of plain strings, with keys in sorted
# order and no white space: every byte is fixed by the values, so a header that matches IS
# canonical JSON. Anything else (unknown fields, escapes, other shapes) takes the full path.
_PLAIN_HEADER = re.compile(
    "".join(
        [
            r'\{"appended_at":' + _PLAIN,
            r'(?:,"completes":' + _PLAIN + ")?",
            r',"effective":' + _PLAIN_OR_NULL,
            r',"format":1',
            r',"id_types":\[((?:' + _PLAIN_TEXT + "(?:," + _PLAIN_TEXT + r")*)?)\]",
            r',"kind":' + _PLAIN,
            r',"origin":' + _PLAIN,
            r',"purpose":' + _PLAIN_OR_NULL,
            r',"received":' + _PLAIN_OR_NULL,
            r',"request_id":' + _PLAIN,
            r',"seq":(0|[1-9][0-9]*)',
            r',"verified":' + _PLAIN_OR_NULL,
            r"\}",
        ]
    )
)
# The sealed payload {"identifiers":[[type,value],...],"note":...} with plain strings only.
_PLAIN_ID = r"\[" + _PLAIN_TEXT + "," + _PLAIN_TEXT + r"\]"
_PLAIN_PAYLOAD = re.compile(
    r'\{"identifiers":\[((?:' + _PLAIN_ID + "(?:," + _PLAIN_ID + r')*)?)\],"note":' + _PLAIN_OR_NULL + r"\}"
)
_PLAIN_PAIR = re.compile(r"\[" + _PLAIN + "," + _PLAIN + r"\]")
_LEAF_HEAD = b'{"header":'
_LEAF_SEALED = b',"sealed":"'
_LEAF_TAIL = b'"}'


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, compact separators, UTF-8 (ledger-format §2)."""
    return _ENCODER.encode(value).encode()


@dataclass(frozen=True)
class Leaf:
    """A parsed leaf: the clear header, the sealed blob, and any unknown header fields."""

    header: dict[str, Any]
    sealed: bytes
    header_bytes: bytes = b""

    @property
    def seq(self) -> int:
        return int(self.header["seq"])

    def associated_data(self) -> bytes:
        """AES-GCM associated data: the canonical header (ledger-format §3)."""
        return self.header_bytes or canonical_json(self.header)

    def meta(self, *, shredded: bool = False) -> EntryMeta:
        h = self.header
        return EntryMeta(
            seq=self.seq,
            request_id=h["request_id"],
            kind=h["kind"],
            identifier_types=tuple(h["id_types"]),
            appended_at=_header_time(h, "appended_at"),
            received=_header_time(h, "received"),
            verified=_header_time(h, "verified"),
            effective=_header_time(h, "effective"),
            purpose=h.get("purpose"),
            shredded=shredded,
            completes=h.get("completes"),
        )


#: header timestamp text -> parse_timestamp of it; bulk reads meet the same few stamps over
#: and over, and a dict lookup is several times cheaper than parse_timestamp's layers
_HEADER_TIMES: dict[str, datetime] = {}
_HEADER_TIMES_MAX = 4096


def _header_time(header: dict[str, Any], name: str) -> Any:
    """``parse_timestamp`` of a header field, None when it is empty or absent."""
    value = header.get(name)
    if not value:
        return None
    if type(value) is not str:  # only text is cached; anything else fails as it always did
        return parse_timestamp(value, field_name=name)
    parsed = _HEADER_TIMES.get(value)
    if parsed is None:
        parsed = parse_timestamp(value, field_name=name)  # raises on bad text: never cached
        if len(_HEADER_TIMES) >= _HEADER_TIMES_MAX:
            _HEADER_TIMES.clear()
        _HEADER_TIMES[value] = parsed
    return parsed


def leaf_bytes(header_bytes: bytes, sealed: bytes) -> bytes:
    """The canonical leaf from canonical header bytes and the sealed blob (ledger-format §3)."""
    return b'{"header":' + header_bytes + b',"sealed":"' + base64.b64encode(sealed) + b'"}'


def leaf_header(entry: Entry, *, origin: str, seq: int, appended_at: str) -> dict[str, Any]:
    """The clear header of the leaf that will hold ``entry`` at position ``seq``."""

    def ts(value: Any) -> str | None:
        return format_timestamp(value) if value is not None else None

    return {
        "format": FORMAT_VERSION,
        "origin": origin,
        "seq": seq,
        "appended_at": appended_at,
        "request_id": entry.request_id,
        "kind": entry.kind,
        "id_types": list(entry.identifier_types),
        "received": ts(entry.received),
        "verified": ts(entry.verified),
        "effective": ts(entry.effective),
        "purpose": entry.purpose,
        # completion entries only (ledger-format §3): the request they mark as carried out
        **({"completes": entry.completes} if entry.kind == COMPLETION else {}),
    }


def leaf_header_bytes(entry: Entry, *, origin_json: str, seq: int, appended_at: str) -> bytes:
    """``canonical_json(leaf_header(...))``, built directly: the bulk-append hot path.

    Every value but the origin is restricted to characters JSON never escapes (request ids,
    kinds, purposes and type names are validated; timestamps are fixed-format), so they are
    written verbatim; ``origin_json`` is the origin already encoded as a JSON string. Keys are
    in canonical (sorted) order. A test checks this equals the canonical encoding.
    """

    if entry.kind == COMPLETION:  # rare: take the general path
        return canonical_json(
            leaf_header(entry, origin=json.loads(origin_json), seq=seq, appended_at=appended_at)
        )

    def ts(value: datetime | None) -> str:
        return f'"{format_timestamp(value)}"' if value is not None else "null"

    id_types = ",".join(f'"{t}"' for t in entry.identifier_types)
    purpose = f'"{entry.purpose}"' if entry.purpose is not None else "null"
    return (
        f'{{"appended_at":"{appended_at}","effective":{ts(entry.effective)},"format":{FORMAT_VERSION},'
        f'"id_types":[{id_types}],"kind":"{entry.kind}","origin":{origin_json},"purpose":{purpose},'
        f'"received":{ts(entry.received)},"request_id":"{entry.request_id}","seq":{seq},'
        f'"verified":{ts(entry.verified)}}}'
    ).encode()


def payload_bytes(entry: Entry) -> bytes:
    """The plaintext that gets sealed: identifier values and the note."""
    return canonical_json({"identifiers": [[i.type, i.value] for i in entry.identifiers], "note": entry.note})


def parse_leaf(data: bytes, *, expected_seq: int, origin: str) -> Leaf:
    """Parse and check a stored leaf that is claimed to sit at ``expected_seq``.

    Raises:
        TamperedEntryError: not canonical JSON of a leaf, or it names another position or
            ledger (a moved or swapped entry).
        IntegrityError: a format version this tool does not know.
    """
    # Nearly every leaf takes the fast path; it accepts only leaves the full path accepts,
    # with the same header, so which path ran never changes the outcome (a test checks).
    parsed = _parse_plain_leaf(data)
    if parsed is None:
        parsed = _parse_any_leaf(data, expected_seq)
    header, sealed, header_bytes = parsed
    if header["seq"] != expected_seq:
        raise TamperedEntryError(
            f"entry {expected_seq}: leaf says it is entry {header['seq']} (moved or swapped)"
        )
    if header["origin"] != origin:
        raise TamperedEntryError(f"entry {expected_seq}: leaf belongs to another ledger")
    if header["kind"] not in KINDS and header["kind"] != COMPLETION:
        raise TamperedEntryError(f"entry {expected_seq}: unknown kind")
    return Leaf(header=header, sealed=sealed, header_bytes=header_bytes)


def _parse_any_leaf(data: bytes, expected_seq: int) -> tuple[dict[str, Any], bytes, bytes]:
    """The full path: parse with json, then re-encode to prove the leaf is canonical."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TamperedEntryError(f"entry {expected_seq}: leaf is not valid JSON") from None
    if not isinstance(obj, dict) or set(obj) != {"header", "sealed"}:
        raise TamperedEntryError(f"entry {expected_seq}: leaf lacks required fields")
    header, sealed_text = obj["header"], obj["sealed"]
    if not isinstance(header, dict) or not all(k in header for k in _HEADER_FIELDS):
        raise TamperedEntryError(f"entry {expected_seq}: leaf header lacks required fields")
    if header["format"] != FORMAT_VERSION:
        raise IntegrityError(
            f"entry {expected_seq}: leaf format {header['format']!r} is not supported by this tool"
        )
    try:
        sealed = base64.b64decode(sealed_text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise TamperedEntryError(f"entry {expected_seq}: sealed payload is not base64") from None
    header_bytes = canonical_json(header)
    # 1.0 and true equal 1 in Python and re-encode as written: the integers must be integers
    # (ledger-format §2), so that each entry still has exactly one encoding.
    integers = type(header["format"]) is int and type(header["seq"]) is int
    if not integers or leaf_bytes(header_bytes, sealed) != data:
        raise TamperedEntryError(f"entry {expected_seq}: leaf is not in canonical form")
    return header, sealed, header_bytes


def _parse_plain_leaf(data: bytes) -> tuple[dict[str, Any], bytes, bytes] | None:
    """The fast path: a leaf that is ``leaf_bytes(H, sealed)`` with ``H`` matching
    ``_PLAIN_HEADER``, read without json and without re-encoding; None for any other leaf.

    Such a leaf is canonical by construction: the header pattern fixes every byte of ``H``
    from its values, and ``sealed`` is checked to re-encode to the same base64 text. So the
    full path would accept it too, and would read the same header (the same keys, in the same
    order, with the same values).
    """
    if not isinstance(data, bytes):  # e.g. text a tampered store handed back
        return None
    split = data.rfind(_LEAF_SEALED)  # base64 holds no quote: the last one is the frame's
    if not (data.startswith(_LEAF_HEAD) and data.endswith(_LEAF_TAIL) and split > len(_LEAF_HEAD)):
        return None
    header_bytes = data[len(_LEAF_HEAD) : split]
    sealed_text = data[split + len(_LEAF_SEALED) : -len(_LEAF_TAIL)]
    try:
        # strict UTF-8: json would let an encoded surrogate through, the full path decides
        match = _PLAIN_HEADER.fullmatch(header_bytes.decode())
        sealed = binascii.a2b_base64(sealed_text, strict_mode=True)
    except (UnicodeDecodeError, binascii.Error):
        return None
    if match is None or binascii.b2a_base64(sealed, newline=False) != sealed_text:
        return None
    return _plain_header(match), sealed, header_bytes


def _plain_header(match: re.Match[str]) -> dict[str, Any]:
    """The header a ``_PLAIN_HEADER`` match spells, keyed in leaf (sorted) order as
    ``json.loads`` would build it."""
    (appended_at, completes, effective, id_types, kind, origin, purpose, received,
     request_id, seq, verified) = match.groups()  # fmt: skip
    header: dict[str, Any] = {"appended_at": appended_at}
    if completes is not None:
        header["completes"] = completes
    header["effective"] = effective
    header["format"] = FORMAT_VERSION
    # plain strings hold no quote, so '","' only ever separates two of them
    header["id_types"] = id_types[1:-1].split('","') if id_types else []
    header["kind"] = kind
    header["origin"] = origin
    header["purpose"] = purpose
    header["received"] = received
    header["request_id"] = request_id
    header["seq"] = int(seq)
    header["verified"] = verified
    return header


def entry_from_payload(meta: EntryMeta, plaintext: bytes) -> Entry:
    """Rebuild the :class:`Entry` from an opened payload and its leaf's metadata.

    Raises:
        TamperedEntryError: the payload is not what this tool seals.
    """
    plain = _parse_plain_payload(plaintext)
    if plain is not None:
        identifiers, note = plain
    else:
        try:
            obj = json.loads(plaintext)
            identifiers = tuple(Identifier(type=t, value=v) for t, v in obj["identifiers"])
            note = obj.get("note")
        except (ValueError, KeyError, TypeError):
            raise TamperedEntryError(f"entry {meta.seq}: sealed payload is malformed") from None
    if tuple(sorted({i.type for i in identifiers})) != meta.identifier_types:
        raise TamperedEntryError(f"entry {meta.seq}: identifier types differ from the header")
    return Entry(
        request_id=meta.request_id,
        kind=meta.kind,
        identifiers=identifiers,
        received=meta.received,
        verified=meta.verified,
        effective=meta.effective,
        purpose=meta.purpose,
        note=note,
        completes=meta.completes,
    )


def _parse_plain_payload(plaintext: bytes) -> tuple[tuple[Identifier, ...], str | None] | None:
    """The identifiers and note of a payload as :func:`payload_bytes` writes it when every
    string is plain (``_PLAIN_PAYLOAD``), read without json; None for any other payload,
    which ``json.loads`` then reads. On a match both read the same values."""
    try:
        match = _PLAIN_PAYLOAD.fullmatch(plaintext.decode())
    except UnicodeDecodeError:  # json decides (it reads encoded surrogates, for one)
        return None
    if match is None:
        return None
    pairs, note = match.groups()
    # '["t","v"],["t","v"]' read pair by pair: plain strings hold no quote, so every '["'
    # opens a pair (a split on '"],["' was not exact: a value may itself be "],[")
    identifiers = tuple([Identifier(t, v) for t, v in _PLAIN_PAIR.findall(pairs)])
    return identifiers, note


__all__ = [
    "Leaf",
    "canonical_json",
    "entry_from_payload",
    "leaf_bytes",
    "leaf_header",
    "leaf_header_bytes",
    "parse_leaf",
    "payload_bytes",
]
