"""What an S3 ledger looks like in the bucket: object keys and the bytes of every object.

Layout under ``s3://bucket/prefix/`` (docs/s3-and-kms.md explains every choice)::

    ledger.json                      meta and store settings; written once (If-None-Match)
    head.json                        committed head + the current append reservation;
                                     replaced only with If-Match on its ETag (compare-and-swap)
    leaves/000000000042              one immutable object per entry: the exact leaf bytes
    checkpoints/000000000043.json    one immutable object per signed checkpoint (+ tree nodes)
    requests/<sha256(request id)>    one marker per request id (If-None-Match: atomic uniqueness)
    keys/000000000042.json           the mutable key row; never Object Locked, and every older
                                     version is deleted when it is replaced (shred, rotate-key)

:class:`Layout` names the keys; the ``encode_*``/``decode_*`` pairs turn values into object
bodies and back. A decoder treats every body as attacker-controlled: anything malformed is a
:class:`~erasure_ledger.errors.TamperedEntryError` (or ``None`` where the caller decides). This
module is pure: no boto3, no requests, no clock, no cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from erasure_ledger.errors import TamperedEntryError, UsageError
from erasure_ledger.stores.base import Head, KeyRow

STORE_FORMAT = "erasure-ledger-s3/1"
SEQ_DIGITS = 12  # zero-padded so listings come back in sequence order (up to 10**12 entries)
LockMode = Literal["GOVERNANCE", "COMPLIANCE"]


@dataclass(frozen=True)
class ObjectLockSettings:
    """Retention for the immutable objects (meta, entries, checkpoints); never for key rows."""

    # GOVERNANCE lets an account with s3:BypassGovernanceRetention delete early; COMPLIANCE
    # lets nobody, not even the root user, until the period ends.
    mode: LockMode = "GOVERNANCE"
    # how long each object stays write-once after it is written (10 years by default)
    days: int = 3650

    def __post_init__(self) -> None:
        if self.mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise UsageError("Object Lock mode must be GOVERNANCE or COMPLIANCE")
        if not 1 <= self.days <= 36500:
            raise UsageError("Object Lock retention must be 1..36500 days")


@dataclass(frozen=True)
class Reservation:
    """An append's reservation of seqs ``start..end-1``, kept in head.json until it commits."""

    start: int
    end: int
    nonce: str  # identifies this batch's request markers
    owner: str  # changes on every takeover, so the head's ETag changes too
    state: Literal["append", "rollback"]
    request_ids: tuple[str, ...]
    checkpoint: str | None
    nodes: tuple[bytes, ...]
    lease: float

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "nonce": self.nonce, "owner": self.owner,
                "state": self.state, "request_ids": list(self.request_ids),
                "checkpoint": self.checkpoint, "nodes": [_b64(n) for n in self.nodes],
                "lease": self.lease}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Reservation:
        state = doc["state"]
        if state not in ("append", "rollback"):
            raise ValueError(state)
        return cls(start=int(doc["start"]), end=int(doc["end"]), nonce=str(doc["nonce"]),
                   owner=str(doc["owner"]), state=state,
                   request_ids=tuple(str(r) for r in doc["request_ids"]),
                   checkpoint=None if doc["checkpoint"] is None else str(doc["checkpoint"]),
                   nodes=tuple(_unb64(n) for n in doc["nodes"]), lease=float(doc["lease"]))


@dataclass(frozen=True)
class HeadState:
    """head.json as read: the committed head, its ETag and the reservation it holds."""

    head: Head
    etag: str | None  # None when head.json does not exist yet
    pending: Reservation | None

    def accounts_for(self, seq: int) -> bool:
        """The head holds this seq, or an append in flight (or awaiting settlement) does."""
        p = self.pending
        return seq < self.head.size or (p is not None and p.start <= seq < p.end)


class Layout:
    """The object keys of one ledger under ``prefix`` ("" for the bucket's root)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def folder(self, name: str) -> str:
        """The listing prefix of ``leaves``, ``keys``, ``checkpoints`` ..."""
        return self.key(name) + "/"

    def relative(self, key: str) -> str:
        return key[len(self.prefix):]

    @property
    def meta(self) -> str:
        return self.key("ledger.json")

    @property
    def head(self) -> str:
        return self.key("head.json")

    def leaf(self, seq: int) -> str:
        return self.key(f"leaves/{seq:0{SEQ_DIGITS}d}")

    def row(self, seq: int) -> str:
        return self.key(f"keys/{seq:0{SEQ_DIGITS}d}.json")

    def checkpoint(self, size: int) -> str:
        return self.key(f"checkpoints/{size:0{SEQ_DIGITS}d}.json")

    def marker(self, request_id: str) -> str:
        return self.key(f"requests/{hashlib.sha256(request_id.encode()).hexdigest()}")

    @staticmethod
    def seq_of(key: str) -> int | None:
        stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
        return int(stem) if stem.isdigit() and len(stem) == SEQ_DIGITS else None


def parse_location(location: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, normalised prefix).

    Raises:
        UsageError: not an S3 location, or a prefix with ``.``/``..`` segments.
    """
    parts = urlsplit(location)
    bucket = parts.netloc
    if parts.scheme != "s3" or not bucket or parts.query or parts.fragment or "@" in bucket:
        raise UsageError("an S3 ledger location is s3://bucket or s3://bucket/prefix")
    prefix = "/".join(p for p in parts.path.split("/") if p)
    if any(p in (".", "..") for p in prefix.split("/")):
        raise UsageError("an S3 ledger prefix may not contain . or .. segments")
    return bucket, prefix


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: object) -> bytes:
    return base64.b64decode(str(text), validate=True)


