"""The sealing recipe: per-entry data keys, key wrapping, blind-index tokens, key-row MACs.

This module owns the symmetric cryptography (docs/ledger-format.md §3-§5):

* every entry's payload is sealed with AES-256-GCM under its own random 256-bit data key,
  with the leaf header as associated data;
* the data key is wrapped with AES-256-GCM under a key-encryption key (KEK); the wrap's
  associated data binds the ledger origin, the sequence number and the KEK id;
* blind-index tokens are HMAC-SHA256(index key, origin, type, value) truncated to 16 bytes,
  so ``lookup`` and duplicate detection work without decrypting;
* a key row (wrapped key + tokens, kept outside the Merkle tree so it can be shredded) is
  authenticated by HMAC-SHA256(mac key, origin, seq, leaf hash, kek id, wrapped key, tokens):
  altered, swapped or dropped tokens are detected instead of silently hiding a person.

:class:`EntrySealer` strings these together for one entry at one position (leaf bytes, leaf
hash, key-row fields); ``Ledger.append`` and the bulk-import worker processes both use it.

Every failure to open is the one opaque :class:`DecryptionError` (wrong key and altered
ciphertext look the same, as with Fernet's InvalidToken). No I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from erasure_ledger import merkle
from erasure_ledger.canonical import leaf_bytes, leaf_header_bytes, payload_bytes
from erasure_ledger.errors import DecryptionError
from erasure_ledger.identifiers import Identifier
from erasure_ledger.model import Entry

KEY_BYTES = 32
NONCE_BYTES = 12
TOKEN_BYTES = 16
_WRAP_LABEL = b"erasure-ledger/wrap/v1"
_TOKEN_LABEL = b"erasure-ledger/token/v1"
_ROW_LABEL = b"erasure-ledger/key-row/v1"
_SHREDDED_LABEL = b"erasure-ledger/key-row-shredded/v1"


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def _frame(*parts: bytes) -> bytes:
    # Length-prefix every field so no two different tuples encode to the same bytes.
    return b"".join([len(part).to_bytes(4, "big") + part for part in parts])


class _Hmac:
    """HMAC-SHA256 (RFC 2104) under one key: the inner and outer keyed SHA-256 states are
    computed once and copied per message. Equal to ``hmac.new(key, msg, "sha256")`` (a test
    checks); built from hashlib because the copies of the ``hmac`` module's wrapper cost
    twice as much, and bulk appends and reads compute two or three MACs per entry."""

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def __call__(self, msg: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def seal(data_key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """Encrypt ``plaintext``; returns nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, associated_data)


def open_sealed(data_key: bytes, blob: bytes, associated_data: bytes) -> bytes:
    """Decrypt a blob made by :func:`seal`.

    Raises:
        DecryptionError: wrong key, altered ciphertext or altered associated data.
    """
    try:
        return AESGCM(data_key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated_data)
    except (InvalidTag, ValueError):
        raise DecryptionError("sealed data does not open (wrong key or altered data)") from None


class KeyWrapper:
    """Wraps and unwraps data keys under one KEK, reusing the cipher object for bulk work."""

    def __init__(self, kek: bytes, *, kek_id: str, origin: str) -> None:
        self._aead = AESGCM(kek)
        self.kek_id = kek_id
        self._origin = origin.encode()
        self._head = _frame(_WRAP_LABEL, self._origin)
        self._tail = _frame(kek_id.encode())

    def _context(self, seq: int) -> bytes:
        # _frame(_WRAP_LABEL, origin, seq, kek_id) with the constant parts framed once
        seq_text = str(seq).encode()
        return self._head + len(seq_text).to_bytes(4, "big") + seq_text + self._tail

    def wrap(self, data_key: bytes, *, seq: int) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, self._context(seq))

    def unwrap(self, wrapped: bytes, *, seq: int) -> bytes:
        """Recover a data key.

        Raises:
            DecryptionError: wrong KEK, or the wrapped key belongs to another entry.
        """
        try:
            return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], self._context(seq))
        except (InvalidTag, ValueError):
            raise DecryptionError(
                f"entry {seq}: data key does not unwrap (wrong key or altered key row)"
            ) from None


class BlindIndex:
    """Keyed tokens for identifiers: equal identifiers give equal tokens, nothing else leaks."""

    def __init__(self, index_key: bytes, *, origin: str) -> None:
        self._hmac = _Hmac(index_key)
        self._prefix = _frame(_TOKEN_LABEL, origin.encode())
        self._typed: dict[str, bytes] = {}  # type name -> prefix + its frame

    def token(self, identifier: Identifier) -> bytes:
        typed = self._typed.get(identifier.type)
        if typed is None:
            typed = self._typed[identifier.type] = self._prefix + _frame(identifier.type.encode())
        value = identifier.value.encode()
        return self._hmac(typed + len(value).to_bytes(4, "big") + value)[:TOKEN_BYTES]

    def tokens(self, identifiers: Iterable[Identifier]) -> bytes:
        """All tokens of an entry as one sorted, fixed-width byte string."""
        return b"".join(sorted({self.token(i) for i in identifiers}))


