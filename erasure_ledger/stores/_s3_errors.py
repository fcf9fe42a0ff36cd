"""botocore failures -> ledger errors, for the S3 store: the one place that knows S3 error codes.

Two tables live here. :data:`REACTIONS` names the ClientError codes the store reacts to rather
than fails on (a missing object, a lost conditional write, a bucket without Object Lock), by
what they mean; :func:`reaction` is how the rest of the store asks. :data:`CLIENT_ERRORS` gives
every code a one-line translation, and :func:`edge` applies it (and the transport, credential
and parameter failures) once, around each call, so nothing above the store ever sees a
botocore exception. Every message names the store's location, never a response body, and an
endpoint only in redacted form.

It leaves out making requests (:mod:`._s3_io`) and deciding what a failure means for an append
(:mod:`._s3_append`); KMS errors are :mod:`erasure_ledger.kms`'s own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from erasure_ledger.errors import LedgerError, StorageError, UsageError

Reaction = Literal["missing", "conflict", "no-bucket", "no-lock", "bucket-owned", "no-version"]

#: ClientError codes the store reacts to, by meaning. Each is handled by name where it matters
#: (a missing object, a failed precondition); every one also has an edge translation in
#: CLIENT_ERRORS for when it is not expected (test_s3.py checks that).
REACTIONS: dict[str, Reaction] = {
    "NoSuchKey": "missing",
    "NotFound": "missing",
    "404": "missing",
    "PreconditionFailed": "conflict",
    "412": "conflict",
    "ConditionalRequestConflict": "conflict",
    "NoSuchBucket": "no-bucket",
    "ObjectLockConfigurationNotFoundError": "no-lock",
    "BucketAlreadyOwnedByYou": "bucket-owned",
    "NoSuchVersion": "no-version",
}
HANDLED_CODES = frozenset(REACTIONS)

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


class Conflict(Exception):
    """A conditional write lost: If-None-Match found an object, or If-Match a newer ETag."""


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or
               exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "unknown")


def reaction(exc: ClientError) -> Reaction | None:
    """What a ClientError means to the store, or None when it is simply a failure."""
    return REACTIONS.get(error_code(exc))


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


def delete_failure(errors: Sequence[Mapping[str, Any]], *, location: str, what: str) -> StorageError | None:
    """The error for the per-key failures of a DeleteObjects call (a version already gone is
    not one), or None.

    Raises:
        Nothing: returns the error for the caller to raise.
    """
    failed = [e for e in errors if REACTIONS.get(str(e.get("Code"))) != "no-version"]
    if not failed:
        return None
    code = failed[0].get("Code", "unknown")
    hint = (" (a default Object Lock retention on the bucket locks them: remove it)"
            if code == "AccessDenied" else "")
    return StorageError(f"{location}: could not delete {len(failed)} old versions of {what}: {code}{hint}")


@contextmanager
def edge(location: str, *, endpoint: str, attempts: int) -> Iterator[None]:
    """Translate every botocore failure raised inside into a LedgerError, once.

    Args:
        location: the store's location, which starts every message.
        endpoint: the endpoint, already redacted, for "cannot reach" messages.
        attempts: how many attempts botocore made (for the messages).

    Raises:
        StorageError: S3 failed, could not be reached, or no credentials were found.
        UsageError: the request itself is invalid (a bad bucket name or parameter).
    """
    try:
        yield
    except ClientError as exc:
        raise translate_client_error(exc, location=location, attempts=attempts) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise StorageError(
            f"{location}: cannot reach {endpoint} ({type(exc).__name__}) after {attempts} attempts") from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StorageError(
            f"{location}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or a profile)") from exc
    except ParamValidationError as exc:
        raise UsageError(f"{location}: invalid S3 request ({type(exc).__name__})") from exc
    except BotoCoreError as exc:
        raise StorageError(f"{location}: S3 client error ({type(exc).__name__})") from exc


__all__ = [
    "CLIENT_ERRORS",
    "HANDLED_CODES",
    "REACTIONS",
    "Conflict",
    "Reaction",
    "delete_failure",
    "edge",
    "error_code",
    "reaction",
    "translate_client_error",
]
