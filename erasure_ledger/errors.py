"""The erasure ledger's one exception family.

Every failure the library raises is a :class:`LedgerError`; the CLI maps each class to an
exit code through the ``exit_code`` attribute, so behaviour lives on the class as data::

    LedgerError                      2  base of all erasure_ledger failures
    +-- UsageError                   2  bad flag, location, keyring path or input; nothing changed
    |   +-- InvalidIdentifierError   2  an identifier that does not normalise (bad IBAN checksum ...)
    |   +-- DuplicateRequestError    2  request id already in the ledger
    +-- StorageError                 2  file / SQL / S3 I/O failed; retryable; wraps the cause
    +-- IntegrityError               3  the content is wrong; never retry
        +-- TamperedEntryError          a leaf, key row or token does not match what was signed
        +-- RollbackError               the head does not extend a trusted checkpoint
        +-- BadSignatureError           a checkpoint signature does not verify
        +-- DecryptionError             opaque: wrong key, or ciphertext altered
        +-- StaleKeyringError           the keyring's active key is not the ledger's current one

Messages name sequence numbers, request ids, checkpoints and redacted locations, never an
identifier value. Nothing here prints or exits.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every failure raised by :mod:`erasure_ledger`.

    ``request_id`` names the entry a failure is about, when there is one, so that an import
    can name the entry's line in its file.
    """

    exit_code = 2

    def __init__(self, message: str = "", *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class UsageError(LedgerError):
    """A bad flag, location, keyring path or input record; nothing was changed."""

    exit_code = 2


class InvalidIdentifierError(UsageError):
    """An identifier could not be normalised (the message names its type, never its value)."""


class DuplicateRequestError(UsageError):
    """The request id is already in the ledger."""


class StorageError(LedgerError):
    """Reading or writing the store failed (file, database or object storage)."""

    exit_code = 2


class IntegrityError(LedgerError):
    """The ledger's content is not what was signed or sealed; never retried."""

    exit_code = 3


class TamperedEntryError(IntegrityError):
    """A leaf, its wrapped key or its blind-index tokens were altered, swapped or dropped."""


class RollbackError(IntegrityError):
    """The ledger does not extend a checkpoint that was trusted earlier."""


class BadSignatureError(IntegrityError):
    """A checkpoint's signature does not verify under the given public key."""


class DecryptionError(IntegrityError):
    """A sealed value does not open: wrong key or altered ciphertext (deliberately opaque)."""


class StaleKeyringError(IntegrityError):
    """The keyring is this ledger's, but its active key-encryption key is not the one the
    ledger's entries are wrapped under now (a copy made before the last rotation, or a
    rotation that did not finish). Nothing was written."""


__all__ = [
    "LedgerError",
    "UsageError",
    "InvalidIdentifierError",
    "DuplicateRequestError",
    "StorageError",
    "IntegrityError",
    "TamperedEntryError",
    "RollbackError",
    "BadSignatureError",
    "DecryptionError",
    "StaleKeyringError",
]
