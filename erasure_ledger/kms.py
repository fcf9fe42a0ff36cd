"""AWS KMS for the keyring: wrap and unwrap the key-encryption key (envelope encryption).

:class:`~erasure_ledger.keyring.Keyring` keeps a KMS-wrapped KEK as KMS ciphertext and calls
the two functions made here once per KEK when the keyring is saved or loaded. Every data key
is then wrapped locally under the plain KEK, so a bulk import of 100k entries costs one KMS
call, not 100k. The blind-index key, the key-row MAC key and the checkpoint signing key stay
in the local key file: they are used for every entry and every checkpoint, and ``verify``
needs none of them (only the public key).

Every ciphertext is bound to the encryption context ``{"erasure-ledger": "kek"}``, so a KMS
ciphertext made for another purpose does not decrypt as a ledger KEK.

This module and the S3 store's ``_s3_io`` and ``_s3_errors`` are the only boto3 importers. botocore
failures are translated here into the ledger's errors: a ciphertext KMS refuses (wrong key,
altered, no kms:Decrypt) is a :class:`DecryptionError`; an unknown or disabled key is a
:class:`UsageError`; an unreachable, throttling or refusing service is a :class:`StorageError`.
It never logs or prints key material.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from erasure_ledger.errors import DecryptionError, LedgerError, StorageError, UsageError
from erasure_ledger.keyring import KmsDecrypt, KmsEncrypt
from erasure_ledger.stores.s3 import new_session, redact_endpoint

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

log = logging.getLogger(__name__)

ENCRYPTION_CONTEXT = {"erasure-ledger": "kek"}

_REFUSED = ("AWS KMS refused to decrypt the keyring's key-encryption key with {key} "
            "(wrong key, altered keyring, or no kms:Decrypt permission)")
_DENIED = "AWS KMS denied access to {key} (check the credentials' kms permissions and the key policy)"
_BUSY = "AWS KMS is throttling or unavailable; still failing after retries, retry later"
_CREDENTIALS = "AWS KMS rejected the credentials (expired or wrong key)"

#: KMS error code -> (error class, one-line reason) for Decrypt; {key} is the KMS key id.
DECRYPT_ERRORS: dict[str, tuple[type[LedgerError], str]] = {
    "InvalidCiphertextException": (DecryptionError, _REFUSED),
    "IncorrectKeyException": (DecryptionError, _REFUSED),
    # Decrypt with the wrong key id is AccessDenied on some implementations (moto, LocalStack)
    "AccessDeniedException": (DecryptionError, _REFUSED),
}

#: KMS error code -> (error class, one-line reason) for every other call.
KMS_ERRORS: dict[str, tuple[type[LedgerError], str]] = {
    "NotFoundException": (UsageError, "AWS KMS key {key} does not exist (check --kms-key-id and the region)"),
    "DisabledException": (UsageError, "AWS KMS key {key} is disabled"),
    "KMSInvalidStateException": (UsageError, "AWS KMS key {key} is disabled or pending deletion"),
    "InvalidKeyUsageException": (UsageError, "AWS KMS key {key} is not a symmetric ENCRYPT_DECRYPT key"),
    "InvalidArnException": (UsageError, "{key} is not a valid AWS KMS key id, ARN or alias"),
    "ValidationException": (UsageError, "{key} is not a valid AWS KMS key id, ARN or alias"),
    "AccessDeniedException": (StorageError, _DENIED),
    "UnrecognizedClientException": (StorageError, _CREDENTIALS),
    "InvalidSignatureException": (StorageError, _CREDENTIALS),
    "ExpiredTokenException": (StorageError, _CREDENTIALS),
    "KeyUnavailableException": (StorageError, _BUSY),
    "DependencyTimeoutException": (StorageError, _BUSY),
    "KMSInternalException": (StorageError, _BUSY),
    "ThrottlingException": (StorageError, _BUSY),
    "LimitExceededException": (StorageError, _BUSY),
}


def translate_kms_error(exc: ClientError, *, key_id: str, decrypting: bool = False) -> LedgerError:
    """The ledger error for a KMS ClientError (one line, naming the key id, never key bytes).

    Raises:
        Nothing: returns the error for the caller to raise ``from exc``.
    """
    code = str(exc.response.get("Error", {}).get("Code", "unknown"))
    table = {**KMS_ERRORS, **DECRYPT_ERRORS} if decrypting else KMS_ERRORS
    cls, reason = table.get(code, (StorageError, f"AWS KMS error {code} for {{key}}"))
    return cls(reason.format(key=key_id))


class _Kms:
    def __init__(self, client: KMSClient, endpoint: str) -> None:
        self._client = client
        self._endpoint = endpoint

    @contextmanager
    def _edge(self, key_id: str, *, decrypting: bool = False) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            raise translate_kms_error(exc, key_id=key_id, decrypting=decrypting) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise StorageError(f"cannot reach AWS KMS at {self._endpoint} ({type(exc).__name__})") from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StorageError("AWS KMS: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, or a profile)") from exc
        except BotoCoreError as exc:
            raise StorageError(f"AWS KMS client error ({type(exc).__name__})") from exc

    def check(self, key_id: str) -> None:
        with self._edge(key_id):
            meta = self._client.describe_key(KeyId=key_id)["KeyMetadata"]
        if meta.get("KeyState", "Enabled") != "Enabled" or meta.get("Enabled") is False:
            raise UsageError(f"AWS KMS key {key_id} is not enabled ({meta.get('KeyState')})")
        if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            raise UsageError(f"AWS KMS key {key_id} is not a symmetric ENCRYPT_DECRYPT key")

    def encrypt(self, key_id: str, plaintext: bytes) -> bytes:
        with self._edge(key_id):
            resp = self._client.encrypt(KeyId=key_id, Plaintext=plaintext,
                                        EncryptionContext=ENCRYPTION_CONTEXT)
        log.debug("wrapped a key-encryption key with KMS key %s", key_id)
        return bytes(resp["CiphertextBlob"])

    def decrypt(self, key_id: str, ciphertext: bytes) -> bytes:
        with self._edge(key_id, decrypting=True):
            # KeyId makes KMS refuse a ciphertext made under any other key.
            resp = self._client.decrypt(CiphertextBlob=ciphertext, KeyId=key_id,
                                        EncryptionContext=ENCRYPTION_CONTEXT)
        log.debug("unwrapped a key-encryption key with KMS key %s", key_id)
        return bytes(resp["Plaintext"])


def kms_functions(key_id: str | None = None, *, endpoint_url: str | None = None,
                  region: str | None = None,
                  max_attempts: int = 4) -> tuple[KmsEncrypt, KmsDecrypt]:
    """The ``kms_encrypt`` and ``kms_decrypt`` callables a :class:`Keyring` takes.

    Args:
        key_id: a KMS key id, ARN or alias the caller is about to wrap a new KEK with; when
            given, it is checked now (exists, enabled, symmetric) so ``init`` fails before
            writing anything. The callables accept any key id (a keyring names its own).
        endpoint_url: a KMS-compatible endpoint (LocalStack, moto); None means AWS.
        region: the AWS region; None lets boto3 decide.
        max_attempts: attempts per call (botocore standard retries with backoff).

    Returns:
        ``(kms_encrypt, kms_decrypt)``, each ``(key_id, bytes) -> bytes``.

    Raises:
        UsageError: ``key_id`` does not exist, is disabled or cannot encrypt; no region.
        StorageError: KMS cannot be reached, or refuses the credentials.
    """
    endpoint = redact_endpoint(endpoint_url, default="AWS")
    try:
        client = new_session().client(
            "kms", endpoint_url=endpoint_url, region_name=region,
            config=Config(retries={"max_attempts": max(1, max_attempts), "mode": "standard"},
                          connect_timeout=5, read_timeout=30))
    except NoRegionError:
        raise UsageError("AWS KMS: no region configured (set AWS_DEFAULT_REGION)") from None
    except (BotoCoreError, ValueError) as exc:
        raise UsageError(f"AWS KMS: cannot configure the client ({type(exc).__name__})") from None
    kms = _Kms(client, endpoint)
    if key_id:
        kms.check(key_id)
    return kms.encrypt, kms.decrypt


__all__ = ["DECRYPT_ERRORS", "ENCRYPTION_CONTEXT", "KMS_ERRORS", "kms_functions", "translate_kms_error"]
