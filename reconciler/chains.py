"""Deleting rows that reference each other (a reply to a note: a self-referencing foreign key)
on a database that checks a foreign key row by row even inside one statement.

PostgreSQL checks such a key at the end of the statement, and so does SQLite when it enforces
keys at all, so one ``DELETE`` removes a whole reply chain there. MariaDB's InnoDB refuses to
delete a row another row still references (error 1451), even a row the same statement would
delete next, and even a row that references itself. There the delete of an operation runs in
rounds, each one set-based statement:

1. delete the rows of the operation's delete set that no remaining row of the set references
   (the leaves), again until a round deletes nothing: as many rounds as the deepest chain;
2. rows of the set still left reference each other in a cycle (a row referencing itself
   included). Then:

   - every blocking key is ``ON DELETE CASCADE``: the rest is counted and deleted in one
     statement; InnoDB's cascade deletes the rest of each cycle (only rows of the set: a kept
     row referencing a deleted one was refused or nullified before any change);
   - else, every blocking key has a nullable column: one ``UPDATE`` sets those columns to NULL
     in the rows of the set that reference a row of the set (they are deleted right after, in
     the same transaction; UPDATE triggers fire, so ``Context.unlinked`` records it for the
     trigger warnings), then the rounds go on;
   - else the operation is refused (:class:`~reconciler.errors.DataMapError`, rolled back): no
     order of deletes and no NULL can free the rows; the database itself cannot delete them.

A key ``ON DELETE SET NULL`` never blocks a delete and is left out. ``foreign_key_checks`` is
never switched off: that would also switch off ``ON DELETE CASCADE`` and ``SET NULL`` into
other tables, and leave rows pointing nowhere.

The rows reported are those of PostgreSQL's one statement: every row of the set is deleted
once, by a round (where no cascade fires inside the set: a row goes only when no row of the
set references it) or by the counted last statement.

Left out on purpose: the one-statement delete of every other case (:mod:`reconciler.statements`).
"""

# ruff: noqa: S608 - SQL text is built from quoted identifiers; every value is a bound parameter
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.errors import DataMapError
from reconciler.ops import DeleteRows, Op, Reference
from reconciler.schema import ForeignKey
from reconciler.statements import Context, Sql, Statements


@dataclass(frozen=True)
class ChainDelete:
    """The statements of one delete in rounds (see the module docstring)."""

    ctx: Context
    table: str
    leaves: sa.TextClause  # one round
    remaining: sa.TextClause  # COUNT(*) of the delete set still there
    rest: sa.TextClause | None  # the whole delete set, when every blocking key cascades
    unlink: sa.TextClause | None  # NULL into the set, when every blocking key can hold one
    where: str  # the map's key of the operation, for messages
    refusal: str  # after "N row(s)": why neither can free a cycle

    def run(self, conn: Connection) -> int:
        """Delete the set in rounds.

        Raises:
            DataMapError: rows of the set reference each other in a cycle that neither a
                cascade nor a NULL can break (the caller rolls back).

        Returns:
            The rows deleted.
        """
        rows = 0
        while True:  # every pass deletes a row or sets a reference to NULL, or ends
            deleted = int(conn.execute(self.leaves).rowcount)
            rows += deleted
            if deleted:
                continue
            left = int(conn.execute(self.remaining).scalar_one())
            if not left:
                return rows
            if self.rest is not None:
                # the statement's own count leaves out the rows its cascade deleted
                conn.execute(self.rest)
                return rows + left
            if self.unlink is None:
                raise DataMapError(f"{self.where}: {left} row(s) {self.refusal}")
            if not conn.execute(self.unlink).rowcount:
                # cannot happen unless a NULL changed which rows the operation deletes
                raise DataMapError(f"{self.where}: {left} row(s) of {self.table!r} this run "
                                   "deletes cannot be deleted in any order on this database; "
                                   "rolled back")
            self.ctx.unlinked.add(self.table)


def chain_delete(st: Statements, op: Op) -> ChainDelete | None:
    """Returns: the delete in rounds for ``op``, or None where one statement is right (another
    database, not a delete, or no self-referencing key that blocks a delete)."""
    if not (st.dialect.checks_keys_per_row and isinstance(op, DeleteRows)):
        return None
    keys = [fk for fk in st.ctx.schema.referencing(op.table)
            if fk.table == op.table and fk.ondelete != "SET NULL"]
    if not keys:
        return None
    return ChainDelete(ctx=st.ctx, table=op.table, leaves=_leaves(st, op, keys),
                       remaining=_remaining(st, op),
                       rest=_rest(st, op, keys), unlink=_unlink(st, op, keys),
                       where=st.ctx.map.where(op.path), refusal=_refusal(st, op, keys))


