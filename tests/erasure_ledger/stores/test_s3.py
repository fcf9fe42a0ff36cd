"""The S3 store on moto: conditional writes, crash recovery, Object Lock, versioned shredding,
tampering, parallel paged reads and the translation of every botocore error."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from moto.s3.responses import S3Response

from erasure_ledger import (
    DuplicateRequestError,
    IntegrityError,
    Keyring,
    Ledger,
    LedgerError,
    MemoryStore,
    StaleKeyringError,
    StorageError,
    StoreConfig,
    TamperedEntryError,
    UsageError,
    open_store,
)
from erasure_ledger.mirror import mirror, verify_since
from erasure_ledger.stores import s3 as s3_module
from erasure_ledger.stores.s3 import (
    CLIENT_ERRORS,
    HANDLED_CODES,
    ObjectLockSettings,
    S3Store,
    redact_endpoint,
    translate_client_error,
)
from tests.conftest import FIXED_NOW, make_entry

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
_buckets = itertools.count()


def serialise_conditional_writes(mp: pytest.MonkeyPatch) -> None:
    """moto checks If-None-Match/If-Match and then writes, without a lock; S3 does both
    atomically. Serialise moto's object writes so concurrent tests see S3's semantics. Reads
    too: moto closes an overwritten object's buffer, and a GET racing the PUT then fails with
    "I/O operation on closed file", where S3 returns the old or the new object, whole."""
    lock = threading.Lock()
    for name in ("put_object", "delete_object", "get_object"):
        original = getattr(S3Response, name)

        def serialised(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        mp.setattr(S3Response, name, serialised)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials for tests that never reach moto."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    """One moto account for the module (starting moto per test is slow); a bucket per test."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
            mp.delenv(name, raising=False)
        serialise_conditional_writes(mp)
        with mock_aws():
            yield boto3.client("s3")


@pytest.fixture
def bucket(aws: Any) -> str:
    """A fresh bucket name for this test (created by s3_store, or by the test itself)."""
    return f"ledger-bucket-{next(_buckets)}"


