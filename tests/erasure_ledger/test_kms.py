"""The KMS-wrapped keyring on moto: envelope encryption, one KMS call per KEK, clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from erasure_ledger import (
    DecryptionError,
    Keyring,
    Ledger,
    LedgerError,
    MemoryStore,
    NoteVerifier,
    StorageError,
    UsageError,
)
from erasure_ledger.kms import DECRYPT_ERRORS, KMS_ERRORS, kms_functions, translate_kms_error
from tests.conftest import FIXED_NOW, make_entry

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(scope="module")
def kms() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        with mock_aws():
            yield boto3.client("kms")


@pytest.fixture
def key_id(kms: Any) -> str:
    return str(kms.create_key(Description="ledger KEK")["KeyMetadata"]["KeyId"])


class Counting:
    """Wraps a KMS callable and counts the calls."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, key: str, data: bytes) -> bytes:
        self.calls += 1
        return bytes(self.fn(key, data))


def test_a_kek_round_trips_through_kms(key_id):
    encrypt, decrypt = kms_functions(key_id)
    ciphertext = encrypt(key_id, b"k" * 32)
    assert b"k" * 32 not in ciphertext
    assert decrypt(key_id, ciphertext) == b"k" * 32


def test_the_keyring_file_holds_the_kek_only_as_kms_ciphertext(key_id, tmp_path):
    encrypt, decrypt = kms_functions(key_id)
    keyring = Keyring.generate("test.example/kms", kms_key_id=key_id)
    path = tmp_path / "ledger.key"
    keyring.save(path, kms_encrypt=encrypt)
    doc = json.loads(path.read_text())
    assert doc["keks"]["kek-1"].keys() == {"kms_key_id", "ciphertext"}
    # the signing and blind-index keys stay local: verify and lookup never call KMS
    assert {"signing_key", "index_key", "mac_key"} <= doc.keys()
    loaded = Keyring.from_file(path, kms_decrypt=decrypt)
    assert loaded.kek("kek-1") == keyring.kek("kek-1")
    assert loaded.kms_key_ids == {"kek-1": key_id}


def test_a_bulk_import_costs_one_kms_call_not_one_per_entry(key_id, tmp_path):
    encrypt, decrypt = kms_functions(key_id)
    path = tmp_path / "ledger.key"
    Keyring.generate("test.example/kms", kms_key_id=key_id).save(path, kms_encrypt=encrypt)
    counting = Counting(decrypt)
    keyring = Keyring.from_file(path, kms_decrypt=counting)
    ledger = Ledger.create(MemoryStore(), keyring, now=FIXED_NOW)
    ledger.append([make_entry(f"R{i}") for i in range(200)], now=FIXED_NOW)
    assert len(ledger.open_all()[1]) == 200
    assert counting.calls == 1


def test_verify_needs_only_the_public_key(key_id):
    store = MemoryStore()
    ledger = Ledger.create(store, Keyring.generate("test.example/kms", kms_key_id=key_id), now=FIXED_NOW)
    ledger.append([make_entry("R1")], now=FIXED_NOW)
    auditor = Ledger.open(store)  # no keyring, no KMS
    assert auditor.verify(public_key=NoteVerifier.parse(ledger.verifier.vkey)).tree_size == 1


def test_a_ciphertext_of_another_kms_key_is_a_decryption_error(kms, key_id, tmp_path):
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    encrypt, decrypt = kms_functions(key_id)
    path = tmp_path / "ledger.key"
    Keyring.generate("test.example/kms", kms_key_id=key_id).save(path, kms_encrypt=encrypt)
    doc = json.loads(path.read_text())
    doc["keks"]["kek-1"]["kms_key_id"] = other  # the file now names the wrong key
    path.write_text(json.dumps(doc))
    with pytest.raises(DecryptionError, match=f"AWS KMS refused to decrypt the keyring's key-encryption "
                                              f"key with {other} \\(wrong key, altered keyring"):
        Keyring.from_file(path, kms_decrypt=decrypt)
    assert DecryptionError.exit_code == 3


def test_an_altered_kms_ciphertext_is_a_decryption_error(key_id):
    encrypt, decrypt = kms_functions(key_id)
    ciphertext = bytearray(encrypt(key_id, b"k" * 32))
    ciphertext[-1] ^= 1
    with pytest.raises(DecryptionError, match="refused to decrypt"):
        decrypt(key_id, bytes(ciphertext))


def test_an_unknown_kms_key_is_a_usage_error_before_anything_is_written():
    with pytest.raises(UsageError, match=r"^AWS KMS key alias/nope does not exist"):
        kms_functions("alias/nope")


def test_an_unreachable_kms_is_a_storage_error_with_the_endpoint_redacted():
    encrypt, _ = kms_functions(endpoint_url="http://user:pw@127.0.0.1:9", max_attempts=1)
    with pytest.raises(StorageError, match=r"^cannot reach AWS KMS at http://user:\*\*\*@127\.0\.0\.1:9 "
                                           r"\(EndpointConnectionError\)$"):
        encrypt("alias/x", b"k" * 32)


def test_rotation_can_move_the_kek_to_another_kms_key(kms, key_id, tmp_path):
    new_key = kms.create_key()["KeyMetadata"]["KeyId"]
    encrypt, decrypt = kms_functions(new_key)
    path = tmp_path / "ledger.key"
    keyring = Keyring.generate("test.example/kms", kms_key_id=key_id)
    keyring.save(path, kms_encrypt=encrypt)
    ledger = Ledger.create(MemoryStore(), keyring, now=FIXED_NOW)
    ledger.append([make_entry("R1")], now=FIXED_NOW)
    final = ledger.rotate_key(lambda kr: kr.save(path, overwrite=True, kms_encrypt=encrypt),
                              kms_key_id=new_key)
    assert final.kms_key_ids == {"kek-2": new_key}
    reloaded = Keyring.from_file(path, kms_decrypt=decrypt)
    assert Ledger.open(ledger.store, reloaded).show(0).entry is not None


def kms_client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "Decrypt")


def test_every_kms_error_code_has_a_one_line_translation_naming_the_key():
    for decrypting, table in ((False, KMS_ERRORS), (True, {**KMS_ERRORS, **DECRYPT_ERRORS})):
        for code, (cls, _) in table.items():
            error = translate_kms_error(kms_client_error(code), key_id="alias/k", decrypting=decrypting)
            assert type(error) is cls
            assert issubclass(cls, LedgerError)
            assert "\n" not in str(error)
            assert "alias/k" in str(error) or cls is StorageError
    denied = translate_kms_error(kms_client_error("AccessDeniedException"), key_id="alias/k")
    assert type(denied) is StorageError  # on encrypt: a permission problem, not a wrong key
    unknown = translate_kms_error(kms_client_error("Weird"), key_id="alias/k")
    assert (type(unknown), str(unknown)) == (StorageError, "AWS KMS error Weird for alias/k")
