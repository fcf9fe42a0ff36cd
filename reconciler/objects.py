"""Object storage (S3 or compatible): every version of an object, and drill downloads.

The only boto3 importer in :mod:`reconciler`. :class:`ObjectStore` lists the versions and
delete markers under a prefix (a versioned bucket keeps old versions after a plain delete, so
erasing a person's identity document means deleting every version), deletes them, and
downloads a snapshot file for ``reconciler drill``. Every botocore failure is translated here,
once, into a :class:`~reconciler.errors.ReconcileError` subclass with one line naming the
bucket (``s3://id-documents (objects[0]): access denied ...``); object keys can hold personal
data (``customers/C-1001/id.pdf``), so no message, log line or repr ever shows one.

Left out on purpose: which keys belong to whom (reconciler.locations), no environment (the
endpoint is a parameter; boto3's own credential lookup is the one accepted exception), no
printing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import ObjectStorageError, ReconcileError, SnapshotError, redact_url

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client

# boto3 and botocore are imported when first needed: they cost a noticeable share of the
# command line's start-up, and most runs never touch object storage.

logger = logging.getLogger(__name__)

_DELETE_BATCH = 1000  # keys per DeleteObjects call (the S3 maximum)
_DENIED = "access denied (check the credentials' S3 permissions and the bucket policy)"
_CREDENTIALS = "the AWS credentials were rejected (expired or wrong key)"
_BUSY = "S3 is throttling or unavailable; retry later"
_REGION = "the bucket is in another region (set AWS_DEFAULT_REGION)"

#: ClientError code -> one-line reason. Codes not listed become "S3 error <code>".
CLIENT_ERRORS: dict[str, str] = {
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "no such object",
    "NotFound": "no such object",
    "404": "no such object",
    "NoSuchVersion": "an object version disappeared while it was being deleted",
    "InvalidBucketName": "not a valid S3 bucket name",
    "AccessDenied": _DENIED,
    "403": _DENIED,
    "AllAccessDisabled": _DENIED,
    "AccountProblem": _DENIED,
    "InvalidAccessKeyId": _CREDENTIALS,
    "SignatureDoesNotMatch": _CREDENTIALS,
    "ExpiredToken": _CREDENTIALS,
    "InvalidToken": _CREDENTIALS,
    "SlowDown": _BUSY,
    "Throttling": _BUSY,
    "ServiceUnavailable": _BUSY,
    "503": _BUSY,
    "InternalError": _BUSY,
    "500": _BUSY,
    "RequestTimeout": _BUSY,
    "PermanentRedirect": _REGION,
    "301": _REGION,
    "AuthorizationHeaderMalformed": _REGION,
    "InvalidObjectState": "an object is archived (restore it from Glacier first)",
    "MethodNotAllowed": "the endpoint does not allow a request the reconciler needs",
    "NotImplemented": "the endpoint does not implement a request the reconciler needs",
}

#: Codes this module reacts to by name; each must have a line in CLIENT_ERRORS (tested).
HANDLED_CODES = frozenset({"NoSuchBucket", "NoSuchKey", "NotFound", "404", "NoSuchVersion",
                           "AccessDenied", "403"})


_loader_lock = threading.Lock()
_loader: Any = None


def _session() -> Any:
    """A fresh boto3 session (credentials resolved anew) sharing one model loader, so each
    client costs milliseconds rather than a re-parse of botocore's JSON models."""
    global _loader  # noqa: PLW0603 - a process-wide cache of immutable data
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _loader)
    return boto3.session.Session(botocore_session=core)


@dataclass(frozen=True)
class ObjectVersion:
    """One version (or delete marker) of one object."""

    key: str = field(repr=False)  # can hold personal data: never shown
    version_id: str
    delete_marker: bool = False


def parse_s3_url(location: str) -> tuple[str, str]:
    """Split ``s3://bucket/key``.

    Raises:
        SnapshotError: not an ``s3://bucket/key`` location.

    Returns:
        (bucket, key).
    """
    rest = location.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if not location.startswith("s3://") or not bucket or not key or key.endswith("/"):
        raise SnapshotError(f"{redact_url(location)}: expected s3://bucket/key of one object")
    return bucket, key


def error_code(exc: ClientError) -> str:
    """Returns: the error code of a ClientError (or its HTTP status)."""
    return str(exc.response.get("Error", {}).get("Code")
               or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "unknown")


