"""Operations as data: what the planner decides and the executor runs.

Each operation names one table, one row group and one action, and becomes ONE SQL statement
(plus one counting query). Row groups are ``"erase"`` (erasure requests and retention rules)
and ``"optout:<purpose>"`` (objections with that purpose).

The planner makes :class:`DeleteRows`, :class:`AnonymizeRows` and :class:`SetColumns` from the
map alone. Once the snapshot's foreign keys are known, :mod:`reconciler.references` adds what
the map's ``on_reference`` choices ask for: :class:`NullifyReferences` (another row's
reference to a deleted row becomes NULL) and an :class:`AnonymizeRows` with ``kept_for``
(a row still referenced by a row the run keeps is anonymized instead of deleted).

Left out on purpose: no SQL here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconciler.strategies import Strategy

ERASE = "erase"


def optout_group(purpose: str) -> str:
    """The row group of objections with ``purpose``.

    Returns:
        The group name.
    """
    return f"optout:{purpose}"


@dataclass(frozen=True)
class DateFilter:
    """Restrict an operation by a retention date column.

    ``expired=True``: rows whose ``column`` is before ``cutoff`` (the period is over).
    ``expired=False``: rows still inside the period, or without a date (kept to be safe).
    """

    column: str
    cutoff: dt.date
    expired: bool


@dataclass(frozen=True)
class Reference:
    """A declared foreign key: ``table(columns)`` references ``referred_columns`` of another."""

    table: str
    columns: tuple[str, ...]
    referred_columns: tuple[str, ...]

    def describe(self, referred_table: str) -> str:
        """Returns: ``payments(rental_id) -> rentals`` for messages."""
        return f"{self.table}({', '.join(self.columns)}) -> {referred_table}"


@dataclass(frozen=True)
class DeleteRows:
    table: str
    group: str
    path: str  # the data map key that asked for it, for messages
    date_filter: DateFilter | None = None
    # rows still referenced through these by a row the run keeps are not deleted (they are
    # anonymized by a matching AnonymizeRows with kept_for; on_reference: anonymize)
    keep_referenced: tuple[Reference, ...] = ()

    @property
    def action(self) -> str:
        return "delete"


@dataclass(frozen=True)
class AnonymizeRows:
    table: str
    group: str
    path: str
    columns: tuple[tuple[str, Strategy], ...]
    date_filter: DateFilter | None = None
    # set: only the rows of this delete that are kept because a kept row references them
    kept_for: DeleteRows | None = None

    @property
    def action(self) -> str:
        if self.kept_for is not None:
            return "keep-referenced"
        return "anonymize" if self.date_filter is None else "retain"


@dataclass(frozen=True)
class NullifyReferences:
    """Set ``reference.columns`` of ``table`` to NULL where they point at rows ``target``
    deletes, in rows the run keeps (on_reference: nullify).

    With ``doomed``: in the rows that later delete removes instead (action ``unlink``). Such a
    reference points back along a link (a cart naming its last item, the items linked to the
    cart), so ``target`` runs first; the NULL only lets it go (see
    :func:`reconciler.references.back_references`). Not a change of its own in any report:
    the rows are deleted right after.
    """

    table: str
    group: str
    path: str
    reference: Reference
    target: DeleteRows
    doomed: DeleteRows | None = None

    @property
    def action(self) -> str:
        return "nullify" if self.doomed is None else "unlink"


@dataclass(frozen=True)
class SetColumns:
    table: str
    group: str
    path: str
    values: tuple[tuple[str, object], ...]

    @property
    def action(self) -> str:
        return "opt-out"


Op = DeleteRows | AnonymizeRows | SetColumns | NullifyReferences

__all__ = ["ERASE", "AnonymizeRows", "DateFilter", "DeleteRows", "NullifyReferences", "Op",
           "Reference", "SetColumns", "optout_group"]
