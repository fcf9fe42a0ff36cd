"""LedgerVerifier.verify_subtrees (leaves hashed elsewhere, a whole aligned subtree at a time)
proves exactly what LedgerVerifier.verify proves, and fails with the same messages."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

import pytest

from erasure_ledger import LedgerVerifier, RollbackError, TamperedEntryError
from erasure_ledger.merkle import root_hash, subtree_root
from erasure_ledger.notes import Checkpoint, NoteSigner, sign_checkpoint

ORIGIN = "test.example/subtrees"
SIGNER = NoteSigner.generate(ORIGIN)
LEAVES = [f"leaf {i}".encode() for i in range(100)]


def signed(leaves: list[bytes], size: int) -> str:
    return sign_checkpoint(Checkpoint(origin=ORIGIN, size=size, root_hash=root_hash(leaves[:size])), SIGNER)


def checkpoints(sizes: Sequence[int], leaves: list[bytes] = LEAVES) -> list[tuple[int, str]]:
    return [(size, signed(leaves, size)) for size in sizes]


def hasher(leaves: list[bytes], asked: list[tuple[int, int]] | None = None):  # type: ignore[no-untyped-def]
    def hash_subtrees(ranges: Iterable[tuple[int, int]]) -> Iterator[bytes]:
        for lo, hi in ranges:
            if asked is not None:
                asked.append((lo, hi))
            if hi > len(leaves):
                raise TamperedEntryError(f"entry {len(leaves)}: missing from the store")
            yield subtree_root(leaves[lo:hi])

    return hash_subtrees


def outcome(run):  # type: ignore[no-untyped-def]
    try:
        return run()
    except (TamperedEntryError, RollbackError) as exc:
        return type(exc), str(exc)


VERIFIER = LedgerVerifier(SIGNER.verifier, origin=ORIGIN)


@pytest.mark.parametrize("max_subtree", [1, 4, 16, 8192])
@pytest.mark.parametrize("sizes", [[0, 100], [0, 5, 37, 64, 100], [100], [0, 1, 2, 3, 99, 100]])
def test_the_same_result_as_streaming_the_leaves(sizes, max_subtree):
    cps = checkpoints(sizes)
    asked: list[tuple[int, int]] = []
    result = VERIFIER.verify_subtrees(hasher(LEAVES, asked), cps, tree_size=100, max_subtree=max_subtree)
    assert result == VERIFIER.verify(LEAVES, cps, tree_size=100)
    assert [i for lo, hi in asked for i in range(lo, hi)] == list(range(100))  # each leaf once
    assert all(hi - lo <= max_subtree for lo, hi in asked)


@pytest.mark.parametrize("altered", [0, 4, 5, 36, 63, 99])
def test_an_altered_leaf_is_named_as_streaming_names_it(altered):
    cps = checkpoints([0, 5, 37, 64, 100])
    tampered = list(LEAVES)
    tampered[altered] += b"!"
    streamed = outcome(lambda: VERIFIER.verify(tampered, cps, tree_size=100))
    assert streamed[0] is TamperedEntryError
    assert outcome(lambda: VERIFIER.verify_subtrees(hasher(tampered), cps, tree_size=100, max_subtree=8)) == streamed


def test_a_missing_leaf_is_named_by_sequence_number():
    cps = checkpoints([0, 50, 100])
    with pytest.raises(TamperedEntryError, match="entry 60: missing from the store"):
        VERIFIER.verify_subtrees(hasher(LEAVES[:60]), cps, tree_size=100, max_subtree=8)


def test_too_few_roots_name_the_first_missing_entry():
    def short(ranges: Iterable[tuple[int, int]]) -> Iterator[bytes]:
        return iter([subtree_root(LEAVES[lo:hi]) for lo, hi in islice(ranges, 3)])

    with pytest.raises(TamperedEntryError, match="entry 24: missing from the store"):
        VERIFIER.verify_subtrees(short, checkpoints([100]), tree_size=100, max_subtree=8)


def test_a_rewritten_history_is_caught_against_the_trusted_checkpoint():
    other = [b"other " + leaf for leaf in LEAVES]
    trusted = signed(other, 40)
    cps = checkpoints([0, 100])
    streamed = outcome(lambda: VERIFIER.verify(LEAVES, cps, tree_size=100, trusted_checkpoint=trusted))
    assert streamed[0] is RollbackError
    assert (
        outcome(
            lambda: VERIFIER.verify_subtrees(
                hasher(LEAVES), cps, tree_size=100, trusted_checkpoint=trusted, max_subtree=16
            )
        )
        == streamed
    )
    good = VERIFIER.verify_subtrees(
        hasher(LEAVES), cps, tree_size=100, trusted_checkpoint=signed(LEAVES, 40), max_subtree=16
    )
    assert good.trusted_size == 40
