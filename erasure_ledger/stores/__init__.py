"""Ledger stores and :func:`open_store`, which picks one from a location string.

* ``s3://bucket/prefix``  -> :class:`erasure_ledger.stores.s3.S3Store`
* anything with ``://``   -> a SQLAlchemy URL (:class:`SqlStore`)
* anything else           -> a SQLite file path, the embedded default
* ``memory:``             -> :class:`MemoryStore` (tests)
"""

from __future__ import annotations

from dataclasses import dataclass

from erasure_ledger.stores.base import (
    EMPTY_HEAD,
    AppendBatch,
    Head,
    KeyRow,
    LedgerStore,
    PrepareAppend,
    StoredLeaf,
)
from erasure_ledger.stores.memory import MemoryStore


@dataclass(frozen=True)
class StoreConfig:
    """How to reach a store; built by the CLI from flags and environment."""

    # S3-compatible endpoint (MinIO, moto, LocalStack); None means AWS itself
    endpoint_url: str | None = None
    # AWS region for S3 and KMS clients; None lets boto3 decide
    region: str | None = None
    # S3 Object Lock for entries and checkpoints written from now on (None: the ledger's own
    # setting, GOVERNANCE for 3650 days when the bucket has Object Lock)
    object_lock_mode: str | None = None
    object_lock_days: int | None = None


def open_store(location: str, *, create: bool = False, config: StoreConfig | None = None) -> LedgerStore:
    """Open the store a location names.

    Args:
        location: a file path, a SQLAlchemy URL, ``s3://bucket/prefix`` or ``memory:``.
        create: the caller is about to create a ledger there (a missing SQLite file is fine).
        config: endpoint and region for object storage.

    Raises:
        UsageError: the location is malformed or names nothing that can hold a ledger.
        StorageError: the store cannot be reached.
    """
    config = config or StoreConfig()
    if location == "memory:":
        return MemoryStore()
    if location.startswith("s3://"):
        from erasure_ledger.stores.s3 import ObjectLockSettings, S3Store

        lock = None
        if config.object_lock_mode or config.object_lock_days:
            lock = ObjectLockSettings(
                config.object_lock_mode or "GOVERNANCE",  # type: ignore[arg-type]  # validated there
                config.object_lock_days or 3650,
            )
        return S3Store(location, config=config, create=create, object_lock=lock)
    from erasure_ledger.stores.sql import SqlStore

    return SqlStore(location, create=create)


__all__ = [
    "EMPTY_HEAD",
    "AppendBatch",
    "Head",
    "KeyRow",
    "LedgerStore",
    "MemoryStore",
    "PrepareAppend",
    "StoreConfig",
    "StoredLeaf",
    "open_store",
]
