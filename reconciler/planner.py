"""The planner: (ledger entries, data map, as-of date) -> :class:`Plan`. Pure.

The plan says which normalised identifiers to look for (per row group), which retention
cut-offs apply as of ``as_of`` (today, never the backup's date) and which operations run in
which order: along the map's links, children before parents.

Left out on purpose: no database, no ledger I/O, no clock (``as_of`` is a parameter).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from erasure_ledger import OpenedEntry
from reconciler.datamap import DataMap, TableMap
from reconciler.ops import ERASE, AnonymizeRows, DateFilter, DeleteRows, Op, SetColumns, optout_group


@dataclass(frozen=True)
class Wanted:
    """One normalised ledger identifier to look for, and the entry it comes from."""

    group: str
    seq: int
    id_type: str
    value: str = field(repr=False)  # personal data: never in a repr, log or traceback


@dataclass(frozen=True)
class EntryRef:
    """What the report may say about a ledger entry (no identifiers)."""

    seq: int
    request_id: str
    kind: str
    purpose: str | None
    effective: dt.datetime | None
    appended_at: dt.datetime
    shredded: bool
    note: str | None = None  # why the entry is not replayed, if it is not


@dataclass(frozen=True)
class RetentionCut:
    name: str
    column: str
    cutoff: dt.date


@dataclass(frozen=True)
class Plan:
    as_of: dt.date
    entries: tuple[EntryRef, ...]
    wanted: tuple[Wanted, ...]
    retention: tuple[RetentionCut, ...]
    ops: tuple[Op, ...]


def years_before(day: dt.date, years: int) -> dt.date:
    """``day`` minus whole years (29 February becomes 28 February).

    Returns:
        The earlier date.
    """
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def make_plan(entries: Sequence[OpenedEntry], data_map: DataMap, *, as_of: dt.date) -> Plan:
    """Decide what a replay does.

    Args:
        entries: every ledger entry, as returned by ``Ledger.open_all()``.
        data_map: the validated data map.
        as_of: the date retention periods are measured against.

    Returns:
        The plan.
    """
    purposes = {rule.purpose for rule in data_map.opt_outs}
    refs: list[EntryRef] = []
    wanted: list[Wanted] = []
    for opened in entries:
        meta = opened.meta
        note: str | None = None
        group: str | None = None
        if opened.entry is None:
            note = "crypto-shredded: nothing to replay"
        elif meta.kind == "erasure":
            group = ERASE
        elif meta.purpose in purposes:
            group = optout_group(meta.purpose or "")
        else:
            note = "no opt-out rule in the data map for this purpose"
        refs.append(EntryRef(seq=meta.seq, request_id=meta.request_id, kind=meta.kind,
                             purpose=meta.purpose, effective=meta.effective,
                             appended_at=meta.appended_at, shredded=meta.shredded, note=note))
        if group is not None and opened.entry is not None:
            wanted.extend(Wanted(group=group, seq=meta.seq, id_type=ident.type, value=ident.value)
                          for ident in opened.entry.identifiers)
    retention = tuple(RetentionCut(rule.name, rule.column, years_before(as_of, rule.years))
                      for rule in data_map.retention)
    return Plan(as_of=as_of, entries=tuple(refs), wanted=tuple(wanted), retention=retention,
                ops=tuple(_ops(data_map, as_of)))


def link_depth(data_map: DataMap, table: TableMap) -> int:
    """How many links lie between ``table`` and a table that is matched directly.

    Returns:
        0 for the subject and ``match`` tables.
    """
    depth = 0
    while table.link is not None:
        table = data_map.table(table.link.parent)
        depth += 1
    return depth


def _ops(data_map: DataMap, as_of: dt.date) -> list[Op]:
    tables = list(data_map.all_tables())
    # Children before parents: a deeper table is handled first (stable in map order).
    order = sorted(range(len(tables)), key=lambda i: -link_depth(data_map, tables[i]))
    ops: list[Op] = []
    for index in order:
        table = tables[index]
        path = "subject" if table is data_map.subject else f"tables.{table.name}"
        if table.action == "delete":
            ops.append(DeleteRows(table.name, ERASE, f"{path}.action"))
        elif table.action == "anonymize":
            ops.append(AnonymizeRows(table.name, ERASE, f"{path}.columns", table.columns))
        else:
            assert table.retain is not None
            cutoff = years_before(as_of, table.retain.years)
            ops.append(DeleteRows(table.name, ERASE, f"{path}.retain",
                                  DateFilter(table.retain.after, cutoff, expired=True)))
            ops.append(AnonymizeRows(table.name, ERASE, f"{path}.columns", table.columns,
                                     DateFilter(table.retain.after, cutoff, expired=False)))
    for index, rule in enumerate(data_map.opt_outs):
        path = f"opt_outs[{index}]"
        group = optout_group(rule.purpose)
        if rule.delete:
            ops.append(DeleteRows(rule.table, group, f"{path}.delete"))
        else:
            ops.append(SetColumns(rule.table, group, f"{path}.set", rule.set))
    return ops


__all__ = ["EntryRef", "Plan", "RetentionCut", "Wanted", "link_depth", "make_plan",
           "years_before"]
