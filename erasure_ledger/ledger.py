"""The ledger: append, read, look up, prove, shred and rotate, over a store.

:class:`Ledger` composes the pure parts (canonical encoding, sealing, Merkle tree, signed
notes) with one :class:`~erasure_ledger.stores.LedgerStore`. It never prints, never reads the
environment and takes the current time as a parameter. Operations that need secrets take a
:class:`~erasure_ledger.keyring.Keyring`; ``list``, ``verify``, ``prove`` and ``export`` do not.
"""

from __future__ import annotations

import dataclasses
import gc
import hmac
import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from erasure_ledger import imports, merkle
from erasure_ledger.canonical import (
    Leaf,
    entry_from_payload,
    parse_leaf,
    payload_bytes,
)
from erasure_ledger.errors import (
    DuplicateRequestError,
    IntegrityError,
    LedgerError,
    RollbackError,
    StaleKeyringError,
    TamperedEntryError,
    UsageError,
)
from erasure_ledger.identifiers import Identifier
from erasure_ledger.imports import ParallelImport, SealingJob, parse_lines, read_lines
from erasure_ledger.keyring import Keyring
from erasure_ledger.model import (
    COMPLETED_SUFFIX,
    COMPLETION,
    Entry,
    EntryMeta,
    InclusionProof,
    OpenedEntry,
    format_timestamp,
)
from erasure_ledger.notes import Checkpoint, NoteVerifier, sign_checkpoint
from erasure_ledger.sealing import (
    BlindIndex,
    EntrySealer,
    KeyRowAuthenticator,
    KeyWrapper,
    meta_mac,
    open_sealed,
    split_tokens,
)
from erasure_ledger.stores.base import (
    AppendBatch,
    Head,
    KeyRow,
    LedgerStore,
    StoredLeaf,
    checkpoints_since,
)
from erasure_ledger.verify import LedgerVerifier, VerificationResult

log = logging.getLogger(__name__)

LEDGER_FORMAT = "erasure-ledger/1"
#: ledgers at least this large are hashed on every core when the store can (SQL stores)
PARALLEL_VERIFY_THRESHOLD = 200_000
#: leaves per subtree hashed by one worker at a time (a power of two; about 4 MB of leaves)
PARALLEL_VERIFY_SUBTREE = 8192
#: key rows read one by one, newest first, to find the ledger's current KEK before the
#: remaining rows are read in one walk (only when the newest entries are all shredded)
CURRENT_KEK_PROBE = 16


@dataclass(frozen=True)
class AppendResult:
    """The sequence numbers given to the appended entries, and the new signed checkpoint."""

    seqs: tuple[int, ...]
    tree_size: int
    checkpoint: str


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str


