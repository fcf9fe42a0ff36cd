"""The S3 store's append protocol: reservations, leases and conditional writes on head.json.

An append reserves its sequence numbers by a compare-and-swap on ``head.json`` (the loser of a
race calls ``prepare`` again with the new head), then writes request markers, leaves and key
rows, then the checkpoint, then commits the head with a second compare-and-swap. A
reservation left by a crashed appender is rolled forward when its checkpoint was written, and
rolled back otherwise, by the next appender that sees it unchanged for longer than its lease
(docs/s3-and-kms.md, "Appends").

:class:`Appender` owns ``head.json``: it is the only writer of the head, and readers ask it for
the committed head and the live reservation. It leaves out the object format
(:mod:`._s3_layout`), the requests themselves and their errors (:mod:`._s3_io`), and
everything about what the bytes mean: the ledger prepares and verifies them.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote, unquote

from erasure_ledger.errors import DuplicateRequestError, LedgerError, StorageError, UsageError
from erasure_ledger.stores._s3_errors import Conflict
from erasure_ledger.stores._s3_io import Bucket, Obj
from erasure_ledger.stores._s3_layout import (
    HeadState,
    Layout,
    ObjectLockSettings,
    Reservation,
    checkpoint_note,
    decode_head,
    decode_marker,
    encode_checkpoint,
    encode_head,
    encode_key_row,
    encode_marker,
)
from erasure_ledger.stores.base import EMPTY_HEAD, AppendBatch, Head, KeyRow, PrepareAppend, StoredLeaf

log = logging.getLogger(__name__)

LEASE_BASE = 30.0  # seconds an append may hold its reservation before others may settle it
LEASE_PER_ENTRY = 0.05  # ... plus this much per entry of a bulk import (3 writes each)
APPEND_TIMEOUT = 300.0  # give up waiting for other appenders after this long


@dataclass(frozen=True)
class _Owner:
    """An append's hold on its reservation: what it needs to check before replacing things."""

    res: Reservation
    etag: str  # of head.json holding the reservation
    started: float  # time.monotonic() when it was taken
    lock: ObjectLockSettings | None


@dataclass
class _Written:
    """What one append wrote, so it can take exactly that back (key -> ETag or version)."""

    markers: dict[str, str] = field(default_factory=dict)
    leaves: dict[str, str] = field(default_factory=dict)
    keys: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # (ETag, version)
    checkpoint: tuple[str, str] | None = None


