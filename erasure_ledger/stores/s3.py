"""The S3 store: a ledger in an S3 bucket (AWS, MinIO, moto, any S3-compatible endpoint).

Layout under ``s3://bucket/prefix/`` (docs/s3-and-kms.md explains every choice)::

    ledger.json                      meta and store settings; written once (If-None-Match)
    head.json                        committed head + the current append reservation;
                                     replaced only with If-Match on its ETag (compare-and-swap)
    leaves/000000000042              one immutable object per entry: the exact leaf bytes
    checkpoints/000000000043.json    one immutable object per signed checkpoint (+ tree nodes)
    requests/<sha256(request id)>    one marker per request id (If-None-Match: atomic uniqueness)
    keys/000000000042.json           the mutable key row; never Object Locked, and every older
                                     version is deleted when it is replaced (shred, rotate-key)

An append reserves its sequence numbers by a compare-and-swap on ``head.json`` (the loser of a
race calls ``prepare`` again with the new head), then writes markers, leaves and key rows, then
the checkpoint, then commits the head with a second compare-and-swap. A reservation left by a
crashed appender is rolled forward when its checkpoint was written, and rolled back otherwise,
by the next appender that sees it unchanged for longer than its lease.

Immutable objects (meta, leaves, checkpoints) get an Object Lock retention when the bucket
offers it. Reads page through listings and fetch objects in parallel on a bounded thread pool,
yielding in sequence order.

This module and :mod:`erasure_ledger.kms` are the only boto3 importers. Every botocore failure
is translated here, once, into a :class:`~erasure_ledger.errors.LedgerError` with one line
that names the store's location (endpoint passwords redacted). It leaves out cryptography and
signature checks: :mod:`erasure_ledger.ledger` prepares every byte and verifies every head.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from erasure_ledger.errors import (
    DuplicateRequestError,
    LedgerError,
    StorageError,
    TamperedEntryError,
    UsageError,
)
from erasure_ledger.stores.base import EMPTY_HEAD, AppendBatch, Head, KeyRow, PrepareAppend, StoredLeaf

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from erasure_ledger.stores import StoreConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

STORE_FORMAT = "erasure-ledger-s3/1"
LockMode = Literal["GOVERNANCE", "COMPLIANCE"]

_SEQ_DIGITS = 12  # zero-padded so listings come back in sequence order (up to 10**12 entries)
_PAGE = 1000  # keys per listing page (the S3 maximum)
_DELETE_BATCH = 1000  # keys per DeleteObjects call (the S3 maximum)
_LEASE_BASE = 30.0  # seconds an append may hold its reservation before others may settle it
_LEASE_PER_ENTRY = 0.05  # ... plus this much per entry of a bulk import (3 writes each)
_APPEND_TIMEOUT = 300.0  # give up waiting for other appenders after this long

# -- botocore errors -------------------------------------------------------------------------

# ClientError codes this module reacts to, grouped by meaning. Each group is handled by name
# where it matters (a missing object, a failed precondition); every code of every group also
# has an edge translation in CLIENT_ERRORS (test_s3.py checks that).
MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError"})
BUCKET_OWNED_CODES = frozenset({"BucketAlreadyOwnedByYou"})
NO_VERSION_CODES = frozenset({"NoSuchVersion"})
HANDLED_CODES = (
    MISSING_CODES | CONFLICT_CODES | NO_BUCKET_CODES | NO_LOCK_CODES | BUCKET_OWNED_CODES
    | NO_VERSION_CODES
)

_DENIED = "access denied (check the credentials' S3 permissions and the bucket policy)"
_CREDENTIALS = "the AWS credentials were rejected (expired or wrong key)"
_BUSY = "S3 is throttling or unavailable; still failing after {attempts} attempts, retry later"
_RACE = "another writer changed the ledger at the same moment; retry"
_REGION = "the bucket is in another region (set AWS_DEFAULT_REGION or the store's region)"

#: ClientError code -> (ledger error class, one-line reason); anything else is a StorageError
#: naming the code.
CLIENT_ERRORS: dict[str, tuple[type[LedgerError], str]] = {
    "NoSuchBucket": (StorageError, "the bucket does not exist (run erasure-ledger init to create it)"),
    "NoSuchKey": (StorageError, "an object disappeared while it was being read"),
    "NotFound": (StorageError, "an object disappeared while it was being read"),
    "404": (StorageError, "an object disappeared while it was being read"),
    "NoSuchVersion": (StorageError, "an object version disappeared while it was being deleted"),
    "PreconditionFailed": (StorageError, _RACE),
    "412": (StorageError, _RACE),
    "ConditionalRequestConflict": (StorageError, _RACE),
    "ObjectLockConfigurationNotFoundError": (StorageError, "the bucket has no Object Lock configuration"),
    "BucketAlreadyOwnedByYou": (StorageError, "the bucket already exists"),
    "BucketAlreadyExists": (StorageError, "the bucket name is taken by another account"),
    "InvalidBucketName": (UsageError, "not a valid S3 bucket name"),
    "AccessDenied": (StorageError, _DENIED),
    "403": (StorageError, _DENIED),
    "AllAccessDisabled": (StorageError, _DENIED),
    "AccountProblem": (StorageError, _DENIED),
    "InvalidAccessKeyId": (StorageError, _CREDENTIALS),
    "SignatureDoesNotMatch": (StorageError, _CREDENTIALS),
    "ExpiredToken": (StorageError, _CREDENTIALS),
    "InvalidToken": (StorageError, _CREDENTIALS),
    "TokenRefreshRequired": (StorageError, _CREDENTIALS),
    "RequestTimeTooSkewed": (StorageError, "this machine's clock is too far from S3's; fix the clock"),
    "SlowDown": (StorageError, _BUSY),
    "Throttling": (StorageError, _BUSY),
    "ThrottlingException": (StorageError, _BUSY),
    "RequestLimitExceeded": (StorageError, _BUSY),
    "TooManyRequestsException": (StorageError, _BUSY),
    "ServiceUnavailable": (StorageError, _BUSY),
    "503": (StorageError, _BUSY),
    "InternalError": (StorageError, _BUSY),
    "500": (StorageError, _BUSY),
    "RequestTimeout": (StorageError, _BUSY),
    "PermanentRedirect": (StorageError, _REGION),
    "301": (StorageError, _REGION),
    "AuthorizationHeaderMalformed": (StorageError, _REGION),
    "IllegalLocationConstraintException": (StorageError, _REGION),
    "InvalidObjectState": (StorageError, "an object is archived (restore it from Glacier first)"),
    "InvalidRequest": (StorageError, "S3 refused the request"),
    "InvalidArgument": (StorageError, "S3 refused the request"),
    "MethodNotAllowed": (StorageError, "S3 refused the request"),
    "NotImplemented": (StorageError, "the endpoint does not implement a request the ledger needs"),
}


_loader_lock = threading.Lock()
_loader: Any = None


def new_session() -> boto3.session.Session:
    """A fresh boto3 session (credentials resolved anew) sharing one model loader, so that
    each store or KMS client costs milliseconds, not a re-parse of botocore's JSON models."""
    global _loader  # noqa: PLW0603 - a process-wide cache of immutable data
    core = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
    return boto3.session.Session(botocore_session=core)


