"""Specification tests for erasure_ledger.merkle against published RFC 6962 / 9162 vectors."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from erasure_ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    aligned_subtrees,
    check_consistency,
    check_inclusion,
    consistency_proof,
    consistency_proof_from_hashes,
    inclusion_proof,
    inclusion_proof_from_hashes,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    root_hash,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


RFC6962 = _load("rfc6962_merkle.json")
PROBES = _load("transparency_dev_probes.json")
LEAVES = [bytes.fromhex(h) for h in RFC6962["leaves_hex"]]
ROOTS = [bytes.fromhex(h) for h in RFC6962["root_hashes_hex"]]


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _random_leaves(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]


# Reference definitions, written straight from RFC 6962 §2.1 recursion.


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def _path(m: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return [*_path(m, hashes[:k]), _mth(hashes[k:])]
    return [*_path(m - k, hashes[k:]), _mth(hashes[:k])]


def _subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [_mth(hashes)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, hashes[:k], whole), _mth(hashes[k:])]
    return [*_subproof(m - k, hashes[k:], False), _mth(hashes[:k])]


def _flip_bit(data: bytes, bit: int) -> bytes:
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


# --- hashing -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", RFC6962["hasher_vectors"], ids=lambda c: c["desc"])
def test_hashers_match_published_known_answers(case: dict[str, str]) -> None:
    want = bytes.fromhex(case["want_hex"])
    if case["kind"] == "empty_root":
        assert want == EMPTY_ROOT
        assert root_hash([]) == want
    elif case["kind"] == "leaf":
        assert leaf_hash(bytes.fromhex(case["data_hex"])) == want
    else:
        assert node_hash(bytes.fromhex(case["left_hex"]), bytes.fromhex(case["right_hex"])) == want


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert leaf_hash(left + right) != node_hash(left, right)


# --- roots -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_root_of_every_prefix_of_the_standard_leaves_matches_published_root(size: int) -> None:
    assert root_hash(LEAVES[:size]) == ROOTS[size]
    assert root_from_leaf_hashes([leaf_hash(b) for b in LEAVES[:size]]) == ROOTS[size]


def test_every_complete_subtree_hash_matches_published_node_hash() -> None:
    for level, row in enumerate(RFC6962["node_hashes_hex"]):
        width = 1 << level
        for i, want in enumerate(row):
            assert root_hash(LEAVES[i * width : (i + 1) * width]).hex() == want


def test_root_from_leaf_hashes_rejects_a_hash_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="leaf hash 1 is 31 bytes"):
        root_from_leaf_hashes([EMPTY_ROOT, EMPTY_ROOT[:31]])


# --- published inclusion and consistency proofs -------------------------------------------


@pytest.mark.parametrize(
    "case", RFC6962["inclusion_paths"], ids=lambda c: f"{c['index']}-of-{c['tree_size']}"
)
def test_published_inclusion_path_is_generated_and_verifies(case: dict[str, Any]) -> None:
    index, size = case["index"], case["tree_size"]
    want = [bytes.fromhex(h) for h in case["path_hex"]]
    hashes = [leaf_hash(b) for b in LEAVES[:size]]

    assert inclusion_proof(LEAVES[:size], index) == want
    assert inclusion_proof_from_hashes(hashes, index) == want
    verify_inclusion(hashes[index], index, size, want, ROOTS[size])


@pytest.mark.parametrize(
    "case", RFC6962["consistency_paths"], ids=lambda c: f"{c['old_size']}-to-{c['new_size']}"
)
def test_published_consistency_proof_is_generated_and_verifies(case: dict[str, Any]) -> None:
    old, new = case["old_size"], case["new_size"]
    want = [bytes.fromhex(h) for h in case["path_hex"]]

    assert consistency_proof(LEAVES[:new], old) == want
    assert consistency_proof_from_hashes([leaf_hash(b) for b in LEAVES[:new]], old) == want
    verify_consistency(old, new, ROOTS[old], ROOTS[new], want)


# --- transparency-dev probes ---------------------------------------------------------------


@pytest.mark.parametrize("probe", PROBES["inclusion"], ids=lambda p: p["file"])
def test_inclusion_probe_is_accepted_or_rejected_as_published(probe: dict[str, Any]) -> None:
    args = (
        _b64(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        [_b64(p) for p in probe["proof"]],
        _b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
        assert check_inclusion(*args) is False
    else:
        verify_inclusion(*args)
        assert check_inclusion(*args) is True


@pytest.mark.parametrize("probe", PROBES["consistency"], ids=lambda p: p["file"])
def test_consistency_probe_is_accepted_or_rejected_as_published(probe: dict[str, Any]) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        _b64(probe["root1"]),
        _b64(probe["root2"]),
        [_b64(p) for p in probe["proof"]],
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
        assert check_consistency(*args) is False
    else:
        verify_consistency(*args)
        assert check_consistency(*args) is True


# --- malformed input, with the message the caller will see ----------------------------------


def test_proof_error_is_a_value_error() -> None:
    assert issubclass(ProofError, ValueError)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (8, 8), (-1, 8), (2**64 - 1, 8)], ids=repr)
def test_inclusion_is_rejected_for_an_index_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError, match=f"leaf index {index} is outside a tree of size {size}"):
        verify_inclusion(leaf_hash(b""), index, size, [], EMPTY_ROOT)


def test_inclusion_is_rejected_for_a_proof_of_the_wrong_length() -> None:
    proof = inclusion_proof(LEAVES, 5)
    with pytest.raises(ProofError, match="has 2 nodes, expected 3"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 8, proof[:-1], ROOTS[8])
    with pytest.raises(ProofError, match="has 4 nodes, expected 3"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 8, [*proof, ROOTS[8]], ROOTS[8])


def test_inclusion_is_rejected_for_a_short_leaf_hash_or_proof_node() -> None:
    proof = inclusion_proof(LEAVES, 5)
    with pytest.raises(ProofError, match="leaf hash is 9 bytes"):
        verify_inclusion(b"WrongLeaf", 5, 8, proof, ROOTS[8])
    with pytest.raises(ProofError, match="proof node 1 is 0 bytes"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 8, [proof[0], b"", proof[2]], ROOTS[8])


def test_inclusion_is_rejected_against_the_wrong_root() -> None:
    proof = inclusion_proof(LEAVES, 5)
    with pytest.raises(ProofError, match="leaf 5 does not match the root"):
        verify_inclusion(leaf_hash(LEAVES[5]), 5, 8, proof, ROOTS[7])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (-1, 8, "must not be negative"),
        (8, 7, "old tree size 8 is larger than new tree size 7"),
        (6, 4, "old tree size 6 is larger than new tree size 4"),
    ],
)
def test_consistency_is_rejected_for_sizes_out_of_order(old: int, new: int, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        verify_consistency(old, new, EMPTY_ROOT, EMPTY_ROOT, [])


def test_consistency_from_the_empty_tree_takes_an_empty_proof_and_the_empty_root() -> None:
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="from the empty tree must be empty, got 1 nodes"):
        verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [ROOTS[1]])
    with pytest.raises(ProofError, match="size 0 does not have the empty-tree root"):
        verify_consistency(0, 8, ROOTS[1], ROOTS[8], [])
    with pytest.raises(ProofError, match="new root is 3 bytes"):
        verify_consistency(0, 8, EMPTY_ROOT, b"bad", [])


def test_consistency_between_equal_sizes_takes_an_empty_proof_and_equal_roots() -> None:
    verify_consistency(8, 8, ROOTS[8], ROOTS[8], [])
    with pytest.raises(ProofError, match="between equal sizes 8 must be empty"):
        verify_consistency(8, 8, ROOTS[8], ROOTS[8], [ROOTS[8]])
    with pytest.raises(ProofError, match="trees of equal size 8 have different roots"):
        verify_consistency(8, 8, ROOTS[8], ROOTS[7], [])


def test_consistency_is_rejected_for_an_empty_or_wrong_length_proof() -> None:
    proof = consistency_proof(LEAVES, 6)
    with pytest.raises(ProofError, match="from 6 to 8 is empty"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], [])
    with pytest.raises(ProofError, match="has 2 nodes, expected 3"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], proof[:-1])
    with pytest.raises(ProofError, match="has 4 nodes, expected 3"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], [*proof, ROOTS[8]])
    with pytest.raises(ProofError, match="proof node 0 is 0 bytes"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[8], [b"", *proof[1:]])


def test_consistency_is_rejected_when_either_root_is_wrong() -> None:
    proof = consistency_proof(LEAVES, 6)
    with pytest.raises(ProofError, match="does not match the root of tree size 6"):
        verify_consistency(6, 8, ROOTS[5], ROOTS[8], proof)
    with pytest.raises(ProofError, match="does not match the root of tree size 8"):
        verify_consistency(6, 8, ROOTS[6], ROOTS[7], proof)


@pytest.mark.parametrize("index", [-1, 8, 9])
def test_inclusion_proof_builders_reject_an_index_outside_the_tree(index: int) -> None:
    with pytest.raises(ValueError, match=f"leaf index {index} is outside a tree of size 8"):
        inclusion_proof(LEAVES, index)
    with pytest.raises(ValueError, match=f"leaf index {index} is outside a tree of size 8"):
        inclusion_proof_from_hashes([leaf_hash(b) for b in LEAVES], index)


@pytest.mark.parametrize("old_size", [-1, 9])
def test_consistency_proof_builders_reject_an_old_size_outside_the_tree(old_size: int) -> None:
    with pytest.raises(ValueError, match=f"old size {old_size} is outside 0..8"):
        consistency_proof(LEAVES, old_size)
    with pytest.raises(ValueError, match=f"old size {old_size} is outside 0..8"):
        consistency_proof_from_hashes([leaf_hash(b) for b in LEAVES], old_size)


def test_consistency_proof_is_empty_from_the_empty_tree_and_between_equal_sizes() -> None:
    assert consistency_proof(LEAVES, 0) == []
    assert consistency_proof(LEAVES, 8) == []
    assert consistency_proof([], 0) == []


# --- random trees: builders agree with RFC 6962 and with each other ------------------------


@pytest.mark.parametrize("size", range(1, 71))
def test_proofs_from_hashes_equal_proofs_from_leaves_and_the_rfc_definition(size: int) -> None:
    rng = random.Random(size)
    leaves = _random_leaves(rng, size)
    hashes = [leaf_hash(b) for b in leaves]
    root = _mth(hashes)
    assert root_hash(leaves) == root

    for index in range(size):
        proof = inclusion_proof_from_hashes(hashes, index)
        assert proof == inclusion_proof(leaves, index) == _path(index, hashes)
        verify_inclusion(hashes[index], index, size, proof, root)

    for old in range(1, size):
        proof = consistency_proof_from_hashes(hashes, old)
        assert proof == consistency_proof(leaves, old) == _subproof(old, hashes, True)
        verify_consistency(old, size, _mth(hashes[:old]), root, proof)


@pytest.mark.parametrize("size", [2, 3, 5, 8, 13, 32, 33, 70])
def test_flipping_any_bit_of_any_inclusion_proof_node_is_rejected(size: int) -> None:
    leaves = _random_leaves(random.Random(size), size)
    hashes = [leaf_hash(b) for b in leaves]
    root = root_hash(leaves)
    for index in range(size):
        proof = inclusion_proof(leaves, index)
        for node in range(len(proof)):
            for bit in range(256):
                tampered = list(proof)
                tampered[node] = _flip_bit(proof[node], bit)
                assert not check_inclusion(hashes[index], index, size, tampered, root)


@pytest.mark.parametrize("size", [2, 3, 5, 8, 13, 32, 33, 70])
def test_flipping_any_bit_of_any_consistency_proof_node_is_rejected(size: int) -> None:
    leaves = _random_leaves(random.Random(size), size)
    root = root_hash(leaves)
    for old in range(1, size):
        old_root = root_hash(leaves[:old])
        proof = consistency_proof(leaves, old)
        for node in range(len(proof)):
            for bit in range(256):
                tampered = list(proof)
                tampered[node] = _flip_bit(proof[node], bit)
                assert not check_consistency(old, size, old_root, root, tampered)


def test_a_changed_leaf_breaks_consistency_with_the_old_root() -> None:
    leaves = _random_leaves(random.Random(7), 20)
    forked = [*leaves[:5], b"rewritten", *leaves[6:]]
    proof = consistency_proof(forked, 12)
    assert not check_consistency(12, 20, root_hash(leaves[:12]), root_hash(forked), proof)


# --- CompactRange --------------------------------------------------------------------------


def test_compact_range_root_equals_root_hash_for_every_size_up_to_300() -> None:
    rng = random.Random(300)
    leaves = _random_leaves(rng, 300)
    hashes = [leaf_hash(b) for b in leaves]
    incremental = CompactRange()
    for size in range(301):
        batch = CompactRange()
        batch.extend(leaves[:size])
        want = _mth(hashes[:size]) if size <= 70 else root_hash(leaves[:size])
        assert batch.size == incremental.size == size
        assert batch.root() == incremental.root() == want
        assert len(batch.nodes()) == size.bit_count()
        if size < 300:
            incremental.append_leaf_hash(hashes[size])


def test_compact_range_root_over_batches_crossing_chunk_boundaries_matches_rfc_root() -> None:
    rng = random.Random(99)
    leaves = [rng.randbytes(8) for _ in range(12_345)]
    want = _mth([leaf_hash(b) for b in leaves])
    tree = CompactRange()
    start = 0
    for step in [1, 3, 4095, 2, 4096, 1, 1797, 5, 1]:
        tree.extend(iter(leaves[start : start + step]))
        start += step
        tree.append_leaf_hash(leaf_hash(leaves[start]))
        start += 1
    tree.extend(leaves[start:])
    assert tree.size == len(leaves)
    assert tree.root() == want == root_hash(leaves)


def test_compact_range_root_does_not_change_the_state() -> None:
    tree = CompactRange()
    tree.extend(LEAVES[:7])
    before = tree.nodes()
    assert tree.root() == tree.root() == ROOTS[7]
    assert tree.nodes() == before
    assert tree.size == 7


def test_compact_range_nodes_are_the_perfect_subtree_hashes_left_to_right() -> None:
    tree = CompactRange()
    tree.extend(LEAVES[:7])
    level = RFC6962["node_hashes_hex"]
    assert [n.hex() for n in tree.nodes()] == [level[2][0], level[1][2], level[0][6]]


@pytest.mark.parametrize("size", range(65))
def test_compact_range_round_trips_through_its_nodes_and_keeps_growing(size: int) -> None:
    leaves = _random_leaves(random.Random(size), 100)
    saved = CompactRange()
    saved.extend(leaves[:size])

    restored = CompactRange.from_nodes(saved.size, saved.nodes())
    assert restored.size == size
    assert restored.root() == saved.root()
    restored.extend(leaves[size:])
    assert restored.root() == root_hash(leaves)


@pytest.mark.parametrize(("size", "count"), [(0, 1), (1, 0), (5, 1), (5, 3), (8, 2)])
def test_compact_range_from_nodes_rejects_a_node_count_other_than_popcount(
    size: int, count: int
) -> None:
    with pytest.raises(ValueError, match=f"size {size} needs {size.bit_count()} nodes"):
        CompactRange.from_nodes(size, [EMPTY_ROOT] * count)


def test_compact_range_from_nodes_rejects_a_negative_size_or_a_short_node() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        CompactRange.from_nodes(-1, [])
    with pytest.raises(ValueError, match="compact range node 1 is 31 bytes"):
        CompactRange.from_nodes(3, [EMPTY_ROOT, EMPTY_ROOT[:31]])


def test_compact_range_rejects_a_leaf_hash_of_the_wrong_length() -> None:
    tree = CompactRange()
    with pytest.raises(ValueError, match="leaf hash is 5 bytes"):
        tree.append_leaf_hash(b"short")
    assert tree.size == 0


def test_empty_compact_range_has_the_empty_root_and_no_nodes() -> None:
    tree = CompactRange()
    assert tree.size == 0
    assert tree.nodes() == []
    assert tree.root() == EMPTY_ROOT
    assert CompactRange.from_nodes(0, []).root() == EMPTY_ROOT


# --- aligned subtrees (what verify's worker processes hash) ------------------------------------


@pytest.mark.parametrize("max_size", [1, 2, 8, 64])
def test_aligned_subtrees_cover_the_range_and_their_roots_give_the_rfc_root(max_size: int) -> None:
    leaves = [bytes([i % 256, i // 256]) for i in range(150)]
    for start in range(0, 150, 7):
        for stop in range(start, 151, 11):
            blocks = list(aligned_subtrees(start, stop, max_size=max_size))
            assert [i for lo, hi in blocks for i in range(lo, hi)] == list(range(start, stop))
            tree = CompactRange()
            tree.extend(leaves[:start])
            for lo, hi in blocks:
                size = hi - lo
                assert size <= max_size
                assert size & (size - 1) == 0
                assert lo % size == 0
                assert subtree_root(leaves[lo:hi]) == root_hash(leaves[lo:hi])
                tree.append_subtree(subtree_root(leaves[lo:hi]), size)
            assert tree.root() == root_hash(leaves[:stop])
            assert tree.size == stop


def test_aligned_subtrees_take_the_largest_blocks_first() -> None:
    assert list(aligned_subtrees(0, 100_000, max_size=8192))[-4:] == [
        (98304, 99328), (99328, 99840), (99840, 99968), (99968, 100000)
    ]
    assert list(aligned_subtrees(3, 8, max_size=8)) == [(3, 4), (4, 8)]
    assert list(aligned_subtrees(5, 5, max_size=4)) == []


def test_aligned_subtrees_reject_a_bad_size_or_range() -> None:
    with pytest.raises(ValueError, match="power of two"):
        aligned_subtrees(0, 10, max_size=6)
    with pytest.raises(ValueError, match="invalid leaf range"):
        aligned_subtrees(5, 4, max_size=4)


def test_a_subtree_is_appended_only_where_it_is_aligned_and_whole() -> None:
    tree = CompactRange()
    tree.extend([b"a", b"b"])
    with pytest.raises(ValueError, match="cannot be appended at size 2"):
        tree.append_subtree(b"\x00" * 32, 4)
    with pytest.raises(ValueError, match="cannot be appended"):
        tree.append_subtree(b"\x00" * 32, 3)
    with pytest.raises(ValueError, match="32"):
        tree.append_subtree(b"\x00" * 31, 2)
    with pytest.raises(ValueError, match="power-of-two number of leaves"):
        subtree_root([b"a", b"b", b"c"])
