"""Frozen value types of the ledger: entries, their public metadata, and proofs.

An :class:`Entry` is what a privacy officer records (a request id, a kind, typed identifiers,
the request's timestamps). Its *public* part (everything but identifier values and the note)
is stored in clear inside the leaf so that ``list`` and ``verify`` need no key; the
identifier values and the note are sealed. ``from_dict`` is the single parser for untrusted
input (CLI flags, JSONL imports) and refuses unknown fields; the leaf parser in
:mod:`erasure_ledger.canonical` keeps unknown header fields so newer minor versions round-trip.

No I/O and no cryptography here.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from erasure_ledger.errors import UsageError
from erasure_ledger.identifiers import Identifier, validate_type

FORMAT_VERSION = 1

Kind = Literal["erasure", "objection", "completion"]
#: kinds a request can have; a "completion" entry only records that an earlier request was
#: carried out in production (the ledger is append-only, so it cannot be edited in place)
KINDS: tuple[Kind, ...] = ("erasure", "objection")
COMPLETION: Kind = "completion"
COMPLETED_SUFFIX = "#completed"

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_MAX_NOTE = 4000
_FIELD_NAME = re.compile(r"[a-z_]{1,32}")

# Fields an import record (JSONL line or flags) may carry; anything else is refused so a typo
# ("recieved") cannot silently drop a timestamp.
_ENTRY_FIELDS = frozenset(
    {"request_id", "kind", "identifiers", "received", "verified", "effective", "purpose", "note"}
)


@functools.lru_cache(maxsize=4096)  # ledgers repeat the same timestamps many times
def _parse_iso(text: str, field_name: str) -> datetime:
    try:
        return _to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise UsageError(
            f"{field_name}: not an ISO 8601 date or date-time (e.g. 2026-11-01T09:30:00Z)"
        ) from None


def parse_timestamp(value: str | datetime | date, *, field_name: str) -> datetime:
    """Parse an ISO 8601 date or date-time into an aware UTC datetime (seconds precision).

    A bare date means midnight UTC; a naive date-time is taken as UTC.

    Raises:
        UsageError: the value is not an ISO 8601 date or date-time.
    """
    if isinstance(value, datetime):
        if value.tzinfo is UTC and not value.microsecond:
            return value  # already normal: the common case when entries are rebuilt
        return _to_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return _parse_iso(value.strip(), field_name)


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


@functools.lru_cache(maxsize=4096)  # bulk imports repeat the same few timestamps
def format_timestamp(value: datetime) -> str:
    """Render a UTC datetime the one way the ledger stores it: ``2026-11-01T09:30:00Z``."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def due_date(received: datetime) -> datetime:
    """GDPR Art. 12(3): one month after receipt (same day next month, clamped to month end)."""
    month = received.month % 12 + 1
    year = received.year + (1 if received.month == 12 else 0)
    day = received.day
    while True:
        try:
            return received.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