def redact_endpoint(url: str | None, *, default: str = "AWS S3") -> str:
    """An endpoint URL safe to print: a password in it becomes ``***``; ``default`` for None."""
    if not url:
        return default
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or
               exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "unknown")


def translate_client_error(exc: ClientError, *, location: str, attempts: int = 1) -> LedgerError:
    """The ledger error for a ClientError: one line, naming the location, never a body.

    Raises:
        Nothing: returns the error for the caller to raise ``from exc``.
    """
    code = error_code(exc)
    cls, reason = CLIENT_ERRORS.get(code, (StorageError, f"S3 error {code}"))
    reason = reason.format(attempts=attempts)
    if cls is StorageError and code in ("InvalidRequest", "InvalidArgument", "MethodNotAllowed"):
        detail = str(exc.response.get("Error", {}).get("Message", "")).splitlines()
        if detail and detail[0]:
            reason = f"{reason}: {detail[0][:160]}"
    return cls(f"{location}: {reason}")


class _Conflict(Exception):
    """A conditional write lost: If-None-Match found an object, or If-Match a newer ETag."""


# -- values kept in the bucket ---------------------------------------------------------------


@dataclass(frozen=True)
class ObjectLockSettings:
    """Retention for the immutable objects (meta, entries, checkpoints); never for key rows."""

    # GOVERNANCE lets an account with s3:BypassGovernanceRetention delete early; COMPLIANCE
    # lets nobody, not even the root user, until the period ends.
    mode: LockMode = "GOVERNANCE"
    # how long each object stays write-once after it is written (10 years by default)
    days: int = 3650

    def __post_init__(self) -> None:
        if self.mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise UsageError("Object Lock mode must be GOVERNANCE or COMPLIANCE")
        if not 1 <= self.days <= 36500:
            raise UsageError("Object Lock retention must be 1..36500 days")


@dataclass(frozen=True)
class BucketProtection:
    """What the bucket itself guarantees, as found by :meth:`S3Store.protection`."""

    bucket: str
    versioning: str  # "Enabled", "Suspended" or "Disabled"
    object_lock: bool
    default_retention: str | None  # e.g. "GOVERNANCE 30 days": would lock key rows too

    @property
    def write_once(self) -> bool:
        return self.object_lock

    def notice(self) -> str | None:
        """One line for the user when the bucket does not make entries write-once."""
        if self.object_lock:
            return None
        return (f"bucket {self.bucket} has no Object Lock: anyone with write access can overwrite "
                "or delete entries; verify detects it but nothing prevents it (create the bucket "
                "with Object Lock for write-once entries)")


@dataclass(frozen=True)
class _Pending:
    """An append's reservation of seqs ``start..end-1``, kept in head.json until it commits."""

    start: int
    end: int
    nonce: str  # identifies this batch's request markers
    owner: str  # changes on every takeover, so the head's ETag changes too
    state: Literal["append", "rollback"]
    request_ids: tuple[str, ...]
    checkpoint: str | None
    nodes: tuple[bytes, ...]
    lease: float

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "nonce": self.nonce, "owner": self.owner,
                "state": self.state, "request_ids": list(self.request_ids),
                "checkpoint": self.checkpoint, "nodes": [_b64(n) for n in self.nodes],
                "lease": self.lease}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> _Pending:
        state = doc["state"]
        if state not in ("append", "rollback"):
            raise ValueError(state)
        return cls(start=int(doc["start"]), end=int(doc["end"]), nonce=str(doc["nonce"]),
                   owner=str(doc["owner"]), state=state,
                   request_ids=tuple(str(r) for r in doc["request_ids"]),
                   checkpoint=None if doc["checkpoint"] is None else str(doc["checkpoint"]),
                   nodes=tuple(_unb64(n) for n in doc["nodes"]), lease=float(doc["lease"]))


@dataclass(frozen=True)
class _State:
    head: Head  # the committed head
    etag: str | None  # of head.json; None when it does not exist yet
    pending: _Pending | None


@dataclass(frozen=True)
class _Obj:
    body: bytes
    etag: str
    version_id: str | None
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class _Owner:
    """An append's hold on its reservation: what it needs to check before replacing things."""

    res: _Pending
    etag: str  # of head.json holding the reservation
    started: float  # time.monotonic() when it was taken
    lock: ObjectLockSettings | None


@dataclass
class _Written:
    """What one append wrote, so it can take exactly that back (key -> ETag or version)."""

    markers: dict[str, str] = field(default_factory=dict)
    leaves: dict[str, str] = field(default_factory=dict)
    keys: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # (ETag, version)
    checkpoint: tuple[str, str] | None = None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: object) -> bytes:
    return base64.b64decode(str(text), validate=True)


