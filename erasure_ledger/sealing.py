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

Every failure to open is the one opaque :class:`DecryptionError` (wrong key and altered
ciphertext look the same, as with Fernet's InvalidToken). No I/O here.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from erasure_ledger.errors import DecryptionError
from erasure_ledger.identifiers import Identifier

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
    out = bytearray()
    for part in parts:
        out += len(part).to_bytes(4, "big")
        out += part
    return bytes(out)


class _Hmac:
    """HMAC-SHA256 under one key; the keyed state is computed once and copied per message."""

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod="sha256")

    def __call__(self, msg: bytes) -> bytes:
        h = self._base.copy()
        h.update(msg)
        return h.digest()


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

    def _context(self, seq: int) -> bytes:
        return _frame(_WRAP_LABEL, self._origin, str(seq).encode(), self.kek_id.encode())

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

    def token(self, identifier: Identifier) -> bytes:
        msg = self._prefix + _frame(identifier.type.encode(), identifier.value.encode())
        return self._hmac(msg)[:TOKEN_BYTES]

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

    def mac(
        self, *, seq: int, leaf_hash: bytes, kek_id: str | None, wrapped: bytes | None, tokens: bytes
    ) -> bytes:
        if wrapped is None:
            msg = self._shredded_prefix + _frame(str(seq).encode(), leaf_hash)
        else:
            msg = self._row_prefix + _frame(
                str(seq).encode(), leaf_hash, (kek_id or "").encode(), wrapped, tokens
            )
        return self._hmac(msg)

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
    "KeyRowAuthenticator",
    "KeyWrapper",
    "new_key",
    "open_sealed",
    "seal",
    "split_tokens",
]
