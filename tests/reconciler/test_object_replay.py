"""Object storage in plan / apply / verify: every version and delete marker of an erased
person's objects goes, nobody else's, and what is left is a residual finding (moto in-process;
tests taking ``shop`` run on SQLite, PostgreSQL and MariaDB)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.errors import ObjectStorageError
from reconciler.objects import ObjectStore
from reconciler.replay import ReplayResult, replay, verify
from reconciler.report import build_report
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    OPTOUT_KLAAS,
    SHOP_MAP,
    SHOP_ROWS,
    dump,
    load,
    shop_metadata,
)

MakeLedger = Callable[..., Ledger]
OBJECTS = """\
objects:
  - {bucket: id-documents, key: "customers/{cust_no}/id.pdf"}
  - {bucket: uploads, prefix: "u/{id}/"}
"""
OBJECT_MAP = SHOP_MAP + OBJECTS
# A customer erased in production before the backup: no row in the snapshot, but the versioned
# bucket still holds old versions of the identity document.
ERASE_GONE = {"request_id": "DSR-7", "kind": "erasure", "effective": "2026-09-01",
              "identifiers": {"customer_number": "C-0999"}}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        for bucket in ("id-documents", "uploads"):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(Bucket=bucket,
                                         VersioningConfiguration={"Status": "Enabled"})
        put = client.put_object
        put(Bucket="id-documents", Key="customers/C-1001/id.pdf", Body=b"jan v1")
        put(Bucket="id-documents", Key="customers/C-1001/id.pdf", Body=b"jan v2")
        client.delete_object(Bucket="id-documents", Key="customers/C-1001/id.pdf")
        put(Bucket="id-documents", Key="customers/C-1002/id.pdf", Body=b"piet")
        put(Bucket="id-documents", Key="customers/C-0999/id.pdf", Body=b"gone v1")
        put(Bucket="uploads", Key="u/1/passport.jpg", Body=b"jan")
        put(Bucket="uploads", Key="u/1/selfie.jpg", Body=b"jan")
        put(Bucket="uploads", Key="u/10/other.jpg", Body=b"someone with id 10")
        put(Bucket="uploads", Key="u/3/old.jpg", Body=b"inactive for 3 years")
        yield client


def keys(client: Any, bucket: str) -> list[tuple[str, bool]]:
    """Every (key, is delete marker) in the bucket, all versions."""
    listing = client.list_object_versions(Bucket=bucket)
    return sorted([(v["Key"], False) for v in listing.get("Versions", [])]
                  + [(m["Key"], True) for m in listing.get("DeleteMarkers", [])])


def run(url: str, ledger: Ledger, *, dry_run: bool = False, text: str = OBJECT_MAP
        ) -> ReplayResult:
    return replay(url, DataMap.from_text(text), ledger, as_of=AS_OF, dry_run=dry_run,
                  hash_key=HASH_KEY, objects=ObjectStore())


def report_of(result: ReplayResult, command: str = "apply") -> Any:
    return build_report(command=command, tool_version="0",
                        now=dt.datetime(2026, 11, 25, tzinfo=dt.UTC), snapshot=result.snapshot,
                        ledger=result.ledger, data_map=DataMap.from_text(OBJECT_MAP),
                        entries=result.plan.entries, execution=result.execution,
                        scan=result.scan, objects=result.objects)


def test_apply_deletes_every_version_of_the_erased_peoples_objects(
        shop: str, s3: Any, make_ledger: MakeLedger) -> None:
    result = run(shop, make_ledger(ERASE_JAN, ERASE_GONE, OPTOUT_KLAAS))

    assert keys(s3, "id-documents") == [("customers/C-1002/id.pdf", False)]
    # Jan (id 1) and the customer inactive for 2 years (id 3, retention); never u/10/
    assert keys(s3, "uploads") == [("u/10/other.jpg", False)]
    assert result.objects is not None
    assert [(r.path, r.versions, r.by_source) for r in result.objects.results] == [
        ("objects[0]", 4, (("0", 3), ("1", 1))),
        ("objects[1]", 3, (("0", 2), ("retention:inactive-2y", 1))),
    ]
    assert result.objects.findings == ()
    report = report_of(result)
    assert report.clean
    assert report.systems[1:] == ("s3://id-documents", "s3://uploads")
    assert report.totals["object_versions_changed"] == 7
    by_request = {e["request_id"]: e for e in report.entries}
    assert by_request["DSR-1"]["rows"]["s3://id-documents"] == {"object versions deleted": 3}
    assert by_request["DSR-7"]["status"] == "replayed"
    assert "- objects[0] s3://id-documents customers/{cust_no}/id.pdf: 4 version(s) deleted" in (
        report.to_markdown())


def test_plan_counts_the_versions_and_deletes_nothing(
        shop: str, s3: Any, make_ledger: MakeLedger) -> None:
    before = (keys(s3, "id-documents"), keys(s3, "uploads"), dump(shop))
    result = run(shop, make_ledger(ERASE_JAN, ERASE_GONE), dry_run=True)
    assert result.objects is not None
    assert result.objects.versions == 7
    assert (keys(s3, "id-documents"), keys(s3, "uploads"), dump(shop)) == before
    assert "version(s) to delete (dry run)" in report_of(result, "plan").to_markdown()


def test_a_second_apply_deletes_nothing(tmp_path: Path, s3: Any, make_ledger: MakeLedger) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load(url, shop_metadata(), SHOP_ROWS)
    ledger = make_ledger(ERASE_JAN, ERASE_GONE)
    assert run(url, ledger).objects is not None
    again = run(url, ledger)
    assert again.objects is not None
    assert again.objects.versions == 0


def test_verify_reports_versions_left_as_residual_findings(
        tmp_path: Path, s3: Any, make_ledger: MakeLedger) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load(url, shop_metadata(), SHOP_ROWS)
    ledger = make_ledger(ERASE_JAN, ERASE_GONE)
    result = verify(url, DataMap.from_text(OBJECT_MAP), ledger, objects=ObjectStore())
    assert result.objects is not None
    assert [(f.path, f.seq, f.request_id, f.versions) for f in result.objects.findings] == [
        ("objects[0]", 0, "DSR-1", 3), ("objects[0]", 1, "DSR-7", 1),
        ("objects[1]", 0, "DSR-1", 2)]
    report = build_report(command="verify", tool_version="0", now=dt.datetime.now(dt.UTC),
                          snapshot=result.snapshot, ledger=result.ledger,
                          data_map=DataMap.from_text(OBJECT_MAP), scan=result.scan,
                          objects=result.objects)
    assert not report.clean
    assert ("- entry 0 (DSR-1): s3://id-documents objects[0] (customers/{cust_no}/id.pdf): 3 "
            "object version(s) left") in report.to_markdown()

    run(url, ledger)
    after = verify(url, DataMap.from_text(OBJECT_MAP), ledger, objects=ObjectStore())
    assert after.objects is not None
    assert after.objects.findings == ()
    assert after.objects.buckets == ("id-documents", "uploads")


def test_a_missing_bucket_stops_the_run_and_rolls_the_database_back(
        shop: str, s3: Any, make_ledger: MakeLedger) -> None:
    before = dump(shop)
    missing = OBJECT_MAP + '  - {bucket: no-such-bucket, prefix: "x/{id}/"}\n'
    with pytest.raises(ObjectStorageError, match=r"^s3://no-such-bucket \(objects\[2\]\): the "
                                                 r"bucket does not exist$"):
        run(shop, make_ledger(ERASE_JAN), text=missing)
    assert dump(shop) == before
    assert ("customers/C-1001/id.pdf", True) in keys(s3, "id-documents")  # listing comes first


def test_a_placeholder_column_the_snapshot_lacks_is_schema_drift(
        tmp_path: Path, s3: Any, make_ledger: MakeLedger) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load(url, shop_metadata(), SHOP_ROWS)
    drifted = OBJECT_MAP + '  - {bucket: uploads, prefix: "v/{passport_no}/"}\n'
    result = run(url, make_ledger(ERASE_JAN), text=drifted)
    assert result.objects is not None
    assert result.objects.drift == (
        "objects[2].prefix: column 'passport_no' not in this snapshot",)
    assert "objects[2].prefix: column 'passport_no' not in this snapshot" in (
        report_of(result).drift)


def test_many_locations_are_listed_concurrently_and_each_version_goes_once(s3: Any) -> None:
    from reconciler.locations import ObjectTarget, check_objects, reconcile_objects
    from reconciler.objectmap import ObjectLocation

    uploads = ObjectLocation(index=1, bucket="uploads", template="u/{id}/", exact=False,
                             columns=("id",))
    for n in range(100, 140):
        s3.put_object(Bucket="uploads", Key=f"u/{n}/a.jpg", Body=b"v1")
        s3.put_object(Bucket="uploads", Key=f"u/{n}/a.jpg", Body=b"v2")
    # 40 people, each listed twice (an erasure and a retention rule find the same prefix)
    targets = [ObjectTarget(uploads, f"u/{n}/", (src,)) for n in range(100, 140)
               for src in (str(n), "retention:inactive")]
    store = ObjectStore()
    planned = reconcile_objects(store, targets, dry_run=True, locations=[uploads])
    assert planned.versions == 80
    done = reconcile_objects(store, targets, dry_run=False, locations=[uploads])
    assert done.versions == 80
    assert keys(s3, "uploads") == [("u/1/passport.jpg", False), ("u/1/selfie.jpg", False),
                                   ("u/10/other.jpg", False), ("u/3/old.jpg", False)]
    assert check_objects(store, targets) == ()


def test_a_failed_listing_among_many_deletes_nothing(s3: Any) -> None:
    from reconciler.locations import ObjectTarget, reconcile_objects
    from reconciler.objectmap import ObjectLocation

    uploads = ObjectLocation(index=1, bucket="uploads", template="u/{id}/", exact=False,
                             columns=("id",))
    missing = ObjectLocation(index=2, bucket="no-such-bucket", template="x/{id}/", exact=False,
                             columns=("id",))
    targets = [ObjectTarget(uploads, "u/1/", ("1",)),
               *(ObjectTarget(missing, f"x/{n}/", (str(n),)) for n in range(20))]
    before = keys(s3, "uploads")
    with pytest.raises(ObjectStorageError, match="no-such-bucket"):
        reconcile_objects(ObjectStore(), targets, dry_run=False, locations=[uploads, missing])
    assert keys(s3, "uploads") == before
