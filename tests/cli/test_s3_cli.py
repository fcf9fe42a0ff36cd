"""``erasure-ledger`` against S3 and KMS end to end, the way a user points it at MinIO or AWS:
moto's server mode on a local port, reached only through ``AWS_ENDPOINT_URL``.

Covers init (creating an Object Lock bucket), append from several processes at once, verify,
tampering through a second client (exit 3), shredding on a versioned bucket, mirror
S3 -> SQLite -> S3, KMS-wrapped keyrings, and the error paths (exit 2, one line, no identifier).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from tests.cli.conftest import RunCli

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
CANARY_EMAIL = "canary@example.invalid"
_names = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 + KMS server on a free local port, shared by the module."""
    with pytest.MonkeyPatch.context() as mp:
        # moto checks a condition and then writes without a lock; S3 does both atomically.
        # (GETs too: a GET racing a PUT of the same key can read moto's closed buffer.)
        lock = threading.Lock()
        for name in ("put_object", "delete_object", "get_object"):
            original = getattr(S3Response, name)

            def serialised(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                with lock:
                    return _original(self, *args, **kwargs)

            mp.setattr(S3Response, name, serialised)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3(endpoint: str) -> Any:
    """A second client: the ops person (or the attacker) with direct bucket access."""
    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture
def bucket() -> str:
    return f"cli-ledger-{next(_names)}"


class S3Cli:
    """The CLI with --ledger s3://bucket/ledger, a keyring file and AWS_ENDPOINT_URL set."""

    def __init__(self, cli: RunCli, endpoint: str, location: str, keyring: Path) -> None:
        self.cli, self.endpoint, self.location, self.keyring = cli, endpoint, location, keyring

    @property
    def env(self) -> dict[str, str]:
        return {"ERASURE_LEDGER": self.location, "ERASURE_KEYRING": str(self.keyring),
                "AWS_ENDPOINT_URL": self.endpoint}

    def __call__(self, *args: str, keyring: bool = True) -> Any:
        env = self.env if keyring else {"ERASURE_LEDGER": self.location, "AWS_ENDPOINT_URL": self.endpoint}
        return self.cli(*args, env=env)

    def append(self, request_id: str, email: str | None = None) -> int:
        result = self("append", "--request-id", request_id, "--kind", "erasure",
                      "--email", email or f"{request_id.lower()}@example.nl")
        assert result.exit_code == 0, result.stderr
        return int(result.stdout)


@pytest.fixture
def s3_ledger(cli: RunCli, endpoint: str, bucket: str, tmp_path: Path):
    def make(prefix: str = "ledger", *, init_args: tuple[str, ...] = ()) -> S3Cli:
        ledger = S3Cli(cli, endpoint, f"s3://{bucket}/{prefix}", tmp_path / f"{prefix}.key")
        result = ledger("init", "--origin", "shop.example/s3", "--public-key-out",
                        str(tmp_path / f"{prefix}.pub"), *init_args)
        assert result.exit_code == 0, result.stderr
        return ledger

    return make


def one_line(result: Any) -> str:
    assert result.stderr.count("\n") == 1, result.stderr
    return str(result.stderr.strip())


# -- the happy path ------------------------------------------------------------------------------


def test_init_creates_an_object_lock_bucket_and_entries_are_write_once(s3_ledger, s3, bucket, tmp_path):
    ledger = s3_ledger()
    assert ledger.append("DSR-1") == 0
    assert ledger.append("DSR-2") == 1
    verified = ledger("verify", "--public-key", str(tmp_path / "ledger.pub"), keyring=False)
    assert verified.exit_code == 0, verified.stderr
    assert verified.stdout.startswith("OK shop.example/s3: 2 entries, 3 signed checkpoints match")
    shown = ledger("show", "1")
    assert "identifier: email=dsr-2@example.nl" in shown.stdout
    head = s3.head_object(Bucket=bucket, Key="ledger/leaves/000000000001")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert "ObjectLockMode" not in s3.head_object(Bucket=bucket, Key="ledger/keys/000000000001.json")


def _append_from_a_process(args: tuple[str, str, str, int]) -> list[tuple[int, str]]:
    endpoint, location, keyring, worker = args
    os.environ.update(AWS_ENV)
    from click.testing import CliRunner

    from erasure_ledger.cli import cli

    runner = CliRunner()
    env = {"ERASURE_LEDGER": location, "ERASURE_KEYRING": keyring, "AWS_ENDPOINT_URL": endpoint}
    results = []
    for i in range(10):
        r = runner.invoke(cli, ["append", "--request-id", f"W{worker}-{i}", "--kind", "erasure",
                                "--email", f"w{worker}.{i}@example.nl"], env=env)
        results.append((r.exit_code, r.stdout.strip() or r.stderr.strip()))
    return results


def test_four_processes_appending_at_once_get_forty_distinct_contiguous_seqs(s3_ledger, endpoint):
    ledger = s3_ledger()
    jobs = [(endpoint, ledger.location, str(ledger.keyring), w) for w in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = [r for chunk in pool.map(_append_from_a_process, jobs) for r in chunk]
    assert [code for code, _ in results] == [0] * 40, results
    assert sorted(int(seq) for _, seq in results) == list(range(40))
    listing = json.loads(ledger("list", "--json", keyring=False).stdout)
    assert sorted(e["request_id"] for e in listing) == sorted(f"W{w}-{i}" for w in range(4) for i in range(10))
    verified = ledger("verify", keyring=False)
    assert verified.exit_code == 0, verified.stderr
    assert "40 entries" in verified.stdout


# -- tampering -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("attack", "message"), [
    ("overwrite", "checkpoint at size 2 does not match the stored entries: entry 1 altered, swapped or removed"),
    ("delete", "entry 1: missing from the store"),
    ("forge", "entry 3: an entry object exists past the signed head of size 3 (added outside the ledger)"),
])
def test_tampering_through_a_second_client_exits_3(s3_ledger, s3, bucket, attack, message):
    ledger = s3_ledger()
    for i in range(3):
        ledger.append(f"R{i}")
    key = "ledger/leaves/000000000001"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if attack == "overwrite":
        s3.put_object(Bucket=bucket, Key=key, Body=body.replace(b"erasure", b"erasurE"))
    elif attack == "delete":
        s3.delete_object(Bucket=bucket, Key=key)
    else:
        s3.put_object(Bucket=bucket, Key="ledger/leaves/000000000003", Body=body)
    result = ledger("verify", keyring=False)
    assert result.exit_code == 3
    assert one_line(result) == f"erasure-ledger: error: {message}"


