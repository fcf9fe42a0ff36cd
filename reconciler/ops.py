"""Operations as data: what the planner decides and the executor runs.

Each operation names one table, one row group and one action, and becomes ONE SQL statement
(plus one counting query). Row groups are ``"erase"`` (erasure requests and retention rules)
and ``"optout:<purpose>"`` (objections with that purpose).

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
class DeleteRows:
    table: str
    group: str
    path: str  # the data map key that asked for it, for messages
    date_filter: DateFilter | None = None

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

    @property
    def action(self) -> str:
        return "anonymize" if self.date_filter is None else "retain"


@dataclass(frozen=True)
class SetColumns:
    table: str
    group: str
    path: str
    values: tuple[tuple[str, object], ...]

    @property
    def action(self) -> str:
        return "opt-out"


Op = DeleteRows | AnonymizeRows | SetColumns

__all__ = ["ERASE", "AnonymizeRows", "DateFilter", "DeleteRows", "Op", "SetColumns",
           "optout_group"]
