"""mirror(): verified, incremental copies between stores; verify_since(): only what is new."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from erasure_ledger import (
    IntegrityError,
    Keyring,
    Ledger,
    MemoryStore,
    NoteVerifier,
    RollbackError,
    TamperedEntryError,
    open_store,
)
from erasure_ledger.mirror import mirror, verify_since
from erasure_ledger.stores.s3 import S3Store
from tests.conftest import FIXED_NOW, make_entry


def ledger_with(entries: int, *, batches: tuple[int, ...] = (), origin: str = "test.example/m") -> Ledger:
    ledger = Ledger.create(MemoryStore(), Keyring.generate(origin), now=FIXED_NOW)
    for i in range(entries):
        ledger.append([make_entry(f"R{i}")], now=FIXED_NOW)
    for b, size in enumerate(batches):
        ledger.append([make_entry(f"B{b}-{i}") for i in range(size)], now=FIXED_NOW)
    return ledger


def test_a_mirror_reproduces_entries_keys_and_checkpoint_history():
    src = ledger_with(3, batches=(4,))
    dst = MemoryStore("memory:dst")
    result = mirror(src.store, dst)
    assert (result.created, result.size_before, result.size_after) == (True, 0, 7)
    assert (result.entries_copied, result.checkpoints_copied) == (7, 5)
    assert list(dst.iter_checkpoints()) == list(src.store.iter_checkpoints())
    assert result.checkpoint == src.checkpoint().note
    copy = Ledger.open(dst, src.keyring)
    assert copy.verify(public_key=NoteVerifier.parse(src.verifier.vkey)).tree_size == 7
    assert [e.entry for e in copy.open_all()[1]] == [e.entry for e in src.open_all()[1]]


def test_a_second_run_copies_only_what_is_new():
    src = ledger_with(2)
    dst = MemoryStore("memory:dst")
    mirror(src.store, dst)
    again = mirror(src.store, dst)
    assert (again.created, again.entries_copied, again.checkpoints_copied) == (False, 0, 0)
    src.append([make_entry("NEW")], now=FIXED_NOW)
    third = mirror(src.store, dst)
    assert (third.size_before, third.entries_copied, third.checkpoints_copied) == (2, 1, 1)
    assert [m.request_id for m in Ledger.open(dst).list_entries()] == ["R0", "R1", "NEW"]


def test_a_diverged_destination_is_refused_and_left_alone():
    keyring = Keyring.generate("test.example/m")
    src = Ledger.create(MemoryStore(), keyring, now=FIXED_NOW)
    other = Ledger.create(MemoryStore(), keyring, now=FIXED_NOW)  # same keys, other entries
    src.append([make_entry("R1")], now=FIXED_NOW)
    src.append([make_entry("R2")], now=FIXED_NOW)
    other.append([make_entry("X1")], now=FIXED_NOW)
    before = list(other.store.leaves)
    with pytest.raises(IntegrityError, match="DST memory: has diverged from SRC: its 1 entries are not "
                                             "the first of SRC's 2; refusing to overwrite it"):
        mirror(src.store, other.store)
    assert other.store.leaves == before
    assert IntegrityError.exit_code == 3


def test_a_destination_longer_than_the_source_is_refused():
    src = ledger_with(1)
    dst = MemoryStore("memory:dst")
    mirror(src.store, dst)
    Ledger.open(dst, src.keyring).append([make_entry("ONLY-IN-DST")], now=FIXED_NOW)
    with pytest.raises(IntegrityError, match="has diverged from SRC: its 2 entries are not the first of SRC's 1"):
        mirror(src.store, dst)


def test_a_destination_of_another_ledger_is_refused():
    with pytest.raises(IntegrityError, match=r"DST memory: holds another ledger .*refusing to overwrite it"):
        mirror(ledger_with(1).store, ledger_with(1, origin="other.example/m").store)


def test_a_tampered_source_is_not_copied():
    src = ledger_with(3)
    src.store.leaves[1] = dataclasses.replace(src.store.leaves[1], data=src.store.leaves[1].data + b" ")
    dst = MemoryStore("memory:dst")
    with pytest.raises(TamperedEntryError, match=r"^SRC memory: checkpoint at size 2 does not match"):
        mirror(src.store, dst)
    assert dst.head.size == 0


def test_a_tampered_destination_is_refused():
    src = ledger_with(2)
    dst = MemoryStore("memory:dst")
    mirror(src.store, dst)
    del dst.leaves[1]
    with pytest.raises(TamperedEntryError, match=r"^DST memory:dst: entry 1: missing from the store"):
        mirror(src.store, dst)


def test_shreds_propagate_and_are_never_undone():
    src = ledger_with(3)
    dst = MemoryStore("memory:dst")
    mirror(src.store, dst)
    src.shred([0])
    Ledger.open(dst, src.keyring).shred([2])  # shredded on DST only
    result = mirror(src.store, dst)
    assert (result.shreds_propagated, result.kept_shredded) == (1, 1)
    assert [e.entry is None for e in Ledger.open(dst, src.keyring).open_all()[1]] == [True, False, True]


def test_a_key_rotation_on_the_source_carries_over():
    src = ledger_with(2)
    dst = MemoryStore("memory:dst")
    mirror(src.store, dst)
    rotated = src.rotate_key(lambda kr: None)
    assert mirror(src.store, dst).key_rows_rewrapped == 2
    assert Ledger.open(dst, rotated).show(1).entry is not None


def test_a_mirror_into_sqlite_and_back(tmp_path):
    src = ledger_with(2, batches=(3,))
    sqlite = open_store(str(tmp_path / "mirror.db"), create=True)
    mirror(src.store, sqlite)
    back = MemoryStore("memory:back")
    mirror(open_store(str(tmp_path / "mirror.db")), back)
    assert list(back.iter_checkpoints()) == list(src.store.iter_checkpoints())
    assert Ledger.open(back, src.keyring).open_all()[0].tree_size == 5


# -- verify_since --------------------------------------------------------------------------------


def test_verify_since_on_a_store_without_nodes_rereads_the_prefix():
    ledger = ledger_with(3)
    trusted = ledger.checkpoint().note
    ledger.append([make_entry("NEW")], now=FIXED_NOW)
    result = verify_since(ledger.store, trusted)
    assert (result.tree_size, result.trusted_size, result.checkpoints_checked) == (4, 3, 2)
    assert result.root_hash == ledger.verify().root_hash


def test_verify_since_refuses_a_rewritten_history():
    ledger = ledger_with(3)
    trusted = ledger.checkpoint().note
    ledger.store.leaves[0] = dataclasses.replace(ledger.store.leaves[0], data=b"{}")
    with pytest.raises(RollbackError, match="does not extend the trusted checkpoint"):
        verify_since(ledger.store, trusted)


def test_verify_since_refuses_a_truncated_ledger():
    ledger = ledger_with(3)
    trusted = ledger.checkpoint().note
    ledger.store.head = dataclasses.replace(ledger.store.head, size=2)
    with pytest.raises(RollbackError, match="ledger has 2 entries but the trusted checkpoint has 3"):
        verify_since(ledger.store, trusted)


# -- with S3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            client = boto3.client("s3")
            client.create_bucket(Bucket="mirror-src")
            client.create_bucket(Bucket="mirror-dst")
            yield client


def test_s3_to_sqlite_to_s3_round_trip(aws, tmp_path):
    src = Ledger.create(S3Store("s3://mirror-src/a", create=True), Keyring.generate("t.example/m"),
                        now=FIXED_NOW)
    src.append([make_entry("R1"), make_entry("R2")], now=FIXED_NOW)
    src.append([make_entry("R3")], now=FIXED_NOW)
    src.shred([1])
    sqlite = open_store(str(tmp_path / "m.db"), create=True)
    assert mirror(src.store, sqlite).entries_copied == 3
    back = S3Store("s3://mirror-dst/b", create=True)
    assert mirror(sqlite, back).entries_copied == 3
    copy = Ledger.open(S3Store("s3://mirror-dst/b"), src.keyring)
    assert list(copy.store.iter_checkpoints()) == list(src.store.iter_checkpoints())
    assert [e.entry is None for e in copy.open_all()[1]] == [False, True, False]
    assert mirror(src.store, back).entries_copied == 0


def test_verify_since_on_s3_reads_only_the_new_entries(aws):
    ledger = Ledger.create(S3Store("s3://mirror-src/v", create=True), Keyring.generate("t.example/v"),
                           now=FIXED_NOW)
    ledger.append([make_entry(f"R{i}") for i in range(20)], now=FIXED_NOW)
    trusted = ledger.checkpoint().note
    ledger.append([make_entry("N1")], now=FIXED_NOW)
    ledger.append([make_entry("N2"), make_entry("N3")], now=FIXED_NOW)
    store = S3Store("s3://mirror-src/v")
    fetched: list[str] = []
    lock = threading.Lock()

    def count(params: Any, **_: Any) -> None:
        with lock:
            fetched.append(params["url_path"])

    store._client.meta.events.register("before-call.s3.GetObject", count)
    result = verify_since(store, trusted, public_key=NoteVerifier.parse(ledger.verifier.vkey))
    assert (result.tree_size, result.trusted_size, result.checkpoints_checked) == (23, 20, 3)
    leaves = sorted(p.rsplit("/", 1)[-1] for p in fetched if "/leaves/" in p)
    assert leaves == ["000000000020", "000000000021", "000000000022"]
    assert result.root_hash == ledger.verify().root_hash
