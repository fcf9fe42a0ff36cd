"""RFC 6962 / RFC 9162 Merkle tree over SHA-256: hashes, roots, proofs, streaming state.

The ledger commits to its entries with the Certificate Transparency Merkle tree:

* leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)``,
  and the root of the empty tree is ``SHA-256(b"")`` (RFC 9162 §2.1.1);
* inclusion proofs (audit paths, RFC 9162 §2.1.3) and consistency proofs
  (RFC 6962 §2.1.2 ``SUBPROOF``, verified as in RFC 9162 §2.1.4.2);
* :class:`CompactRange`, the O(log n) tree state that computes the root over a stream
  of leaves and can be persisted as its list of perfect-subtree hashes.

Every proof builder exists twice: over raw leaf bytes, and over leaf *hashes* so the
ledger can prove entries without keeping their bytes.

Left out on purpose: no file, database or network I/O, no logging, no signing or
checkpoint formats (the caller signs roots), no other hash functions, and no
ledger-specific errors. Proof failures raise :class:`ProofError`, a plain
:class:`ValueError`; the ledger maps it into its own error tree. Only the stdlib is
imported.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Self

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "root_from_leaf_hashes",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "verify_inclusion",
    "check_inclusion",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "verify_consistency",
    "check_consistency",
    "CompactRange",
    "aligned_subtrees",
    "subtree_root",
]

HASH_SIZE = 32
"""Length in bytes of every leaf, node and root hash (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""Root of the tree with no leaves: ``SHA-256()`` of the empty string (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_CHUNK = 4096  # leaves hashed per batch in CompactRange.extend; a power of two


class ProofError(ValueError):
    """An inclusion or consistency proof does not verify, or is malformed."""


# --- hashing -----------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf: ``SHA-256(0x00 || data)``.

    Args:
        data: The raw leaf bytes.

    Returns:
        The 32-byte leaf hash.

    Raises:
        TypeError: If ``data`` is not bytes-like.
    """
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)``.

    Args:
        left: Hash of the left subtree.
        right: Hash of the right subtree.

    Returns:
        The 32-byte node hash.

    Raises:
        TypeError: If ``left`` or ``right`` is not bytes-like.
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """Compute the Merkle Tree Hash (MTH) of a list of raw leaves.

    Args:
        leaves: Raw leaf bytes in tree order.

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` for no leaves.

    Raises:
        TypeError: If a leaf is not bytes-like.
    """
    tree = CompactRange()
    tree.extend(leaves)
    return tree.root()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Compute the Merkle Tree Hash from already-hashed leaves.

    Args:
        hashes: Leaf hashes (see :func:`leaf_hash`) in tree order.

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` for no hashes.

    Raises:
        ValueError: If a hash is not 32 bytes long.
    """
    _check_hashes(hashes, "leaf hash")
    tree = CompactRange()
    tree._extend_hashes(list(hashes))
    return tree.root()


# --- building proofs -----------------------------------------------------------------------


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Build the audit path ``PATH(index, D[n])`` for one leaf (RFC 6962 §2.1.1).

    Args:
        leaves: Raw leaf bytes of the whole tree, in order.
        index: Zero-based position of the leaf to prove.

    Returns:
        The sibling hashes from the leaf up to the root.

    Raises:
        ValueError: If ``index`` is not in ``range(len(leaves))``.
    """
    return inclusion_proof_from_hashes([leaf_hash(b) for b in leaves], index)


def inclusion_proof_from_hashes(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Build the audit path for one leaf from the tree's leaf hashes.

    Args:
        hashes: Leaf hashes of the whole tree, in order.
        index: Zero-based position of the leaf to prove.

    Returns:
        The sibling hashes from the leaf up to the root.

    Raises:
        ValueError: If ``index`` is not in ``range(len(hashes))`` or a hash is not 32 bytes.
    """
    size = len(hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    _check_hashes(hashes, "leaf hash")
    path: list[bytes] = []
    lo, hi = 0, size
    # RFC 6962 §2.1.1: split at the largest power of two below the range size and
    # record the root of the half that does not hold the leaf (collected root-first).
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(_range_root(hashes, mid, hi))
            hi = mid
        else:
            path.append(_range_root(hashes, lo, mid))
            lo = mid
    path.reverse()
    return path


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Build ``PROOF(old_size, D[n])`` between a prefix and the whole tree (RFC 6962 §2.1.2).

    Args:
        leaves: Raw leaf bytes of the newer tree, in order.
        old_size: Size of the older tree, ``0 <= old_size <= len(leaves)``.

    Returns:
        The proof nodes; empty when ``old_size`` is 0 or equals ``len(leaves)``.

    Raises:
        ValueError: If ``old_size`` is outside ``0..len(leaves)``.
    """
    return consistency_proof_from_hashes([leaf_hash(b) for b in leaves], old_size)


def consistency_proof_from_hashes(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Build a consistency proof from the newer tree's leaf hashes.

    Args:
        hashes: Leaf hashes of the newer tree, in order.
        old_size: Size of the older tree, ``0 <= old_size <= len(hashes)``.

    Returns:
        The proof nodes; empty when ``old_size`` is 0 or equals ``len(hashes)``.

    Raises:
        ValueError: If ``old_size`` is outside ``0..len(hashes)`` or a hash is not 32 bytes.
    """
    size = len(hashes)
    if not 0 <= old_size <= size:
        raise ValueError(f"old size {old_size} is outside 0..{size}")
    _check_hashes(hashes, "leaf hash")
    if old_size in (0, size):
        return []
    proof: list[bytes] = []
    lo, hi = 0, size
    whole_old_tree = True  # the b flag of SUBPROOF(m, D[n], b)
    # RFC 6962 §2.1.2 SUBPROOF, unrolled; nodes are collected root-first.
    while old_size != hi:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            proof.append(_range_root(hashes, mid, hi))
            hi = mid
        else:
            proof.append(_range_root(hashes, lo, mid))
            lo = mid
            whole_old_tree = False
    if not whole_old_tree:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old subtree itself is needed.
        proof.append(_range_root(hashes, lo, hi))
    proof.reverse()
    return proof


# --- verifying proofs --------------------------------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify an audit path as in RFC 9162 §2.1.3.2.

    Args:
        leaf_hash: Hash of the leaf (see :func:`leaf_hash`), not its raw bytes.
        index: Zero-based position of the leaf.
        tree_size: Number of leaves in the tree the root commits to.
        proof: Sibling hashes from the leaf up to the root.
        root: The trusted root hash of that tree.

    Raises:
        ProofError: If the index is outside the tree, a hash has the wrong length, the
            proof has the wrong number of nodes, or the computed root differs.
    """
    # RFC 9162 §2.1.3.2 step 1.
    if index < 0 or tree_size < 0 or index >= tree_size:
        raise ProofError(f"leaf index {index} is outside a tree of size {tree_size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
    _check_proof_nodes(proof)
    want = _inclusion_proof_length(index, tree_size)
    if len(proof) != want:
        raise ProofError(
            f"inclusion proof for leaf {index} of {tree_size} has {len(proof)} nodes, expected {want}"
        )
    sha = hashlib.sha256
    fn, sn = index, tree_size - 1  # step 2
    r = leaf_hash  # step 3
    for p in proof:  # step 4
        if sn == 0:  # 4a
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:  # 4b
            r = sha(_NODE_PREFIX + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha(_NODE_PREFIX + r + p).digest()
        fn >>= 1  # 4c
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if r != root:
        raise ProofError(f"inclusion proof for leaf {index} does not match the root")


def check_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return whether an audit path verifies; see :func:`verify_inclusion`.

    Args:
        leaf_hash: Hash of the leaf, not its raw bytes.
        index: Zero-based position of the leaf.
        tree_size: Number of leaves in the tree the root commits to.
        proof: Sibling hashes from the leaf up to the root.
        root: The trusted root hash of that tree.

    Returns:
        True if the proof verifies, False otherwise.

    Raises:
        TypeError: If an argument has the wrong type.
    """
    try:
        verify_inclusion(leaf_hash, index, tree_size, proof, root)
    except ProofError:
        return False
    return True


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Verify that the tree of ``new_size`` extends the tree of ``old_size``.

    Follows RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. The degenerate cases
    take an empty proof: equal sizes need equal roots, and the empty tree (whose root
    must be :data:`EMPTY_ROOT`) is a prefix of every tree with a 32-byte root.

    Args:
        old_size: Size of the older (trusted) tree.
        new_size: Size of the newer tree.
        old_root: Root hash of the older tree.
        new_root: Root hash of the newer tree.
        proof: Consistency proof nodes, as built by :func:`consistency_proof`.

    Raises:
        ProofError: If the sizes are negative or out of order, the proof has the wrong
            number of nodes or a node of the wrong length, or either root differs from
            the one the proof produces.
    """
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must not be negative: {old_size}, {new_size}")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    if old_size in (0, new_size):
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    # RFC 9162 §2.1.4.2 step 1.
    if not proof:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is empty")
    _check_proof_nodes(proof)
    want = _consistency_proof_length(old_size, new_size)
    if len(proof) != want:
        raise ProofError(
            f"consistency proof from {old_size} to {new_size} has {len(proof)} nodes, expected {want}"
        )
    fr, sr = _consistency_roots(old_size, new_size, old_root, proof)
    # Step 7 (the sn == 0 part is checked inside _consistency_roots).
    if fr != old_root:
        raise ProofError(f"consistency proof does not match the root of tree size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not match the root of tree size {new_size}")


def check_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether a consistency proof verifies; see :func:`verify_consistency`.

    Args:
        old_size: Size of the older (trusted) tree.
        new_size: Size of the newer tree.
        old_root: Root hash of the older tree.
        new_root: Root hash of the newer tree.
        proof: Consistency proof nodes.

    Returns:
        True if the proof verifies, False otherwise.

    Raises:
        TypeError: If an argument has the wrong type.
    """
    try:
        verify_consistency(old_size, new_size, old_root, new_root, proof)
    except ProofError:
        return False
    return True


# --- streaming state ---------------------------------------------------------------------


class CompactRange:
    """Streaming Merkle tree state: the roots of the perfect subtrees covering ``[0, size)``.

    A tree of ``size`` leaves decomposes into one perfect subtree per set bit of
    ``size``, largest (leftmost) first; keeping only their hashes is enough to append
    more leaves and to compute the root, in O(log n) memory.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        """Start with the empty tree."""
        self._size = 0
        self._nodes: list[bytes] = []

    @classmethod
    def from_nodes(cls, size: int, nodes: Sequence[bytes]) -> Self:
        """Restore state saved with :attr:`size` and :meth:`nodes`.

        Args:
            size: Number of leaves covered.
            nodes: Perfect-subtree hashes, left to right, one per set bit of ``size``.

        Returns:
            The restored range.

        Raises:
            ValueError: If ``size`` is negative, the node count is not ``size.bit_count()``,
                or a node is not 32 bytes.
        """
        if size < 0:
            raise ValueError(f"compact range size must not be negative, got {size}")
        if len(nodes) != size.bit_count():
            raise ValueError(f"compact range of size {size} needs {size.bit_count()} nodes, got {len(nodes)}")
        _check_hashes(nodes, "compact range node")
        new = cls()
        new._size = size
        new._nodes = list(nodes)
        return new

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def nodes(self) -> list[bytes]:
        """Return a copy of the perfect-subtree hashes, left to right.

        Returns:
            One hash per set bit of :attr:`size`, largest subtree first.

        Raises:
            Nothing.
        """
        return list(self._nodes)

    def append_leaf_hash(self, h: bytes) -> None:
        """Append one leaf given its hash.

        Args:
            h: The leaf hash (see :func:`leaf_hash`).

        Raises:
            ValueError: If ``h`` is not 32 bytes long.
        """
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(h)} bytes, expected {HASH_SIZE}")
        self._push(h, 0)

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append raw leaves, hashing them in batches.

        Args:
            leaves: Raw leaf bytes in tree order; any iterable, consumed once.

        Raises:
            TypeError: If a leaf is not bytes-like.
        """
        sha = hashlib.sha256
        prefix = _LEAF_PREFIX
        it = iter(leaves)
        while chunk := list(itertools.islice(it, _CHUNK)):
            self._extend_hashes([sha(prefix + b).digest() for b in chunk])

    def append_subtree(self, root: bytes, size: int) -> None:
        """Append a whole perfect subtree of ``size`` leaves given its root (its MTH), e.g.
        one hashed by another process. Appending the aligned subtrees of a range (see
        :func:`aligned_subtrees`) gives the same state as appending its leaves one by one.

        Args:
            root: The subtree's 32-byte root.
            size: Its number of leaves: a power of two that divides the current size.

        Raises:
            ValueError: If ``size`` is not such a power of two or ``root`` is not 32 bytes.
        """
        if size < 1 or size & (size - 1) or self._size % size:
            raise ValueError(f"a subtree of {size} leaves cannot be appended at size {self._size}")
        if len(root) != HASH_SIZE:
            raise ValueError(f"subtree root is {len(root)} bytes, expected {HASH_SIZE}")
        self._push(root, size.bit_length() - 1)

    def extend_hashes(self, hashes: Iterable[bytes]) -> None:
        """Append leaves given their hashes, in batches (leaf hashes computed elsewhere, e.g.
        by worker processes).

        Args:
            hashes: 32-byte leaf hashes in tree order.

        Raises:
            ValueError: If a hash is not 32 bytes long.
        """
        it = iter(hashes)
        while chunk := list(itertools.islice(it, _CHUNK)):
            if any(len(h) != HASH_SIZE for h in chunk):
                raise ValueError(f"a leaf hash is not {HASH_SIZE} bytes")
            self._extend_hashes(chunk)

    def root(self) -> bytes:
        """Return the Merkle Tree Hash of everything appended so far, without changing state.

        Returns:
            The 32-byte root; :data:`EMPTY_ROOT` when empty.

        Raises:
            Nothing.
        """
        if not self._nodes:
            return EMPTY_ROOT
        sha = hashlib.sha256
        r = self._nodes[-1]
        # MTH splits at the largest power of two, so the smaller subtrees nest to the right.
        for left in reversed(self._nodes[:-1]):
            r = sha(_NODE_PREFIX + left + r).digest()
        return r

    def __repr__(self) -> str:
        """Show the size only; node hashes are noise in logs."""
        return f"CompactRange(size={self._size})"

    def _extend_hashes(self, hashes: list[bytes]) -> None:
        """Append validated leaf hashes, folding aligned perfect blocks in bulk."""
        sha = hashlib.sha256
        prefix = _NODE_PREFIX
        i, n = 0, len(hashes)
        while i < n:
            remaining = n - i
            # The largest block that both keeps the current size aligned and fits.
            block = 1 << (remaining.bit_length() - 1)
            if self._size:
                block = min(block, self._size & -self._size)
            if block == 1:
                self._push(hashes[i], 0)
                i += 1
                continue
            level = hashes[i : i + block]
            height = 0
            while len(level) > 1:
                level = [
                    sha(prefix + left + right).digest()
                    for left, right in zip(level[0::2], level[1::2], strict=True)
                ]
                height += 1
            self._push(level[0], height)
            i += block

    def _push(self, h: bytes, height: int) -> None:
        """Append a perfect subtree of ``2**height`` leaves; size must be aligned to it."""
        assert self._size & ((1 << height) - 1) == 0
        nodes = self._nodes
        nodes.append(h)
        carry = self._size >> height
        # Each trailing one bit is an equal-height subtree on the left to merge with.
        while carry & 1:
            right = nodes.pop()
            nodes[-1] = hashlib.sha256(_NODE_PREFIX + nodes[-1] + right).digest()
            carry >>= 1
        self._size += 1 << height


def aligned_subtrees(start: int, stop: int, *, max_size: int) -> Iterator[tuple[int, int]]:
    """Split the leaves ``start..stop-1`` into perfect subtrees of the tree, left to right.

    Each ``(lo, hi)`` holds a power-of-two number of leaves, at most ``max_size``, and
    ``lo`` is a multiple of it, so its root is a node of every tree that contains it and
    :meth:`CompactRange.append_subtree` can take it in place of its leaves. The split is
    greedy (largest subtree first), so a range of n leaves gives O(n / max_size + log n)
    subtrees, generated lazily.

    Args:
        start: First leaf; ``0 <= start <= stop``.
        stop: One past the last leaf.
        max_size: Largest subtree wanted; a power of two.

    Yields:
        The ``(lo, hi)`` ranges, covering ``start..stop-1`` exactly.

    Raises:
        ValueError: If ``max_size`` is not a power of two or the range is inverted (raised
            before anything is yielded).
    """
    if max_size < 1 or max_size & (max_size - 1):
        raise ValueError(f"max_size must be a power of two, got {max_size}")
    if not 0 <= start <= stop:
        raise ValueError(f"invalid leaf range {start}..{stop}")
    return _aligned_subtrees(start, stop, max_size)


def _aligned_subtrees(lo: int, stop: int, max_size: int) -> Iterator[tuple[int, int]]:
    while lo < stop:
        size = min(max_size, lo & -lo) if lo else max_size
        while size > stop - lo:
            size >>= 1
        yield lo, lo + size
        lo += size


def subtree_root(leaves: Iterable[bytes]) -> bytes:
    """The root of the perfect subtree over these raw leaves (a power-of-two count).

    Args:
        leaves: Raw leaf bytes, in tree order.

    Returns:
        The 32-byte root, the same as :func:`root_hash` over them.

    Raises:
        ValueError: If the number of leaves is not a power of two.
    """
    sha = hashlib.sha256
    prefix = _LEAF_PREFIX
    level = [sha(prefix + b).digest() for b in leaves]
    n = len(level)
    if n < 1 or n & (n - 1):
        raise ValueError(f"a perfect subtree has a power-of-two number of leaves, got {n}")
    node = sha(_NODE_PREFIX)
    while len(level) > 1:
        # node_hash(left, right) as a copy of the prefixed state: a little cheaper than
        # concatenating, and this runs once per leaf of a verified ledger.
        pairs = iter(level)
        level = []
        for left in pairs:
            h = node.copy()
            h.update(left)
            h.update(next(pairs))
            level.append(h.digest())
    return level[0]


# --- helpers -----------------------------------------------------------------------------


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (``n >= 2``), the RFC 6962 split point."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_root(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of the leaf hashes ``hashes[lo:hi]`` (already validated)."""
    if hi - lo == 1:
        return hashes[lo]
    tree = CompactRange()
    tree._extend_hashes(list(hashes[lo:hi]))
    return tree.root()


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    if not hashes or set(map(len, hashes)) == {HASH_SIZE}:  # C-speed for the common case
        return
    for position, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ValueError(f"{what} {position} is {len(h)} bytes, expected {HASH_SIZE}")


def _check_proof_nodes(proof: Sequence[bytes]) -> None:
    for position, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"proof node {position} is {len(p)} bytes, expected {HASH_SIZE}")


def _inclusion_proof_length(index: int, size: int) -> int:
    """Number of nodes in ``PATH(index, D[size])``: the levels below the root, minus
    the levels where the leaf's subtree is the lone right-border node."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    """Number of nodes in ``PROOF(old_size, D[new_size])`` for ``0 < old_size < new_size``."""
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits
    length = _inclusion_proof_length(old_size - 1, new_size) - shift
    # The old tree's own root starts the proof unless old_size is a power of two.
    return length if old_size == 1 << shift else length + 1


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """The cases RFC 9162 leaves out: equal sizes, or growth from the empty tree."""
    if proof:
        what = "from the empty tree" if old_size == 0 else f"between equal sizes {old_size}"
        raise ProofError(f"consistency proof {what} must be empty, got {len(proof)} nodes")
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("old tree of size 0 does not have the empty-tree root")
    if old_size == new_size:
        if old_root != new_root:
            raise ProofError(f"trees of equal size {old_size} have different roots")
    elif len(new_root) != HASH_SIZE:
        raise ProofError(f"new root is {len(new_root)} bytes, expected {HASH_SIZE}")


def _consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-7 for ``0 < old_size < new_size``: returns (fr, sr)."""
    sha = hashlib.sha256
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: old_size is an exact power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:  # 6b
            fr = sha(_NODE_PREFIX + c + fr).digest()
            sr = sha(_NODE_PREFIX + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha(_NODE_PREFIX + sr + c).digest()
        fn >>= 1  # 6c
        sn >>= 1
    if sn != 0:  # step 7
        raise ProofError("consistency proof is shorter than the path to the root")
    return fr, sr