def split_tokens(blob: bytes) -> list[bytes]:
    """Inverse of :meth:`BlindIndex.tokens`."""
    return [blob[i : i + TOKEN_BYTES] for i in range(0, len(blob), TOKEN_BYTES)]


class KeyRowAuthenticator:
    """MACs that bind a key row to its entry's position and leaf hash (ledger-format §5)."""

    def __init__(self, mac_key: bytes, *, origin: str) -> None:
        self._hmac = _Hmac(mac_key)
        self._row_prefix = _frame(_ROW_LABEL, origin.encode())
        self._shredded_prefix = _frame(_SHREDDED_LABEL, origin.encode())
        self._kek_frames: dict[str | None, bytes] = {}

    def mac(
        self, *, seq: int, leaf_hash: bytes, kek_id: str | None, wrapped: bytes | None, tokens: bytes
    ) -> bytes:
        if wrapped is None:
            return self._hmac(self._shredded_prefix + _frame(str(seq).encode(), leaf_hash))
        # _frame(seq, leaf_hash, kek_id, wrapped, tokens), written out: this runs once per
        # entry on every bulk append and bulk read.
        kek = self._kek_frames.get(kek_id)
        if kek is None:
            kek = self._kek_frames[kek_id] = _frame((kek_id or "").encode())
        seq_text = str(seq).encode()
        return self._hmac(
            self._row_prefix
            + len(seq_text).to_bytes(4, "big")
            + seq_text
            + len(leaf_hash).to_bytes(4, "big")
            + leaf_hash
            + kek
            + len(wrapped).to_bytes(4, "big")
            + wrapped
            + len(tokens).to_bytes(4, "big")
            + tokens
        )

    def check(
        self,
        *,
        seq: int,
        leaf_hash: bytes,
        kek_id: str | None,
        wrapped: bytes | None,
        tokens: bytes,
        mac: bytes,
    ) -> bool:
        expected = self.mac(seq=seq, leaf_hash=leaf_hash, kek_id=kek_id, wrapped=wrapped, tokens=tokens)
        return hmac.compare_digest(expected, mac)


class SealedEntry(NamedTuple):
    """One sealed entry: its leaf bytes and leaf hash, and its key row's fields."""

    data: bytes
    leaf_hash: bytes
    wrapped: bytes
    tokens: bytes
    mac: bytes


class EntrySealer:
    """The per-entry work of an append (ledger-format §3-§5): seal the payload under the
    entry's own data key with the leaf header as associated data, hash the leaf, wrap the
    data key and MAC the key row. ``Ledger.append`` and the bulk-import worker processes
    both seal through this one class, so they write the same bytes."""

    def __init__(
        self,
        wrapper: KeyWrapper,
        index: BlindIndex,
        auth: KeyRowAuthenticator,
        *,
        origin: str,
        appended_at: str,
    ) -> None:
        self.kek_id = wrapper.kek_id
        self.index = index
        self._wrapper = wrapper
        self._auth = auth
        self._origin_json = json.dumps(origin, ensure_ascii=False)
        self._appended_at = appended_at

    def seal(
        self,
        entry: Entry,
        *,
        seq: int,
        data_key: bytes,
        payload: bytes | None = None,
        tokens: bytes | None = None,
    ) -> SealedEntry:
        """Seal ``entry`` for position ``seq``. ``payload`` and ``tokens`` do not depend on
        the position; pass them when they were computed beforehand."""
        if payload is None:
            payload = payload_bytes(entry)
        if tokens is None:
            tokens = self.index.tokens(entry.identifiers)
        header = leaf_header_bytes(
            entry, origin_json=self._origin_json, seq=seq, appended_at=self._appended_at
        )
        data = leaf_bytes(header, seal(data_key, payload, header))
        leaf_hash = merkle.leaf_hash(data)
        wrapped = self._wrapper.wrap(data_key, seq=seq)
        mac = self._auth.mac(seq=seq, leaf_hash=leaf_hash, kek_id=self.kek_id, wrapped=wrapped, tokens=tokens)
        return SealedEntry(data, leaf_hash, wrapped, tokens, mac)


_META_LABEL = b"erasure-ledger/meta/v1"


def meta_mac(mac_key: bytes, meta: Mapping[str, str]) -> bytes:
    """HMAC over the ledger's settings (origin, verifier key, default phone region, ...), so a
    store writer cannot change how identifiers are normalised (ledger-format §7.3)."""
    parts = [_META_LABEL]
    for name in sorted(k for k in meta if k != "meta_mac"):
        parts += [name.encode(), meta[name].encode()]
    return hmac.new(mac_key, _frame(*parts), "sha256").digest()


__all__ = [
    "meta_mac",
    "BlindIndex",
    "EntrySealer",
    "SealedEntry",
    "KeyRowAuthenticator",
    "KeyWrapper",
    "new_key",
    "open_sealed",
    "seal",
    "split_tokens",
]
