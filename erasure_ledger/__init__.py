"""erasure_ledger: an append-only, encrypted, tamper-evident ledger of erasure requests.

Public API (the CLI and the reconciler use nothing else)::

    from erasure_ledger import Ledger, Keyring, Entry, Identifier, open_store
    store = open_store("ledger.db")                      # or a SQLAlchemy URL, or s3://b/p
    ledger = Ledger.open(store, Keyring.from_file("ledger.key"))
    result, entries = ledger.open_all()                  # verified, decrypted, in order

See docs/ledger-format.md for the byte-level format and the verification steps.
"""

from __future__ import annotations

import logging

from erasure_ledger.errors import (
    BadSignatureError,
    DecryptionError,
    DuplicateRequestError,
    IntegrityError,
    InvalidIdentifierError,
    LedgerError,
    RollbackError,
    StaleKeyringError,
    StorageError,
    TamperedEntryError,
    UsageError,
)
from erasure_ledger.identifiers import (
    KNOWN_TYPES,
    Identifier,
    candidate_tokens,
    find_emails,
    find_ibans,
    find_phones,
    normalize,
)
from erasure_ledger.keyring import Keyring
from erasure_ledger.ledger import AppendResult, Ledger, SignedCheckpoint
from erasure_ledger.mirror import MirrorResult, mirror, verify_since
from erasure_ledger.model import (
    Entry,
    EntryMeta,
    InclusionProof,
    OpenedEntry,
    format_timestamp,
    parse_timestamp,
)
from erasure_ledger.notes import Checkpoint, NoteVerifier
from erasure_ledger.stores import LedgerStore, MemoryStore, StoreConfig, open_store
from erasure_ledger.verify import LedgerVerifier, VerificationResult

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    # ledger
    "Ledger",
    "AppendResult",
    "SignedCheckpoint",
    "Keyring",
    "LedgerVerifier",
    "VerificationResult",
    "Checkpoint",
    "NoteVerifier",
    # model
    "Entry",
    "EntryMeta",
    "OpenedEntry",
    "InclusionProof",
    "Identifier",
    "KNOWN_TYPES",
    "normalize",
    "find_emails",
    "find_phones",
    "find_ibans",
    "candidate_tokens",
    "parse_timestamp",
    "format_timestamp",
    # stores
    "LedgerStore",
    "MemoryStore",
    "StoreConfig",
    "open_store",
    "mirror", "MirrorResult", "verify_since",
    # errors
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
