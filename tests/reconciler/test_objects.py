"""``reconciler.objects``: every version and delete marker is listed and deleted, and every
botocore failure becomes one line naming the bucket, never a key (moto in-process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from moto import mock_aws

from reconciler.errors import ObjectStorageError, SnapshotError
from reconciler.objects import CLIENT_ERRORS, HANDLED_CODES, ObjectStore, ObjectVersion

SECRET_KEY = "customers/canary@example.invalid/id.pdf"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="docs")
        client.put_bucket_versioning(Bucket="docs",
                                     VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_versions_lists_every_version_and_delete_marker(s3: Any) -> None:
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket="docs", Key="c/1/id.pdf", Body=body)
    s3.delete_object(Bucket="docs", Key="c/1/id.pdf")  # a "deleted" object keeps its versions
    s3.put_object(Bucket="docs", Key="c/1/id.pdf.bak", Body=b"x")
    store = ObjectStore()

    under = store.versions("docs", "c/1/id.pdf")
    exact = store.versions("docs", "c/1/id.pdf", exact=True)
    assert len(under) == 4
    assert sorted(v.delete_marker for v in exact) == [False, False, True]
    assert SECRET_KEY not in repr(ObjectVersion(SECRET_KEY, "v"))

    assert store.delete_versions("docs", exact) == 3
    assert store.versions("docs", "c/1/id.pdf", exact=True) == []
    assert len(store.versions("docs", "c/1/")) == 1


def test_an_unversioned_bucket_works_too(s3: Any) -> None:
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="c/2/a", Body=b"a")
    store = ObjectStore()
    versions = store.versions("plain", "c/2/")
    assert [v.version_id for v in versions] == ["null"]
    assert store.delete_versions("plain", versions) == 1
    assert store.versions("plain", "c/2/") == []


def test_a_missing_bucket_is_one_line_naming_the_bucket_not_the_key(s3: Any) -> None:
    with pytest.raises(ObjectStorageError) as excinfo:
        ObjectStore().versions("no-such-bucket", SECRET_KEY, label="s3://no-such-bucket "
                                                                   "(objects[0])")
    assert str(excinfo.value) == "s3://no-such-bucket (objects[0]): the bucket does not exist"
    assert excinfo.value.exit_code == 2


def test_a_missing_snapshot_object_is_a_snapshot_error(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match=r"^s3://docs/backup\.db: no such object$"):
        ObjectStore().download("s3://docs/backup.db", tmp_path / "x.db")


def test_missing_credentials_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoCredentials:
        def get_paginator(self, name: str) -> Any:
            raise NoCredentialsError

    with pytest.raises(ObjectStorageError, match=r"^s3://docs: no AWS credentials found "
                                                 r"\(set AWS_ACCESS_KEY_ID"):
        ObjectStore(client=NoCredentials()).versions("docs", "c/")


@pytest.mark.parametrize("code", ["AccessDenied", "SlowDown", "SomethingNew"])
def test_client_errors_are_translated_once(code: str) -> None:
    class Failing:
        def delete_objects(self, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": code, "Message": SECRET_KEY}}, "DeleteObjects")

    with pytest.raises(ObjectStorageError) as excinfo:
        ObjectStore(client=Failing()).delete_versions("docs", [ObjectVersion(SECRET_KEY, "1")])
    assert str(excinfo.value) == "s3://docs: " + CLIENT_ERRORS.get(code, f"S3 error {code}")


def test_refused_deletions_are_reported_without_keys() -> None:
    class Partly:
        def delete_objects(self, **kwargs: Any) -> Any:
            return {"Errors": [{"Key": SECRET_KEY, "VersionId": "1", "Code": "AccessDenied"}]}

    with pytest.raises(ObjectStorageError) as excinfo:
        ObjectStore(client=Partly()).delete_versions("docs", [ObjectVersion(SECRET_KEY, "1")])
    assert str(excinfo.value) == ("s3://docs: 1 object version(s) were not deleted: access "
                                  "denied (check the credentials' S3 permissions and the bucket "
                                  "policy)")


def test_every_client_error_code_we_handle_has_a_mapping() -> None:
    assert HANDLED_CODES - set(CLIENT_ERRORS) == set()
