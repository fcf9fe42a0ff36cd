"""Named anonymisation strategies: what a personal column becomes when its row is kept.

A data map names a strategy per column (``email: redact``). Each strategy is a small frozen
object that (1) checks, at plan time, that it can keep the column's type, length, NOT NULL and
UNIQUE constraints, and (2) says what to write, as one of the assignment kinds below. The
executor renders the assignment into SQL through the dialect.

==========  =================================================================================
``null``    NULL; refused for a NOT NULL column.
``fixed``   ``{fixed: VALUE}``: the same value in every row; refused for a UNIQUE column and
            for a string longer than the column.
``redact``  strings become ``erased`` (cut to the column length); a UNIQUE string column gets
            distinct, obviously fake values built from the row's primary key
            (``erased-<key>@erased.invalid`` for mail columns, ``erased-<key>`` otherwise).
            Other types become NULL, or 0 / 1900-01-01 / false when NOT NULL.
``hash``    ``h:`` + hex HMAC-SHA256 of the stripped value under the reconciler's hash key, cut
            to the column length: equal inputs stay equal, so joins on the column survive.
            Values already of that form are left alone (idempotent).
``year``    a date or timestamp truncated to 1 January of its year.
==========  =================================================================================

Left out on purpose: no SQL and no database access here (see :mod:`reconciler.executor`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

TypeKind = Literal["string", "integer", "numeric", "date", "datetime", "boolean", "json", "other"]

STRATEGY_NAMES = ("null", "fixed", "redact", "hash", "year")
HASH_PREFIX = "h:"
_HASH_FORM = re.compile(r"h:[0-9a-f]{8,}")
_MIN_HASH_HEX = 16
_MIN_UNIQUE_LENGTH = 12


@dataclass(frozen=True)
class ColumnInfo:
    """What the snapshot says about one column (built by the executor from reflection)."""

    name: str
    kind: TypeKind
    length: int | None
    nullable: bool
    unique: bool


# -- assignments: what to write --------------------------------------------------------------


@dataclass(frozen=True)
class SetValue:
    """Write one value (``None`` is NULL) in every affected row."""

    value: object


@dataclass(frozen=True)
class SetFakeFromKey:
    """Write ``prefix || <primary key joined by '-'> || suffix``: distinct per row."""

    prefix: str
    suffix: str


@dataclass(frozen=True)
class SetYear:
    """Truncate a date (``datetime=False``) or timestamp to 1 January of its year."""

    datetime: bool


@dataclass(frozen=True)
class SetHash:
    """Replace each distinct value by :func:`hash_value` of it (computed in Python)."""

    length: int | None


Assignment = SetValue | SetFakeFromKey | SetYear | SetHash


def hash_value(key: bytes, value: str, length: int | None) -> str:
    """The ``hash`` strategy's output for one value.

    Returns:
        ``h:`` and the hex HMAC-SHA256 of the stripped value, cut to ``length`` characters.
    """
    digest = hmac.new(key, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    out = HASH_PREFIX + digest
    return out if length is None else out[:length]


def is_hashed(value: str) -> bool:
    """True when ``value`` already has the ``hash`` strategy's output form.

    Returns:
        Whether the value can be left alone.
    """
    return _HASH_FORM.fullmatch(value) is not None


# -- strategies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Null:
    name: Literal["null"] = "null"

    def assignment(self, col: ColumnInfo) -> Assignment:
        """Raises: ValueError: the column is NOT NULL.

        Returns:
            The assignment.
        """
        if not col.nullable:
            raise ValueError("strategy 'null' but the column is NOT NULL")
        return SetValue(None)


@dataclass(frozen=True)
class Fixed:
    value: str | int | float | bool
    name: Literal["fixed"] = "fixed"

    def assignment(self, col: ColumnInfo) -> Assignment:
        """Raises: ValueError: the value breaks a UNIQUE constraint or the column length.

        Returns:
            The assignment.
        """
        if col.unique:
            raise ValueError("strategy 'fixed' would repeat one value in a UNIQUE column")
        if isinstance(self.value, str) and col.length is not None and len(self.value) > col.length:
            raise ValueError(f"fixed value is longer than the column ({col.length})")
        return SetValue(self.value)


@dataclass(frozen=True)
class Redact:
    name: Literal["redact"] = "redact"

    def assignment(self, col: ColumnInfo) -> Assignment:
        """Raises: ValueError: no value of the column's type can keep its constraints.

        Returns:
            The assignment.
        """
        if col.kind == "string":
            if col.unique:
                if col.length is not None and col.length < _MIN_UNIQUE_LENGTH:
                    raise ValueError(
                        f"strategy 'redact' needs at least {_MIN_UNIQUE_LENGTH} characters "
                        "for distinct values in a UNIQUE column"
                    )
                mail = "mail" in col.name.lower() and (col.length is None or col.length >= 40)
                return SetFakeFromKey("erased-", "@erased.invalid" if mail else "")
            return SetValue("erased"[: col.length] if col.length else "erased")
        if col.nullable:
            return SetValue(None)
        if col.unique:
            raise ValueError("strategy 'redact' cannot keep a UNIQUE NOT NULL non-string column")
        defaults: dict[str, object] = {
            "integer": 0,
            "numeric": 0,
            "boolean": False,
            "date": dt.date(1900, 1, 1),
            "datetime": dt.datetime(1900, 1, 1),
        }
        if col.kind not in defaults:
            raise ValueError("strategy 'redact' does not know a neutral value for this type")
        return SetValue(defaults[col.kind])


@dataclass(frozen=True)
class Hash:
    name: Literal["hash"] = "hash"

    def assignment(self, col: ColumnInfo) -> Assignment:
        """Raises: ValueError: not a string column, or too short for a useful hash.

        Returns:
            The assignment.
        """
        if col.kind != "string":
            raise ValueError("strategy 'hash' needs a string column")
        if col.length is not None and col.length < len(HASH_PREFIX) + _MIN_HASH_HEX:
            raise ValueError(
                f"strategy 'hash' needs at least {len(HASH_PREFIX) + _MIN_HASH_HEX} characters"
            )
        return SetHash(col.length)


@dataclass(frozen=True)
class Year:
    name: Literal["year"] = "year"

    def assignment(self, col: ColumnInfo) -> Assignment:
        """Raises: ValueError: not a date or timestamp column.

        Returns:
            The assignment.
        """
        if col.kind not in ("date", "datetime"):
            raise ValueError("strategy 'year' needs a date or timestamp column")
        return SetYear(datetime=col.kind == "datetime")


Strategy = Null | Fixed | Redact | Hash | Year


def parse_strategy(raw: object) -> Strategy:
    """Read a strategy as written in the data map.

    ``null`` (or an empty value), ``redact``, ``hash``, ``year``, or ``{fixed: VALUE}``.

    Raises:
        ValueError: an unknown name or a malformed ``fixed``.

    Returns:
        The strategy.
    """
    if raw is None or raw == "null":
        return Null()
    if isinstance(raw, str):
        simple: dict[str, Strategy] = {"redact": Redact(), "hash": Hash(), "year": Year()}
        if raw in simple:
            return simple[raw]
        if raw == "fixed":
            raise ValueError("strategy 'fixed' needs a value: {fixed: VALUE}")
    if isinstance(raw, dict) and list(raw) == ["fixed"]:
        value = raw["fixed"]
        if not isinstance(value, str | int | float | bool):
            raise ValueError("fixed value must be a string, number or boolean")
        return Fixed(value)
    shown = repr(raw) if isinstance(raw, str) and len(raw) <= 40 else "this value"
    raise ValueError(
        f"unknown strategy {shown} (expected null, redact, hash, year or {{fixed: VALUE}})"
    )


__all__ = [
    "STRATEGY_NAMES",
    "Assignment",
    "ColumnInfo",
    "Fixed",
    "Hash",
    "Null",
    "Redact",
    "SetFakeFromKey",
    "SetHash",
    "SetValue",
    "SetYear",
    "Strategy",
    "Year",
    "hash_value",
    "is_hashed",
    "parse_strategy",
]