class Appender:
    """Appends to one S3 ledger, and settles the reservations of appenders that went silent.

    Args:
        bucket: the bucket the ledger lives in.
        layout: the ledger's object keys.
        lease: seconds a reservation is respected (plus LEASE_PER_ENTRY per entry); 0 lets
            the next appender settle it at once (tests simulate crashes that way).
        lock_settings: the ledger's Object Lock retention, read when an append first needs it.
    """

    def __init__(self, bucket: Bucket, layout: Layout, *, lease: float,
                 lock_settings: Callable[[], ObjectLockSettings | None]) -> None:
        self._bucket = bucket
        self._layout = layout
        self._lease = lease
        self._lock_settings = lock_settings
        self.location = bucket.location

    # -- head.json ---------------------------------------------------------------------------

    def read_state(self) -> HeadState:
        """The committed head, the ETag of head.json and the reservation it holds.

        Raises:
            TamperedEntryError: head.json is malformed.
        """
        obj = self._bucket.get(self._layout.head)
        if obj is None:
            return HeadState(EMPTY_HEAD, None, None)
        head, pending = decode_head(obj.body, location=self.location)
        return HeadState(head, obj.etag, pending)

    def _put_head(self, head: Head, pending: Reservation | None, *, etag: str | None) -> str:
        body = encode_head(head, pending)
        if etag is None:
            return self._bucket.put(self._layout.head, body, if_none_match=True)[0]
        return self._bucket.put(self._layout.head, body, if_match=etag)[0]

    # -- the protocol ------------------------------------------------------------------------

    def append(self, prepare: PrepareAppend) -> AppendBatch:
        """Reserve seqs by compare-and-swap on head.json, write, then commit the head.

        Raises:
            DuplicateRequestError: a request id of the batch is already in the ledger.
            StorageError: S3 failed, or other appenders kept the ledger busy too long.
        """
        deadline = time.monotonic() + APPEND_TIMEOUT
        seen: tuple[str | None, float] = (None, 0.0)  # a reservation's head ETag, first seen
        delay = 0.005
        while True:
            if time.monotonic() > deadline:
                raise StorageError(f"{self.location}: other appenders kept the ledger busy for "
                                   f"{APPEND_TIMEOUT:.0f} s; nothing was appended, retry")
            state = self.read_state()
            if state.pending is not None:
                if seen[0] != state.etag:
                    seen = (state.etag, time.monotonic())
                if time.monotonic() - seen[1] >= state.pending.lease:
                    self._settle(state)
                else:
                    delay = self._backoff(delay)
                continue
            batch = prepare(state.head)
            self._check_batch(state.head, batch)
            if not batch.leaves:
                if self._commit_checkpoint(state, batch):
                    return batch
                delay = self._backoff(delay)
                continue
            reservation = Reservation(
                start=state.head.size, end=batch.head.size, nonce=secrets.token_hex(8),
                owner=secrets.token_hex(8), state="append",
                request_ids=tuple(leaf.request_id for leaf in batch.leaves),
                checkpoint=batch.head.checkpoint, nodes=tuple(batch.head.nodes),
                lease=self._lease + LEASE_PER_ENTRY * len(batch.leaves) if self._lease else 0.0)
            try:
                etag = self._put_head(state.head, reservation, etag=state.etag)
            except Conflict:
                delay = self._backoff(delay)  # another appender won this head: prepare again
                continue
            return self._write_reserved(state.head, batch, reservation, etag)

    @staticmethod
    def _backoff(delay: float) -> float:
        time.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not cryptography
        return min(delay * 2, 0.25)

    def _check_batch(self, head: Head, batch: AppendBatch) -> None:
        seqs = [leaf.seq for leaf in batch.leaves]
        if seqs != list(range(head.size, head.size + len(seqs))) or \
                batch.head.size != head.size + len(seqs) or \
                not {row.seq for row in batch.key_rows} <= set(seqs):
            raise UsageError(f"{self.location}: an append must continue at entry {head.size}")

    def _commit_checkpoint(self, state: HeadState, batch: AppendBatch) -> bool:
        """An append without leaves: only a new signed checkpoint of the same tree."""
        if batch.head.checkpoint is not None:
            self._write_checkpoint(batch.head, referenced=state.head.checkpoint,
                                   lock=self._lock_settings())
        try:
            self._put_head(batch.head, None, etag=state.etag)
        except Conflict:
            return False
        return True

    def _write_checkpoint(self, head: Head, *, referenced: str | None,
                          lock: ObjectLockSettings | None) -> tuple[str, str]:
        """Write checkpoints/<size>.json once; an unreferenced leftover is replaced."""
        key = self._layout.checkpoint(head.size)
        body = encode_checkpoint(head)
        try:
            return key, self._bucket.put(key, body, if_none_match=True, lock=lock)[0]
        except Conflict:
            existing = self._bucket.get(key)
            note = checkpoint_note(existing.body) if existing else None
            if existing is not None and note == head.checkpoint:
                return key, existing.etag
            if existing is not None and note is not None and note == referenced:
                raise StorageError(f"{self.location}: a different checkpoint of size "
                                   f"{head.size} is already stored") from None
            log.warning("checkpoint %d: replacing an object left by an unfinished append", head.size)
            try:
                return key, self._bucket.put(key, body, if_match=existing.etag if existing else None,
                                             if_none_match=existing is None, lock=lock)[0]
            except Conflict:
                raise StorageError(f"{self.location}: another writer wrote the checkpoint of size "
                                   f"{head.size} at the same moment; retry") from None

    def _write_reserved(self, head: Head, batch: AppendBatch, res: Reservation, etag: str) -> AppendBatch:
        written = _Written()
        started = time.monotonic()
        try:
            lock = self._lock_settings()
            own = _Owner(res, etag, started, lock)
            self._bucket.all([partial(self._write_marker, leaf, res, written) for leaf in batch.leaves])
            self._bucket.all([*(partial(self._write_leaf, leaf, own, written) for leaf in batch.leaves),
                              *(partial(self._write_row, row, own, written) for row in batch.key_rows)])
            if batch.head.checkpoint is not None:
                written.checkpoint = self._write_checkpoint(batch.head, referenced=None, lock=lock)
        except BaseException:
            self._abort(head, res, etag, written)
            raise
        try:
            self._put_head(batch.head, None, etag=etag)
        except Conflict:
            # Someone settled our reservation: it may have rolled us forward.
            if self._committed(batch):
                return batch
            self._undo(written)
            raise StorageError(f"{self.location}: the append took longer than its "
                               f"{res.lease:.0f} s lease and was rolled back; retry") from None
        log.debug("appended seqs %d..%d", res.start, res.end - 1)
        return batch

    def _committed(self, batch: AppendBatch) -> bool:
        state = self.read_state()
        if state.head.size < batch.head.size:
            return False
        cp = self._bucket.get(self._layout.checkpoint(batch.head.size))
        return cp is not None and checkpoint_note(cp.body) == batch.head.checkpoint

    def _still_owner(self, own: _Owner) -> None:
        """Before replacing a leftover object: our reservation must still be the live one."""
        if own.res.lease and time.monotonic() - own.started > own.res.lease / 2:
            raise StorageError(f"{self.location}: the append ran out of time; retry")
        if self.read_state().etag != own.etag:
            raise StorageError(f"{self.location}: the append lost its reservation; retry")

    # -- request markers ---------------------------------------------------------------------

    def request_committed(self, request_id: str, size: int) -> bool:
        """Whether the marker of ``request_id`` names a committed entry (below ``size``)."""
        obj = self._bucket.get(self._layout.marker(request_id))
        doc = decode_marker(obj.body) if obj else None
        return doc is not None and self._marker_committed(doc, request_id, size)

    def _marker_committed(self, doc: Mapping[str, Any], request_id: str, size: int) -> bool:
        """A marker counts when its leaf is committed and carries the same request id."""
        seq = int(doc["seq"])
        if not 0 <= seq < size:
            return False
        leaf = self._bucket.get(self._layout.leaf(seq), body=False)
        return leaf is not None and unquote(leaf.metadata.get("request-id", "")) == request_id

    def _write_marker(self, leaf: StoredLeaf, res: Reservation, written: _Written) -> None:
        key = self._layout.marker(leaf.request_id)
        body = encode_marker(leaf.request_id, leaf.seq, res.nonce)
        try:
            written.markers[key] = self._bucket.put(key, body, if_none_match=True)[0]
            return
        except Conflict:
            pass
        existing = self._bucket.get(key)
        if existing is not None:
            doc = decode_marker(existing.body)
            if doc is not None and doc.get("nonce") == res.nonce:
                raise DuplicateRequestError(f"request {leaf.request_id} appears twice in the input")
            if doc is not None and self._marker_committed(doc, leaf.request_id, res.start):
                raise DuplicateRequestError(
                    f"request {leaf.request_id} is already in the ledger", request_id=leaf.request_id
                )
            log.warning("request %s: replacing a marker left by an unfinished append", leaf.request_id)
        try:
            written.markers[key] = self._bucket.put(
                key, body, if_match=existing.etag if existing else None,
                if_none_match=existing is None)[0]
        except Conflict:
            raise StorageError(f"{self.location}: request {leaf.request_id} is being appended "
                               "by another writer at the same moment; retry") from None

    # -- entries and key rows ----------------------------------------------------------------

    def _write_owned(self, key: str, body: bytes, own: _Owner, *, locked: bool,
                     metadata: Mapping[str, str] | None = None) -> tuple[str, str | None]:
        """Write a new object in our reserved range; replace a leftover of an unfinished append."""
        lock = own.lock if locked else None
        try:
            return self._bucket.put(key, body, if_none_match=True, lock=lock, metadata=metadata)
        except Conflict:
            pass
        self._still_owner(own)
        existing = self._bucket.get(key, body=False)
        log.warning("%s: replacing an object left by an unfinished append", self._layout.relative(key))
        try:
            written = self._bucket.put(key, body, if_match=existing.etag if existing else None,
                                       if_none_match=existing is None, lock=lock, metadata=metadata)
        except Conflict:
            raise StorageError(f"{self.location}: another writer wrote {key} at the same moment; "
                               "retry") from None
        if not locked:  # a leftover key row: none of its versions may survive
            self._bucket.delete_versions(
                [v for v in self._bucket.all_versions(key) if v[1] != written[1]], "key rows")
        return written

    def _write_leaf(self, leaf: StoredLeaf, own: _Owner, written: _Written) -> None:
        key = self._layout.leaf(leaf.seq)
        written.leaves[key] = self._write_owned(
            key, leaf.data, own, locked=True,
            metadata={"request-id": quote(leaf.request_id, safe="")})[0]

    def _write_row(self, row: KeyRow, own: _Owner, written: _Written) -> None:
        key = self._layout.row(row.seq)
        # If-None-Match: a late writer can never put back a key that shred has replaced.
        written.keys[key] = self._write_owned(key, encode_key_row(row), own, locked=False)

    # -- taking back and settling ------------------------------------------------------------

    def _undo(self, written: _Written) -> None:
        """Take back exactly what this append wrote (conditional on our own ETags)."""
        calls: list[Callable[[], None]] = []
        if written.checkpoint is not None:
            key, tag = written.checkpoint
            calls.append(partial(self._delete_quietly, key, if_match=tag))
        for k, t in [*written.leaves.items(), *written.markers.items()]:
            calls.append(partial(self._delete_quietly, k, if_match=t))
        for k, (tag, version) in written.keys.items():
            # the exact version we wrote (key material, so no delete marker is left in its place)
            if version and version != "null":
                calls.append(partial(self._delete_quietly, k, version_id=version))
            else:
                calls.append(partial(self._delete_quietly, k, if_match=tag))
        self._bucket.all(calls)

    def _delete_quietly(self, key: str, *, if_match: str | None = None,
                        version_id: str | None = None) -> None:
        with suppress(Conflict):  # someone else's object now: not ours to take back
            self._bucket.delete(key, if_match=if_match, version_id=version_id)

    def _abort(self, head: Head, res: Reservation, etag: str, written: _Written) -> None:
        try:
            self._undo(written)
            self._put_head(head, None, etag=etag)
        except (LedgerError, Conflict) as exc:
            # The reservation stays; the next appender settles it once its lease is over.
            log.debug("could not take back the failed append of seqs %d..%d: %s",
                      res.start, res.end - 1, exc)

    def _settle(self, state: HeadState) -> None:
        """Finish a reservation whose owner went silent: roll it forward or back."""
        res = state.pending
        assert res is not None
        assert state.etag is not None
        if res.state == "append" and res.checkpoint is not None:
            cp = self._bucket.get(self._layout.checkpoint(res.end))
            if cp is not None and checkpoint_note(cp.body) == res.checkpoint:
                log.warning("adopting entries %d..%d written by an append that did not finish",
                            res.start, res.end - 1)
                new = Head(size=res.end, nodes=res.nodes, checkpoint=res.checkpoint)
                with suppress(Conflict):
                    self._put_head(new, None, etag=state.etag)
                return
        # Take the reservation over first, so only one process deletes what it left.
        mine = Reservation(res.start, res.end, res.nonce, secrets.token_hex(8), "rollback",
                           res.request_ids, res.checkpoint, res.nodes, max(res.lease, self._lease))
        try:
            etag = self._put_head(state.head, mine, etag=state.etag)
        except Conflict:
            return
        log.warning("rolling back entries %d..%d of an append that did not finish",
                    res.start, res.end - 1)
        seqs = range(res.start, res.end)
        # No one else may write in this range while we hold it.
        self._delete_if_present(self._layout.checkpoint(res.end))
        self._bucket.all([partial(self._delete_if_present, self._layout.leaf(s)) for s in seqs])
        self._bucket.all([partial(self._bucket.erase, [self._layout.row(s)], "key rows") for s in seqs])
        self._bucket.all([partial(self._drop_marker, r, res) for r in res.request_ids])
        with suppress(Conflict):
            self._put_head(state.head, None, etag=etag)

    def _delete_if_present(self, key: str) -> None:
        # (a plain DELETE of a missing key would still add a delete marker on a versioned bucket)
        obj = self._bucket.get(key, body=False)
        if obj is not None:
            self._delete_quietly(key, if_match=obj.etag)

    def _drop_marker(self, request_id: str, res: Reservation) -> None:
        key = self._layout.marker(request_id)
        obj: Obj | None = self._bucket.get(key)
        doc = decode_marker(obj.body) if obj else None
        if obj is not None and doc is not None and doc.get("nonce") == res.nonce:
            self._delete_quietly(key, if_match=obj.etag)


__all__ = ["APPEND_TIMEOUT", "LEASE_BASE", "LEASE_PER_ENTRY", "Appender"]
