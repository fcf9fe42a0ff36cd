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

        def ts(name: str) -> Any:
            value = h.get(name)
            return parse_timestamp(value, field_name=name) if value else None

        return EntryMeta(
            seq=self.seq,
            request_id=h["request_id"],
            kind=h["kind"],
            identifier_types=tuple(h["id_types"]),
            appended_at=ts("appended_at"),
            received=ts("received"),
            verified=ts("verified"),
            effective=ts("effective"),
            purpose=h.get("purpose"),
            shredded=shredded,
            completes=h.get("completes"),
        )


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
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TamperedEntryError(f"entry {expected_seq}: leaf is not valid JSON") from None
    if not isinstance(obj, dict) or set(obj) != {"header", "sealed"}:
        raise TamperedEntryError(f"entry {expected_seq}: leaf lacks required fields")
    header, sealed_text = obj["header"], obj["sealed"]
    if not isinstance(header, dict) or not all(k in header for k in _HEADER_FIELDS):
        raise TamperedEntryError(f"entry {expected_seq}: leaf header lacks required fields")
    obj = header
    if obj["format"] != FORMAT_VERSION:
        raise IntegrityError(
            f"entry {expected_seq}: leaf format {obj['format']!r} is not supported by this tool"
        )
    try:
        sealed = base64.b64decode(sealed_text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise TamperedEntryError(f"entry {expected_seq}: sealed payload is not base64") from None
    header_bytes = canonical_json(header)
    if leaf_bytes(header_bytes, sealed) != data:
        raise TamperedEntryError(f"entry {expected_seq}: leaf is not in canonical form")
    if obj["seq"] != expected_seq:
        raise TamperedEntryError(
            f"entry {expected_seq}: leaf says it is entry {obj['seq']} (moved or swapped)"
        )
    if obj["origin"] != origin:
        raise TamperedEntryError(f"entry {expected_seq}: leaf belongs to another ledger")
    if obj["kind"] not in KINDS and obj["kind"] != COMPLETION:
        raise TamperedEntryError(f"entry {expected_seq}: unknown kind")
    return Leaf(header=header, sealed=sealed, header_bytes=header_bytes)


def entry_from_payload(meta: EntryMeta, plaintext: bytes) -> Entry:
    """Rebuild the :class:`Entry` from an opened payload and its leaf's metadata.

    Raises:
        TamperedEntryError: the payload is not what this tool seals.
    """
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
