"""The reconciler's exception family; the CLI maps each class to an exit code.

::

    ReconcileError                 2  base of all reconciler failures; nothing was changed
    +-- DataMapError               2  the data map is invalid (names file:line and key path)
    |                                 or does not fit the snapshot's schema
    +-- SnapshotError              2  the snapshot cannot be reached, read or written
    +-- ObjectStorageError         2  object storage (S3) failed: missing bucket, access denied
    +-- ResidualDataFound          1  the residual scan found ledger data (carries the report)

A tampered ledger or a wrong keyring met during replay is raised by :mod:`erasure_ledger` as
its ``IntegrityError`` (exit 3) and passes through unchanged.

Messages name tables, columns, sequence numbers and request ids, never an identifier value,
and URLs only through :func:`redact_url`. Nothing here prints or exits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from reconciler.scan import ScanResult


class ReconcileError(Exception):
    """Base of every failure raised by :mod:`reconciler`."""

    exit_code = 2


class DataMapError(ReconcileError):
    """The data map is invalid, or asks for something the snapshot's schema cannot do."""

    exit_code = 2


class SnapshotError(ReconcileError):
    """The snapshot cannot be reached, read or changed; the transaction was rolled back."""

    exit_code = 2


class ObjectStorageError(ReconcileError):
    """Object storage (S3 or compatible) refused or failed; one line naming the bucket."""

    exit_code = 2


class ResidualDataFound(ReconcileError):
    """The residual scan found personal data of ledger entries; ``result`` has the findings."""

    exit_code = 1

    def __init__(self, message: str, result: ScanResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class ResidualScanFailed(ReconcileError):
    """The changes were applied and committed, but the residual scan after them failed:
    nothing is proven (exit 1, like residual data); ``reconciler verify`` scans again."""

    exit_code = 1


def cannot_connect(exc: BaseException, password: object = None) -> str:
    """``cannot connect: <the driver's first line>``, for a failed connection.

    A connection error carries no row data (nothing was read yet), only the host, port, user
    or database; the password is removed should a driver quote it.

    Returns:
        A message safe to print.
    """
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    reason = lines[0][:200] if lines else type(orig).__name__
    if password:  # the URL's password (engine.url.password), should a driver quote it
        reason = reason.replace(str(password), "***")
    return f"cannot connect: {reason}"


def url_hint(url: str) -> str:
    """A hint for a URL SQLAlchemy refused, or ""; its scheme is never personal data."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    better = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg",
              "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}.get(scheme)
    if better:
        return f" (write {better}://...)"
    if scheme:
        return (" (expected sqlite:///PATH, postgresql+psycopg://... or mysql+pymysql://..., "
                "or a SQLite file path)")
    return ""


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (a path is returned unchanged).

    Returns:
        A string safe to print.
    """
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not parseable: keep only the scheme, the rest may hold credentials.
        return url.split("://", 1)[0] + "://***"


__all__ = ["DataMapError", "ObjectStorageError", "ReconcileError", "ResidualDataFound",
           "ResidualScanFailed", "SnapshotError", "cannot_connect", "redact_url", "url_hint"]
