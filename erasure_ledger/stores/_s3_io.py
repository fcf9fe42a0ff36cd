"""Requests to one S3 bucket, for the S3 store: conditional GET/PUT/DELETE, paged listings,
version sweeps, bucket checks, and the bounded thread pool that runs them in parallel.

:class:`Bucket` wraps one boto3 client. Every request runs inside
:func:`._s3_errors.edge`, so what leaves this module is a ledger error, ``None`` for a
missing object, or :class:`._s3_errors.Conflict` for a lost conditional write. It leaves
out what the objects mean (:mod:`._s3_layout` names and encodes them, :mod:`._s3_append` and
:mod:`.s3` decide what to write) and never parses an object body.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from erasure_ledger.errors import StorageError, UsageError
from erasure_ledger.stores._s3_errors import Conflict, delete_failure, edge, reaction
from erasure_ledger.stores._s3_layout import ObjectLockSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_DELETE_BATCH = 1000  # keys per DeleteObjects call (the S3 maximum)

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


def connect(*, location: str, endpoint_url: str | None, region: str | None, attempts: int,
            workers: int) -> S3Client:
    """An S3 client with standard retries and a connection per worker.

    Raises:
        UsageError: botocore refuses the configuration (e.g. a malformed endpoint URL).
    """
    try:
        return new_session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"max_attempts": attempts, "mode": "standard"},
                max_pool_connections=workers,
                connect_timeout=5,
                read_timeout=30,
                # MinIO and other self-hosted endpoints need path-style addressing
                s3={"addressing_style": "path"} if endpoint_url else None,
            ),
        )
    except (BotoCoreError, ValueError) as exc:
        raise UsageError(f"{location}: cannot configure S3 ({type(exc).__name__})") from exc


@dataclass(frozen=True)
class BucketProtection:
    """What the bucket itself guarantees, as found by :meth:`Bucket.protection`."""

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
class Obj:
    """One object as read (``body`` is empty after a HEAD)."""

    body: bytes
    etag: str
    version_id: str | None
    metadata: Mapping[str, str]


class Bucket:
    """One bucket through one client, for a store at ``location`` (which starts every error).

    Args:
        client: the S3 client; tests register event hooks on it.
        endpoint: the endpoint, already redacted, for "cannot reach" messages.
        attempts: the client's attempts per request (for messages).
        workers: threads for parallel requests (the client's connection pool size).
        page_size: keys per listing page.
    """

    def __init__(self, client: S3Client, name: str, *, location: str, endpoint: str,
                 attempts: int, workers: int, page_size: int) -> None:
        self.client = client
        self.name = name
        self.location = location
        self._endpoint = endpoint
        self._attempts = attempts
        self._workers = workers
        self._page_size = page_size
        self._pool: ThreadPoolExecutor | None = None

    def edge(self) -> AbstractContextManager[None]:
        """Translate every botocore failure into a LedgerError, once."""
        return edge(self.location, endpoint=self._endpoint, attempts=self._attempts)

    # -- objects -----------------------------------------------------------------------------

    def get(self, key: str, *, body: bool = True) -> Obj | None:
        """GET (or HEAD, without ``body``) an object; None when it does not exist."""
        with self.edge():
            try:
                if body:
                    resp: Any = self.client.get_object(Bucket=self.name, Key=key)
                    data = resp["Body"].read()
                else:
                    resp = self.client.head_object(Bucket=self.name, Key=key)
                    data = b""
            except ClientError as exc:
                if reaction(exc) == "missing":
                    return None
                raise
        return Obj(body=data, etag=str(resp.get("ETag", "")), version_id=resp.get("VersionId"),
                   metadata=dict(resp.get("Metadata") or {}))

    def exists(self, key: str, *, missing_bucket_means_absent: bool = False) -> bool:
        """Whether an object exists (HEAD cannot tell a missing bucket from a missing key, so a
        missing bucket is an error unless ``missing_bucket_means_absent``)."""
        with self.edge():
            try:
                self.client.head_object(Bucket=self.name, Key=key)
            except ClientError as exc:
                why = reaction(exc)
                if why == "missing" or (missing_bucket_means_absent and why == "no-bucket"):
                    return False
                raise
        return True

    def put(self, key: str, body: bytes, *, if_none_match: bool = False,
            if_match: str | None = None, lock: ObjectLockSettings | None = None,
            metadata: Mapping[str, str] | None = None) -> tuple[str, str | None]:
        """Write an object; returns (ETag, version id). Raises Conflict when a condition fails."""
        args: dict[str, Any] = {"Bucket": self.name, "Key": key, "Body": body}
        if if_none_match:
            args["IfNoneMatch"] = "*"
        if if_match is not None:
            args["IfMatch"] = if_match
        if metadata:
            args["Metadata"] = dict(metadata)
        if lock is not None:
            args["ObjectLockMode"] = lock.mode
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=lock.days)
        with self.edge():
            try:
                resp = self.client.put_object(**args)
            except ClientError as exc:
                if reaction(exc) == "conflict":
                    raise Conflict(key) from None
                raise
        return str(resp.get("ETag", "")), resp.get("VersionId")

    def delete(self, key: str, *, version_id: str | None = None, if_match: str | None = None) -> None:
        """Delete an object (or one version); already gone is fine. Raises Conflict when
        ``if_match`` no longer matches."""
        args: dict[str, Any] = {"Bucket": self.name, "Key": key}
        if version_id is not None:
            args["VersionId"] = version_id
        if if_match is not None:
            args["IfMatch"] = if_match
        with self.edge():
            try:
                self.client.delete_object(**args)
            except ClientError as exc:
                why = reaction(exc)
                if why in ("missing", "no-version"):
                    return
                if why == "conflict":
                    raise Conflict(key) from None
                raise

    def list_keys(self, prefix: str, *, start_after: str | None = None) -> Iterator[str]:
        """Keys under ``prefix``, one listing page at a time, in key order."""
        args: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix,
                                "PaginationConfig": {"PageSize": self._page_size}}
        if start_after is not None:
            args["StartAfter"] = start_after
        with self.edge():
            for page in self.client.get_paginator("list_objects_v2").paginate(**args):
                for item in page.get("Contents", []):
                    yield item["Key"]

    # -- versions ----------------------------------------------------------------------------

    def delete_versions(self, versions: Sequence[tuple[str, str]], what: str) -> None:
        """Delete exact object versions (and delete markers) in batches."""
        for i in range(0, len(versions), _DELETE_BATCH):
            chunk = versions[i : i + _DELETE_BATCH]
            with self.edge():
                resp = self.client.delete_objects(Bucket=self.name, Delete={
                    "Objects": [{"Key": k, "VersionId": v} for k, v in chunk], "Quiet": True})
            failure = delete_failure(resp.get("Errors", []), location=self.location, what=what)
            if failure is not None:
                raise failure

    def old_versions(self, prefix: str) -> list[tuple[str, str]]:
        """Every non-current version and delete marker under ``prefix``."""
        found: list[tuple[str, str]] = []
        args: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix,
                                "PaginationConfig": {"PageSize": self._page_size}}
        with self.edge():
            for page in self.client.get_paginator("list_object_versions").paginate(**args):
                for v in page.get("Versions", []):
                    if not v.get("IsLatest"):
                        found.append((v["Key"], v.get("VersionId") or "null"))
                found += [(m["Key"], m.get("VersionId") or "null") for m in page.get("DeleteMarkers", [])]
        return found

    def all_versions(self, key: str) -> list[tuple[str, str]]:
        """Every version and delete marker of one key."""
        found: list[tuple[str, str]] = []
        with self.edge():
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.name, Prefix=key)
            for page in pages:
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if item["Key"] == key:
                        found.append((key, item.get("VersionId") or "null"))
        return found

    def erase(self, keys: Sequence[str], what: str) -> None:
        """Delete objects with every version and delete marker: nothing of them survives."""
        for key in keys:
            versions = self.all_versions(key)
            if versions:
                self.delete_versions(versions, what)

    # -- the bucket itself -------------------------------------------------------------------

    def protection(self) -> BucketProtection:
        """What the bucket guarantees: versioning, Object Lock, a default retention rule.

        Raises:
            StorageError: the bucket cannot be inspected.
        """
        with self.edge():
            status = self.client.get_bucket_versioning(Bucket=self.name).get("Status", "Disabled")
            try:
                lock = self.client.get_object_lock_configuration(Bucket=self.name)
            except ClientError as exc:
                if reaction(exc) != "no-lock":
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
        return BucketProtection(self.name, str(status), enabled, default)

    def ensure(self, *, create: bool) -> bool:
        """Make sure the bucket exists; with ``create``, create it with Object Lock. Returns
        whether it was created.

        Raises:
            StorageError: the bucket is missing (without ``create``) or cannot be created.
        """
        with self.edge():
            try:
                self.client.head_bucket(Bucket=self.name)
                return False
            except ClientError as exc:
                if reaction(exc) not in ("missing", "no-bucket"):
                    raise
            if not create:
                raise StorageError(f"{self.location}: the bucket does not exist")
            args: dict[str, Any] = {"Bucket": self.name, "ObjectLockEnabledForBucket": True}
            region = self.client.meta.region_name
            if region and region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self.client.create_bucket(**args)
            except ClientError as exc:
                if reaction(exc) != "bucket-owned":
                    raise
        log.info("created bucket %s with Object Lock", self.name)
        return True

    # -- the thread pool ---------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._workers,
                                            thread_name_prefix="erasure-ledger-s3")
        return self._pool

    def ordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
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

    def all(self, calls: Sequence[Callable[[], R]]) -> list[R]:
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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


__all__ = ["Bucket", "BucketProtection", "Obj", "connect", "new_session", "redact_endpoint"]
