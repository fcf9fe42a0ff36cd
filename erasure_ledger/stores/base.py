"""What a ledger store keeps, and the protocol every store implements.

A store is dumb, durable storage with exactly one concurrency duty: :meth:`LedgerStore.append`
is atomic and serialised, so concurrent appenders never lose an entry or reuse a sequence
number. It knows nothing of cryptography or Merkle trees; :mod:`erasure_ledger.ledger`
prepares every byte it writes. Four kinds of record (docs/ledger-format.md §7):

* meta: written once by ``create`` (origin, verifier key, settings);
* leaves: immutable, one per sequence number, with the entry's request id beside it so the
  store can refuse a duplicate atomically;
* key rows: the mutable part (wrapped data key, blind-index tokens, MAC); replaced by
  ``shred`` and ``rotate-key``;
* checkpoints: immutable signed notes, one per tree size; the head is the newest one plus the
  compact-range node hashes needed to extend the tree without re-reading it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from erasure_ledger.errors import UsageError


@dataclass(frozen=True)
class StoredLeaf:
    seq: int
    request_id: str
    data: bytes


@dataclass(frozen=True)
class KeyRow:
    """The mutable key material of one entry; ``wrapped_key is None`` once shredded."""

    seq: int
    kek_id: str | None
    wrapped_key: bytes | None
    tokens: bytes
    mac: bytes

    @property
    def shredded(self) -> bool:
        return self.wrapped_key is None


@dataclass(frozen=True)
class Head:
    """The tree head: size, compact-range nodes and the signed checkpoint of that size."""

    size: int
    nodes: tuple[bytes, ...]
    checkpoint: str | None


EMPTY_HEAD = Head(size=0, nodes=(), checkpoint=None)


@runtime_checkable
class ResumableStore(Protocol):
    """A store that keeps the compact-range nodes beside each checkpoint and lists
    checkpoints from a size onwards (the S3 store)."""

    def checkpoint_nodes(self, size: int) -> tuple[bytes, ...] | None:
        """The nodes stored with the checkpoint of ``size``, or None."""

    def iter_checkpoints(self, *, since: int = 0) -> Iterator[tuple[int, str]]:
        """Stored checkpoints of size >= ``since``, by size."""


def checkpoints_since(store: LedgerStore, size: int) -> list[tuple[int, str]]:
    """Stored checkpoints of size >= ``size``, by size: listed from there where the store can
    (S3: a request or two instead of one per checkpoint), else filtered from all of them."""
    if isinstance(store, ResumableStore):
        return list(store.iter_checkpoints(since=size))
    return [(s, note) for s, note in store.iter_checkpoints() if s >= size]


def no_ledger(location: str) -> UsageError:
    """The error for a location that holds no ledger: most often a mistyped path, so the
    message does not invite creating a new, empty ledger there."""
    return UsageError(f"no ledger at {location}: check the path (erasure-ledger init creates a NEW ledger)")


@dataclass(frozen=True)
class AppendBatch:
    """Everything one append writes: leaves and key rows for seqs ``head.size`` onwards,
    and the new head (whose checkpoint is stored too)."""

    leaves: Sequence[StoredLeaf]
    key_rows: Sequence[KeyRow]
    head: Head


PrepareAppend = Callable[[Head], AppendBatch]


@runtime_checkable
class LedgerStore(Protocol):
    """Durable storage for one ledger. Every method may raise StorageError."""

    #: where the ledger lives, safe to print (passwords redacted)
    location: str

    def exists(self) -> bool:
        """Whether a ledger has been created here."""

    def create(self, meta: Mapping[str, str]) -> None:
        """Create an empty ledger; raises UsageError if one already exists here."""

    def read_meta(self) -> dict[str, str]:
        """The meta written by create; raises UsageError if there is no ledger here."""

    def read_head(self) -> Head:
        """The current head (EMPTY_HEAD for a new ledger)."""

    def append(self, prepare: PrepareAppend) -> AppendBatch:
        """Atomically: read the head under a lock (or optimistically), call ``prepare(head)``,
        refuse with DuplicateRequestError if any request id is already stored, then write
        leaves, key rows, the checkpoint and the new head. ``prepare`` may be called again
        when a concurrent appender won the race. Returns the batch that was written."""

    def request_ids_present(self, request_ids: Sequence[str]) -> set[str]:
        """Which of these request ids are already stored (a pre-check; append re-checks)."""

    def iter_leaves(self, start: int = 0, stop: int | None = None) -> Iterator[StoredLeaf]:
        """Leaves ``start <= seq < stop`` in order (stop defaults to the head size)."""

    def iter_leaf_data(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Only the leaf bytes, in order: the fast path for verification."""

    def iter_key_rows(self) -> Iterator[KeyRow]:
        """Every key row in seq order."""

    def read_key_row(self, seq: int) -> KeyRow | None:
        """The key row of entry ``seq`` alone, or None when there is none; raises
        TamperedEntryError when it is malformed.

        What ``Ledger.show`` reads, so that opening one entry does not read every key row
        (one request on S3, not one per entry). The caller has read the head and asks only for
        ``seq < head.size``. Every store here implements it; a third-party store may leave it
        out, and the ledger then walks :meth:`iter_key_rows` instead."""

    def replace_key_rows(
        self, rows: Sequence[KeyRow], *, expected_macs: Mapping[int, bytes] | None = None
    ) -> None:
        """Overwrite these key rows in one atomic step (shred, rotate-key). With
        ``expected_macs`` (seq -> the MAC the caller read), refuse with StorageError and change
        nothing if any of those rows changed meanwhile (compare-and-swap)."""

    def iter_checkpoints(self) -> Iterator[tuple[int, str]]:
        """Every stored checkpoint as (tree size, signed note), by size."""

    def close(self) -> None:
        """Release connections."""


__all__ = [
    "EMPTY_HEAD",
    "AppendBatch",
    "Head",
    "KeyRow",
    "LedgerStore",
    "PrepareAppend",
    "ResumableStore",
    "StoredLeaf",
    "checkpoints_since",
    "no_ledger",
]