@dataclass(frozen=True)
class Entry:
    """One erasure request or objection, valid from construction.

    Identifiers are normalised (see :mod:`erasure_ledger.identifiers`) and sorted, so the same
    request always seals to the same plaintext.
    """

    request_id: str
    kind: Kind
    identifiers: tuple[Identifier, ...]
    received: datetime | None = None
    verified: datetime | None = None
    effective: datetime | None = None
    purpose: str | None = None
    note: str | None = field(default=None, repr=False)
    #: completion entries only: the request id they mark as carried out
    completes: str | None = None

    def __post_init__(self) -> None:  # noqa: PLR0912 - one check per rule, in order
        # fullmatch, not match: "$" would let a trailing newline into the leaf header.
        if not isinstance(self.request_id, str) or not _REQUEST_ID.fullmatch(self.request_id):
            raise UsageError(
                "request_id: 1-128 characters of letters, digits and ._:/#- starting with a letter or digit"
            )
        if self.kind == COMPLETION:
            self._check_completion()
        elif self.kind not in KINDS:
            raise UsageError(f"kind: must be one of {', '.join(KINDS)}")
        elif not self.identifiers:
            raise UsageError(f"request {self.request_id}: at least one identifier is required")
        elif self.completes is not None:
            raise UsageError(f"request {self.request_id}: only a completion entry completes another")
        if self.kind == "objection":
            if not self.purpose:
                raise UsageError(
                    f"request {self.request_id}: an objection needs --purpose "
                    "(lower-case, e.g. marketing or tracking-cookies)"
                )
            if not _PURPOSE.fullmatch(self.purpose):
                raise UsageError(
                    f"request {self.request_id}: --purpose must be lower-case: a letter, then "
                    "letters, digits, '_' or '-' (e.g. marketing or tracking-cookies)"
                )
        elif self.purpose is not None:
            raise UsageError(f"request {self.request_id}: --purpose applies to objections only")
        if self.note is not None and len(self.note) > _MAX_NOTE:
            raise UsageError(f"request {self.request_id}: note is longer than {_MAX_NOTE} characters")
        if self.note is not None:
            try:
                self.note.encode("utf-8")
            except UnicodeEncodeError:
                raise UsageError(f"request {self.request_id}: note is not valid Unicode") from None
        object.__setattr__(self, "identifiers", _sorted_unique(self.identifiers))
        stamps = []
        for name in ("received", "verified", "effective"):
            value = getattr(self, name)
            if value is not None:
                parsed = parse_timestamp(value, field_name=name)
                if parsed is not value:  # entries rebuilt from a ledger hold normal ones
                    object.__setattr__(self, name, parsed)
                stamps.append(parsed)
        if stamps != sorted(stamps):
            raise UsageError(
                f"request {self.request_id}: timestamps must be in order received <= verified <= effective"
            )

    def _check_completion(self) -> None:
        if self.completes is None or not _REQUEST_ID.fullmatch(self.completes):
            raise UsageError("a completion names the request it completes")
        if self.request_id != self.completes + COMPLETED_SUFFIX:
            raise UsageError(
                f"request {self.completes}: a completion's id is the request id + {COMPLETED_SUFFIX}"
            )
        if self.identifiers or self.purpose is not None or self.effective is None:
            raise UsageError(
                f"request {self.completes}: a completion has an --effective date and nothing else"
            )

    @classmethod
    def completion(cls, request_id: str, *, effective: datetime | str, note: str | None = None) -> Entry:
        """An entry recording that request ``request_id`` was carried out in production at
        ``effective`` (for requests appended before they were done).

        Raises:
            UsageError: a malformed request id or date.
        """
        return cls(
            request_id=request_id + COMPLETED_SUFFIX,
            kind=COMPLETION,
            identifiers=(),
            effective=effective,  # type: ignore[arg-type]  # parsed in __post_init__
            note=note,
            completes=request_id,
        )

    @functools.cached_property
    def identifier_types(self) -> tuple[str, ...]:
        """The distinct identifier types, sorted (public metadata)."""
        return tuple(sorted({i.type for i in self.identifiers}))

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], *, default_region: str = "NL") -> Entry:
        """Build an entry from an import record (one JSONL line).

        ``identifiers`` is a mapping ``type -> value or [values]`` or a list of
        ``{"type": ..., "value": ...}`` objects.

        Raises:
            UsageError: unknown field, wrong type, or a value that does not normalise
                (messages never quote identifier values).
        """
        unknown = sorted(set(record) - _ENTRY_FIELDS)
        if unknown:
            # Name the field only if it looks like one ("recieved"): a key that is really an
            # identifier value must not be echoed.
            name = unknown[0]
            shown = f" {name!r}" if _FIELD_NAME.fullmatch(name) else ""
            raise UsageError(f"unknown field{shown}")
        for name in ("request_id", "kind"):
            if not isinstance(record.get(name), str):
                raise UsageError(f"{name}: required, a string")
        for name in ("received", "verified", "effective", "purpose", "note"):
            if record.get(name) is not None and not isinstance(record[name], str):
                raise UsageError(f"{name}: must be a string")
        pairs = _identifier_pairs(record.get("identifiers"))
        identifiers = tuple(Identifier.parse(t, v, default_region=default_region) for t, v in pairs)
        return cls(
            request_id=record["request_id"],
            kind=record["kind"],
            identifiers=identifiers,
            received=record.get("received"),  # parsed in __post_init__
            verified=record.get("verified"),
            effective=record.get("effective"),
            purpose=record.get("purpose"),
            note=record.get("note"),
        )