# -- ledger.json -----------------------------------------------------------------------------


def encode_settings(meta: Mapping[str, str], lock: ObjectLockSettings | None) -> dict[str, Any]:
    return {"format": STORE_FORMAT, "meta": dict(meta),
            "object_lock": None if lock is None else {"mode": lock.mode, "days": lock.days}}


def decode_settings(body: bytes, *, location: str) -> dict[str, Any]:
    """ledger.json, checked. Raises TamperedEntryError when it is malformed."""
    try:
        doc = json.loads(body)
        if doc.get("format") != STORE_FORMAT or not isinstance(doc.get("meta"), dict):
            raise ValueError("format")
        lock_of(doc)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise TamperedEntryError(f"{location}: ledger.json is malformed") from None
    return dict(doc)


def lock_of(settings: Mapping[str, Any]) -> ObjectLockSettings | None:
    """The retention fixed at create, from decoded ledger.json settings."""
    lock = settings.get("object_lock")
    return None if lock is None else ObjectLockSettings(mode=lock["mode"], days=int(lock["days"]))


# -- head.json -------------------------------------------------------------------------------


def encode_head(head: Head, pending: Reservation | None) -> bytes:
    return json.dumps({
        "format": STORE_FORMAT, "size": head.size, "nodes": [_b64(n) for n in head.nodes],
        "checkpoint": head.checkpoint, "pending": pending.to_json() if pending else None,
    }, sort_keys=True).encode()


def decode_head(body: bytes, *, location: str) -> tuple[Head, Reservation | None]:
    """head.json, checked. Raises TamperedEntryError when it is malformed."""
    try:
        doc = json.loads(body)
        if doc.get("format") != STORE_FORMAT:
            raise ValueError("format")
        head = Head(size=int(doc["size"]), nodes=tuple(_unb64(n) for n in doc["nodes"]),
                    checkpoint=None if doc["checkpoint"] is None else str(doc["checkpoint"]))
        pending = None if doc.get("pending") is None else Reservation.from_json(doc["pending"])
    except (ValueError, TypeError, KeyError, AttributeError):
        raise TamperedEntryError(f"{location}: head.json is malformed") from None
    if head.size < 0:
        raise TamperedEntryError(f"{location}: head.json is malformed")
    return head, pending


# -- keys/<seq>.json -------------------------------------------------------------------------


def encode_key_row(row: KeyRow) -> bytes:
    return json.dumps({
        "seq": row.seq, "kek_id": row.kek_id,
        "wrapped_key": None if row.wrapped_key is None else _b64(row.wrapped_key),
        "tokens": _b64(row.tokens), "mac": _b64(row.mac),
    }, sort_keys=True).encode()


def decode_key_row(body: bytes, seq: int | None) -> KeyRow:
    """The key row stored under the key of ``seq``. Raises TamperedEntryError when it is
    malformed or claims another seq."""
    try:
        doc = json.loads(body)
        if doc["seq"] != seq:
            raise ValueError("seq")
        return KeyRow(seq=int(doc["seq"]), kek_id=doc["kek_id"],
                      wrapped_key=None if doc["wrapped_key"] is None else _unb64(doc["wrapped_key"]),
                      tokens=_unb64(doc["tokens"]), mac=_unb64(doc["mac"]))
    except (ValueError, TypeError, KeyError):
        raise TamperedEntryError(f"entry {seq}: its key row object is malformed") from None


# -- checkpoints/<size>.json -----------------------------------------------------------------


def encode_checkpoint(head: Head) -> bytes:
    return json.dumps({"size": head.size, "note": head.checkpoint,
                       "nodes": [_b64(n) for n in head.nodes]}, sort_keys=True).encode()


def checkpoint_note(body: bytes) -> str | None:
    """The signed note of a checkpoint object, or None when it is malformed."""
    try:
        note = json.loads(body).get("note")
    except (ValueError, AttributeError):
        return None
    return note if isinstance(note, str) else None


def checkpoint_nodes(body: bytes) -> tuple[bytes, ...] | None:
    """The (untrusted) compact-range nodes of a checkpoint object, or None."""
    try:
        return tuple(_unb64(n) for n in json.loads(body)["nodes"])
    except (ValueError, TypeError, KeyError):
        return None


# -- requests/<hash> -------------------------------------------------------------------------


def encode_marker(request_id: str, seq: int, nonce: str) -> bytes:
    return json.dumps({"request_id": request_id, "seq": seq, "nonce": nonce}, sort_keys=True).encode()


def decode_marker(body: bytes) -> dict[str, Any] | None:
    """A request marker (``seq`` is an int), or None when it is malformed."""
    try:
        doc = json.loads(body)
        return doc if isinstance(doc, dict) and isinstance(doc.get("seq"), int) else None
    except ValueError:
        return None


__all__ = [
    "SEQ_DIGITS",
    "STORE_FORMAT",
    "HeadState",
    "Layout",
    "LockMode",
    "ObjectLockSettings",
    "Reservation",
    "checkpoint_nodes",
    "checkpoint_note",
    "decode_head",
    "decode_key_row",
    "decode_marker",
    "decode_settings",
    "encode_checkpoint",
    "encode_head",
    "encode_key_row",
    "encode_marker",
    "encode_settings",
    "lock_of",
    "parse_location",
]
