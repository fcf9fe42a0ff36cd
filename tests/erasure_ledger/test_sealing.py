"""The sealing recipe's hand-unrolled parts equal their definitions (ledger-format §4-§5)."""

from __future__ import annotations

import hmac
import os

import pytest

from erasure_ledger import Identifier
from erasure_ledger.sealing import BlindIndex, KeyRowAuthenticator, KeyWrapper, _frame, _Hmac

ORIGIN = "test.example/sealing"


def definition_frame(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_hmac_equals_the_standard_library_hmac(key_length):
    key = os.urandom(key_length)
    mac = _Hmac(key)
    for msg in (b"", b"x", os.urandom(100), os.urandom(1000)):
        assert mac(msg) == hmac.new(key, msg, "sha256").digest()


def test_frame_length_prefixes_every_part():
    parts = (b"", b"a", b"\x00" * 300)
    assert _frame(*parts) == definition_frame(*parts)


def test_tokens_equal_their_definition():
    key = os.urandom(32)
    index = BlindIndex(key, origin=ORIGIN)
    for identifier in (Identifier("email", "jan@example.nl"), Identifier("phone", "+31416853988"),
                       Identifier("email", "zoë@example.nl")):
        msg = definition_frame(
            b"erasure-ledger/token/v1", ORIGIN.encode(), identifier.type.encode(), identifier.value.encode()
        )
        assert index.token(identifier) == hmac.new(key, msg, "sha256").digest()[:16]


@pytest.mark.parametrize("seq", [0, 7, 1_000_000])
def test_key_row_macs_equal_their_definition(seq):
    key = os.urandom(32)
    auth = KeyRowAuthenticator(key, origin=ORIGIN)
    leaf_hash, wrapped, tokens = os.urandom(32), os.urandom(60), os.urandom(48)
    msg = definition_frame(
        b"erasure-ledger/key-row/v1", ORIGIN.encode(), str(seq).encode(), leaf_hash, b"kek-2", wrapped, tokens
    )
    mac = auth.mac(seq=seq, leaf_hash=leaf_hash, kek_id="kek-2", wrapped=wrapped, tokens=tokens)
    assert mac == hmac.new(key, msg, "sha256").digest()
    shredded = definition_frame(b"erasure-ledger/key-row-shredded/v1", ORIGIN.encode(), str(seq).encode(), leaf_hash)
    assert auth.mac(seq=seq, leaf_hash=leaf_hash, kek_id=None, wrapped=None, tokens=b"") == (
        hmac.new(key, shredded, "sha256").digest()
    )


def test_wrapping_binds_the_definition_context():
    wrapper = KeyWrapper(os.urandom(32), kek_id="kek-3", origin=ORIGIN)
    assert wrapper._context(42) == definition_frame(b"erasure-ledger/wrap/v1", ORIGIN.encode(), b"42", b"kek-3")
    key = os.urandom(32)
    assert wrapper.unwrap(wrapper.wrap(key, seq=42), seq=42) == key