def _sorted_unique(identifiers: Iterable[Identifier]) -> tuple[Identifier, ...]:
    """The identifiers deduplicated and sorted by (type, value)."""
    items = tuple(identifiers)  # the very same object when it is a tuple already
    # Compare plain tuples: the dataclass comparisons are far slower.
    keys = [(i.type, i.value) for i in items]
    if all(map(operator.lt, keys, keys[1:])):
        return items  # strictly increasing: unique and sorted (every entry read back)
    unique = dict(zip(keys, items, strict=True))  # the last of equal ones wins, as it always did
    return tuple(unique[k] for k in sorted(unique))


def _identifier_pairs(raw: object) -> list[tuple[str, str]]:
    if isinstance(raw, Mapping):
        pairs: list[tuple[str, str]] = []
        for id_type, values in raw.items():
            for value in values if isinstance(values, list) else [values]:
                pairs.append((validate_type(str(id_type)), _require_str(value, id_type)))
        return pairs
    if isinstance(raw, list):
        out = []
        for item in raw:
            if not isinstance(item, Mapping) or set(item) != {"type", "value"}:
                raise UsageError('identifiers: each item must be {"type": ..., "value": ...}')
            out.append((validate_type(str(item["type"])), _require_str(item["value"], item["type"])))
        return out
    raise UsageError("identifiers: required, an object of type -> value(s)")


def _require_str(value: object, id_type: object) -> str:
    if not isinstance(value, str):
        raise UsageError(f"identifiers.{id_type}: each value must be a string")
    return value


@dataclass(frozen=True)
class EntryMeta:
    """The public part of a stored entry: what ``list`` shows without any key."""

    seq: int
    request_id: str
    kind: Kind
    identifier_types: tuple[str, ...]
    appended_at: datetime
    received: datetime | None
    verified: datetime | None
    effective: datetime | None
    purpose: str | None
    shredded: bool = False
    #: completion entries only: the request they mark as carried out
    completes: str | None = None

    @property
    def due(self) -> datetime | None:
        """When the request must be carried out (GDPR Art. 12(3)), if its receipt is known."""
        return due_date(self.received) if self.received else None

    def is_overdue(self, now: datetime) -> bool:
        """Not yet effective in production (as of ``now``) although the one-month deadline
        has passed: still to be done. A request carried out after its deadline is
        :attr:`completed_late`, not overdue."""
        due = self.due
        if due is None:
            return False
        done = self.effective is not None and self.effective <= now
        return now > due and not done

    @property
    def completed_late(self) -> bool:
        """Carried out in production, but after the one-month deadline."""
        due = self.due
        return due is not None and self.effective is not None and self.effective > due

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (never identifier values)."""

        def ts(value: datetime | None) -> str | None:
            return format_timestamp(value) if value else None

        return {
            "seq": self.seq,
            "request_id": self.request_id,
            "kind": self.kind,
            "identifier_types": list(self.identifier_types),
            "appended_at": ts(self.appended_at),
            "received": ts(self.received),
            "verified": ts(self.verified),
            "effective": ts(self.effective),
            "due": ts(self.due),
            "purpose": self.purpose,
            "shredded": self.shredded,
            **({"completes": self.completes} if self.completes is not None else {}),
        }


@dataclass(frozen=True)
class OpenedEntry:
    """A decrypted entry with its position; ``entry`` is None when it was crypto-shredded."""

    meta: EntryMeta
    entry: Entry | None

    @property
    def seq(self) -> int:
        return self.meta.seq


@dataclass(frozen=True)
class InclusionProof:
    """Proof that leaf ``seq`` is in the tree of ``tree_size`` leaves with root ``root_hash``."""

    origin: str
    seq: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str

    def to_dict(self) -> dict[str, Any]:
        import base64

        return {
            "format": "erasure-ledger-inclusion-proof/1",
            "origin": self.origin,
            "seq": self.seq,
            "tree_size": self.tree_size,
            "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "hashes": [base64.b64encode(h).decode() for h in self.hashes],
            "checkpoint": self.checkpoint,
        }


__all__ = [
    "FORMAT_VERSION",
    "COMPLETED_SUFFIX",
    "COMPLETION",
    "KINDS",
    "Entry",
    "EntryMeta",
    "InclusionProof",
    "Kind",
    "OpenedEntry",
    "due_date",
    "format_timestamp",
    "parse_timestamp",
]