class Ledger:
    """One erasure ledger. Construct with :meth:`create` or :meth:`open`."""

    def __init__(self, store: LedgerStore, meta: dict[str, str], keyring: Keyring | None) -> None:
        self.store = store
        self.origin = meta["origin"]
        self.verifier = NoteVerifier.parse(meta["verifier_key"])
        self.default_region = meta.get("default_region", "NL")
        self._keyring: Keyring | None = None
        self._wrappers: dict[str, KeyWrapper] = {}
        self._authenticator: KeyRowAuthenticator | None = None
        self._blind_index: BlindIndex | None = None
        self._set_keyring(keyring)

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def create(
        cls, store: LedgerStore, keyring: Keyring, *, default_region: str = "NL", now: datetime
    ) -> Ledger:
        """Create an empty ledger in ``store`` for ``keyring`` (see :meth:`Keyring.generate`).

        Raises:
            UsageError: a ledger already exists there.
            StorageError: the store cannot be written.
        """
        meta = {
            "format": LEDGER_FORMAT,
            "origin": keyring.origin,
            "verifier_key": keyring.signer.verifier.vkey,
            "default_region": default_region,
            "created_at": format_timestamp(now),
        }
        meta["meta_mac"] = meta_mac(keyring.mac_key, meta).hex()
        store.create(meta)
        ledger = cls(store, meta, keyring)
        ledger.checkpoint()  # the empty tree is signed too, so verify has a starting point
        return ledger

    @classmethod
    def open(cls, store: LedgerStore, keyring: Keyring | None = None) -> Ledger:
        """Open an existing ledger; with a keyring, check the keyring belongs to it.

        Raises:
            UsageError: no ledger there.
            IntegrityError: unknown format, or the keyring is another ledger's (exit 3).
        """
        meta = store.read_meta()
        if meta.get("format") != LEDGER_FORMAT:
            raise IntegrityError(
                f"ledger at {store.location}: format {meta.get('format')!r} is not supported"
            )
        if not all(isinstance(meta.get(k), str) for k in ("origin", "verifier_key")):
            raise IntegrityError(f"ledger at {store.location}: its settings are incomplete (tampered?)")
        try:
            NoteVerifier.parse(meta["verifier_key"])
        except LedgerError:
            raise IntegrityError(f"ledger at {store.location}: its verifier key is malformed") from None
        if keyring is not None:
            keyring.check_belongs_to(origin=meta["origin"], verifier_key=meta["verifier_key"])
            # ledger-format §7.3: the settings (default phone region above all) are MACed, so
            # a store writer cannot make identifiers normalise differently and hide people.
            expected = meta_mac(keyring.mac_key, meta).hex()
            if not hmac.compare_digest(meta.get("meta_mac", ""), expected):
                raise TamperedEntryError(f"ledger at {store.location}: its settings were altered")
        return cls(store, meta, keyring)

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise UsageError("this operation needs the keyring (--keyring or ERASURE_KEYRING)")
        return self._keyring

    def _wrapper(self, kek_id: str) -> KeyWrapper:
        # Cached per KEK: building the cipher and HMAC states per entry dominated bulk reads.
        wrapper = self._wrappers.get(kek_id)
        if wrapper is None:
            wrapper = KeyWrapper(self.keyring.kek(kek_id), kek_id=kek_id, origin=self.origin)
            self._wrappers[kek_id] = wrapper
        return wrapper

    def _auth(self) -> KeyRowAuthenticator:
        if self._authenticator is None:
            self._authenticator = KeyRowAuthenticator(self.keyring.mac_key, origin=self.origin)
        return self._authenticator

    def _index(self) -> BlindIndex:
        if self._blind_index is None:
            self._blind_index = BlindIndex(self.keyring.index_key, origin=self.origin)
        return self._blind_index

    def _set_keyring(self, keyring: Keyring | None) -> None:
        self._keyring = keyring
        self._wrappers = {}
        self._authenticator = None
        self._blind_index = None

    # -- appending -----------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry], *, now: datetime) -> AppendResult:
        """Append entries atomically (all or none) and sign the new tree head.

        Raises:
            DuplicateRequestError: a request id repeats in the batch or is already stored.
            StaleKeyringError: the keyring's active key is not the ledger's current key (an
                old copy of the keyring); nothing was appended.
            IntegrityError: the stored head does not match its signed checkpoint.
            StorageError: the store failed; nothing was appended.
        """
        if not entries:
            raise UsageError("nothing to append")
        seen: set[str] = set()
        for e in entries:
            if e.request_id in seen:
                raise DuplicateRequestError(f"request {e.request_id} appears twice in the input")
            seen.add(e.request_id)
        checked = self.verify_head(action="append to")
        self._refuse_stored(seen)
        self._check_completions([e for e in entries if e.kind == COMPLETION], seen)
        self.require_current_keyring(sealing=True)
        sealer = self._sealer(now)
        index = sealer.index
        # Work that does not depend on the sequence number is done once, outside the lock.
        # One urandom call for every data key of the batch instead of one per entry.
        keys = os.urandom(32 * len(entries))
        prepared = [
            (e, payload_bytes(e), index.tokens(e.identifiers), keys[32 * i : 32 * i + 32])
            for i, e in enumerate(entries)
        ]
        kek_id = sealer.kek_id

        def prepare(head: Head) -> AppendBatch:
            tree = self._tree_for(head, checked=checked)
            leaves, rows, hashes = [], [], []
            seq = head.size
            for entry, payload, tokens, data_key in prepared:
                sealed = sealer.seal(entry, seq=seq, data_key=data_key, payload=payload, tokens=tokens)
                hashes.append(sealed.leaf_hash)
                leaves.append(StoredLeaf(seq, entry.request_id, sealed.data))
                rows.append(KeyRow(seq, kek_id, sealed.wrapped, tokens, sealed.mac))
                seq += 1
            tree.extend_hashes(hashes)
            return AppendBatch(leaves=leaves, key_rows=rows, head=self._signed_head(tree))

        batch = self.store.append(prepare)
        seqs = tuple(leaf.seq for leaf in batch.leaves)
        log.debug("appended %d entries at seq %d..%d", len(seqs), seqs[0], seqs[-1])
        return AppendResult(seqs=seqs, tree_size=batch.head.size, checkpoint=batch.head.checkpoint or "")

    def append_jsonl(
        self, path: str | os.PathLike[str], *, now: datetime, workers: int | None = None
    ) -> AppendResult:
        """Append every entry of a JSONL import file (one request per line), all or nothing.

        Files of ``imports.PARALLEL_THRESHOLD`` lines or more are parsed and sealed by
        ``workers`` processes (default: one per CPU) for the positions after the head read
        beforehand; if another appender moved the head meanwhile, they seal again under the
        store's lock. The entries and the bytes written are those of :meth:`append`.

        Raises:
            UsageError: the file cannot be read or is empty, a line is bad (the first in file
                order is named by number), or a request id appears twice in the file.
            DuplicateRequestError, StaleKeyringError, IntegrityError, StorageError: as
                :meth:`append`; an error about one entry (a request id already in the ledger,
                a completion of an unknown request) names its line too.
        """
        lines = read_lines(path)
        try:
            return self._append_lines(lines, path, now=now, workers=workers)
        except LedgerError as exc:
            if exc.request_id is None:
                raise
            line = imports.line_of(lines, exc.request_id)
            message = f"{path}:{line}: {exc}; nothing was appended"
            raise type(exc)(message, request_id=exc.request_id) from None

    def _append_lines(
        self, lines: list[bytes], path: str | os.PathLike[str], *, now: datetime, workers: int | None
    ) -> AppendResult:
        workers = workers if workers is not None else (os.cpu_count() or 1)
        if len(lines) < imports.PARALLEL_THRESHOLD or workers < 2:
            return self.append(parse_lines(lines, str(path), default_region=self.default_region), now=now)
        keyring = self.keyring
        checked = self.verify_head(action="append to")
        self.require_current_keyring(sealing=True)
        job = SealingJob(
            lines=lines,
            shown=str(path),
            default_region=self.default_region,
            origin=self.origin,
            appended_at=format_timestamp(now),
            kek_id=keyring.active_kek_id,
            kek=keyring.kek(keyring.active_kek_id),
            index_key=keyring.index_key,
            mac_key=keyring.mac_key,
        )
        with ParallelImport(job, workers=workers) as importer:
            sealed = importer.seal(self.store.read_head().size)
            ids = {leaf.request_id for leaf in sealed.leaves}
            self._refuse_stored(ids)
            self._check_completions(sealed.completions, ids)

            def prepare(head: Head) -> AppendBatch:
                nonlocal sealed
                if head.size != sealed.start:
                    # Another appender moved the head since it was read: seal again for the
                    # new positions (SQL stores call this under their write lock, so once
                    # is enough; optimistic stores may call it again and it seals again).
                    log.debug("head moved from %d to %d; sealing again", sealed.start, head.size)
                    sealed = importer.seal(head.size)
                tree = self._tree_for(head, checked=checked)
                tree.extend_hashes(sealed.leaf_hashes)
                return AppendBatch(
                    leaves=sealed.leaves, key_rows=sealed.key_rows, head=self._signed_head(tree)
                )

            batch = self.store.append(prepare)
        seqs = tuple(range(batch.leaves[0].seq, batch.leaves[-1].seq + 1))
        log.debug("appended %d entries at seq %d..%d", len(seqs), seqs[0], seqs[-1])
        return AppendResult(seqs=seqs, tree_size=batch.head.size, checkpoint=batch.head.checkpoint or "")

    def _refuse_stored(self, request_ids: set[str]) -> None:
        """Fail fast, before sealing, on a request id already stored (up to 1,000 ids; the
        store re-checks atomically either way)."""
        if len(request_ids) > 1000:
            return
        present = self.store.request_ids_present(list(request_ids))
        if present:
            first = sorted(present)[0]
            if first.endswith(COMPLETED_SUFFIX):
                raise DuplicateRequestError(
                    f"request {first.removesuffix(COMPLETED_SUFFIX)} is already marked carried out",
                    request_id=first,
                )
            raise DuplicateRequestError(f"request {first} is already in the ledger", request_id=first)

    def _tree_for(self, head: Head, *, checked: Head | None = None) -> merkle.CompactRange:
        """The compact range to extend, checked against the head's signed checkpoint so that a
        tampered head is never signed over (ledger-format §7.2).

        ``checked`` is the head :meth:`verify_head` established before the store's lock was
        taken: the head under the lock may have grown since (a concurrent append), never shrunk.
        """
        if checked is not None and head.size < checked.size:
            raise RollbackError(
                f"the tree head went back from size {checked.size} to {head.size} during this "
                "operation (rolled back outside the ledger)"
            )
        try:
            tree = merkle.CompactRange.from_nodes(head.size, head.nodes)
        except ValueError:
            raise TamperedEntryError("the stored tree head is malformed") from None
        if head.size:
            if head.checkpoint is None:
                raise TamperedEntryError("the stored tree head has no signed checkpoint")
            cp = LedgerVerifier(self.verifier, origin=self.origin).open_checkpoint(
                head.checkpoint, label="head checkpoint"
            )
            if cp.size != head.size or cp.root_hash != tree.root():
                raise TamperedEntryError("the stored tree head does not match its signed checkpoint")
        return tree

    def _sign(self, size: int, root: bytes) -> str:
        return sign_checkpoint(Checkpoint(origin=self.origin, size=size, root_hash=root), self.keyring.signer)

    def _signed_head(self, tree: merkle.CompactRange) -> Head:
        return Head(size=tree.size, nodes=tuple(tree.nodes()), checkpoint=self._sign(tree.size, tree.root()))

    def _sealer(self, now: datetime) -> EntrySealer:
        """Seals new entries under the active KEK, stamped ``now``."""
        keyring = self.keyring
        return EntrySealer(
            self._wrapper(keyring.active_kek_id),
            self._index(),
            self._auth(),
            origin=self.origin,
            appended_at=format_timestamp(now),
        )

    # -- the current key-encryption key --------------------------------------------------------

    def current_kek_id(self) -> str | None:
        """The key-encryption key this ledger's entries are wrapped under now.

        That is the KEK of the newest entry whose key row is not shredded: appends wrap under
        the appender's active KEK, and ``rotate-key`` (also run by ``shred``) re-wraps every
        row under the new one, so all live rows share it. The row's MAC is checked, so a store
        writer cannot make a stale keyring look current. ``None`` when no entry has a live
        key (an empty ledger, or every entry shredded): then nothing records the KEK.

        Raises:
            UsageError: no keyring (the MAC check needs it).
            TamperedEntryError: that key row was altered or forged.
        """
        size = self.store.read_head().size
        read: Callable[[int], KeyRow | None] | None = getattr(self.store, "read_key_row", None)
        newest: KeyRow | None = None
        if read is not None:
            for seq in range(size - 1, max(size - CURRENT_KEK_PROBE, 0) - 1, -1):
                row = read(seq)
                if row is not None and not row.shredded:
                    newest = row
                    break
        if newest is None and (read is None or size > CURRENT_KEK_PROBE):
            for row in self.store.iter_key_rows():
                if row.seq < size and not row.shredded:
                    newest = row
        if newest is None:
            return None
        for stored in self.store.iter_leaves(newest.seq, newest.seq + 1):
            return self._checked_row(stored.seq, merkle.leaf_hash(stored.data), newest).kek_id
        raise TamperedEntryError(f"entry {newest.seq}: missing from the store")

    def require_current_keyring(self, *, sealing: bool) -> None:
        """Refuse a keyring that would leave entries no single keyring can open.

        Args:
            sealing: the operation wraps new data keys under the keyring's active KEK
                (append, complete), so that KEK must be the ledger's current one. Otherwise
                (shred, rotate-key) the keyring must hold the current KEK, which also admits
                the keyring of a rotation that did not finish.

        Raises:
            StaleKeyringError: the keyring is an old copy (made before the last rotation or
                shred), or a rotation did not finish (exit 3; nothing was changed).
            TamperedEntryError: the key row naming the current KEK was altered.
        """
        keyring = self.keyring
        current = self.current_kek_id()
        active = keyring.active_kek_id
        if current is None or current == active or (not sealing and current in keyring.keks):
            return
        if current in keyring.keks:
            advice = "a key rotation did not finish; run erasure-ledger rotate-key again"
        elif _kek_number(active) > _kek_number(current):
            # Only possible when every newer entry was shredded and an old copy appended since.
            advice = (
                f"entries were appended with an older copy of the keyring, which holds {current}; "
                "open the ledger with that copy and run erasure-ledger rotate-key with it"
            )
        else:
            advice = "use the current keyring file (an old copy cannot be used after a rotation or shred)"
        raise StaleKeyringError(
            f"the keyring's active key is not this ledger's current key ({active}, the ledger is at "
            f"{current}): {advice}"
        )

    # -- checkpoints and verification ----------------------------------------------------------

    def checkpoint(self) -> SignedCheckpoint:
        """The signed checkpoint of the current tree head (signing it if it is not yet), once
        :meth:`verify_head` has established that the stored entries are what it signs.

        Raises:
            UsageError: the head is unsigned and there is no keyring to sign it.
            IntegrityError: the stored tree is not what its newest signed checkpoint says
                (nothing is signed, no checkpoint is given out).
        """
        head = self.verify_head(action="give out a checkpoint of")
        if head.checkpoint is None:

            def prepare(current: Head) -> AppendBatch:
                t = self._tree_for(current, checked=head)
                return AppendBatch(
                    leaves=[],
                    key_rows=[],
                    head=Head(size=t.size, nodes=tuple(t.nodes()), checkpoint=self._sign(t.size, t.root())),
                )

            head = self.store.append(prepare).head
        assert head.checkpoint is not None
        verifier = LedgerVerifier(self.verifier, origin=self.origin)
        return SignedCheckpoint(
            verifier.open_checkpoint(head.checkpoint, label="head checkpoint"), head.checkpoint
        )

    def verify_head(self, *, action: str = "write to") -> Head:
        """Establish that the stored tree is what its newest signed checkpoint says, before a
        new entry or checkpoint builds on it (ledger-format §7.2).

        Checked, in order of cost:

        1. no stored checkpoint is larger than the head (entries removed, head rolled back);
        2. the head's compact-range nodes hash to the root of the head's signed checkpoint,
           whose signature verifies with the ledger's key;
        3. the stored leaves ``0..size-1`` are all there and hash to that root (each leaf read
           once; on every core for SQL ledgers from ``PARALLEL_VERIFY_THRESHOLD`` entries).
           Not on S3, where every leaf is an object of its own: a single append would cost a
           request per stored entry; there an altered leaf is left to :meth:`verify`.

        Older checkpoints' signatures and key rows are left to :meth:`verify` (a signature
        check per checkpoint would cost more than the leaves for a ledger appended one entry
        at a time); step 3 already covers every leaf they sign.

        Args:
            action: what the caller refuses to do, for the message ("append to").

        Returns:
            The head that was checked.

        Raises:
            IntegrityError: the class of the first failure, its message prefixed with
                "refusing to {action} a ledger that does not verify" (exit 3).
        """
        try:
            return self._verified_head()
        except IntegrityError as exc:
            raise type(exc)(f"refusing to {action} a ledger that does not verify: {exc}") from None

    def _verified_head(self) -> Head:
        # Checkpoints first, head second (as in verify): an append committing in between can
        # only make the head larger than every checkpoint read, never smaller.
        first = self.store.read_head()
        newest = max((size for size, _ in checkpoints_since(self.store, first.size)), default=None)
        head = self.store.read_head()
        if newest is not None and newest > head.size:
            raise TamperedEntryError(
                f"checkpoint at size {newest} was signed but the ledger holds {head.size} "
                f"entries: entries {head.size}..{newest - 1} were removed"
            )
        tree = self._tree_for(head)
        if head.checkpoint is None:  # a new ledger before its first checkpoint
            if head.size or newest is not None:
                raise TamperedEntryError("the stored tree head has no signed checkpoint")
            return head
        if getattr(self.store, "leaves_are_objects", False):
            # S3: steps 1 and 2 only. What is written still builds on the signed tree (the
            # head's nodes match its signed checkpoint), so an altered leaf is never signed
            # over; it is left for verify to name.
            return head
        self._verify_leaves(
            LedgerVerifier(self.verifier, origin=self.origin),
            [(head.size, head.checkpoint)],
            tree.size,
            leaves=self._leaf_data_below_head(head.size),
        )
        log.debug("tree head of size %d verified against the stored entries", head.size)
        return head

    def _leaf_data_below_head(self, size: int) -> Iterator[bytes]:
        """Leaves ``0..size-1`` only. Read in two parts, because S3 reading up to the head
        also refuses objects past it, and there those are what a crashed append left behind:
        the next append replaces them (docs/s3-and-kms.md), so they must not block it. SQL
        stores refuse a leaf past the head when the append writes."""
        if size:
            yield from self.store.iter_leaf_data(0, size - 1)
            for leaf in self.store.iter_leaves(size - 1, size):
                yield leaf.data

    def verify(
        self, *, public_key: NoteVerifier | None = None, trusted_checkpoint: str | None = None
    ) -> VerificationResult:
        """Recompute every leaf hash and the root; check every checkpoint (public key only).

        Args:
            public_key: the verifier key the auditor trusts; defaults to the one the ledger
                names about itself (which proves consistency, not authenticity).
            trusted_checkpoint: a signed checkpoint kept from earlier; the ledger must extend it.

        Raises:
            IntegrityError: tampering, truncation, rollback or a bad signature (exit 3).
        """
        # Checkpoints first, head second: an append writes its checkpoint and moves the head in
        # one transaction, so a concurrent append can only make the head larger than every
        # checkpoint read here, never smaller (which would look like truncation).
        checkpoints = list(self.store.iter_checkpoints())
        head = self.store.read_head()
        # The head carries the signed checkpoint of its own size: it closes the gap when an
        # append committed between the two reads, and is verified like every other one.
        head_size = _claimed_size(head.checkpoint)
        if head_size is not None and all(size != head_size for size, _ in checkpoints):
            checkpoints.append((head_size, head.checkpoint or ""))
        verifier = LedgerVerifier(public_key or self.verifier, origin=self.origin)
        return self._verify_leaves(verifier, checkpoints, head.size, trusted_checkpoint=trusted_checkpoint)

    def _verify_leaves(
        self,
        verifier: LedgerVerifier,
        checkpoints: Sequence[tuple[int, str]],
        size: int,
        *,
        trusted_checkpoint: str | None = None,
        leaves: Iterator[bytes] | None = None,
    ) -> VerificationResult:
        """The stored leaves ``0..size-1`` against ``checkpoints``, on every core when the
        store can read leaf ranges in worker processes (SQL stores) and the ledger is large;
        else ``leaves`` (default: the store's ``iter_leaf_data(0, size)``) on this one."""
        map_ranges = getattr(self.store, "map_leaf_ranges", None)
        workers = os.cpu_count() or 1
        if map_ranges is not None and workers > 1 and size >= PARALLEL_VERIFY_THRESHOLD:
            # Worker processes read and hash whole aligned subtrees; only their roots come
            # back, so this process does O(n / PARALLEL_VERIFY_SUBTREE) work.
            running: list[Generator[bytes, None, None]] = []

            def hash_subtrees(ranges: Iterable[tuple[int, int]]) -> Iterator[bytes]:
                running.append(map_ranges(merkle.subtree_root, ranges, workers=workers))
                return running[-1]

            try:
                return verifier.verify_subtrees(
                    hash_subtrees,
                    checkpoints,
                    tree_size=size,
                    trusted_checkpoint=trusted_checkpoint,
                    max_subtree=PARALLEL_VERIFY_SUBTREE,
                )
            finally:
                for generator in running:  # stop the workers when verification fails early
                    generator.close()
        return verifier.verify(
            self.store.iter_leaf_data(0, size) if leaves is None else leaves,
            checkpoints,
            tree_size=size,
            trusted_checkpoint=trusted_checkpoint,
        )

    def _leaf_hashes(self, size: int) -> list[bytes]:
        return [merkle.leaf_hash(d) for d in self.store.iter_leaf_data(0, size)]

    def prove(self, seq: int, *, tree_size: int | None = None) -> InclusionProof:
        """An inclusion proof for entry ``seq`` against the signed checkpoint of ``tree_size``
        (default: the latest).

        Raises:
            UsageError: no such entry, or no checkpoint of that size.
        """
        checkpoints = dict(self.store.iter_checkpoints())
        size = tree_size if tree_size is not None else max(checkpoints, default=0)
        if size not in checkpoints:
            raise UsageError(f"no signed checkpoint of size {size}")
        if not 0 <= seq < size:
            raise UsageError(f"entry {seq} is not in the tree of size {size}")
        cp = LedgerVerifier(self.verifier, origin=self.origin).open_checkpoint(
            checkpoints[size], label=f"checkpoint at size {size}"
        )
        hashes = self._leaf_hashes(size)
        if merkle.root_from_leaf_hashes(hashes) != cp.root_hash:
            raise TamperedEntryError(f"checkpoint at size {size} does not match the stored entries")
        proof = merkle.inclusion_proof_from_hashes(hashes, seq)
        return InclusionProof(
            origin=self.origin,
            seq=seq,
            tree_size=size,
            leaf_hash=hashes[seq],
            root_hash=cp.root_hash,
            hashes=tuple(proof),
            checkpoint=checkpoints[size],
        )

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """A consistency proof from the tree of ``old_size`` to ``new_size`` (default: head).

        Raises:
            UsageError: sizes out of range.
        """
        size = self.store.read_head().size if new_size is None else new_size
        if not 0 <= old_size <= size:
            raise UsageError(f"cannot prove size {old_size} against size {size}")
        return merkle.consistency_proof_from_hashes(self._leaf_hashes(size), old_size)

    # -- reading -------------------------------------------------------------------------------

    def _check_completions(self, completions: list[Entry], batch_ids: set[str]) -> None:
        """A completion must name a request that exists (stored or in the same batch), is not
        itself a completion, and was received no later than it was carried out."""
        if not completions:
            return
        requests = {m.request_id: m for m in self.list_entries() if m.kind != COMPLETION}
        for entry in completions:
            target = requests.get(entry.completes or "")
            if target is None and entry.completes not in batch_ids:
                raise UsageError(
                    f"request {entry.completes} is not in the ledger", request_id=entry.request_id
                )
            if target is not None and target.effective is not None:
                raise DuplicateRequestError(
                    f"request {entry.completes} is already marked carried out", request_id=entry.request_id
                )
            if (
                target is not None
                and target.received
                and entry.effective
                and entry.effective < target.received
            ):
                raise UsageError(
                    f"request {entry.completes}: carried out before it was received?",
                    request_id=entry.request_id,
                )

    def list_entries(self) -> Iterator[EntryMeta]:
        """Every entry's public metadata, in order; no key needed, never identifier values.

        A request marked carried out by a later completion entry shows that entry's date as
        its ``effective`` date (the completion entries are listed too).

        Raises:
            TamperedEntryError: a leaf is malformed or out of place.
        """
        shredded = {row.seq for row in self.store.iter_key_rows() if row.shredded}
        metas = [
            self._parse(leaf).meta(shredded=leaf.seq in shredded)
            for leaf in self.store.iter_leaves()
        ]
        done = _completion_dates(metas)
        for meta in metas:
            when = done.get(meta.request_id)
            yield dataclasses.replace(meta, effective=when) if when and meta.effective is None else meta

    def _parse(self, stored: StoredLeaf) -> Leaf:
        """Parse a stored leaf and check its request id column against the signed entry.

        The column is what duplicate checks read (it sits outside the signed leaf): an
        altered one would let a second entry take an existing request id unnoticed.

        Raises:
            TamperedEntryError: a malformed or misplaced leaf, or an altered request id.
        """
        leaf = parse_leaf(stored.data, expected_seq=stored.seq, origin=self.origin)
        if stored.request_id != leaf.header.get("request_id"):
            raise TamperedEntryError(f"entry {stored.seq}: its stored request id is not the "
                                     "signed entry's (altered outside the ledger)")
        return leaf

    def _authenticated(self, leaves: Iterable[StoredLeaf]) -> Iterator[tuple[Leaf, bytes, KeyRow]]:
        """Leaves with their key rows, each row's MAC checked against the leaf's hash.

        Raises:
            TamperedEntryError: a key row is missing, altered, swapped or forged.
        """
        # Leaves and key rows both come in seq order: walk them in step (bounded memory).
        rows = iter(self.store.iter_key_rows())
        row: KeyRow | None = next(rows, None)
        for stored in leaves:
            leaf = self._parse(stored)
            leaf_hash = merkle.leaf_hash(stored.data)
            while row is not None and row.seq < stored.seq:
                row = next(rows, None)
            yield leaf, leaf_hash, self._checked_row(stored.seq, leaf_hash, row)

    def _checked_row(self, seq: int, leaf_hash: bytes, row: KeyRow | None) -> KeyRow:
        """The key row of entry ``seq``, its MAC checked against the entry's leaf hash.

        Raises:
            TamperedEntryError: the row is missing, altered, swapped or forged.
        """
        if row is None or row.seq != seq:
            raise TamperedEntryError(f"entry {seq}: its key row is missing")
        if row.shredded and row.tokens:
            raise TamperedEntryError(f"entry {seq}: shredded key row still carries tokens")
        if not self._auth().check(
            seq=seq,
            leaf_hash=leaf_hash,
            kek_id=row.kek_id,
            wrapped=row.wrapped_key,
            tokens=row.tokens,
            mac=row.mac,
        ):
            raise TamperedEntryError(
                f"entry {seq}: key row does not match its entry (altered, swapped or forged)"
            )
        return row

    def _read_key_row(self, seq: int) -> KeyRow | None:
        """One entry's key row: a single read where the store offers ``read_key_row`` (every
        store shipped here does), else the first row at or after ``seq`` from the full walk."""
        read: Callable[[int], KeyRow | None] | None = getattr(self.store, "read_key_row", None)
        if read is not None:
            return read(seq)
        return next((row for row in self.store.iter_key_rows() if row.seq >= seq), None)

    def _open(self, leaf: Leaf, row: KeyRow) -> OpenedEntry:
        if row.wrapped_key is None or row.kek_id is None:
            return OpenedEntry(leaf.meta(shredded=True), None)
        data_key = self._wrapper(row.kek_id).unwrap(row.wrapped_key, seq=leaf.seq)
        meta = leaf.meta()
        entry = entry_from_payload(meta, open_sealed(data_key, leaf.sealed, leaf.associated_data()))
        if self._index().tokens(entry.identifiers) != row.tokens:
            raise TamperedEntryError(f"entry {leaf.seq}: blind-index tokens do not match the entry")
        return OpenedEntry(meta, entry)

    def show(self, seq: int, *, trusted_checkpoint: str | None = None) -> OpenedEntry:
        """Decrypt one entry, after verifying that the ledger (and so this leaf) is what the
        signed checkpoints say.

        Raises:
            UsageError: no such entry.
            IntegrityError: the ledger does not verify, the entry does not open, or its key
                row was tampered with.
        """
        size = self.verify(trusted_checkpoint=trusted_checkpoint).tree_size
        if not 0 <= seq < size:
            raise UsageError(f"no entry {seq} (the ledger holds entries 0..{size - 1})")
        for stored in self.store.iter_leaves(seq, seq + 1):
            leaf = self._parse(stored)
            # Only this entry's key row (one read), authenticated as strictly as in the walk.
            row = self._checked_row(stored.seq, merkle.leaf_hash(stored.data), self._read_key_row(stored.seq))
            return self._open(leaf, row)
        raise TamperedEntryError(f"entry {seq}: missing from the store")

    def open_all(
        self, *, trusted_checkpoint: str | None = None
    ) -> tuple[VerificationResult, list[OpenedEntry]]:
        """Verify the whole ledger, then decrypt every entry (what the reconciler replays).

        The tree is verified against the newest signed checkpoint first; every key row is
        authenticated; shredded entries come back with ``entry=None``.

        Raises:
            IntegrityError: any tampering, a wrong keyring, or an entry that does not open.
        """
        with _no_gc_passes():
            result = self.verify(trusted_checkpoint=trusted_checkpoint)
            opened = [
                self._open(leaf, row)
                for leaf, _, row in self._authenticated(self.store.iter_leaves(0, result.tree_size))
            ]
            # Completion entries only carry a date: fold it into the request they complete,
            # so callers see requests alone, with the date each was carried out.
            done = _completion_dates([o.meta for o in opened])
            requests = [_with_completion(item, done) for item in opened if item.meta.kind != COMPLETION]
        return result, requests

    def lookup(
        self, identifiers: Sequence[Identifier], *, trusted_checkpoint: str | None = None
    ) -> list[EntryMeta]:
        """Entries that name any of these identifiers, found through blind-index tokens
        without decrypting. The tree is verified first (a truncated ledger would otherwise
        hide people silently) and every key row is authenticated on the way, so a dropped or
        altered token is an error rather than a silent miss.

        The keyring must hold the ledger's current key-encryption key, as for :meth:`show`:
        an old copy of the keyring (made before the last rotation or shred) is refused, so
        that it cannot be used to find out who is in the ledger either. (The blind-index key
        itself is not rotated: the refusal is this tool's, see docs/operations.md.)

        Raises:
            StaleKeyringError: the keyring is an old copy (exit 3).
            IntegrityError: the ledger does not verify, or a key row was tampered with.
        """
        size = self.verify(trusted_checkpoint=trusted_checkpoint).tree_size
        index = self._index()
        wanted = {index.token(i) for i in identifiers}
        found = []
        for leaf, _, row in self._authenticated(self.store.iter_leaves(0, size)):
            if wanted.intersection(split_tokens(row.tokens)):
                found.append(leaf.meta(shredded=row.shredded))
        # After the walk, so that a tampered key row is named as such; before any answer.
        self.require_current_keyring(sealing=False)
        return found

    # -- shredding and rotation ----------------------------------------------------------------

    def shreddable(self, *, before: datetime) -> list[EntryMeta]:
        """Entries carried out in production before ``before`` and not yet shredded.

        ``before`` is the date of the oldest backup still kept: every backup is younger than
        these erasures, so none of them can bring the person back and the entry may go.
        """
        return [
            m
            for m in self.list_entries()
            if not m.shredded and m.kind != COMPLETION and m.effective is not None and m.effective < before
        ]

    def existing_seqs(self, seqs: Iterable[int]) -> list[int]:
        """The sequence numbers, sorted and deduplicated, after checking each names an entry.

        Raises:
            UsageError: a sequence number is out of range.
        """
        wanted = sorted(set(seqs))
        size = self.store.read_head().size
        bad = [s for s in wanted if not 0 <= s < size]
        if bad:
            raise UsageError(f"no entry {bad[0]} (the ledger holds entries 0..{size - 1})")
        return wanted

    def shred(self, seqs: Iterable[int]) -> list[int]:
        """Crypto-shred entries: destroy their wrapped data keys and blind-index tokens.

        The leaves stay, so the log still verifies; the entries can no longer be opened or
        looked up. Already shredded entries are skipped.

        Raises:
            UsageError: a sequence number is out of range.
            StaleKeyringError: the keyring does not hold the ledger's current KEK (an old
                copy); nothing was shredded.
            TamperedEntryError: a key row was tampered with.
        """
        wanted = self.existing_seqs(seqs)
        # Shredding itself needs only the MAC key, but an old keyring copy here means the
        # rotation that follows (and any later append) would fail: refuse before any change.
        self.require_current_keyring(sealing=False)
        auth = self._auth()
        tombstones = []
        expected: dict[int, bytes] = {}
        chosen = set(wanted)
        for leaf, leaf_hash, row in self._authenticated(self.store.iter_leaves()):
            if leaf.seq in chosen and not row.shredded:
                expected[leaf.seq] = row.mac
                tombstones.append(
                    KeyRow(
                        seq=leaf.seq,
                        kek_id=None,
                        wrapped_key=None,
                        tokens=b"",
                        mac=auth.mac(
                            seq=leaf.seq, leaf_hash=leaf_hash, kek_id=None, wrapped=None, tokens=b""
                        ),
                    )
                )
        self.store.replace_key_rows(tombstones, expected_macs=expected)
        return [row.seq for row in tombstones]

    def rotate_key(
        self, save_keyring: Callable[[Keyring], None], *, kms_key_id: str | None = None
    ) -> Keyring:
        """Re-wrap every data key under a new KEK and destroy the old one.

        Crash-safe order: (1) save a keyring holding old and new KEK, (2) re-wrap every key
        row in one store transaction, (3) save a keyring holding only the new KEK. A crash
        at any point leaves a keyring that opens every entry.

        Raises:
            StaleKeyringError: the keyring does not hold the ledger's current KEK (an old
                copy); nothing is changed, no keyring is saved.
            IntegrityError: a key row does not authenticate or unwrap; nothing is changed.
            StorageError: a write failed.
        """
        self.require_current_keyring(sealing=False)
        both = self.keyring.rotated(kms_key_id=kms_key_id)
        save_keyring(both)
        self._set_keyring(both)
        # Re-wrap until no row is left under an old KEK: an entry appended meanwhile by a
        # process holding the old keyring is caught by the next pass. Each pass is a
        # compare-and-swap, so a concurrent shred is never undone.
        while True:
            rows, expected = self._rewrapped_rows(both.active_kek_id)
            if not rows:
                break
            self.store.replace_key_rows(rows, expected_macs=expected)
        final = both.without_old_keks()
        save_keyring(final)
        self._set_keyring(final)
        return final

    def _rewrapped_rows(self, kek_id: str) -> tuple[list[KeyRow], dict[int, bytes]]:
        """Key rows not yet wrapped by ``kek_id``, re-wrapped, with the MACs they replace."""
        auth = self._auth()
        new_wrapper = self._wrapper(kek_id)
        rows, expected = [], {}
        for leaf, leaf_hash, row in self._authenticated(self.store.iter_leaves()):
            if row.wrapped_key is None or row.kek_id is None or row.kek_id == kek_id:
                continue
            data_key = self._wrapper(row.kek_id).unwrap(row.wrapped_key, seq=leaf.seq)
            wrapped = new_wrapper.wrap(data_key, seq=leaf.seq)
            mac = auth.mac(
                seq=leaf.seq, leaf_hash=leaf_hash, kek_id=kek_id, wrapped=wrapped, tokens=row.tokens
            )
            rows.append(KeyRow(seq=leaf.seq, kek_id=kek_id, wrapped_key=wrapped, tokens=row.tokens, mac=mac))
            expected[leaf.seq] = row.mac
        return rows, expected

    def check_key_rows(self) -> int:
        """Authenticate every key row and unwrap every data key; returns how many were checked.

        Raises:
            IntegrityError: the first key row that fails.
        """
        count = 0
        for leaf, _, row in self._authenticated(self.store.iter_leaves()):
            if row.wrapped_key is not None and row.kek_id is not None:
                self._wrapper(row.kek_id).unwrap(row.wrapped_key, seq=leaf.seq)
            count += 1
        return count