# -- shredding, Object Lock and mirroring --------------------------------------------------------


def test_shred_on_a_versioned_bucket_leaves_no_old_version_of_the_key(s3_ledger, s3, bucket):
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ledger = s3_ledger()
    ledger.append("R0", CANARY_EMAIL)
    ledger.append("R1")
    result = ledger("shred", "--seq", "0", "--yes")
    assert result.exit_code == 0, result.stderr
    versions = s3.list_object_versions(Bucket=bucket, Prefix="ledger/keys/000000000000.json")
    assert len(versions["Versions"]) == 1
    assert "DeleteMarkers" not in versions
    body = s3.get_object(Bucket=bucket, Key="ledger/keys/000000000000.json")["Body"].read()
    assert json.loads(body)["wrapped_key"] is None
    assert "crypto-shredded" in ledger("show", "0").stdout
    assert ledger("lookup", "--email", CANARY_EMAIL).stdout.strip() == "not in the ledger"


def test_mirror_s3_to_sqlite_to_s3(s3_ledger, cli, endpoint, bucket, tmp_path):
    ledger = s3_ledger()
    for i in range(3):
        ledger.append(f"R{i}")
    sqlite = str(tmp_path / "mirror.db")
    env = {"AWS_ENDPOINT_URL": endpoint}
    first = cli("mirror", ledger.location, sqlite, env=env)
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("mirrored 3 new entries (4 checkpoints) from s3://")
    back = f"s3://{bucket}/copy"
    assert cli("mirror", sqlite, back, env=env).exit_code == 0
    again = cli("mirror", ledger.location, back, env=env)
    assert again.stdout.startswith("mirrored 0 new entries (0 checkpoints)")
    shown = cli("show", "2", env={"ERASURE_LEDGER": back, "ERASURE_KEYRING": str(ledger.keyring),
                                  "AWS_ENDPOINT_URL": endpoint})
    assert "identifier: email=r2@example.nl" in shown.stdout


def test_mirror_into_a_diverged_ledger_exits_3_and_writes_nothing(s3_ledger, cli, endpoint):
    one, other = s3_ledger("one"), s3_ledger("other")
    one.append("R0")
    other.append("X0")
    result = cli("mirror", one.location, other.location, env={"AWS_ENDPOINT_URL": endpoint})
    assert result.exit_code == 3
    assert one_line(result).startswith(f"erasure-ledger: error: DST {other.location} holds another ledger")
    assert json.loads(other("list", "--json").stdout)[0]["request_id"] == "X0"


# -- KMS -----------------------------------------------------------------------------------------


