"""The S3 store: a ledger in an S3 bucket (AWS, MinIO, moto, any S3-compatible endpoint).

:class:`S3Store` implements the store protocol (:mod:`erasure_ledger.stores.base`) over four
private modules, each with one job:

* :mod:`._s3_layout` -- object keys and the bytes of every object (the layout is drawn there
  and explained in docs/s3-and-kms.md);
* :mod:`._s3_io` -- requests to the bucket, and the thread pool that runs them in parallel;
* :mod:`._s3_errors` -- botocore failures translated, once, into one-line ledger errors that
  name the store's location (the only place that knows S3 error codes);
* :mod:`._s3_append` -- the append protocol: reservations by compare-and-swap on head.json,
  conditional writes, leases, and settling a crashed appender's reservation.

What is left here: the store's settings in ``ledger.json`` (Object Lock retention fixed at
``create``) and the reads. Reads page through listings and fetch objects in parallel on a
bounded pool, yielding in sequence order; reading the leaves up to the head also proves that
nothing was added past it. Only ``_s3_io`` and ``_s3_errors`` (and :mod:`erasure_ledger.kms`)
import boto3 or botocore; this module does not. Cryptography and signature checks are left
out: :mod:`erasure_ledger.ledger` prepares every byte and verifies every head.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from erasure_ledger.errors import StorageError, TamperedEntryError, UsageError
from erasure_ledger.stores._s3_append import LEASE_BASE, Appender
from erasure_ledger.stores._s3_errors import CLIENT_ERRORS, HANDLED_CODES, Conflict, translate_client_error
from erasure_ledger.stores._s3_io import Bucket, BucketProtection, connect, new_session, redact_endpoint
from erasure_ledger.stores._s3_layout import (
    HeadState,
    Layout,
    ObjectLockSettings,
    checkpoint_note,
    decode_key_row,
    decode_settings,
    encode_key_row,
    encode_settings,
    lock_of,
    parse_location,
)
from erasure_ledger.stores._s3_layout import checkpoint_nodes as decode_checkpoint_nodes
from erasure_ledger.stores.base import AppendBatch, Head, KeyRow, PrepareAppend, StoredLeaf, no_ledger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from erasure_ledger.stores import StoreConfig

log = logging.getLogger(__name__)

_PAGE = 1000  # keys per listing page (the S3 maximum)


class S3Store:
    """A ledger under one prefix of an S3 bucket.

    Args:
        location: ``s3://bucket`` or ``s3://bucket/prefix``.
        config: endpoint URL and region (``None``: boto3's defaults).
        create: the caller is about to create a ledger: a missing bucket is created, with
            Object Lock, by :meth:`create`.
        object_lock: retention for entries and checkpoints, fixed at :meth:`create` and kept
            in ``ledger.json``; default on an Object Lock bucket: GOVERNANCE, 3650 days.
        max_workers: parallel requests for bulk reads and writes.
        max_attempts: attempts per request (botocore standard retries with backoff).
        lease_seconds: how long an append's reservation is respected before another appender
            may settle it (tests shorten it to simulate crashes).
        client: an S3 client to use instead of building one (tests).

    Raises:
        UsageError: the location is malformed.
    """

    #: each leaf is an object of its own (one GET): a write does not re-read them all first
    #: (``Ledger.verify_head``), or a single append to a ledger of 100,000 entries would cost
    #: 100,000 requests
    leaves_are_objects = True

    def __init__(self, location: str, *, config: StoreConfig | None = None, create: bool = False,
                 object_lock: ObjectLockSettings | None = None, max_workers: int = 16,
                 max_attempts: int = 4, lease_seconds: float = LEASE_BASE,
                 client: S3Client | None = None) -> None:
        self.bucket, self.prefix = parse_location(location)
        self.location = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        endpoint = config.endpoint_url if config else None
        workers, attempts = max(1, max_workers), max(1, max_attempts)
        self._create = create
        self._object_lock = object_lock
        self._settings: dict[str, Any] | None = None
        #: lines for the user about this bucket (e.g. no write-once protection), set by create
        self.notices: list[str] = []
        if client is None:
            client = connect(location=self.location, endpoint_url=endpoint,
                             region=config.region if config else None, attempts=attempts, workers=workers)
        self._client = client
        self._layout = Layout(self.prefix)
        self._io = Bucket(client, self.bucket, location=self.location, endpoint=redact_endpoint(endpoint),
                          attempts=attempts, workers=workers, page_size=_PAGE)
        self._appender = Appender(self._io, self._layout, lease=lease_seconds,
                                  lock_settings=self._lock_settings)

    # -- bucket and settings ---------------------------------------------------------------

    def protection(self) -> BucketProtection:
        """What the bucket guarantees: versioning, Object Lock, a default retention rule.

        Raises:
            StorageError: the bucket cannot be inspected.
        """
        return self._io.protection()

    def _read_settings(self) -> dict[str, Any]:
        if self._settings is None:
            obj = self._io.get(self._layout.meta)
            if obj is None:
                raise no_ledger(self.location)
            self._settings = decode_settings(obj.body, location=self.location)
        return self._settings

    def _lock_settings(self) -> ObjectLockSettings | None:
        """The retention fixed at create (read once from ledger.json)."""
        return lock_of(self._read_settings())

    # -- protocol: meta and head -----------------------------------------------------------

    def exists(self) -> bool:
        # HEAD cannot tell a missing bucket from a missing key (both are a bare 404);
        # read_meta then names the missing bucket.
        return self._io.exists(self._layout.meta, missing_bucket_means_absent=self._create)

    def create(self, meta: Mapping[str, str]) -> None:
        """Write ``ledger.json`` once; create or check the bucket first.

        Raises:
            UsageError: a ledger exists here; or the bucket's Object Lock cannot keep key
                rows deletable (a default retention rule), or retention was asked for on a
                bucket without Object Lock.
            StorageError: the bucket is missing (without ``create``) or unreachable.
        """
        created = self._io.ensure(create=self._create)
        protection = self.protection()
        if protection.default_retention:
            raise UsageError(
                f"{self.location}: bucket {self.bucket} has a default Object Lock retention "
                f"({protection.default_retention}) that would lock key rows, so shred could not "
                "delete them; remove the default rule (the ledger sets retention per entry)")
        lock = None
        if protection.object_lock:
            lock = self._object_lock or ObjectLockSettings()
        elif self._object_lock is not None:
            raise UsageError(
                f"{self.location}: bucket {self.bucket} has no Object Lock, so entries cannot be "
                "given a retention period (create the bucket with Object Lock enabled)")
        doc = encode_settings(meta, lock)
        self._settings = None
        try:
            self._io.put(self._layout.meta, json.dumps(doc, sort_keys=True).encode(),
                         if_none_match=True, lock=lock)
        except Conflict:
            raise UsageError(f"a ledger already exists at {self.location}") from None
        self._settings = doc
        notice = protection.notice()
        if created:
            self.notices.append(f"created bucket {self.bucket} with Object Lock")
        if lock is not None:
            self.notices.append(
                f"entries and checkpoints are write-once for {lock.days} days ({lock.mode} mode)")
        if notice:
            self.notices.append(notice)
            log.warning("%s", notice)

    def read_meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._read_settings()["meta"].items()}

    def read_head(self) -> Head:
        return self._appender.read_state().head

    def append(self, prepare: PrepareAppend) -> AppendBatch:
        """Reserve seqs by compare-and-swap on head.json, write, then commit the head.

        Raises:
            DuplicateRequestError: a request id of the batch is already in the ledger.
            StorageError: S3 failed, or other appenders kept the ledger busy too long.
        """
        return self._appender.append(prepare)

    # -- protocol: leaves ------------------------------------------------------------------

    def request_ids_present(self, request_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(request_ids))
        size = self.read_head().size

        def check(request_id: str) -> str | None:
            return request_id if self._appender.request_committed(request_id, size) else None

        return {r for r in self._io.ordered(check, ids) if r is not None}

    def _fetch_leaf(self, seq: int) -> StoredLeaf:
        obj = self._io.get(self._layout.leaf(seq))
        if obj is None:
            raise TamperedEntryError(f"entry {seq}: missing from the store")
        return StoredLeaf(seq=seq, request_id=unquote(obj.metadata.get("request-id", "")),
                          data=obj.body)

    def iter_leaves(self, start: int = 0, stop: int | None = None) -> Iterator[StoredLeaf]:
        end = self.read_head().size if stop is None else stop
        yield from self._io.ordered(self._fetch_leaf, range(start, end))

    def iter_leaf_data(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Leaf bytes in order; reading up to the head also checks that nothing lies past it."""
        state = self._appender.read_state()
        end = state.head.size if stop is None else stop
        for leaf in self._io.ordered(self._fetch_leaf, range(start, end)):
            yield leaf.data
        if end == state.head.size:
            self._check_nothing_past(state)

    def _check_nothing_past(self, state: HeadState) -> None:
        """An entry object past the head is a forgery, or an unfinished append's leftover.

        Appends keep running while a long verify reads, so an object is only reported when
        neither the head read before the listing nor the one read after it accounts for it,
        three times in a row (an append that fails deletes its entries again).
        """
        size = state.head.size
        after = self._layout.leaf(size - 1) if size else None
        for pause in (0.1, 0.3, None):
            seqs = [s for k in self._io.list_keys(self._layout.folder("leaves"), start_after=after)
                    if (s := Layout.seq_of(k)) is not None]
            later = self._appender.read_state()
            unexplained = [s for s in seqs if not (state.accounts_for(s) or later.accounts_for(s))]
            if not unexplained:
                return
            if pause is None:
                raise TamperedEntryError(
                    f"entry {unexplained[0]}: an entry object exists past the signed head of size "
                    f"{size} (added outside the ledger)")
            time.sleep(pause)
            state = later

    # -- protocol: key rows ----------------------------------------------------------------

    def _fetch_row(self, key: str) -> KeyRow | None:
        obj = self._io.get(key)
        return None if obj is None else decode_key_row(obj.body, Layout.seq_of(key))

    def iter_key_rows(self) -> Iterator[KeyRow]:
        size = self.read_head().size
        keys = (k for k in self._io.list_keys(self._layout.folder("keys"))
                if (s := Layout.seq_of(k)) is not None and s < size)
        for row in self._io.ordered(self._fetch_row, keys):
            if row is not None:
                yield row

    def read_key_row(self, seq: int) -> KeyRow | None:
        """The key row of entry ``seq`` in one GET, or None when there is none.

        Raises:
            TamperedEntryError: the key row object is malformed or names another entry.
        """
        return self._fetch_row(self._layout.row(seq))

    def replace_key_rows(
        self, rows: Sequence[KeyRow], *, expected_macs: Mapping[int, bytes] | None = None
    ) -> None:
        """Write the new key rows, then delete every older version of every key row.

        Each row is replaced atomically; a batch is not (S3 has no multi-object
        transaction): after a failure, run the same shred or rotation again. With
        ``expected_macs`` the current rows are re-read and compared first; on S3 this narrows
        the window for a concurrent shred or rotation but cannot close it (docs/s3-and-kms.md).

        Raises:
            StorageError: a write or delete failed (e.g. a default retention locks key rows),
                or a row changed since the caller read it.
        """
        if not rows:
            return
        if expected_macs is not None:
            current = {row.seq: row.mac for row in self.iter_key_rows() if row.seq in expected_macs}
            if any(current.get(seq, b"") != mac for seq, mac in expected_macs.items()):
                raise StorageError(
                    f"{self.location}: key rows changed while this operation ran; nothing was "
                    "changed, run it again"
                )
        self._io.all([partial(self._io.put, self._layout.row(r.seq), encode_key_row(r)) for r in rows])
        # Sweep the whole keys/ prefix, which also removes what an earlier crash left behind.
        self._io.delete_versions(self._io.old_versions(self._layout.folder("keys")), "key rows")

    # -- protocol: checkpoints -------------------------------------------------------------

    def iter_checkpoints(self, *, since: int = 0) -> Iterator[tuple[int, str]]:
        """Every stored checkpoint of size >= ``since``, by size.

        The head is read after the checkpoints were fetched, so the checkpoint of an append
        still in flight is left out: every checkpoint returned is at most the size of any
        head read afterwards (a larger one means entries were removed).
        """
        after = self._layout.checkpoint(since - 1) if since > 0 else None
        keys = [k for k in self._io.list_keys(self._layout.folder("checkpoints"), start_after=after)
                if Layout.seq_of(k) is not None]
        objects = list(self._io.ordered(self._io.get, keys))
        p = self._appender.read_state().pending
        for key, obj in zip(keys, objects, strict=True):
            size = Layout.seq_of(key)
            assert size is not None
            if obj is None:
                continue
            note = checkpoint_note(obj.body)
            if note is None:
                raise TamperedEntryError(f"checkpoint at size {size}: its object is malformed")
            if p is not None and size == p.end and note == p.checkpoint:
                continue
            yield size, note

    def checkpoint_nodes(self, size: int) -> tuple[bytes, ...] | None:
        """The compact-range nodes stored beside the checkpoint of ``size`` (untrusted: the
        caller checks them against a trusted root), or None."""
        obj = self._io.get(self._layout.checkpoint(size))
        return None if obj is None else decode_checkpoint_nodes(obj.body)

    def close(self) -> None:
        self._io.close()


__all__ = [
    "CLIENT_ERRORS",
    "HANDLED_CODES",
    "BucketProtection",
    "ObjectLockSettings",
    "S3Store",
    "new_session",
    "redact_endpoint",
    "translate_client_error",
]
