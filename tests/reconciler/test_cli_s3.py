"""``reconciler`` against S3 end to end, the way a user points it at MinIO or AWS: moto's server
mode on a local port, reached only through ``--endpoint-url``, with fake credentials."""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from moto.server import ThreadedMotoServer

from tests.reconciler.conftest import (
    ERASE_JAN,
    OPTOUT_KLAAS,
    SHOP_MAP,
    SHOP_ROWS,
    dump,
    load,
    shop_metadata,
)
from tests.reconciler.test_cli import CANARY, ERASE_CANARY, invoke, make_files

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
_names = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server on a free local port, shared by the module."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@pytest.fixture
def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"backups-{next(_names)}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def test_drill_downloads_an_s3_backup_and_never_writes_it(
        s3: Any, bucket: str, endpoint: str, tmp_path: Path, aws_env: Path) -> None:
    local = tmp_path / "shop.db"
    load(f"sqlite:///{local}", shop_metadata(), SHOP_ROWS)
    s3.upload_file(str(local), bucket, "nightly/shop-tuesday.db")
    before = s3.list_object_versions(Bucket=bucket)["Versions"]
    ledger, key, map_path = make_files(tmp_path, [ERASE_JAN, OPTOUT_KLAAS])
    report = tmp_path / "drill.json"

    result = invoke("drill", "--snapshot", f"s3://{bucket}/nightly/shop-tuesday.db", "--map",
                    map_path, "--ledger", ledger, "--keyring", key, "--as-of", "2026-11-25",
                    "--endpoint-url", endpoint, "--report", str(report))

    assert result.exit_code == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["drill"]["source"] == f"s3://{bucket}/nightly/shop-tuesday.db"
    assert data["drill"]["source_bytes"] == local.stat().st_size
    assert data["totals"]["rows_changed"] == 12
    after = s3.list_object_versions(Bucket=bucket)
    assert [(v["VersionId"], v["ETag"]) for v in after["Versions"]] == [
        (v["VersionId"], v["ETag"]) for v in before]
    assert "DeleteMarkers" not in after
    assert list(aws_env.iterdir()) == []


@pytest.mark.parametrize(("location", "message"), [
    pytest.param("s3://{bucket}/nightly/missing.db", "s3://{bucket}/nightly/missing.db: no such "
                 "object", id="no-such-key"),
    pytest.param("s3://{bucket}", "s3://{bucket}: expected s3://bucket/key of one object",
                 id="no-key"),
])
def test_drill_s3_errors_are_one_line(
        bucket: str, endpoint: str, tmp_path: Path, aws_env: Path, location: str,
        message: str) -> None:
    ledger, key, map_path = make_files(tmp_path, [ERASE_JAN])
    result = invoke("drill", "--snapshot", location.format(bucket=bucket), "--map", map_path,
                    "--ledger", ledger, "--keyring", key, "--endpoint-url", endpoint)
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: {message.format(bucket=bucket)}\n")
    assert list(aws_env.iterdir()) == []


OBJECT_MAP = SHOP_MAP + """\
objects:
  - {bucket: BUCKET, prefix: "mail/{email}/"}
  - {bucket: BUCKET, key: "customers/{cust_no}/id.pdf"}
"""


def test_apply_deletes_object_versions_through_an_endpoint_and_never_shows_a_key(
        s3: Any, bucket: str, endpoint: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "shop.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE customers SET email = '{CANARY}' WHERE id = 2"))
    engine.dispose()
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket=bucket, Key=f"mail/{CANARY}/id.pdf", Body=body)
    s3.delete_object(Bucket=bucket, Key=f"mail/{CANARY}/id.pdf")
    # the person with the canary address is customer 2, C-1002
    s3.put_object(Bucket=bucket, Key="customers/C-1002/id.pdf", Body=b"theirs")
    s3.put_object(Bucket=bucket, Key="customers/C-1004/id.pdf", Body=b"klaas stays")
    ledger, key, map_path = make_files(tmp_path, [ERASE_CANARY])
    Path(map_path).write_text(OBJECT_MAP.replace("BUCKET", bucket), encoding="utf-8")
    args = ["--db", str(db), "--map", map_path, "--ledger", ledger, "--keyring", key,
            "--endpoint-url", endpoint]
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []

    before = invoke("verify", *args, "--report", str(tmp_path / "before.json"))
    assert before.exit_code == 1
    assert before.stderr == ("reconciler: error: residual personal data found: 3 finding(s) "
                             "for 1 ledger entry; see the report\n")
    planned = invoke("plan", *args, "--as-of", "2026-11-25")
    assert planned.exit_code == 0, planned.stderr
    applied = invoke("apply", *args, "--as-of", "2026-11-25", "--report",
                     str(tmp_path / "apply.json"))
    assert applied.exit_code == 0, applied.stderr
    after = invoke("verify", *args)
    assert after.exit_code == 0, after.stderr

    remaining = s3.list_object_versions(Bucket=bucket)
    assert sorted(v["Key"] for v in remaining.get("Versions", [])) == [
        "customers/C-1004/id.pdf"]
    assert "DeleteMarkers" not in remaining
    data = json.loads((tmp_path / "apply.json").read_text())
    assert data["systems_reconciled"] == [str(db), f"s3://{bucket}"]
    assert data["totals"]["object_versions_changed"] == 4
    assert data["entries"][0]["rows"][f"s3://{bucket}"] == {"object versions deleted": 4}
    findings = json.loads((tmp_path / "before.json").read_text())["residual_object_findings"]
    assert [(f["path"], f["request_id"], f["versions"]) for f in findings] == [
        ("objects[0]", "DSR-C", 3), ("objects[1]", "DSR-C", 1)]

    outputs += [before.stdout, before.stderr, planned.stdout, applied.stdout, after.stdout,
                (tmp_path / "before.json").read_text(), (tmp_path / "apply.json").read_text(),
                (tmp_path / "apply.md").read_text()]
    # every log line but the S3 server's own access log (moto's werkzeug, not this program)
    outputs += [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    for text in outputs:
        assert CANARY not in text.lower()


def test_a_missing_bucket_is_exit_2_with_one_line_and_changes_nothing(
        endpoint: str, tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    ledger, key, map_path = make_files(tmp_path, [ERASE_JAN])
    Path(map_path).write_text(OBJECT_MAP.replace("BUCKET", "no-such-bucket"), encoding="utf-8")
    before = dump(f"sqlite:///{db}")
    result = invoke("apply", "--db", str(db), "--map", map_path, "--ledger", ledger,
                    "--keyring", key, "--endpoint-url", endpoint)
    assert (result.exit_code, result.stderr, result.stdout) == (
        2, "reconciler: error: s3://no-such-bucket (objects[0]): the bucket does not exist\n",
        "")
    assert dump(f"sqlite:///{db}") == before