@pytest.fixture
def s3_store(aws: Any, bucket: str) -> Iterator[Callable[..., S3Store]]:
    """Factory: an S3Store on this test's moto bucket: s3_store(lock=True, versioned=True, ...)."""
    made: list[S3Store] = []

    def make(prefix: str = "p", *, lock: bool = False, versioned: bool = False,
             make_bucket: bool = True, **kwargs: Any) -> S3Store:
        if make_bucket and bucket not in {b["Name"] for b in aws.list_buckets()["Buckets"]}:
            aws.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=lock)
            if versioned:
                aws.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        store = S3Store(f"s3://{bucket}/{prefix}", create=True, **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def s3_ledger(s3_store: Callable[..., S3Store]) -> Callable[..., Ledger]:
    def build(entries: int = 0, **kwargs: Any) -> Ledger:
        ledger = Ledger.create(s3_store(**kwargs), Keyring.generate("test.example/s3"), now=FIXED_NOW)
        for i in range(entries):
            ledger.append([make_entry(f"R{i}")], now=FIXED_NOW)
        return ledger

    return build


def reopen(ledger: Ledger, **kwargs: Any) -> Ledger:
    store = ledger.store
    assert isinstance(store, S3Store)
    return Ledger.open(S3Store(store.location, **kwargs), ledger.keyring)


# -- the same behaviour as the memory store ------------------------------------------------------


@pytest.fixture(params=["memory", "s3"])
def any_ledger(request: pytest.FixtureRequest) -> Callable[..., Ledger]:
    if request.param == "memory":
        return lambda: Ledger.create(MemoryStore(), Keyring.generate("test.example/s3"), now=FIXED_NOW)
    return request.getfixturevalue("s3_ledger")  # type: ignore[no-any-return]


def test_a_ledger_behaves_the_same_on_s3_as_in_memory(any_ledger):
    ledger = any_ledger()
    result = ledger.append([make_entry("R1", identifiers={"phone": "0416-853988"}), make_entry("R2")],
                           now=FIXED_NOW)
    assert result.seqs == (0, 1)
    assert ledger.append([make_entry("R3")], now=FIXED_NOW).seqs == (2,)
    opened = ledger.show(0)
    assert opened.entry is not None
    assert opened.entry.identifiers[0].value == "+31416853988"
    assert [m.request_id for m in ledger.lookup([opened.entry.identifiers[0]])] == ["R1"]
    assert ledger.verify().tree_size == 3
    assert ledger.store.request_ids_present(["R2", "R9"]) == {"R2"}
    with pytest.raises(DuplicateRequestError, match="request R1 is already in the ledger"):
        ledger.append([make_entry("R4"), make_entry("R1")], now=FIXED_NOW)
    assert [m.request_id for m in ledger.list_entries()] == ["R1", "R2", "R3"]
    assert ledger.shred([1]) == [1]
    assert ledger.show(1).entry is None
    ledger.rotate_key(lambda kr: None)
    result_all, entries = ledger.open_all()
    assert result_all.tree_size == 3
    assert [e.entry is None for e in entries] == [False, True, False]
    assert [s for s, _ in ledger.store.iter_checkpoints()] == [0, 2, 3]
    assert ledger.checkpoint().note == ledger.checkpoint().note


def test_the_store_refuses_a_second_ledger_and_an_empty_prefix_has_none(s3_ledger, s3_store, bucket):
    ledger = s3_ledger()
    with pytest.raises(UsageError, match=f"a ledger already exists at s3://{bucket}/p"):
        Ledger.create(s3_store(), Keyring.generate("x.example/l"), now=FIXED_NOW)
    with pytest.raises(UsageError, match=rf"^no ledger at s3://{bucket}/other: check the path \(erasure-ledger init creates a NEW ledger\)$"):
        Ledger.open(s3_store("other"))
    assert reopen(ledger).verify().tree_size == 0


@pytest.mark.parametrize("location", ["s3://", "s3:///p", "s3://b/p?x=1", "s3://b/../p", "s3://u@b/p"])
def test_a_malformed_location_is_a_usage_error(location):
    with pytest.raises(UsageError, match="an S3 ledger"):
        S3Store(location)


def test_the_location_is_normalised_and_safe_to_print():
    assert S3Store("s3://bkt/a//b/").location == "s3://bkt/a/b"
    assert S3Store("s3://bkt").location == "s3://bkt"
    assert redact_endpoint("http://minio:secret@host:9000/x") == "http://minio:***@host:9000/x"
    assert redact_endpoint(None) == "AWS S3"


def test_an_old_keyring_copy_is_refused_on_s3_and_writes_nothing(s3_ledger):
    ledger = s3_ledger(entries=2)
    old = ledger.keyring
    ledger.rotate_key(lambda kr: None)
    assert isinstance(ledger.store, S3Store)
    stale = Ledger.open(S3Store(ledger.store.location), old)  # the copy made before the rotation
    head = ledger.store.read_head()
    with pytest.raises(StaleKeyringError, match=r"active key is not this ledger's current key "
                       r"\(kek-1, the ledger is at kek-2\): use the current keyring file"):
        stale.append([make_entry("R9")], now=FIXED_NOW)
    assert ledger.store.read_head() == head
    assert ledger.append([make_entry("R9")], now=FIXED_NOW).seqs == (2,)


# -- atomic appends ------------------------------------------------------------------------------


def test_two_appenders_racing_for_the_same_seq_both_land(s3_ledger, monkeypatch):
    ledger_a = s3_ledger()
    ledger_b = reopen(ledger_a)
    store_a = ledger_a.store
    heads_seen: list[int] = []
    original = store_a.append

    def racing(prepare):
        def prepare_while_b_appends(head):
            heads_seen.append(head.size)
            if len(heads_seen) == 1:
                ledger_b.append([make_entry("B")], now=FIXED_NOW)  # B wins seq 0
            return prepare(head)

        return original(prepare_while_b_appends)

    monkeypatch.setattr(store_a, "append", racing)
    assert ledger_a.append([make_entry("A")], now=FIXED_NOW).seqs == (1,)
    assert heads_seen == [0, 1]  # the loser prepared again on the new head
    assert [m.request_id for m in ledger_a.list_entries()] == ["B", "A"]
    assert ledger_a.verify().tree_size == 2


def test_concurrent_appenders_never_lose_or_reuse_a_sequence_number(s3_ledger):
    ledger = s3_ledger()
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        mine = reopen(ledger)
        try:
            for i in range(5):
                mine.append([make_entry(f"W{w}-{i}")], now=FIXED_NOW)
        except BaseException as exc:
            errors.append(exc)
        finally:
            mine.store.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    metas = list(ledger.list_entries())
    assert [m.seq for m in metas] == list(range(20))
    assert sorted(m.request_id for m in metas) == sorted(f"W{w}-{i}" for w in range(4) for i in range(5))
    assert ledger.verify().tree_size == 20


def test_verifying_and_mirroring_while_others_append_never_cries_tampering(s3_ledger):
    ledger = s3_ledger(entries=2)
    trusted = ledger.checkpoint().note
    done = threading.Event()

    def appender(w: int) -> None:
        mine = reopen(ledger)
        for i in range(8):
            mine.append([make_entry(f"V{w}-{i}")], now=FIXED_NOW)
        mine.store.close()

    threads = [threading.Thread(target=appender, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    threading.Thread(target=lambda: ([t.join() for t in threads], done.set())).start()
    auditor = reopen(ledger).store
    copy = MemoryStore("memory:copy")
    runs = 0
    while not done.is_set() or runs == 0:
        assert verify_since(auditor, trusted).tree_size >= 2
        assert mirror(auditor, copy).size_after >= 2
        runs += 1
    assert verify_since(auditor, trusted).tree_size == 18
    assert mirror(auditor, copy).size_after == 18
    assert Ledger.open(copy, ledger.keyring).verify().tree_size == 18


def test_the_same_request_id_appended_twice_at_once_lands_once(s3_ledger, monkeypatch):
    ledger_a = s3_ledger()
    ledger_b = reopen(ledger_a)
    # Both pass the pre-check; the marker written with If-None-Match decides.
    monkeypatch.setattr(ledger_a.store, "request_ids_present", lambda ids: set())
    ledger_b.append([make_entry("SAME")], now=FIXED_NOW)
    with pytest.raises(DuplicateRequestError, match="request SAME is already in the ledger"):
        ledger_a.append([make_entry("OTHER"), make_entry("SAME")], now=FIXED_NOW)
    assert [m.request_id for m in ledger_a.list_entries()] == ["SAME"]
    assert ledger_a.append([make_entry("OTHER")], now=FIXED_NOW).seqs == (1,)  # nothing left behind
    assert ledger_a.verify().tree_size == 2


class Crash(BaseException):
    """A process dying mid-append: no cleanup runs."""


def crash_during_append(ledger: Ledger, mp: pytest.MonkeyPatch, *, after: str) -> None:
    assert isinstance(ledger.store, S3Store)
    store = ledger.store._appender  # the append protocol (stores/_s3_append.py)
    mp.setattr(store, "_abort", lambda *a, **k: None)
    if after == "checkpoint":  # everything written but the head
        real = store._put_head

        def put_head(head, pending, *, etag):
            if pending is None and head.size > 0:
                raise Crash
            return real(head, pending, etag=etag)

        mp.setattr(store, "_put_head", put_head)
    else:  # leaves and key rows written, no checkpoint
        mp.setattr(store, "_write_checkpoint", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        ledger.append([make_entry("CRASHED"), make_entry("CRASHED-2")], now=FIXED_NOW)


def test_an_append_that_crashed_after_its_checkpoint_is_adopted(s3_ledger, monkeypatch, caplog):
    ledger = s3_ledger(entries=1, lease_seconds=0)
    with monkeypatch.context() as mp:
        crash_during_append(ledger, mp, after="checkpoint")
    assert ledger.store.read_head().size == 1  # not committed yet...
    assert ledger.verify().tree_size == 1  # ...and the committed ledger verifies meanwhile
    survivor = reopen(ledger, lease_seconds=0)
    assert survivor.append([make_entry("NEXT")], now=FIXED_NOW).seqs == (3,)
    assert "adopting entries 1..2 written by an append that did not finish" in caplog.text
    assert [m.request_id for m in survivor.list_entries()] == ["R0", "CRASHED", "CRASHED-2", "NEXT"]
    assert survivor.verify().tree_size == 4


def test_an_append_that_crashed_before_its_checkpoint_is_rolled_back(s3_ledger, monkeypatch, caplog, aws, bucket):
    ledger = s3_ledger(entries=1, lease_seconds=0)
    with monkeypatch.context() as mp:
        crash_during_append(ledger, mp, after="leaves")
    survivor = reopen(ledger, lease_seconds=0)
    assert survivor.append([make_entry("NEXT")], now=FIXED_NOW).seqs == (1,)
    assert "rolling back entries 1..2 of an append that did not finish" in caplog.text
    assert [m.request_id for m in survivor.list_entries()] == ["R0", "NEXT"]
    assert survivor.verify().tree_size == 2
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=bucket, Prefix="p/keys/")["Contents"]]
    assert keys == ["p/keys/000000000000.json", "p/keys/000000000001.json"]
    assert survivor.append([make_entry("CRASHED")], now=FIXED_NOW).seqs == (2,)  # id is free again


def test_leftovers_of_an_unfinished_append_are_replaced_not_trusted(s3_ledger, aws, bucket, caplog):
    ledger = s3_ledger(entries=1, versioned=True)
    marker = "p/requests/" + hashlib.sha256(b"R9").hexdigest()
    aws.put_object(Bucket=bucket, Key=marker, Body=b'{"request_id": "R9", "seq": 7, "nonce": "x"}')
    aws.put_object(Bucket=bucket, Key="p/leaves/000000000001", Body=b"left behind")
    aws.put_object(Bucket=bucket, Key="p/keys/000000000001.json", Body=b'{"wrapped_key": "old"}')
    with pytest.raises(TamperedEntryError, match="entry 1: an entry object exists past the signed head"):
        reopen(ledger).verify()
    assert ledger.append([make_entry("R9")], now=FIXED_NOW).seqs == (1,)
    assert "replacing an object left by an unfinished append" in caplog.text
    assert "request R9: replacing a marker left by an unfinished append" in caplog.text
    assert reopen(ledger).open_all()[0].tree_size == 2
    versions = aws.list_object_versions(Bucket=bucket, Prefix="p/keys/000000000001.json")
    assert len(versions["Versions"]) == 1  # the leftover key row did not survive as a version


def test_a_live_reservation_is_waited_for_not_taken_over(s3_ledger, monkeypatch):
    ledger = s3_ledger()
    other = reopen(ledger)
    assert isinstance(ledger.store, S3Store)
    store = ledger.store._appender  # the append protocol (stores/_s3_append.py)
    real = store._write_reserved

    def slow_write(*args, **kwargs):
        # while A holds its reservation, B must wait and then append after it
        t = threading.Thread(target=lambda: other.append([make_entry("B")], now=FIXED_NOW))
        t.start()
        t.join(0.2)
        assert t.is_alive()
        result = real(*args, **kwargs)
        t.join()
        return result

    monkeypatch.setattr(store, "_write_reserved", slow_write)
    assert ledger.append([make_entry("A")], now=FIXED_NOW).seqs == (0,)
    assert [m.request_id for m in ledger.list_entries()] == ["A", "B"]


# -- tampering -----------------------------------------------------------------------------------


def test_an_overwritten_entry_object_is_detected(s3_ledger, aws, bucket):
    ledger = s3_ledger(entries=3)
    body = aws.get_object(Bucket=bucket, Key="p/leaves/000000000001")["Body"].read()
    aws.put_object(Bucket=bucket, Key="p/leaves/000000000001", Body=body.replace(b"erasure", b"erasurE"))
    with pytest.raises(TamperedEntryError, match="checkpoint at size 2 does not match the stored entries: "
                                                 "entry 1 altered, swapped or removed"):
        reopen(ledger).verify()


def test_a_deleted_entry_object_is_reported_as_missing(s3_ledger, aws, bucket):
    ledger = s3_ledger(entries=3)
    aws.delete_object(Bucket=bucket, Key="p/leaves/000000000001")
    with pytest.raises(TamperedEntryError, match="entry 1: missing from the store"):
        reopen(ledger).verify()


def test_a_forged_entry_object_past_the_head_is_detected(s3_ledger, aws, bucket):
    ledger = s3_ledger(entries=2)
    body = aws.get_object(Bucket=bucket, Key="p/leaves/000000000001")["Body"].read()
    aws.put_object(Bucket=bucket, Key="p/leaves/000000000002", Body=body)
    with pytest.raises(TamperedEntryError, match="entry 2: an entry object exists past the signed head"):
        reopen(ledger).verify()


def test_a_head_rewound_to_an_older_state_is_detected(s3_ledger, aws, bucket):
    ledger = s3_ledger(entries=1)
    old_head = aws.get_object(Bucket=bucket, Key="p/head.json")["Body"].read()
    ledger.append([make_entry("LATER")], now=FIXED_NOW)
    aws.put_object(Bucket=bucket, Key="p/head.json", Body=old_head)
    aws.delete_object(Bucket=bucket, Key="p/leaves/000000000001")
    with pytest.raises(TamperedEntryError, match="checkpoint at size 2 was signed but the ledger holds 1"):
        reopen(ledger).verify()


@pytest.mark.parametrize("key", ["p/head.json", "p/ledger.json", "p/keys/000000000000.json",
                                 "p/checkpoints/000000000001.json"])
def test_a_malformed_object_is_an_integrity_error(s3_ledger, aws, key, bucket):
    ledger = s3_ledger(entries=1)
    aws.put_object(Bucket=bucket, Key=key, Body=b"{not json")
    def read_everything() -> None:
        again = reopen(ledger)
        again.verify()
        again.check_key_rows()

    with pytest.raises(IntegrityError, match="malformed"):
        read_everything()


# -- Object Lock and shredding -------------------------------------------------------------------


def retention(aws: Any, bucket: str, key: str) -> tuple[str | None, datetime | None]:
    head = aws.head_object(Bucket=bucket, Key=key)
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


def test_entries_and_checkpoints_are_write_once_on_an_object_lock_bucket(s3_ledger, aws, bucket):
    ledger = s3_ledger(entries=1, lock=True, object_lock=ObjectLockSettings("COMPLIANCE", days=2))
    assert ledger.store.notices == ["entries and checkpoints are write-once for 2 days (COMPLIANCE mode)"]
    for key in ("p/ledger.json", "p/leaves/000000000000", "p/checkpoints/000000000001.json"):
        mode, until = retention(aws, bucket, key)
        assert mode == "COMPLIANCE"
        assert until is not None
        assert timedelta(days=1) < until - datetime.now(UTC) <= timedelta(days=2)
    assert retention(aws, bucket, "p/keys/000000000000.json") == (None, None)  # shred must delete these
    # the settings are the ledger's: a later appender uses them without being told
    reopen(ledger).append([make_entry("R9")], now=FIXED_NOW)
    assert retention(aws, bucket, "p/leaves/000000000001")[0] == "COMPLIANCE"
    version = aws.list_object_versions(Bucket=bucket, Prefix="p/leaves/000000000000")["Versions"][0]
    with pytest.raises(ClientError, match="AccessDenied"):
        aws.delete_object(Bucket=bucket, Key="p/leaves/000000000000", VersionId=version["VersionId"])


def test_init_creates_a_missing_bucket_with_object_lock(s3_store, aws, bucket):
    store = S3Store(f"s3://{bucket}/p", create=True)
    Ledger.create(store, Keyring.generate("x.example/l"), now=FIXED_NOW)
    assert store.notices[0] == f"created bucket {bucket} with Object Lock"
    assert store.protection().object_lock
    assert retention(aws, bucket, "p/ledger.json")[0] == "GOVERNANCE"
    store.close()


def test_a_bucket_without_object_lock_is_named_as_offering_no_write_once_protection(s3_store, caplog, bucket):
    store = s3_store(versioned=True)
    Ledger.create(store, Keyring.generate("x.example/l"), now=FIXED_NOW)
    assert store.protection().write_once is False
    assert store.notices == [
        f"bucket {bucket} has no Object Lock: anyone with write access can overwrite or delete "
        "entries; verify detects it but nothing prevents it (create the bucket with Object Lock for "
        "write-once entries)"]
    assert "has no Object Lock" in caplog.text


def test_retention_on_a_bucket_without_object_lock_is_refused(s3_store, bucket):
    with pytest.raises(UsageError, match=f"bucket {bucket} has no Object Lock, so entries cannot be given"):
        s3_store(object_lock=ObjectLockSettings()).create({"origin": "x"})


def test_a_default_retention_rule_is_refused_because_it_would_lock_key_rows(s3_store, aws, bucket):
    aws.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    aws.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    with pytest.raises(UsageError, match=r"default Object Lock retention \(GOVERNANCE 1 days\) that would lock"):
        s3_store().create({"origin": "x"})


@pytest.mark.parametrize("kind", ["versioned", "object-lock"])
def test_shred_and_rotation_leave_no_old_version_of_a_key_row(s3_ledger, aws, kind, bucket):
    ledger = s3_ledger(entries=3, versioned=True, lock=kind == "object-lock")
    ledger.shred([0, 2])
    ledger.rotate_key(lambda kr: None)
    versions = aws.list_object_versions(Bucket=bucket, Prefix="p/keys/")
    assert "DeleteMarkers" not in versions
    assert sorted(v["Key"] for v in versions["Versions"]) == [
        f"p/keys/00000000000{i}.json" for i in range(3)]
    assert [e.entry is None for e in ledger.open_all()[1]] == [True, False, True]


# -- reads: parallel and paged -------------------------------------------------------------------


def test_reads_page_through_listings_and_fetch_in_parallel(s3_ledger, monkeypatch):
    monkeypatch.setattr(s3_module, "_PAGE", 4)
    ledger = s3_ledger()
    ledger.append([make_entry(f"R{i}") for i in range(30)], now=FIXED_NOW)
    for i in range(30, 40):
        ledger.append([make_entry(f"R{i}")], now=FIXED_NOW)
    store = reopen(ledger, max_workers=8).store
    counts = {"ListObjectsV2": 0, "GetObject": 0}
    in_flight = [0, 0]  # now, most
    lock = threading.Lock()

    def before(model: Any, **_: Any) -> None:
        with lock:
            counts[model.name] = counts.get(model.name, 0) + 1
            in_flight[0] += 1
            in_flight[1] = max(in_flight)

    def after(**_: Any) -> None:
        with lock:
            in_flight[0] -= 1

    store._client.meta.events.register("before-call.s3", before)
    store._client.meta.events.register("after-call.s3", after)
    assert [leaf.seq for leaf in store.iter_leaves()] == list(range(40))
    assert [size for size, _ in store.iter_checkpoints()] == [0, 30, *range(31, 41)]
    assert [row.seq for row in store.iter_key_rows()] == list(range(40))
    assert counts["ListObjectsV2"] >= 40 // 4 + 11 // 4  # key rows and checkpoints, page by page
    assert in_flight[1] > 1  # objects were fetched in parallel


# -- reads: one key row -------------------------------------------------------------------------


def record_requests(store: S3Store) -> list[tuple[str, str]]:
    """(operation, what it touched) for every request the store's client makes from now on."""
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def before(model: Any, params: Any, **_: Any) -> None:
        where = f"{params.get('url_path', '')} {params.get('query_string', '')}"
        touched = next((name for name in ("keys/", "leaves/", "checkpoints/", "requests/", "head.json",
                                          "ledger.json") if name in where), "bucket")
        with lock:
            seen.append((model.name, touched))

    store._client.meta.events.register("before-call.s3", before)
    return seen


def test_read_key_row_reads_one_key_row_object(s3_ledger, aws, bucket):
    ledger = s3_ledger()
    ledger.append([make_entry(f"R{i}") for i in range(3)], now=FIXED_NOW)
    store = reopen(ledger).store
    rows = list(store.iter_key_rows())
    seen = record_requests(store)
    assert [store.read_key_row(seq) for seq in range(3)] == rows
    assert seen == [("GetObject", "keys/")] * 3
    assert store.read_key_row(3) is None
    ledger.shred([1])
    shredded = store.read_key_row(1)
    assert shredded is not None
    assert shredded.shredded
    body = aws.get_object(Bucket=bucket, Key="p/keys/000000000000.json")["Body"].read()
    aws.put_object(Bucket=bucket, Key="p/keys/000000000002.json", Body=body)  # entry 0's row as 2's
    with pytest.raises(TamperedEntryError, match=r"^entry 2: its key row object is malformed$"):
        store.read_key_row(2)


def test_show_reads_one_key_row_whatever_the_size_of_the_ledger(s3_ledger):
    requests: dict[int, list[tuple[str, str]]] = {}
    for size in (4, 40):
        ledger = s3_ledger(prefix=f"show-{size}")
        ledger.append([make_entry(f"R{i}") for i in range(size)], now=FIXED_NOW)
        again = reopen(ledger)
        requests[size] = record_requests(again.store)
        opened = again.show(size - 1)
        assert opened.entry is not None
        assert opened.entry.request_id == f"R{size - 1}"
    for seen in requests.values():
        # one GET of its own key row: no listing of keys/, no GET of any other entry's row
        assert [r for r in seen if r[1] == "keys/"] == [("GetObject", "keys/")]

    def beside_the_tree(seen: list[tuple[str, str]]) -> list[tuple[str, str]]:
        # leaves/ and checkpoints/ are what verifying the tree reads (show verifies first)
        return sorted(r for r in seen if r[1] not in ("leaves/", "checkpoints/"))

    assert beside_the_tree(requests[4]) == beside_the_tree(requests[40])


# -- botocore errors, translated once ------------------------------------------------------------


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def test_every_client_error_code_the_store_reacts_to_has_a_translation():
    assert set(CLIENT_ERRORS) >= HANDLED_CODES
    for code, (cls, _) in CLIENT_ERRORS.items():
        error = translate_client_error(client_error(code), location="s3://b/p")
        assert type(error) is cls
        assert issubclass(cls, LedgerError)
        text = str(error)
        assert text.startswith("s3://b/p: ")
        assert "\n" not in text
    unknown = translate_client_error(client_error("Weird"), location="s3://b/p")
    assert (type(unknown), str(unknown)) == (StorageError, "s3://b/p: S3 error Weird")


@pytest.mark.parametrize(("code", "message"), [
    ("AccessDenied", "s3://b/p: access denied (check the credentials' S3 permissions"),
    ("SlowDown", "s3://b/p: S3 is throttling or unavailable; still failing after 4 attempts"),
    ("InvalidAccessKeyId", "s3://b/p: the AWS credentials were rejected"),
    ("PermanentRedirect", "s3://b/p: the bucket is in another region"),
])
def test_a_refusing_bucket_is_a_storage_error_with_one_clear_line(aws_env, code, message):
    store = S3Store("s3://b/p")
    with Stubber(store._client) as stub:
        stub.add_client_error("head_object", service_error_code=code, http_status_code=403)
        with pytest.raises(StorageError) as info:
            store.exists()
    assert str(info.value).startswith(message)


def test_a_missing_bucket_is_a_storage_error(aws):
    with pytest.raises(StorageError, match=r"^s3://no-such-bucket/p: the bucket does not exist"):
        Ledger.open(open_store("s3://no-such-bucket/p"))
    with pytest.raises(StorageError, match=r"^s3://no-such-bucket/p: the bucket does not exist$"):
        S3Store("s3://no-such-bucket/p").create({"origin": "x"})


def test_an_unreachable_endpoint_is_a_storage_error_with_the_endpoint_redacted(aws_env):
    store = S3Store("s3://b/p", config=StoreConfig(endpoint_url="http://user:pw@127.0.0.1:9"),
                    max_attempts=1)
    with pytest.raises(StorageError, match=r"^s3://b/p: cannot reach http://user:\*\*\*@127\.0\.0\.1:9 "
                                           r"\(EndpointConnectionError\) after 1 attempts$"):
        store.read_head()


def test_missing_credentials_are_a_storage_error(aws_env, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    store = S3Store("s3://b/p", config=StoreConfig(endpoint_url="http://127.0.0.1:9"), max_attempts=1)
    with pytest.raises(StorageError, match=r"^s3://b/p: no AWS credentials found"):
        store.read_head()


def test_a_write_on_s3_checks_the_head_not_every_leaf_and_verify_names_an_altered_one(
        s3_ledger, aws, bucket, monkeypatch):
    # One GET per stored entry before every single append would make intake unusable on a
    # large S3 ledger: a write checks the head against its signed checkpoint (ledger-format
    # §7.2, steps 1 and 2) and builds on that, and verify names an altered leaf.
    ledger = s3_ledger(3)
    store = ledger.store
    key = store._layout.leaf(1)
    data = bytearray(aws.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[40] ^= 0x01
    aws.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    read = []
    original = type(store).iter_leaf_data
    monkeypatch.setattr(type(store), "iter_leaf_data",
                        lambda self, *a, **k: read.append(a) or original(self, *a, **k))
    ledger.append([make_entry("R3")], now=FIXED_NOW)
    assert read == []  # no leaf was read to append
    assert store.read_head().size == 4
    monkeypatch.undo()
    with pytest.raises(TamperedEntryError):
        reopen(ledger).verify()