def _head_to_json(head: Head, pending: _Pending | None) -> bytes:
    return json.dumps({
        "format": STORE_FORMAT, "size": head.size, "nodes": [_b64(n) for n in head.nodes],
        "checkpoint": head.checkpoint, "pending": pending.to_json() if pending else None,
    }, sort_keys=True).encode()


def _key_row_to_json(row: KeyRow) -> bytes:
    return json.dumps({
        "seq": row.seq, "kek_id": row.kek_id,
        "wrapped_key": None if row.wrapped_key is None else _b64(row.wrapped_key),
        "tokens": _b64(row.tokens), "mac": _b64(row.mac),
    }, sort_keys=True).encode()


def _parse_s3_location(location: str) -> tuple[str, str]:
    parts = urlsplit(location)
    bucket = parts.netloc
    if parts.scheme != "s3" or not bucket or parts.query or parts.fragment or "@" in bucket:
        raise UsageError("an S3 ledger location is s3://bucket or s3://bucket/prefix")
    prefix = "/".join(p for p in parts.path.split("/") if p)
    if any(p in (".", "..") for p in prefix.split("/")):
        raise UsageError("an S3 ledger prefix may not contain . or .. segments")
    return bucket, prefix


# -- the store -------------------------------------------------------------------------------


class S3Store:
    """A ledger under one prefix of an S3 bucket.

    Args:
        location: ``s3://bucket`` or ``s3://bucket/prefix``.
        config: endpoint URL and region (``None``: boto3's defaults).
        create: the caller is about to create a ledger: a missing bucket is created, with
            Object Lock, by :meth:`create`.
        object_lock: retention for entries and checkpoints, fixed at :meth:`create` and kept
            in ``ledger.json``; default on an Object Lock bucket: GOVERNANCE, 3650 days.
        max_workers: parallel requests for bulk reads and writes.
        max_attempts: attempts per request (botocore standard retries with backoff).
        lease_seconds: how long an append's reservation is respected before another appender
            may settle it (tests shorten it to simulate crashes).
        client: an S3 client to use instead of building one (tests).

    Raises:
        UsageError: the location is malformed.
    """

    def __init__(self, location: str, *, config: StoreConfig | None = None, create: bool = False,
                 object_lock: ObjectLockSettings | None = None, max_workers: int = 16,
                 max_attempts: int = 4, lease_seconds: float = _LEASE_BASE,
                 client: S3Client | None = None) -> None:
        self.bucket, self.prefix = _parse_s3_location(location)
        self.location = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        endpoint = config.endpoint_url if config else None
        self._endpoint = redact_endpoint(endpoint)
        self._create = create
        self._object_lock = object_lock
        self._workers = max(1, max_workers)
        self._attempts = max(1, max_attempts)
        self._lease = lease_seconds
        self._pool: ThreadPoolExecutor | None = None
        self._settings: dict[str, Any] | None = None
        #: lines for the user about this bucket (e.g. no write-once protection), set by create
        self.notices: list[str] = []
        if client is not None:
            self._client = client
            return
        try:
            self._client = new_session().client(
                "s3",
                endpoint_url=endpoint,
                region_name=config.region if config else None,
                config=Config(
                    retries={"max_attempts": self._attempts, "mode": "standard"},
                    max_pool_connections=self._workers,
                    connect_timeout=5,
                    read_timeout=30,
                    # MinIO and other self-hosted endpoints need path-style addressing
                    s3={"addressing_style": "path"} if endpoint else None,
                ),
            )
        except (BotoCoreError, ValueError) as exc:
            raise UsageError(f"{self.location}: cannot configure S3 ({type(exc).__name__})") from exc

    # -- keys ------------------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _leaf_key(self, seq: int) -> str:
        return self._key(f"leaves/{seq:0{_SEQ_DIGITS}d}")

    def _row_key(self, seq: int) -> str:
        return self._key(f"keys/{seq:0{_SEQ_DIGITS}d}.json")

    def _checkpoint_key(self, size: int) -> str:
        return self._key(f"checkpoints/{size:0{_SEQ_DIGITS}d}.json")

    def _marker_key(self, request_id: str) -> str:
        return self._key(f"requests/{hashlib.sha256(request_id.encode()).hexdigest()}")

    @staticmethod
    def _seq_of(key: str) -> int | None:
        stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
        return int(stem) if stem.isdigit() and len(stem) == _SEQ_DIGITS else None

    # -- botocore at the edge --------------------------------------------------------------

    @contextmanager
    def _edge(self) -> Iterator[None]:
        """Translate every botocore failure into a LedgerError, once."""
        try:
            yield
        except ClientError as exc:
            raise translate_client_error(exc, location=self.location, attempts=self._attempts) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise StorageError(
                f"{self.location}: cannot reach {self._endpoint} ({type(exc).__name__}) "
                f"after {self._attempts} attempts") from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StorageError(
                f"{self.location}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or a profile)") from exc
        except ParamValidationError as exc:
            raise UsageError(f"{self.location}: invalid S3 request ({type(exc).__name__})") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self.location}: S3 client error ({type(exc).__name__})") from exc

    def _get(self, key: str, *, body: bool = True) -> _Obj | None:
        with self._edge():
            try:
                if body:
                    resp: Any = self._client.get_object(Bucket=self.bucket, Key=key)
                    data = resp["Body"].read()
                else:
                    resp = self._client.head_object(Bucket=self.bucket, Key=key)
                    data = b""
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    return None
                raise
        return _Obj(body=data, etag=str(resp.get("ETag", "")), version_id=resp.get("VersionId"),
                    metadata=dict(resp.get("Metadata") or {}))

    def _put(self, key: str, body: bytes, *, if_none_match: bool = False,
             if_match: str | None = None, lock: ObjectLockSettings | None = None,
             metadata: Mapping[str, str] | None = None) -> tuple[str, str | None]:
        """Write an object; returns (ETag, version id). Raises _Conflict when a condition fails."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        if metadata:
            args["Metadata"] = dict(metadata)
        if lock is not None:
            args["ObjectLockMode"] = lock.mode
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=lock.days)
        with self._edge():
            try:
                resp = self._client.put_object(**args)
            except ClientError as exc:
                if error_code(exc) in CONFLICT_CODES:
                    raise _Conflict(key) from None
                raise
        return str(resp.get("ETag", "")), resp.get("VersionId")

    def _delete(self, key: str, *, version_id: str | None = None, if_match: str | None = None) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id is not None:
            args["VersionId"] = version_id
        if if_match is not None:
            args["IfMatch"] = if_match
        with self._edge():
            try:
                self._client.delete_object(**args)
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES | NO_VERSION_CODES:
                    return
                if error_code(exc) in CONFLICT_CODES:
                    raise _Conflict(key) from None
                raise

    def _list(self, name: str, *, start_after: str | None = None) -> Iterator[str]:
        """Keys under ``prefix/name/``, one listing page at a time, in key order."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(name) + "/",
                                "PaginationConfig": {"PageSize": _PAGE}}
        if start_after is not None:
            args["StartAfter"] = start_after
        with self._edge():
            for page in self._client.get_paginator("list_objects_v2").paginate(**args):
                for item in page.get("Contents", []):
                    yield item["Key"]

    def _delete_versions(self, versions: Sequence[tuple[str, str]], what: str) -> None:
        """Delete exact object versions (and delete markers) in batches."""
        for i in range(0, len(versions), _DELETE_BATCH):
            chunk = versions[i : i + _DELETE_BATCH]
            with self._edge():
                resp = self._client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k, "VersionId": v} for k, v in chunk], "Quiet": True})
            errors = [e for e in resp.get("Errors", []) if e.get("Code") not in NO_VERSION_CODES]
            if errors:
                code = errors[0].get("Code", "unknown")
                hint = (" (a default Object Lock retention on the bucket locks them: remove it)"
                        if code == "AccessDenied" else "")
                raise StorageError(
                    f"{self.location}: could not delete {len(errors)} old versions of {what}: "
                    f"{code}{hint}")

    def _old_versions(self, name: str) -> list[tuple[str, str]]:
        """Every non-current version and delete marker under ``prefix/name/``."""
        found: list[tuple[str, str]] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(name) + "/",
                                "PaginationConfig": {"PageSize": _PAGE}}
        with self._edge():
            for page in self._client.get_paginator("list_object_versions").paginate(**args):
                for v in page.get("Versions", []):
                    if not v.get("IsLatest"):
                        found.append((v["Key"], v.get("VersionId") or "null"))
                found += [(m["Key"], m.get("VersionId") or "null") for m in page.get("DeleteMarkers", [])]
        return found

    def _all_versions(self, key: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        with self._edge():
            pages = self._client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=key)
            for page in pages:
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if item["Key"] == key:
                        found.append((key, item.get("VersionId") or "null"))
        return found

    def _erase(self, keys: Sequence[str], what: str) -> None:
        """Delete objects with every version and delete marker: nothing of them survives."""
        for key in keys:
            versions = self._all_versions(key)
            if versions:
                self._delete_versions(versions, what)

    # -- the thread pool -------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._workers,
                                            thread_name_prefix="erasure-ledger-s3")
        return self._pool

    def _ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """``map(fn, items)`` on the pool, in order, with a bounded number in flight."""
        pool = self._executor()
        it = iter(items)
        window: deque[Future[R]] = deque()
        try:
            for item in it:
                window.append(pool.submit(fn, item))
                if len(window) >= self._workers * 4:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()

    def _all(self, calls: Sequence[Callable[[], R]]) -> list[R]:
        """Run calls in parallel; wait for every one; then raise the first failure."""
        if len(calls) <= 1:
            return [c() for c in calls]
        futures = [self._executor().submit(c) for c in calls]
        results: list[R] = []
        first: BaseException | None = None
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as exc:  # collected; re-raised once every call has finished
                first = first or exc
        if first is not None:
            raise first
        return results

    # -- bucket and settings ---------------------------------------------------------------

    def protection(self) -> BucketProtection:
        """What the bucket guarantees: versioning, Object Lock, a default retention rule.

        Raises:
            StorageError: the bucket cannot be inspected.
        """
        with self._edge():
            status = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status", "Disabled")
            try:
                lock = self._client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc) not in NO_LOCK_CODES:
                    raise
                lock_conf: Mapping[str, Any] = {}
            else:
                lock_conf = lock.get("ObjectLockConfiguration", {})
        enabled = lock_conf.get("ObjectLockEnabled") == "Enabled"
        rule = lock_conf.get("Rule", {}).get("DefaultRetention")
        default = None
        if enabled and rule:
            period = f"{rule['Days']} days" if "Days" in rule else f"{rule.get('Years')} years"
            default = f"{rule.get('Mode')} {period}"
        return BucketProtection(self.bucket, str(status), enabled, default)

    def _ensure_bucket(self) -> bool:
        """Make sure the bucket exists; with ``create``, create it with Object Lock."""
        with self._edge():
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return False
            except ClientError as exc:
                if error_code(exc) not in MISSING_CODES | NO_BUCKET_CODES:
                    raise
            if not self._create:
                raise StorageError(f"{self.location}: the bucket does not exist")
            args: dict[str, Any] = {"Bucket": self.bucket, "ObjectLockEnabledForBucket": True}
            region = self._client.meta.region_name
            if region and region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self._client.create_bucket(**args)
            except ClientError as exc:
                if error_code(exc) not in BUCKET_OWNED_CODES:
                    raise
        log.info("created bucket %s with Object Lock", self.bucket)
        return True

    def _read_settings(self) -> dict[str, Any]:
        if self._settings is None:
            obj = self._get(self._key("ledger.json"))
            if obj is None:
                raise UsageError(f"no ledger at {self.location} (run erasure-ledger init)")
            try:
                doc = json.loads(obj.body)
                if doc.get("format") != STORE_FORMAT or not isinstance(doc.get("meta"), dict):
                    raise ValueError("format")
                lock = doc.get("object_lock")
                if lock is not None:
                    ObjectLockSettings(mode=lock["mode"], days=int(lock["days"]))
            except (ValueError, TypeError, KeyError, AttributeError):
                raise TamperedEntryError(f"{self.location}: ledger.json is malformed") from None
            self._settings = doc
        return self._settings

    def _lock_settings(self) -> ObjectLockSettings | None:
        """The retention fixed at create (read once from ledger.json)."""
        lock = self._read_settings().get("object_lock")
        return None if lock is None else ObjectLockSettings(mode=lock["mode"], days=int(lock["days"]))

    # -- protocol: meta --------------------------------------------------------------------

    def exists(self) -> bool:
        with self._edge():
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._key("ledger.json"))
            except ClientError as exc:
                # HEAD cannot tell a missing bucket from a missing key (both are a bare 404);
                # read_meta then names the missing bucket.
                if error_code(exc) in MISSING_CODES or (
                        self._create and error_code(exc) in NO_BUCKET_CODES):
                    return False
                raise
        return True

    def create(self, meta: Mapping[str, str]) -> None:
        """Write ``ledger.json`` once; create or check the bucket first.

        Raises:
            UsageError: a ledger exists here; or the bucket's Object Lock cannot keep key
                rows deletable (a default retention rule), or retention was asked for on a
                bucket without Object Lock.
            StorageError: the bucket is missing (without ``create``) or unreachable.
        """
        created = self._ensure_bucket()
        protection = self.protection()
        if protection.default_retention:
            raise UsageError(
                f"{self.location}: bucket {self.bucket} has a default Object Lock retention "
                f"({protection.default_retention}) that would lock key rows, so shred could not "
                "delete them; remove the default rule (the ledger sets retention per entry)")
        lock = None
        if protection.object_lock:
            lock = self._object_lock or ObjectLockSettings()
        elif self._object_lock is not None:
            raise UsageError(
                f"{self.location}: bucket {self.bucket} has no Object Lock, so entries cannot be "
                "given a retention period (create the bucket with Object Lock enabled)")
        doc = {"format": STORE_FORMAT, "meta": dict(meta),
               "object_lock": None if lock is None else {"mode": lock.mode, "days": lock.days}}
        self._settings = None
        try:
            self._put(self._key("ledger.json"), json.dumps(doc, sort_keys=True).encode(),
                      if_none_match=True, lock=lock)
        except _Conflict:
            raise UsageError(f"a ledger already exists at {self.location}") from None
        self._settings = doc
        notice = protection.notice()
        if created:
            self.notices.append(f"created bucket {self.bucket} with Object Lock")
        if lock is not None:
            self.notices.append(
                f"entries and checkpoints are write-once for {lock.days} days ({lock.mode} mode)")
        if notice:
            self.notices.append(notice)
            log.warning("%s", notice)

    def read_meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._read_settings()["meta"].items()}

    # -- protocol: head --------------------------------------------------------------------

    def _read_state(self) -> _State:
        obj = self._get(self._key("head.json"))
        if obj is None:
            return _State(EMPTY_HEAD, None, None)
        try:
            doc = json.loads(obj.body)
            if doc.get("format") != STORE_FORMAT:
                raise ValueError("format")
            head = Head(size=int(doc["size"]), nodes=tuple(_unb64(n) for n in doc["nodes"]),
                        checkpoint=None if doc["checkpoint"] is None else str(doc["checkpoint"]))
            pending = None if doc.get("pending") is None else _Pending.from_json(doc["pending"])
        except (ValueError, TypeError, KeyError, AttributeError):
            raise TamperedEntryError(f"{self.location}: head.json is malformed") from None
        if head.size < 0:
            raise TamperedEntryError(f"{self.location}: head.json is malformed")
        return _State(head, obj.etag, pending)

    def _put_head(self, head: Head, pending: _Pending | None, *, etag: str | None) -> str:
        body = _head_to_json(head, pending)
        if etag is None:
            return self._put(self._key("head.json"), body, if_none_match=True)[0]
        return self._put(self._key("head.json"), body, if_match=etag)[0]

    def read_head(self) -> Head:
        return self._read_state().head

    # -- protocol: append ------------------------------------------------------------------

    def append(self, prepare: PrepareAppend) -> AppendBatch:
        """Reserve seqs by compare-and-swap on head.json, write, then commit the head.

        Raises:
            DuplicateRequestError: a request id of the batch is already in the ledger.
            StorageError: S3 failed, or other appenders kept the ledger busy too long.
        """
        deadline = time.monotonic() + _APPEND_TIMEOUT
        seen: tuple[str | None, float] = (None, 0.0)  # a reservation's head ETag, first seen
        delay = 0.005
        while True:
            if time.monotonic() > deadline:
                raise StorageError(f"{self.location}: other appenders kept the ledger busy for "
                                   f"{_APPEND_TIMEOUT:.0f} s; nothing was appended, retry")
            state = self._read_state()
            if state.pending is not None:
                if seen[0] != state.etag:
                    seen = (state.etag, time.monotonic())
                if time.monotonic() - seen[1] >= state.pending.lease:
                    self._settle(state)
                else:
                    delay = self._backoff(delay)
                continue
            batch = prepare(state.head)
            self._check_batch(state.head, batch)
            if not batch.leaves:
                if self._commit_checkpoint(state, batch):
                    return batch
                delay = self._backoff(delay)
                continue
            reservation = _Pending(
                start=state.head.size, end=batch.head.size, nonce=secrets.token_hex(8),
                owner=secrets.token_hex(8), state="append",
                request_ids=tuple(leaf.request_id for leaf in batch.leaves),
                checkpoint=batch.head.checkpoint, nodes=tuple(batch.head.nodes),
                lease=self._lease + _LEASE_PER_ENTRY * len(batch.leaves) if self._lease else 0.0)
            try:
                etag = self._put_head(state.head, reservation, etag=state.etag)
            except _Conflict:
                delay = self._backoff(delay)  # another appender won this head: prepare again
                continue
            return self._write_reserved(state.head, batch, reservation, etag)

    @staticmethod
    def _backoff(delay: float) -> float:
        time.sleep(random.uniform(0, delay))  # noqa: S311 - jitter, not cryptography
        return min(delay * 2, 0.25)

    def _check_batch(self, head: Head, batch: AppendBatch) -> None:
        seqs = [leaf.seq for leaf in batch.leaves]
        if seqs != list(range(head.size, head.size + len(seqs))) or \
                batch.head.size != head.size + len(seqs) or \
                not {row.seq for row in batch.key_rows} <= set(seqs):
            raise UsageError(f"{self.location}: an append must continue at entry {head.size}")

    def _commit_checkpoint(self, state: _State, batch: AppendBatch) -> bool:
        """An append without leaves: only a new signed checkpoint of the same tree."""
        if batch.head.checkpoint is not None:
            self._write_checkpoint(batch.head, referenced=state.head.checkpoint,
                                   lock=self._lock_settings())
        try:
            self._put_head(batch.head, None, etag=state.etag)
        except _Conflict:
            return False
        return True

    def _checkpoint_body(self, head: Head) -> bytes:
        return json.dumps({"size": head.size, "note": head.checkpoint,
                           "nodes": [_b64(n) for n in head.nodes]}, sort_keys=True).encode()

    def _write_checkpoint(self, head: Head, *, referenced: str | None,
                          lock: ObjectLockSettings | None) -> tuple[str, str]:
        """Write checkpoints/<size>.json once; an unreferenced leftover is replaced."""
        key = self._checkpoint_key(head.size)
        body = self._checkpoint_body(head)
        try:
            return key, self._put(key, body, if_none_match=True, lock=lock)[0]
        except _Conflict:
            existing = self._get(key)
            note = self._note_of(existing) if existing else None
            if existing is not None and note == head.checkpoint:
                return key, existing.etag
            if existing is not None and note is not None and note == referenced:
                raise StorageError(f"{self.location}: a different checkpoint of size "
                                   f"{head.size} is already stored") from None
            log.warning("checkpoint %d: replacing an object left by an unfinished append", head.size)
            try:
                return key, self._put(key, body, if_match=existing.etag if existing else None,
                                      if_none_match=existing is None, lock=lock)[0]
            except _Conflict:
                raise StorageError(f"{self.location}: another writer wrote the checkpoint of size "
                                   f"{head.size} at the same moment; retry") from None

    def _write_reserved(self, head: Head, batch: AppendBatch, res: _Pending, etag: str) -> AppendBatch:
        written = _Written()
        started = time.monotonic()
        try:
            lock = self._lock_settings()
            own = _Owner(res, etag, started, lock)
            self._all([partial(self._write_marker, leaf, res, written) for leaf in batch.leaves])
            self._all([*(partial(self._write_leaf, leaf, own, written) for leaf in batch.leaves),
                       *(partial(self._write_row, row, own, written) for row in batch.key_rows)])
            if batch.head.checkpoint is not None:
                written.checkpoint = self._write_checkpoint(batch.head, referenced=None, lock=lock)
        except BaseException:
            self._abort(head, res, etag, written)
            raise
        try:
            self._put_head(batch.head, None, etag=etag)
        except _Conflict:
            # Someone settled our reservation: it may have rolled us forward.
            if self._committed(batch):
                return batch
            self._undo(written)
            raise StorageError(f"{self.location}: the append took longer than its "
                               f"{res.lease:.0f} s lease and was rolled back; retry") from None
        log.debug("appended seqs %d..%d", res.start, res.end - 1)
        return batch

    def _committed(self, batch: AppendBatch) -> bool:
        state = self._read_state()
        if state.head.size < batch.head.size:
            return False
        cp = self._get(self._checkpoint_key(batch.head.size))
        return cp is not None and self._note_of(cp) == batch.head.checkpoint

    def _still_owner(self, own: _Owner) -> None:
        """Before replacing a leftover object: our reservation must still be the live one."""
        if own.res.lease and time.monotonic() - own.started > own.res.lease / 2:
            raise StorageError(f"{self.location}: the append ran out of time; retry")
        if self._read_state().etag != own.etag:
            raise StorageError(f"{self.location}: the append lost its reservation; retry")

    def _write_marker(self, leaf: StoredLeaf, res: _Pending, written: _Written) -> None:
        key = self._marker_key(leaf.request_id)
        body = json.dumps({"request_id": leaf.request_id, "seq": leaf.seq, "nonce": res.nonce},
                          sort_keys=True).encode()
        try:
            written.markers[key] = self._put(key, body, if_none_match=True)[0]
            return
        except _Conflict:
            pass
        existing = self._get(key)
        if existing is not None:
            doc = self._marker_doc(existing)
            if doc is not None and doc.get("nonce") == res.nonce:
                raise DuplicateRequestError(f"request {leaf.request_id} appears twice in the input")
            if doc is not None and self._marker_committed(doc, leaf.request_id, res.start):
                raise DuplicateRequestError(f"request {leaf.request_id} is already in the ledger")
            log.warning("request %s: replacing a marker left by an unfinished append", leaf.request_id)
        try:
            written.markers[key] = self._put(
                key, body, if_match=existing.etag if existing else None,
                if_none_match=existing is None)[0]
        except _Conflict:
            raise StorageError(f"{self.location}: request {leaf.request_id} is being appended "
                               "by another writer at the same moment; retry") from None

    @staticmethod
    def _marker_doc(obj: _Obj) -> dict[str, Any] | None:
        try:
            doc = json.loads(obj.body)
            return doc if isinstance(doc, dict) and isinstance(doc.get("seq"), int) else None
        except ValueError:
            return None

    def _marker_committed(self, doc: Mapping[str, Any], request_id: str, size: int) -> bool:
        """A marker counts when its leaf is committed and carries the same request id."""
        seq = int(doc["seq"])
        if not 0 <= seq < size:
            return False
        leaf = self._get(self._leaf_key(seq), body=False)
        return leaf is not None and unquote(leaf.metadata.get("request-id", "")) == request_id

    def _write_owned(self, key: str, body: bytes, own: _Owner, *, locked: bool,
                     metadata: Mapping[str, str] | None = None) -> tuple[str, str | None]:
        """Write a new object in our reserved range; replace a leftover of an unfinished append."""
        lock = own.lock if locked else None
        try:
            return self._put(key, body, if_none_match=True, lock=lock, metadata=metadata)
        except _Conflict:
            pass
        self._still_owner(own)
        existing = self._get(key, body=False)
        log.warning("%s: replacing an object left by an unfinished append", key[len(self.prefix):])
        try:
            written = self._put(key, body, if_match=existing.etag if existing else None,
                                if_none_match=existing is None, lock=lock, metadata=metadata)
        except _Conflict:
            raise StorageError(f"{self.location}: another writer wrote {key} at the same moment; "
                               "retry") from None
        if not locked:  # a leftover key row: none of its versions may survive
            self._delete_versions([v for v in self._all_versions(key) if v[1] != written[1]],
                                  "key rows")
        return written

    def _write_leaf(self, leaf: StoredLeaf, own: _Owner, written: _Written) -> None:
        key = self._leaf_key(leaf.seq)
        written.leaves[key] = self._write_owned(
            key, leaf.data, own, locked=True,
            metadata={"request-id": quote(leaf.request_id, safe="")})[0]

    def _write_row(self, row: KeyRow, own: _Owner, written: _Written) -> None:
        key = self._row_key(row.seq)
        # If-None-Match: a late writer can never put back a key that shred has replaced.
        written.keys[key] = self._write_owned(key, _key_row_to_json(row), own, locked=False)

    def _undo(self, written: _Written) -> None:
        """Take back exactly what this append wrote (conditional on our own ETags)."""
        calls: list[Callable[[], None]] = []
        if written.checkpoint is not None:
            key, tag = written.checkpoint
            calls.append(partial(self._delete_quietly, key, if_match=tag))
        for k, t in [*written.leaves.items(), *written.markers.items()]:
            calls.append(partial(self._delete_quietly, k, if_match=t))
        for k, (tag, version) in written.keys.items():
            # the exact version we wrote (key material, so no delete marker is left in its place)
            if version and version != "null":
                calls.append(partial(self._delete_quietly, k, version_id=version))
            else:
                calls.append(partial(self._delete_quietly, k, if_match=tag))
        self._all(calls)

    def _delete_quietly(self, key: str, *, if_match: str | None = None,
                        version_id: str | None = None) -> None:
        with suppress(_Conflict):  # someone else's object now: not ours to take back
            self._delete(key, if_match=if_match, version_id=version_id)

    def _abort(self, head: Head, res: _Pending, etag: str, written: _Written) -> None:
        try:
            self._undo(written)
            self._put_head(head, None, etag=etag)
        except (LedgerError, _Conflict) as exc:
            # The reservation stays; the next appender settles it once its lease is over.
            log.debug("could not take back the failed append of seqs %d..%d: %s",
                      res.start, res.end - 1, exc)

    def _settle(self, state: _State) -> None:
        """Finish a reservation whose owner went silent: roll it forward or back."""
        res = state.pending
        assert res is not None
        assert state.etag is not None
        if res.state == "append" and res.checkpoint is not None:
            cp = self._get(self._checkpoint_key(res.end))
            if cp is not None and self._note_of(cp) == res.checkpoint:
                log.warning("adopting entries %d..%d written by an append that did not finish",
                            res.start, res.end - 1)
                new = Head(size=res.end, nodes=res.nodes, checkpoint=res.checkpoint)
                with suppress(_Conflict):
                    self._put_head(new, None, etag=state.etag)
                return
        # Take the reservation over first, so only one process deletes what it left.
        mine = _Pending(res.start, res.end, res.nonce, secrets.token_hex(8), "rollback",
                        res.request_ids, res.checkpoint, res.nodes, max(res.lease, self._lease))
        try:
            etag = self._put_head(state.head, mine, etag=state.etag)
        except _Conflict:
            return
        log.warning("rolling back entries %d..%d of an append that did not finish",
                    res.start, res.end - 1)
        seqs = range(res.start, res.end)
        # No one else may write in this range while we hold it.
        self._delete_if_present(self._checkpoint_key(res.end))
        self._all([partial(self._delete_if_present, self._leaf_key(s)) for s in seqs])
        self._all([partial(self._erase, [self._row_key(s)], "key rows") for s in seqs])
        self._all([partial(self._drop_marker, r, res) for r in res.request_ids])
        with suppress(_Conflict):
            self._put_head(state.head, None, etag=etag)

    def _delete_if_present(self, key: str) -> None:
        # (a plain DELETE of a missing key would still add a delete marker on a versioned bucket)
        obj = self._get(key, body=False)
        if obj is not None:
            self._delete_quietly(key, if_match=obj.etag)

    def _drop_marker(self, request_id: str, res: _Pending) -> None:
        key = self._marker_key(request_id)
        obj = self._get(key)
        doc = self._marker_doc(obj) if obj else None
        if obj is not None and doc is not None and doc.get("nonce") == res.nonce:
            self._delete_quietly(key, if_match=obj.etag)

    @staticmethod
    def _note_of(obj: _Obj) -> str | None:
        try:
            note = json.loads(obj.body).get("note")
        except (ValueError, AttributeError):
            return None
        return note if isinstance(note, str) else None

    # -- protocol: reads -------------------------------------------------------------------

    def request_ids_present(self, request_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(request_ids))
        size = self.read_head().size

        def check(request_id: str) -> str | None:
            obj = self._get(self._marker_key(request_id))
            doc = self._marker_doc(obj) if obj else None
            if doc is not None and self._marker_committed(doc, request_id, size):
                return request_id
            return None

        return {r for r in self._ordered(check, ids) if r is not None}

    def _fetch_leaf(self, seq: int) -> StoredLeaf:
        obj = self._get(self._leaf_key(seq))
        if obj is None:
            raise TamperedEntryError(f"entry {seq}: missing from the store")
        return StoredLeaf(seq=seq, request_id=unquote(obj.metadata.get("request-id", "")),
                          data=obj.body)

    def iter_leaves(self, start: int = 0, stop: int | None = None) -> Iterator[StoredLeaf]:
        end = self.read_head().size if stop is None else stop
        yield from self._ordered(self._fetch_leaf, range(start, end))

    def iter_leaf_data(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Leaf bytes in order; reading up to the head also checks that nothing lies past it."""
        state = self._read_state()
        end = state.head.size if stop is None else stop
        for leaf in self._ordered(self._fetch_leaf, range(start, end)):
            yield leaf.data
        if end == state.head.size:
            self._check_nothing_past(state)

    def _check_nothing_past(self, state: _State) -> None:
        """An entry object past the head is a forgery, or an unfinished append's leftover.

        Appends keep running while a long verify reads, so an object is only reported when
        neither the head read before the listing nor the one read after it accounts for it,
        three times in a row (an append that fails deletes its entries again).
        """
        size = state.head.size
        after = self._leaf_key(size - 1) if size else None
        for pause in (0.1, 0.3, None):
            seqs = [s for k in self._list("leaves", start_after=after) if (s := self._seq_of(k)) is not None]
            later = self._read_state()
            unexplained = [s for s in seqs if not any(
                self._accounts_for(st, s) for st in (state, later))]
            if not unexplained:
                return
            if pause is None:
                raise TamperedEntryError(
                    f"entry {unexplained[0]}: an entry object exists past the signed head of size "
                    f"{size} (added outside the ledger)")
            time.sleep(pause)
            state = later

    @staticmethod
    def _accounts_for(state: _State, seq: int) -> bool:
        """The head holds this seq, or an append in flight (or awaiting settlement) does."""
        p = state.pending
        return seq < state.head.size or (p is not None and p.start <= seq < p.end)

    def _fetch_row(self, key: str) -> KeyRow | None:
        obj = self._get(key)
        if obj is None:
            return None
        seq = self._seq_of(key)
        try:
            doc = json.loads(obj.body)
            if doc["seq"] != seq:
                raise ValueError("seq")
            return KeyRow(seq=int(doc["seq"]), kek_id=doc["kek_id"],
                          wrapped_key=None if doc["wrapped_key"] is None else _unb64(doc["wrapped_key"]),
                          tokens=_unb64(doc["tokens"]), mac=_unb64(doc["mac"]))
        except (ValueError, TypeError, KeyError):
            raise TamperedEntryError(f"entry {seq}: its key row object is malformed") from None

    def iter_key_rows(self) -> Iterator[KeyRow]:
        size = self.read_head().size
        keys = (k for k in self._list("keys") if (s := self._seq_of(k)) is not None and s < size)
        for row in self._ordered(self._fetch_row, keys):
            if row is not None:
                yield row

    def replace_key_rows(self, rows: Sequence[KeyRow]) -> None:
        """Write the new key rows, then delete every older version of every key row.

        Each row is replaced atomically; a batch is not (S3 has no multi-object
        transaction): after a failure, run the same shred or rotation again.

        Raises:
            StorageError: a write or delete failed (e.g. a default retention locks key rows).
        """
        if not rows:
            return
        self._all([partial(self._put, self._row_key(r.seq), _key_row_to_json(r)) for r in rows])
        # Sweep the whole keys/ prefix, which also removes what an earlier crash left behind.
        self._delete_versions(self._old_versions("keys"), "key rows")

    def iter_checkpoints(self, *, since: int = 0) -> Iterator[tuple[int, str]]:
        """Every stored checkpoint of size >= ``since``, by size.

        The head is read after the checkpoints were fetched, so the checkpoint of an append
        still in flight is left out: every checkpoint returned is at most the size of any
        head read afterwards (a larger one means entries were removed).
        """
        after = self._checkpoint_key(since - 1) if since > 0 else None
        keys = [k for k in self._list("checkpoints", start_after=after) if self._seq_of(k) is not None]
        objects = list(self._ordered(self._get, keys))
        p = self._read_state().pending
        for key, obj in zip(keys, objects, strict=True):
            size = self._seq_of(key)
            assert size is not None
            if obj is None:
                continue
            note = self._note_of(obj)
            if note is None:
                raise TamperedEntryError(f"checkpoint at size {size}: its object is malformed")
            if p is not None and size == p.end and note == p.checkpoint:
                continue
            yield size, note

    def checkpoint_nodes(self, size: int) -> tuple[bytes, ...] | None:
        """The compact-range nodes stored beside the checkpoint of ``size`` (untrusted: the
        caller checks them against a trusted root), or None."""
        obj = self._get(self._checkpoint_key(size))
        if obj is None:
            return None
        try:
            return tuple(_unb64(n) for n in json.loads(obj.body)["nodes"])
        except (ValueError, TypeError, KeyError):
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


__all__ = [
    "CLIENT_ERRORS",
    "HANDLED_CODES",
    "BucketProtection",
    "ObjectLockSettings",
    "S3Store",
    "new_session",
    "redact_endpoint",
    "translate_client_error",
]
