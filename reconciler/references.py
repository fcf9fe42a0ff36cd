"""Rows that reference what a run deletes: the map's ``on_reference`` choices become operations.

A declared foreign key (enforced or not: SQLite often does not enforce them) from a row the
run keeps into a row it deletes would leave an orphan. Per referencing table the map chooses
(``on_reference`` on the referenced table, docs/datamap.md):

- ``refuse`` (the default): the executor counts such rows before any change and refuses the
  run if there are any (:class:`Refusal`);
- ``nullify``: a :class:`~reconciler.ops.NullifyReferences` sets the referencing columns to
  NULL just before the delete (refused here when a column is NOT NULL);
- ``anonymize``: the delete skips rows still referenced by a kept row, and an
  :class:`~reconciler.ops.AnonymizeRows` with ``kept_for`` masks those rows instead.

This module also orders the operations: children before parents, so every statement still
finds its rows through the map's links; tables matched on identifiers alone and related to
no other mapped table run last, after anything a trigger may have copied into them.

A foreign key may point back along that order (a cart naming its last item, the items linked
to the cart): the items go first, while the erased person's cart, deleted later, still
references them. :func:`back_references` sets such references to NULL just before (an
``unlink``), or leaves them to the database where it resolves them itself, or names them for
a check against the data before any change (:meth:`reconciler.checks.Checks.back_references`).

Left out on purpose: no SQL, no database access; the schema is plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.datamap import DataMap, TableMap
from reconciler.errors import DataMapError
from reconciler.ops import AnonymizeRows, DeleteRows, NullifyReferences, Op, Reference
from reconciler.schema import ForeignKey, SnapshotSchema, TableSchema


@dataclass(frozen=True)
class Refusal:
    """A reference the map leaves at ``refuse``: rows holding it must not exist."""

    op: DeleteRows
    reference: Reference


@dataclass(frozen=True)
class Expanded:
    ops: tuple[Op, ...]
    refusals: tuple[Refusal, ...]
    drift: tuple[str, ...]  # on_reference entries naming no foreign key of this snapshot


def table_path(data_map: DataMap, table: str) -> str:
    """Returns: ``subject`` or ``tables.<name>``, the map key of ``table``."""
    return "subject" if table == data_map.subject.name else f"tables.{table}"


def expand(ops: Sequence[Op], data_map: DataMap, schema: SnapshotSchema) -> Expanded:
    """Apply the map's ``on_reference`` choices to every delete in ``ops``.

    Raises:
        DataMapError: ``nullify`` of a NOT NULL column, or ``anonymize`` choices that form a
            cycle (rows that would keep each other).

    Returns:
        The operations (nullify before its delete, the kept rows' anonymisation after it),
        the references to check before any change, and drift notes.
    """
    out: list[Op] = []
    refusals: list[Refusal] = []
    drift: set[str] = set()
    deleted = {op.table for op in ops if isinstance(op, DeleteRows)}
    _check_cycles(data_map, schema, deleted)
    for op in ops:
        if not isinstance(op, DeleteRows):
            out.append(op)
            continue
        table = data_map.table(op.table)
        path = table_path(data_map, table.name)
        references = [Reference(fk.table, fk.columns, fk.referred_columns)
                      for fk in schema.referencing(table.name)]
        for other, _ in table.on_reference:
            if not any(ref.table == other for ref in references):
                drift.add(f"{path}.on_reference.{other}: foreign key from {other!r} to "
                          f"{table.name!r} not in this snapshot")
        keep = tuple(r for r in references if table.reference_policy(r.table) == "anonymize")
        delete = DeleteRows(op.table, op.group, op.path, op.date_filter, keep_referenced=keep)
        for ref in references:
            choice = table.reference_policy(ref.table)
            if choice == "nullify":
                _check_nullable(data_map, schema, table, ref)
                out.append(NullifyReferences(ref.table, op.group,
                                             f"{path}.on_reference.{ref.table}", ref, delete))
            elif choice == "refuse" and ref.table in schema.tables:
                refusals.append(Refusal(delete, ref))
        out.append(delete)
        if keep:
            out.append(AnonymizeRows(op.table, op.group, f"{path}.on_reference", table.columns,
                                     op.date_filter, kept_for=delete))
    return Expanded(ops=tuple(out), refusals=tuple(refusals), drift=tuple(sorted(drift)))


def _check_nullable(data_map: DataMap, schema: SnapshotSchema, table: TableMap,
                    ref: Reference) -> None:
    for name in (ref.table, *schema.descendants(ref.table)):
        for column in ref.columns:
            info = schema.tables[name].columns.get(column)
            if info is not None and not info.nullable:
                where = data_map.where(f"{table_path(data_map, table.name)}.on_reference."
                                       f"{ref.table}")
                inside = "" if name == ref.table else f" of {name!r}"
                raise DataMapError(
                    f"{where}: cannot nullify {ref.describe(table.name)}: column {column!r}"
                    f"{inside} is NOT NULL in this snapshot")


def _check_cycles(data_map: DataMap, schema: SnapshotSchema, deleted: set[str]) -> None:
    # T keeps its rows for C (anonymize) while C's rows may in turn be kept for D ...: each
    # condition nests the next, so a cycle has no answer.
    keeps: dict[str, list[str]] = {}
    for name in deleted:
        table = data_map.table(name)
        keeps[name] = sorted({fk.table for fk in schema.referencing(name)
                              if table.reference_policy(fk.table) == "anonymize"})

    def visit(name: str, trail: list[str]) -> None:
        for other in keeps.get(name, []):
            if other in trail:
                cycle = [*trail[trail.index(other):], other]
                where = data_map.where(f"{table_path(data_map, cycle[0])}.on_reference."
                                       f"{cycle[1]}")
                raise DataMapError(f"{where}: 'anonymize' choices form a cycle "
                                   f"({' -> '.join(cycle)}); use nullify for one of them")
            visit(other, [*trail, other])

    for name in sorted(keeps):
        visit(name, [name])


def table_order(data_map: DataMap, usable: Mapping[str, TableSchema]) -> dict[str, int]:
    """Rank of each usable mapped table: a table referenced (by link or foreign key) by
    another gets a higher rank, so children run first. Tables matched on identifiers that
    no other mapped table references or is referenced by come last.

    Returns:
        Table name -> rank (1 = first).
    """
    edges: dict[str, set[str]] = {name: set() for name in usable}  # child -> parents
    for name in usable:
        table = data_map.table(name)
        if table.link is not None and table.link.parent in edges:
            if table.link.reverse:
                edges[table.link.parent].add(name)
            else:
                edges[name].add(table.link.parent)
    # Links first, then foreign keys that close no cycle: a table's statement finds its
    # owner through its link, so it must run before the table its link goes through, even
    # where a foreign key points back (a cart that names its last item, the items linked to
    # the cart). Ranked the other way, the parent's rows went first and the child's rows
    # were found by nobody. The back reference is freed before the child's delete
    # (back_references).
    for name in usable:
        for fk in usable[name].foreign_keys:
            parent = fk.referred_table
            if parent in edges and parent != name and not _reaches(edges, parent, name):
                edges[name].add(parent)
    order: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(name: str) -> int:
        # depth = longest chain of tables referencing ``name``; children get lower ranks
        if name in order:
            return order[name]
        if name in visiting:
            return 0
        visiting.add(name)
        children = [c for c, parents in edges.items() if name in parents]
        order[name] = 1 + max((depth(c) for c in children), default=0)
        visiting.discard(name)
        return order[name]

    for name in usable:
        depth(name)
    last = max(order.values(), default=0) + 1
    for name in usable:
        table = data_map.table(name)
        related = edges[name] or any(name in parents for parents in edges.values())
        if table is not data_map.subject and table.link is None and not related:
            order[name] = last
    return order


def _reaches(edges: Mapping[str, set[str]], start: str, goal: str) -> bool:
    """True when ``goal`` is ``start`` or one of its parents, parents' parents, ..."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name == goal:
            return True
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return False


@dataclass(frozen=True)
class BackReference:
    """Rows ``later`` deletes reference, through ``key``, rows ``first`` deletes before them."""

    first: DeleteRows
    later: DeleteRows
    key: ForeignKey

    @property
    def reference(self) -> Reference:
        return Reference(self.key.table, self.key.columns, self.key.referred_columns)


@dataclass(frozen=True)
class BackReferences:
    """What :func:`back_references` decided."""

    ops: tuple[Op, ...]  # the operations, an unlink before each delete that needs one
    # keys the run cannot free, with why: rows holding them must not exist (checked against
    # the data after staging, before any change)
    blocked: tuple[tuple[BackReference, str], ...] = ()
    deferred: tuple[ForeignKey, ...] = ()  # deferrable keys: checked at commit instead
    # the database's ON DELETE CASCADE deletes the later rows along with the first ones
    cascaded: tuple[BackReference, ...] = ()


def back_references(ops: Sequence[Op], data_map: DataMap, schema: SnapshotSchema, *,
                    per_row: bool, batched: bool) -> BackReferences:
    """Free the rows of a delete that rows of a later delete still reference.

    ``ops`` run in order, so a foreign key from a table deleted later into one deleted earlier
    points back along the links (any other key orders its tables: :func:`table_order`). The
    referencing rows the run keeps are the map's ``on_reference`` choice (:func:`expand`);
    here it is the rows the later delete removes. Without help a database that checks the key
    refuses the first delete. Per key, the first that applies:

    1. every column of the key is nullable and decides nothing about which rows the run
       changes: an ``unlink`` (:class:`NullifyReferences` with ``doomed``) sets it to NULL in
       those rows just before the first delete, on every database alike (so SQLite, which
       never enforces keys here, ends the same and counts the same);
    2. a deferrable key (PostgreSQL) in a one-transaction apply: deferred, checked at commit
       when the later rows are gone (a batched apply commits in between);
    3. ``ON DELETE CASCADE`` where the database checks keys at the end of a statement: its
       cascade deletes the later rows with the first ones (InnoDB checks row by row, and
       the cascaded row may still be referenced by a first row not deleted yet);
    4. else blocked: refused before any change if any row holds such a reference.

    Args:
        ops: the operations in the order they run (:func:`sort_ops`).
        data_map: the map.
        schema: the snapshot's schema.
        per_row: the database checks foreign keys row by row (MariaDB).
        batched: a batched apply (each batch its own transaction).

    Returns:
        The operations with their unlinks, and the keys left to the database or to check.
    """
    out: list[Op] = []
    blocked: list[tuple[BackReference, str]] = []
    deferred: dict[ForeignKey, None] = {}
    cascaded: list[BackReference] = []
    for index, op in enumerate(ops):
        if isinstance(op, DeleteRows):
            for key in schema.referencing(op.table):
                for later in ops[index + 1:]:
                    if not (isinstance(later, DeleteRows) and later.table == key.table
                            and key.table != op.table):
                        continue  # a key within one table is reconciler.chains' business
                    back = BackReference(op, later, key)
                    why = _unfreeable(data_map, schema, back)
                    if why is None:
                        out.append(NullifyReferences(key.table, later.group, later.path,
                                                     back.reference, op, doomed=later))
                    elif key.deferrable and key.name and not batched:
                        deferred[key] = None
                    elif key.ondelete == "CASCADE" and not per_row:
                        cascaded.append(back)
                    else:
                        blocked.append((back, _blocked_reason(why, key, per_row=per_row,
                                                              batched=batched)))
        out.append(op)
    return BackReferences(ops=tuple(out), blocked=tuple(blocked), deferred=tuple(deferred),
                          cascaded=tuple(cascaded))


def _unfreeable(data_map: DataMap, schema: SnapshotSchema, back: BackReference) -> str | None:
    """Why the key's columns cannot be set to NULL in the later rows, or None if they can.

    A NULL must be allowed (in the table and in each partition or inheriting table), and must
    not cut the rows off from what finds them: the link to the person, matched identifiers,
    the subject's key, the retention date, or a column another table's link goes through.
    """
    name = back.key.table
    found_by = _found_by(data_map, name)
    if back.later.date_filter is not None:
        found_by.add(back.later.date_filter.column)
    for column in back.key.columns:
        if column in found_by:
            return f"column {column!r} is how the run finds the rows it deletes"
        for owner in (name, *schema.descendants(name)):
            info = schema.tables[owner].columns.get(column)
            if info is not None and not info.nullable:
                inside = "" if owner == name else f" in {owner!r}, which inherits from {name!r},"
                return f"column {column!r} is NOT NULL{inside} in this snapshot"
    return None


def _found_by(data_map: DataMap, name: str) -> set[str]:
    table = data_map.table(name)
    found = {column for _, column in table.match}
    if table is data_map.subject:
        found |= set(table.key)
    if table.link is not None:
        found |= {column for column, _ in table.link.on}
    for other in data_map.all_tables():
        link = other.link
        if link is not None and link.parent == name and not link.reverse:
            found |= {parent for _, parent in link.on}
    return found


def _blocked_reason(why: str, key: ForeignKey, *, per_row: bool, batched: bool) -> str:
    if key.deferrable and batched:
        return (f"{why}, and the key is deferrable, but a batched apply commits between the two "
                "deletes (run apply without --batch-rows)")
    if key.ondelete == "CASCADE" and per_row:
        return (f"{why}, and this database checks keys row by row, so its ON DELETE CASCADE "
                "cannot delete them first")
    return f"{why}, so the reference cannot be set to NULL first"


def sort_ops(ops: Sequence[Op], order: Mapping[str, int]) -> list[Op]:
    """``ops`` by table rank, keeping their order within a rank (a nullify runs with the
    table its references point at, just before that table's delete).

    Returns:
        The sorted operations.
    """
    def rank(op: Op) -> int:
        table = op.target.table if isinstance(op, NullifyReferences) else op.table
        return order.get(table, 0)

    return sorted(ops, key=rank)


__all__ = ["BackReference", "BackReferences", "Expanded", "Refusal", "back_references", "expand",
           "sort_ops", "table_order", "table_path"]