def unlinked_changes(ctx: Context, op: Op) -> list[tuple[str, str]]:
    """Returns: ``[(table, "UPDATE")]`` when references of ``op``'s rows were set to NULL before
    their delete (for the trigger warnings), else nothing."""
    if isinstance(op, DeleteRows) and op.table in ctx.unlinked:
        return [(op.table, "UPDATE")]
    return []


def _in_set(st: Statements, op: DeleteRows, sql: Sql) -> str:
    target = st.q(op.table)
    return f"{st.membership(op, target, sql)} AND {st.scope(op, target, sql)[0]}"


def _tied(st: Statements, op: DeleteRows, keys: list[ForeignKey], sql: Sql, *,
          referenced: bool) -> str:
    """SQL: through one of ``keys``, a row of the delete set (the row itself included)
    references the target row (``referenced``), or the target row references one."""
    target = st.q(op.table)
    parts = []
    for fk in keys:
        alias = st.alias()
        on = (st.pairs_eq(alias, fk.columns, target, fk.referred_columns) if referenced
              else st.pairs_eq(alias, fk.referred_columns, target, fk.columns))
        parts.append(f"EXISTS (SELECT 1 FROM {target} {alias} WHERE {on} AND "
                     f"{st.deleted(op, alias, sql)})")
    return " OR ".join(parts)


def _leaves(st: Statements, op: DeleteRows, keys: list[ForeignKey]) -> sa.TextClause:
    sql = Sql()
    where = _in_set(st, op, sql)
    return sql.text(f"DELETE FROM {st.q(op.table)} WHERE {where} AND NOT "
                    f"({_tied(st, op, keys, sql, referenced=True)})")


def _remaining(st: Statements, op: DeleteRows) -> sa.TextClause:
    sql = Sql()
    return sql.text(f"SELECT COUNT(*) FROM {st.q(op.table)} WHERE {_in_set(st, op, sql)}")


def _rest(st: Statements, op: DeleteRows, keys: list[ForeignKey]) -> sa.TextClause | None:
    if any(fk.ondelete != "CASCADE" for fk in keys):
        return None
    return st.statement(op, dry_run=False)


def _unlink(st: Statements, op: DeleteRows, keys: list[ForeignKey]) -> sa.TextClause | None:
    """The UPDATE setting the freeable columns (:func:`_freeable`) of every blocking key to
    NULL in rows of the set that reference a row of the set; None if a key has none. One NULL
    column is enough: neither database checks a composite key with a NULL in it (MATCH
    SIMPLE)."""
    nullable = _freeable(st, op, keys)
    if not all(nullable):
        return None
    columns = dict.fromkeys(c for cs in nullable for c in cs)
    sets = ", ".join(f"{st.q(c)} = NULL" for c in columns)
    sql = Sql()
    where = _in_set(st, op, sql)
    return sql.text(f"UPDATE {st.q(op.table)} SET {sets} WHERE {where} AND "
                    f"({_tied(st, op, keys, sql, referenced=False)})")


def _freeable(st: Statements, op: DeleteRows, keys: list[ForeignKey]) -> list[list[str]]:
    """Per key, its columns a NULL may be written to: nullable, and not one the delete set
    is found by (the link to the person, the matched identifiers, the key of the subject, the
    date of a retention): a NULL there would cut the rows off from the person, and no round
    would find them again."""
    table = st.ctx.map.table(op.table)
    found_by = {column for _, column in table.match}
    if table is st.ctx.map.subject:
        found_by |= set(table.key)
    if table.link is not None:
        found_by |= {column for column, _ in table.link.on}
    if op.date_filter is not None:
        found_by.add(op.date_filter.column)
    info = st.ctx.schema.tables[op.table].columns
    return [[c for c in fk.columns if info[c].nullable and c not in found_by] for fk in keys]


def _refusal(st: Statements, op: DeleteRows, keys: list[ForeignKey]) -> str:
    """The message of a cycle nothing can break, after its count (names the table and key,
    never a value)."""
    fk = next((k for k, free in zip(keys, _freeable(st, op, keys), strict=True) if not free),
              keys[0])
    ref = Reference(fk.table, fk.columns, fk.referred_columns)
    return (f"of {op.table!r} this run deletes reference each other in a cycle "
            f"({ref.describe(op.table)}); this database checks the key row by row, so they can "
            "be deleted only after the reference is set to NULL, and the key's column(s) are "
            "NOT NULL; rolled back")


__all__ = ["ChainDelete", "chain_delete", "unlinked_changes"]
