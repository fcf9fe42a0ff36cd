"""An in-memory store: the reference implementation of the store protocol, for tests.

Shipped in the package (like httpx's MockTransport) so tests of everything above the store
run without a database. It is thread-safe and atomic per call; nothing persists.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence

from erasure_ledger.errors import DuplicateRequestError, StorageError, UsageError
from erasure_ledger.stores.base import (
    EMPTY_HEAD,
    AppendBatch,
    Head,
    KeyRow,
    PrepareAppend,
    StoredLeaf,
    no_ledger,
)


class MemoryStore:
    """A ledger store held in process memory."""

    def __init__(self, location: str = "memory:") -> None:
        self.location = location
        self._lock = threading.RLock()
        self.meta: dict[str, str] | None = None
        self.head: Head = EMPTY_HEAD
        # Public on purpose: tests tamper with these to prove the ledger notices.
        self.leaves: list[StoredLeaf] = []
        self.key_rows: dict[int, KeyRow] = {}
        self.checkpoints: dict[int, str] = {}

    def exists(self) -> bool:
        return self.meta is not None

    def create(self, meta: Mapping[str, str]) -> None:
        with self._lock:
            if self.meta is not None:
                raise UsageError(f"a ledger already exists at {self.location}")
            self.meta = dict(meta)

    def read_meta(self) -> dict[str, str]:
        if self.meta is None:
            raise no_ledger(self.location)
        return dict(self.meta)

    def read_head(self) -> Head:
        return self.head

    def request_ids_present(self, request_ids: Sequence[str]) -> set[str]:
        wanted = set(request_ids)
        return {leaf.request_id for leaf in self.leaves if leaf.request_id in wanted}

    def append(self, prepare: PrepareAppend) -> AppendBatch:
        with self._lock:
            batch = prepare(self.head)
            present = self.request_ids_present([leaf.request_id for leaf in batch.leaves])
            if present:
                raise DuplicateRequestError(
                    f"request {sorted(present)[0]} is already in the ledger", request_id=sorted(present)[0]
                )
            self.leaves.extend(batch.leaves)
            self.key_rows.update({row.seq: row for row in batch.key_rows})
            if batch.head.checkpoint is not None:
                self.checkpoints[batch.head.size] = batch.head.checkpoint
            self.head = batch.head
            return batch

    def iter_leaves(self, start: int = 0, stop: int | None = None) -> Iterator[StoredLeaf]:
        yield from list(self.leaves[start : self.head.size if stop is None else stop])

    def iter_leaf_data(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        for leaf in self.iter_leaves(start, stop):
            yield leaf.data

    def iter_key_rows(self) -> Iterator[KeyRow]:
        yield from (self.key_rows[s] for s in sorted(self.key_rows))

    def read_key_row(self, seq: int) -> KeyRow | None:
        return self.key_rows.get(seq)

    def replace_key_rows(
        self, rows: Sequence[KeyRow], *, expected_macs: Mapping[int, bytes] | None = None
    ) -> None:
        with self._lock:
            if expected_macs is not None and any(
                (self.key_rows[s].mac if s in self.key_rows else b"") != mac
                for s, mac in expected_macs.items()
            ):
                raise StorageError(
                    f"{self.location}: key rows changed while this operation ran; "
                    "nothing was changed, run it again"
                )
            self.key_rows.update({row.seq: row for row in rows})

    def iter_checkpoints(self) -> Iterator[tuple[int, str]]:
        yield from sorted(self.checkpoints.items())

    def close(self) -> None:
        pass
