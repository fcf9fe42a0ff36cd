"""Public verification of a ledger: a verifier key and bytes in, a result out.

:class:`LedgerVerifier` needs no secret and does no I/O: the caller streams the leaf bytes and
the stored checkpoints in. It follows docs/ledger-format.md §8 step by step and raises the
first failure as an :class:`IntegrityError` naming the checkpoint or sequence number; memory
stays O(log n) in the number of leaves (a compact range) plus one root per checkpoint.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from erasure_ledger.errors import BadSignatureError, RollbackError, TamperedEntryError
from erasure_ledger.merkle import CompactRange, aligned_subtrees
from erasure_ledger.notes import Checkpoint, NoteVerifier, open_checkpoint

#: ``(lo, hi)`` leaf ranges in, their subtree roots out, in order (see ``verify_subtrees``)
HashSubtrees = Callable[[Iterable[tuple[int, int]]], Iterable[bytes]]


@dataclass(frozen=True)
class VerificationResult:
    """What was proven: the ledger of ``tree_size`` leaves has root ``root_hash``, which the
    newest stored checkpoint signs, and (if given) it extends ``trusted``."""

    origin: str
    tree_size: int
    root_hash: bytes
    checkpoints_checked: int
    latest_checkpoint: str
    trusted_size: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "checkpoints_checked": self.checkpoints_checked,
            "trusted_checkpoint_size": self.trusted_size,
            "ok": True,
        }


class LedgerVerifier:
    """Checks a ledger's leaves against its signed checkpoints with the public key alone."""

    def __init__(self, verifier: NoteVerifier, *, origin: str) -> None:
        self._verifier = verifier
        self._origin = origin

    def open_checkpoint(self, note: str, *, label: str) -> Checkpoint:
        """Verify one signed checkpoint note.

        Raises:
            BadSignatureError: not signed by this key (forged, or the wrong public key).
            IntegrityError: malformed, or for another ledger.
        """
        try:
            return open_checkpoint(note, self._verifier, origin=self._origin)
        except BadSignatureError:
            raise BadSignatureError(
                f"{label}: signature does not verify with the given public key "
                "(forged checkpoint or wrong key)"
            ) from None

    def _signed_roots(self, checkpoints: Sequence[tuple[int, str]]) -> dict[int, bytes]:
        """ledger-format §8.1: every stored checkpoint must carry a valid signature."""
        roots: dict[int, bytes] = {}
        for size, note in checkpoints:
            cp = self.open_checkpoint(note, label=f"checkpoint at size {size}")
            if cp.size != size:
                raise TamperedEntryError(f"checkpoint at size {size}: note says size {cp.size}")
            roots[size] = cp.root_hash
        return roots

    @staticmethod
    def _check_mark(
        tree: CompactRange, mark: int, previous: int, roots: dict[int, bytes], trusted: Checkpoint | None
    ) -> None:
        """ledger-format §8.3: at a checkpoint size, the recomputed root must be the signed one."""
        if tree.size != mark:
            raise TamperedEntryError(f"entry {tree.size}: missing from the store")
        root = tree.root()
        if mark in roots and roots[mark] != root:
            where = f"entry {previous}" if mark - previous == 1 else f"entries {previous}..{mark - 1}"
            raise TamperedEntryError(
                f"checkpoint at size {mark} does not match the stored entries: "
                f"{where} altered, swapped or removed"
            )
        # The stored checkpoint names the altered entries, so it is checked first.
        if trusted is not None and mark == trusted.size and root != trusted.root_hash:
            raise RollbackError(
                f"ledger does not extend the trusted checkpoint (size {trusted.size}): history was rewritten"
            )

    @classmethod
    def _stream(
        cls,
        leaves: Iterator[bytes],
        roots: dict[int, bytes],
        trusted: Checkpoint | None,
        *,
        hashed: bool = False,
    ) -> CompactRange:
        """ledger-format §8.3: stream the leaves, comparing the root at every checkpoint size."""
        tree = CompactRange()
        previous = 0
        for mark in _marks(roots, trusted):
            if hashed:
                tree.extend_hashes(islice(leaves, mark - tree.size))
            else:
                tree.extend(islice(leaves, mark - tree.size))
            cls._check_mark(tree, mark, previous, roots, trusted)
            if mark in roots:
                previous = mark
        if next(leaves, None) is not None:
            raise TamperedEntryError(f"entry {tree.size}: not covered by any signed checkpoint")
        return tree

    @classmethod
    def _stream_subtrees(
        cls,
        hash_subtrees: HashSubtrees,
        roots: dict[int, bytes],
        trusted: Checkpoint | None,
        max_subtree: int,
    ) -> CompactRange:
        """ledger-format §8.3 over subtree roots: the leaves between two checkpoint sizes are
        split into aligned perfect subtrees (RFC 6962 roots are exact over them), hashed by
        ``hash_subtrees`` (in other processes, say) and appended root by root."""
        marks = _marks(roots, trusted)

        def subtrees() -> Iterator[tuple[int, int]]:
            # lazily: memory stays flat however many leaves there are
            for start, stop in zip([0, *marks], marks, strict=False):
                yield from aligned_subtrees(start, stop, max_size=max_subtree)

        results = iter(hash_subtrees(subtrees()))
        tree = CompactRange()
        previous = 0
        for mark in marks:
            for lo, hi in aligned_subtrees(tree.size, mark, max_size=max_subtree):
                root = next(results, None)
                if root is None:
                    raise TamperedEntryError(f"entry {lo}: missing from the store")
                tree.append_subtree(root, hi - lo)
            cls._check_mark(tree, mark, previous, roots, trusted)
            if mark in roots:
                previous = mark
        return tree

    def verify(
        self,
        leaves: Iterable[bytes],
        checkpoints: Sequence[tuple[int, str]],
        *,
        tree_size: int,
        trusted_checkpoint: str | None = None,
        leaves_are_hashes: bool = False,
    ) -> VerificationResult:
        """Recompute the tree and check every checkpoint against it.

        Args:
            leaves: every leaf's bytes in sequence order.
            checkpoints: stored (size, signed note) pairs, ascending by size.
            tree_size: the number of leaves the store claims to hold.
            trusted_checkpoint: a signed note the auditor kept from an earlier run.
            leaves_are_hashes: ``leaves`` are already leaf hashes (SHA-256(0x00 || leaf)),
                computed elsewhere, e.g. on several cores.

        Raises:
            BadSignatureError: a checkpoint's signature fails.
            TamperedEntryError: a checkpoint does not match the leaves, or leaves are
                missing or not covered by any checkpoint.
            RollbackError: the ledger does not extend the trusted checkpoint.
        """
        roots, trusted = self._checked_checkpoints(checkpoints, tree_size, trusted_checkpoint)
        tree = self._stream(iter(leaves), roots, trusted, hashed=leaves_are_hashes)
        return self._result(tree, roots, checkpoints, trusted)

    def verify_subtrees(
        self,
        hash_subtrees: HashSubtrees,
        checkpoints: Sequence[tuple[int, str]],
        *,
        tree_size: int,
        trusted_checkpoint: str | None = None,
        max_subtree: int = 8192,
    ) -> VerificationResult:
        """:meth:`verify`, with the leaves hashed elsewhere a whole subtree at a time.

        Args:
            hash_subtrees: given an iterable of ``(lo, hi)`` leaf ranges (consume it lazily:
                it is as long as the ledger), each a perfect subtree aligned to its size,
                returns their roots (MTH of the leaves ``lo..hi-1``) in the same order, lazily;
                it raises TamperedEntryError naming the entry for a leaf that is missing or
                malformed.
            checkpoints, tree_size, trusted_checkpoint: as for :meth:`verify`.
            max_subtree: the largest range asked for at once; a power of two.

        Raises:
            As :meth:`verify`.
        """
        roots, trusted = self._checked_checkpoints(checkpoints, tree_size, trusted_checkpoint)
        tree = self._stream_subtrees(hash_subtrees, roots, trusted, max_subtree)
        return self._result(tree, roots, checkpoints, trusted)

    def _checked_checkpoints(
        self, checkpoints: Sequence[tuple[int, str]], tree_size: int, trusted_checkpoint: str | None
    ) -> tuple[dict[int, bytes], Checkpoint | None]:
        """ledger-format §8.1-§8.2: the signed roots, and the trusted checkpoint if given."""
        roots = self._signed_roots(checkpoints)
        # ledger-format §8.2: the trusted checkpoint must verify too, and cannot be newer.
        trusted: Checkpoint | None = None
        if trusted_checkpoint is not None:
            trusted = self.open_checkpoint(trusted_checkpoint, label="trusted checkpoint")
            if trusted.size > tree_size:
                raise RollbackError(
                    f"ledger has {tree_size} entries but the trusted checkpoint has {trusted.size}: "
                    "rolled back or truncated"
                )
        if not roots:
            raise TamperedEntryError("no signed checkpoint in the store")
        latest_size = max(roots)
        if latest_size > tree_size:
            raise TamperedEntryError(
                f"checkpoint at size {latest_size} was signed but the ledger holds {tree_size} "
                f"entries: entries {tree_size}..{latest_size - 1} were removed"
            )
        if tree_size > latest_size:
            raise TamperedEntryError(
                f"entry {latest_size}: not covered by any signed checkpoint (added outside the ledger)"
            )
        return roots, trusted

    def _result(
        self,
        tree: CompactRange,
        roots: dict[int, bytes],
        checkpoints: Sequence[tuple[int, str]],
        trusted: Checkpoint | None,
    ) -> VerificationResult:
        return VerificationResult(
            origin=self._origin,
            tree_size=tree.size,
            root_hash=tree.root(),
            checkpoints_checked=len(roots),
            latest_checkpoint=dict(checkpoints)[max(roots)],
            trusted_size=trusted.size if trusted else None,
        )


def _marks(roots: dict[int, bytes], trusted: Checkpoint | None) -> list[int]:
    """The tree sizes at which a root is checked: every stored checkpoint, and the trusted one."""
    return sorted(set(roots) | ({trusted.size} if trusted else set()))


__all__ = ["LedgerVerifier", "VerificationResult"]