def test_a_kms_wrapped_keyring_works_end_to_end(s3_ledger, endpoint, tmp_path):
    kms = boto3.client("kms", endpoint_url=endpoint)
    key_id, new_key = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    ledger = s3_ledger(init_args=("--kms-key-id", key_id))
    keyring = json.loads(ledger.keyring.read_text())
    assert keyring["keks"]["kek-1"]["kms_key_id"] == key_id
    assert "key" not in keyring["keks"]["kek-1"]
    ledger.append("R0")
    assert "identifier: email=r0@example.nl" in ledger("show", "0").stdout
    rotated = ledger("rotate-key", "--kms-key-id", new_key)
    assert rotated.exit_code == 0, rotated.stderr
    assert json.loads(ledger.keyring.read_text())["keks"]["kek-2"]["kms_key_id"] == new_key
    assert "identifier: email=r0@example.nl" in ledger("show", "0").stdout
    assert ledger("verify", "--public-key", str(tmp_path / "ledger.pub"), keyring=False).exit_code == 0
    # a keyring file pointing at another KMS key does not open: exit 3, one line
    keyring = json.loads(ledger.keyring.read_text())
    keyring["keks"]["kek-2"]["kms_key_id"] = key_id
    ledger.keyring.write_text(json.dumps(keyring))
    ledger.keyring.chmod(0o600)
    refused = ledger("show", "0")
    assert refused.exit_code == 3
    assert one_line(refused) == (
        f"erasure-ledger: error: AWS KMS refused to decrypt the keyring's key-encryption key with "
        f"{key_id} (wrong key, altered keyring, or no kms:Decrypt permission)")


def test_init_with_an_unknown_kms_key_exits_2_and_writes_nothing(cli, endpoint, bucket, tmp_path):
    keyring = tmp_path / "ledger.key"
    result = cli("init", "--kms-key-id", "alias/nope",
                 env={"ERASURE_LEDGER": f"s3://{bucket}/ledger", "ERASURE_KEYRING": str(keyring),
                      "AWS_ENDPOINT_URL": endpoint})
    assert result.exit_code == 2
    assert one_line(result).startswith("erasure-ledger: error: AWS KMS key alias/nope does not exist")
    assert not keyring.exists()


# -- error paths: exit 2, one line, no identifier ------------------------------------------------


def test_a_missing_bucket_exits_2_with_one_line_and_no_identifier(cli, endpoint, tmp_path):
    keyring = tmp_path / "k.key"
    made = cli("init", env={"ERASURE_LEDGER": "sqlite:///" + str(tmp_path / "x.db"),
                            "ERASURE_KEYRING": str(keyring)})
    assert made.exit_code == 0, made.stderr
    env = {"ERASURE_LEDGER": "s3://no-such-bucket/ledger", "ERASURE_KEYRING": str(keyring),
           "AWS_ENDPOINT_URL": endpoint}
    result = cli("append", "--request-id", "R1", "--kind", "erasure", "--email", CANARY_EMAIL, env=env)
    assert result.exit_code == 2
    assert one_line(result) == ("erasure-ledger: error: s3://no-such-bucket/ledger: the bucket does not "
                                "exist (run erasure-ledger init to create it)")
    assert CANARY_EMAIL not in result.stdout + result.stderr


def test_a_duplicate_request_and_access_denied_exit_2(s3_ledger, s3, bucket):
    ledger = s3_ledger()
    ledger.append("R1", CANARY_EMAIL)
    duplicate = ledger("append", "--request-id", "R1", "--kind", "erasure", "--email", CANARY_EMAIL)
    assert duplicate.exit_code == 2
    assert one_line(duplicate) == "erasure-ledger: error: request R1 is already in the ledger"
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    denied = ledger("verify", keyring=False)
    s3.delete_bucket_policy(Bucket=bucket)
    if denied.exit_code == 0:
        pytest.skip("this moto build does not enforce bucket policies")
    assert denied.exit_code == 2
    assert one_line(denied).startswith(f"erasure-ledger: error: {ledger.location}: access denied")
    assert CANARY_EMAIL not in denied.stdout + denied.stderr + duplicate.stdout + duplicate.stderr


def test_an_unreachable_endpoint_exits_2_with_the_endpoint_redacted(cli, tmp_path):
    env = {"ERASURE_LEDGER": "s3://b/ledger", "AWS_ENDPOINT_URL": "http://minio:s3cret@127.0.0.1:9"}
    result = cli("verify", env=env)
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith("erasure-ledger: error: s3://b/ledger: cannot reach http://minio:***@127.0.0.1:9")
    assert "s3cret" not in result.stdout + result.stderr
