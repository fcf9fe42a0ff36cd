"""Verified copies of a ledger between stores, and verification of only what is new.

:func:`mirror` copies a ledger from any store to any other (SQLite file, SQLAlchemy URL, S3)
so that it can live outside the systems it protects. It proves, with an RFC 6962 consistency
proof, that DST is a faithful prefix of SRC before it writes anything, replays each SRC
checkpoint interval as one ``dst.append`` batch (so DST gets the same checkpoint history, with
the same signed notes), propagates shredded and re-wrapped key rows, and verifies DST again
afterwards. Run again, it copies only what is new. It never overwrites a DST that holds other
entries or another ledger, and it never un-shreds.

:func:`verify_since` verifies a ledger from a trusted checkpoint onwards: with a store that
keeps the tree nodes beside each checkpoint (S3), it reads only the entries added since.

No secret is needed or touched: leaves, key rows and checkpoints are copied as they are (the
key rows stay authenticated by their MAC, which only a keyring can check). No I/O other than
through the two stores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice

from erasure_ledger import merkle
from erasure_ledger.errors import (
    IntegrityError,
    RollbackError,
    StorageError,
    TamperedEntryError,
    UsageError,
)
from erasure_ledger.ledger import LEDGER_FORMAT
from erasure_ledger.merkle import CompactRange
from erasure_ledger.notes import NoteVerifier
from erasure_ledger.stores.base import (
    AppendBatch,
    Head,
    KeyRow,
    LedgerStore,
    ResumableStore,
    StoredLeaf,
)
from erasure_ledger.stores.base import checkpoints_since as _checkpoints_since
from erasure_ledger.verify import LedgerVerifier, VerificationResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MirrorResult:
    """What one :func:`mirror` run did; sizes are entry counts."""

    src: str
    dst: str
    created: bool  # DST was empty and was created with SRC's meta
    size_before: int
    size_after: int
    entries_copied: int
    checkpoints_copied: int
    shreds_propagated: int
    key_rows_rewrapped: int  # SRC's rotate-key carried over
    kept_shredded: int  # shredded on DST but not on SRC: left shredded (never un-shred)
    checkpoint: str  # the newest signed checkpoint, now held by both

    def to_dict(self) -> dict[str, object]:
        return {
            "src": self.src, "dst": self.dst, "created": self.created,
            "size_before": self.size_before, "size_after": self.size_after,
            "entries_copied": self.entries_copied, "checkpoints_copied": self.checkpoints_copied,
            "shreds_propagated": self.shreds_propagated,
            "key_rows_rewrapped": self.key_rows_rewrapped, "kept_shredded": self.kept_shredded,
        }


@contextmanager
def _side(label: str, location: str) -> Iterator[None]:
    """Name the store in integrity errors: 'DST s3://b/p: entry 4: missing from the store'."""
    try:
        yield
    except IntegrityError as exc:
        raise type(exc)(f"{label} {location.rstrip(':')}: {exc}") from exc


def _verify_extension(
    verifier: LedgerVerifier,
    tree: CompactRange,
    leaves: Iterable[bytes],
    checkpoints: Sequence[tuple[int, str]],
    *,
    tree_size: int,
) -> tuple[str | None, int]:
    """Extend ``tree`` (trusted, of size M) with the leaves M..tree_size-1 and check every
    stored checkpoint of size >= M against it, as ledger-format §8 does from size 0.

    Returns (the newest checkpoint note or None when there is none >= M, checkpoints checked).

    Raises:
        BadSignatureError: a checkpoint's signature fails.
        TamperedEntryError: leaves missing, altered or not covered by a checkpoint.
    """
    start = tree.size
    roots: dict[int, bytes] = {}
    notes: dict[int, str] = {}
    # ledger-format §8.1: every checkpoint (from M on) must carry a valid signature.
    for size, note in checkpoints:
        if size < start:
            continue
        cp = verifier.open_checkpoint(note, label=f"checkpoint at size {size}")
        if cp.size != size:
            raise TamperedEntryError(f"checkpoint at size {size}: note says size {cp.size}")
        roots[size], notes[size] = cp.root_hash, note
    latest = max(roots, default=start)
    if latest > tree_size:
        raise TamperedEntryError(
            f"checkpoint at size {latest} was signed but the ledger holds {tree_size} "
            f"entries: entries {tree_size}..{latest - 1} were removed")
    if tree_size > latest:
        raise TamperedEntryError(
            f"entry {latest}: not covered by any signed checkpoint (added outside the ledger)")
    if start in roots and roots[start] != tree.root():
        raise TamperedEntryError(f"checkpoint at size {start} does not match the stored entries")
    # ledger-format §8.3: stream the new leaves, comparing the root at every checkpoint.
    it = iter(leaves)
    previous = start
    for mark in sorted(m for m in roots if m > start):
        tree.extend(islice(it, mark - tree.size))
        if tree.size != mark:
            raise TamperedEntryError(f"entry {tree.size}: missing from the store")
        if tree.root() != roots[mark]:
            where = f"entry {previous}" if mark - previous == 1 else f"entries {previous}..{mark - 1}"
            raise TamperedEntryError(f"checkpoint at size {mark} does not match the stored "
                                     f"entries: {where} altered, swapped or removed")
        previous = mark
    if next(it, None) is not None:
        raise TamperedEntryError(f"entry {tree.size}: not covered by any signed checkpoint")
    return notes.get(tree_size), len(roots)


def _verifier_for(store: LedgerStore, public_key: NoteVerifier | None) -> LedgerVerifier:
    meta = store.read_meta()
    if meta.get("format") != LEDGER_FORMAT:
        raise IntegrityError(f"ledger at {store.location}: format {meta.get('format')!r} is not supported")
    key = public_key or NoteVerifier.parse(meta["verifier_key"])
    return LedgerVerifier(key, origin=meta["origin"])


def _snapshot(store: LedgerStore, since: int = 0) -> tuple[Head, list[tuple[int, str]]]:
    """The stored checkpoints (size >= ``since``), then the head.

    In this order an append that runs meanwhile can only move the head past the checkpoints
    read, never the other way round (which would look like removed entries); the head's own
    signed checkpoint closes that gap, and is verified like every other one.
    """
    checkpoints = _checkpoints_since(store, since)
    head = store.read_head()
    if head.checkpoint is not None and head.size >= since and \
            all(size != head.size for size, _ in checkpoints):
        checkpoints = sorted([*checkpoints, (head.size, head.checkpoint)])
    return head, checkpoints


def verify_since(store: LedgerStore, trusted_checkpoint: str, *,
                 public_key: NoteVerifier | None = None) -> VerificationResult:
    """Prove the ledger extends a trusted checkpoint, reading only what was added since.

    The tree state at the trusted size comes from the nodes the store keeps beside that
    checkpoint, accepted only if they hash to the trusted root (so they need no trust);
    a store without them, or with wrong ones, has its first M entries re-read instead.
    Checkpoints older than the trusted one are not re-checked: the auditor did that when it
    trusted it.

    Args:
        store: the ledger's store.
        trusted_checkpoint: a signed checkpoint note the auditor kept from an earlier run.
        public_key: the verifier key the auditor trusts (default: the ledger's own).

    Returns:
        The verification result, ``trusted_size`` set.

    Raises:
        RollbackError: the ledger does not extend the trusted checkpoint.
        IntegrityError: tampering among the new entries, or a bad signature.
        UsageError: no ledger there.
    """
    verifier = _verifier_for(store, public_key)
    trusted = verifier.open_checkpoint(trusted_checkpoint, label="trusted checkpoint")
    head, checkpoints = _snapshot(store, trusted.size)
    if trusted.size > head.size:
        raise RollbackError(f"ledger has {head.size} entries but the trusted checkpoint has "
                            f"{trusted.size}: rolled back or truncated")
    tree: CompactRange | None = None
    nodes = store.checkpoint_nodes(trusted.size) if isinstance(store, ResumableStore) else None
    if nodes is not None:
        try:
            tree = CompactRange.from_nodes(trusted.size, nodes)
        except ValueError:
            tree = None
        if tree is not None and tree.root() != trusted.root_hash:
            tree = None
    if tree is None:
        log.debug("no usable tree nodes at size %d: re-reading the first entries", trusted.size)
        tree = CompactRange()
        tree.extend(store.iter_leaf_data(0, trusted.size))
        if tree.size != trusted.size:
            raise TamperedEntryError(f"entry {tree.size}: missing from the store")
        if tree.root() != trusted.root_hash:
            raise RollbackError(f"ledger does not extend the trusted checkpoint (size "
                                f"{trusted.size}): history was rewritten")
    latest, count = _verify_extension(verifier, tree, store.iter_leaf_data(trusted.size, head.size),
                                      checkpoints, tree_size=head.size)
    return VerificationResult(
        origin=trusted.origin, tree_size=tree.size, root_hash=tree.root(),
        checkpoints_checked=count, latest_checkpoint=latest or trusted_checkpoint,
        trusted_size=trusted.size)


@dataclass
class _Source:
    """SRC read and verified once: its tree, every leaf hash, the leaves DST lacks, its rows."""

    size: int
    tree: CompactRange
    hashes: list[bytes]
    new: list[StoredLeaf]
    checkpoints: list[tuple[int, str]]
    rows: dict[int, KeyRow]


def _read_source(src: LedgerStore, verifier: LedgerVerifier, m: int) -> _Source:
    head, checkpoints = _snapshot(src)
    n = head.size
    source = _Source(n, CompactRange(), [], [], checkpoints, {})

    def tee() -> Iterator[bytes]:
        for leaf in src.iter_leaves(0, n):
            source.hashes.append(merkle.leaf_hash(leaf.data))
            if leaf.seq >= m:
                source.new.append(leaf)
            yield leaf.data

    with _side("SRC", src.location):
        _verify_extension(verifier, source.tree, tee(), source.checkpoints, tree_size=n)
        source.rows = {row.seq: row for row in src.iter_key_rows()}
        missing = [s for s in range(m, n) if s not in source.rows]
        if missing:
            raise TamperedEntryError(f"entry {missing[0]}: its key row is missing")
    return source


def _open_destination(src: LedgerStore, dst: LedgerStore) -> bool:
    """Create DST with SRC's meta when it is empty; refuse one that holds another ledger."""
    src_meta = src.read_meta()
    created = False
    if not dst.exists():
        try:
            dst.create(src_meta)
            created = True
        except UsageError:
            pass  # created meanwhile (another mirror run); checked like any other DST below
    dst_meta = dst.read_meta()
    for name in ("format", "origin", "verifier_key"):
        if dst_meta.get(name) != src_meta.get(name):
            raise IntegrityError(f"DST {dst.location} holds another ledger (its {name} differs "
                                 "from SRC's); refusing to overwrite it")
    return created


def mirror(src: LedgerStore, dst: LedgerStore, *,
           public_key: NoteVerifier | None = None) -> MirrorResult:
    """Copy what SRC holds and DST does not, proving DST is a faithful prefix of SRC.

    Args:
        src: the ledger to copy.
        dst: where to copy it: empty (it is created with SRC's meta) or an earlier mirror.
        public_key: the verifier key to trust (default: the one SRC names about itself).

    Returns:
        What was copied.

    Raises:
        IntegrityError: SRC or DST does not verify; DST holds another ledger or has diverged
            (different entries at the same positions, or more entries than SRC). DST is
            never written in these cases.
        UsageError: SRC holds no ledger.
        StorageError: a store failed, or DST changed while it was being written.
    """
    with _side("SRC", src.location):
        verifier = _verifier_for(src, public_key)
    created = _open_destination(src, dst)

    # Before: DST verifies on its own, and we keep its tree state at size m.
    dst_head, dst_checkpoints = _snapshot(dst)
    m = dst_head.size
    dst_tree = CompactRange()
    with _side("DST", dst.location):
        _verify_extension(verifier, dst_tree, dst.iter_leaf_data(0, m), dst_checkpoints,
                          tree_size=m)
    source = _read_source(src, verifier, m)
    n = source.size
    # ... and, by an RFC 6962 consistency proof, DST's tree is a prefix of SRC's.
    try:
        if m > n:
            raise merkle.ProofError("DST is longer")
        proof = merkle.consistency_proof_from_hashes(source.hashes, m)
        merkle.verify_consistency(m, n, dst_tree.root(), source.tree.root(), proof)
    except merkle.ProofError:
        raise IntegrityError(f"DST {dst.location} has diverged from SRC: its {m} entries are not "
                             f"the first of SRC's {n}; refusing to overwrite it") from None

    copied = _copy(dst, source, m, {s for s, _ in dst_checkpoints}, dst_tree)
    shreds, rewrapped, kept = _sync_key_rows(dst, source.rows, m)

    # After: DST holds SRC's head, and its new part verifies from the state proven before.
    notes = dict(source.checkpoints)
    after = dst.read_head()
    if after.size != n or after.checkpoint != notes.get(n):
        raise StorageError(f"DST {dst.location} changed during the mirror; run mirror again")
    check = CompactRange.from_nodes(m, dst_tree.nodes())
    with _side("DST", dst.location):
        _verify_extension(verifier, check, dst.iter_leaf_data(m, n),
                          _checkpoints_since(dst, m), tree_size=n)
        if check.root() != source.tree.root():
            raise TamperedEntryError("its root differs from SRC's after the copy")
    log.debug("mirrored entries %d..%d", m, n - 1)
    return MirrorResult(
        src=src.location, dst=dst.location, created=created, size_before=m, size_after=n,
        entries_copied=n - m, checkpoints_copied=copied, shreds_propagated=shreds,
        key_rows_rewrapped=rewrapped, kept_shredded=kept, checkpoint=notes.get(n, ""))


def _copy(dst: LedgerStore, source: _Source, m: int, dst_sizes: set[int],
          dst_tree: CompactRange) -> int:
    """Replay each SRC checkpoint interval after m as one append; returns checkpoints copied."""
    tree = CompactRange.from_nodes(m, dst_tree.nodes())
    sizes = sorted(s for s, _ in source.checkpoints if s > m or (s == m and s not in dst_sizes))
    notes = dict(source.checkpoints)
    prev = m
    for size in sizes:
        leaves = list(source.new[prev - m : size - m])
        for leaf in leaves:
            tree.append_leaf_hash(source.hashes[leaf.seq])
        batch = AppendBatch(leaves=leaves, key_rows=[source.rows[leaf.seq] for leaf in leaves],
                            head=Head(size=size, nodes=tuple(tree.nodes()), checkpoint=notes[size]))
        dst.append(_exactly_after(dst.location, prev, batch))
        prev = size
    return len(sizes)


def _exactly_after(location: str, expected: int, batch: AppendBatch) -> Callable[[Head], AppendBatch]:
    def prepare(head: Head) -> AppendBatch:
        if head.size != expected:
            raise StorageError(f"DST {location} changed during the mirror (it now holds "
                               f"{head.size} entries); run mirror again")
        return batch

    return prepare


def _sync_key_rows(dst: LedgerStore, src_rows: dict[int, KeyRow], m: int) -> tuple[int, int, int]:
    """Carry SRC's shreds and re-wraps over to the entries DST already had; never un-shred."""
    changes: list[KeyRow] = []
    shreds = rewrapped = kept = 0
    for row in dst.iter_key_rows():
        if row.seq >= m:
            continue
        theirs = src_rows.get(row.seq)
        if theirs is None or theirs == row:
            continue
        if row.shredded and not theirs.shredded:
            kept += 1  # never un-shred: the key is gone here and must stay gone
            continue
        if theirs.shredded:
            shreds += 1
        else:
            rewrapped += 1
        changes.append(theirs)
    if changes:
        dst.replace_key_rows(changes)
    return shreds, rewrapped, kept


__all__ = ["MirrorResult", "ResumableStore", "mirror", "verify_since"]