def _reason(exc: Exception, endpoint: str) -> str:
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        code = error_code(exc)
        return CLIENT_ERRORS.get(code, f"S3 error {code}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ("no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE)")
    if isinstance(exc, EndpointConnectionError | BotoConnectionError | HTTPClientError):
        return f"cannot reach {endpoint}"
    if isinstance(exc, ParamValidationError):
        return "the request was refused before it was sent (check the bucket name)"
    return f"S3 request failed ({type(exc).__name__})"


@contextmanager
def _translated(label: str, endpoint: str,
                error: type[ReconcileError] = ObjectStorageError) -> Iterator[None]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        # botocore's own message can quote keys and URLs with credentials: not shown.
        logger.debug("%s: %s", label, type(exc).__name__)
        raise error(f"{label}: {_reason(exc, endpoint)}") from None


class ObjectStore:
    """S3 (or an S3-compatible endpoint) as the reconciler needs it.

    Args:
        endpoint_url: ``--endpoint-url``; None for AWS.
        client: a ready boto3 S3 client (tests); made lazily otherwise.
    """

    def __init__(self, *, endpoint_url: str | None = None, client: Any = None) -> None:
        self.endpoint_url = endpoint_url
        self.endpoint = redact_url(endpoint_url) if endpoint_url else "AWS S3"
        self._client: S3Client | None = client

    @property
    def client(self) -> S3Client:
        """The boto3 client (made on first use)."""
        if self._client is None:
            from botocore.config import Config

            with _translated("S3", self.endpoint):
                self._client = _session().client(
                    "s3", endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 5, "mode": "standard"},
                                  connect_timeout=10, read_timeout=60))
        return self._client

    def versions(self, bucket: str, prefix: str, *, exact: bool = False,
                 label: str = "") -> list[ObjectVersion]:
        """Every version and delete marker whose key starts with ``prefix`` (or equals it).

        Args:
            bucket: the bucket.
            prefix: the key prefix (or the whole key with ``exact``).
            exact: only the key ``prefix`` itself, not keys that merely start with it.
            label: names the location in messages (never the key).

        Raises:
            ObjectStorageError: the listing failed (one line naming the bucket).

        Returns:
            The versions, in listing order.
        """
        found: list[ObjectVersion] = []
        with _translated(label or f"s3://{bucket}", self.endpoint):
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix)
            for page in pages:
                found += [ObjectVersion(v["Key"], v.get("VersionId") or "null")
                          for v in page.get("Versions", [])]
                found += [ObjectVersion(m["Key"], m.get("VersionId") or "null", delete_marker=True)
                          for m in page.get("DeleteMarkers", [])]
        return [v for v in found if v.key == prefix] if exact else found

    def delete_versions(self, bucket: str, versions: Sequence[ObjectVersion], *,
                        label: str = "") -> int:
        """Delete these versions and delete markers for good.

        Raises:
            ObjectStorageError: a request failed, or S3 refused some versions (one line; the
                versions before it in the batch may be gone).

        Returns:
            How many were deleted.
        """
        where = label or f"s3://{bucket}"
        deleted = 0
        with _translated(where, self.endpoint):
            for start in range(0, len(versions), _DELETE_BATCH):
                batch = versions[start:start + _DELETE_BATCH]
                response = self.client.delete_objects(Bucket=bucket, Delete={
                    "Objects": [{"Key": v.key, "VersionId": v.version_id} for v in batch],
                    "Quiet": True})
                errors = response.get("Errors", [])
                if errors:
                    code = str(errors[0].get("Code", "unknown"))
                    reason = CLIENT_ERRORS.get(code, f"S3 error {code}")
                    raise ObjectStorageError(f"{where}: {len(errors)} object version(s) were "
                                             f"not deleted: {reason}")
                deleted += len(batch)
        return deleted

    def download(self, location: str, dest: Path) -> None:
        """Download ``s3://bucket/key`` to the file ``dest`` (a drill's snapshot).

        Raises:
            SnapshotError: not an s3:// location, the download failed, or ``dest`` cannot be
                written.
        """
        bucket, key = parse_s3_url(location)
        with _translated(redact_url(location), self.endpoint, SnapshotError):
            try:
                self.client.download_file(bucket, key, str(dest))
            except OSError as exc:
                raise SnapshotError(f"{redact_url(location)}: cannot write the download "
                                    f"({exc.strerror or type(exc).__name__})") from None


__all__ = ["CLIENT_ERRORS", "HANDLED_CODES", "ObjectStore", "ObjectVersion", "error_code",
           "parse_s3_url"]