@contextmanager
def _no_gc_passes() -> Iterator[None]:
    """Hold back the cyclic garbage collector while a bulk read builds its result.

    Every opened entry adds a dozen container objects that all stay alive, so the collector
    kept re-scanning the growing result for cycles it never finds: a fifth of ``open_all``.
    Reference counting still frees every temporary at once; the collector runs again after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _with_completion(item: OpenedEntry, done: dict[str, datetime]) -> OpenedEntry:
    when = done.get(item.meta.request_id)
    if when is None or item.meta.effective is not None:
        return item
    entry = dataclasses.replace(item.entry, effective=when) if item.entry is not None else None
    return OpenedEntry(dataclasses.replace(item.meta, effective=when), entry)


def _completion_dates(metas: Iterable[EntryMeta]) -> dict[str, datetime]:
    """request id -> the date a completion entry says it was carried out (the earliest)."""
    done: dict[str, datetime] = {}
    for meta in metas:
        if meta.kind == COMPLETION and meta.completes and meta.effective:
            done[meta.completes] = min(meta.effective, done.get(meta.completes, meta.effective))
    return done


def _kek_number(kek_id: str) -> int:
    """The number in ``kek-N`` (0 for an id of another shape)."""
    number = kek_id.rsplit("-", 1)[-1]
    return int(number) if number.isdigit() else 0


def _claimed_size(note: str | None) -> int | None:
    """The tree size a checkpoint note claims (unverified: the verifier checks it)."""
    if note is None:
        return None
    try:
        return Checkpoint.parse_body(note.split("\n\n", 1)[0] + "\n").size
    except LedgerError:
        return None


__all__ = ["LEDGER_FORMAT", "AppendResult", "Ledger", "SignedCheckpoint"]
