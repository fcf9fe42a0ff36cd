"""discover: reflect a schema and write a draft data map (YAML with comments) for review.

From the subject table it follows foreign keys to every table that reaches the subject
(children, grandchildren ...), guesses identifier and personal columns from their names and
types, and adds tables outside that tree that hold identifier-looking columns as ``match``
tables. Every guess is marked in a comment; the result loads as a valid data map.

Left out on purpose: no writes to the database (read-only reflection); the CLI writes the file.
"""

from __future__ import annotations

import sqlalchemy as sa

from reconciler.errors import DataMapError, SnapshotError, redact_url
from reconciler.heuristics import identifier_type, looks_personal
from reconciler.replay import open_snapshot
from reconciler.schema import ForeignKey, SnapshotSchema, TableSchema, reflect


def discover(db: str, subject_table: str) -> str:
    """Draft a data map for the database at ``db`` with ``subject_table`` as the subject.

    Raises:
        SnapshotError: the database cannot be reached.
        DataMapError: the subject table does not exist or has no primary key.

    Returns:
        YAML text.
    """
    with open_snapshot(db) as engine:
        try:
            with engine.connect() as conn:
                schema = reflect(conn)
        except sa.exc.SQLAlchemyError:
            raise SnapshotError(f"snapshot {redact_url(db)}: cannot connect") from None
    return draft(schema, subject_table, source=redact_url(db))


def draft(schema: SnapshotSchema, subject_table: str, *, source: str) -> str:
    """The draft map for a reflected schema (pure; see :func:`discover`).

    Raises:
        DataMapError: the subject table does not exist or has no primary key.

    Returns:
        YAML text.
    """
    subject = schema.tables.get(subject_table)
    if subject is None:
        raise DataMapError(f"--subject-table: table {subject_table!r} is not in the database")
    if not subject.primary_key:
        raise DataMapError(f"--subject-table: table {subject_table!r} has no primary key")
    out = [f"# Draft data map written by `reconciler discover` from {source}.",
           "# Every line marked 'guess' needs a person's review (docs/datamap.md).",
           "version: 1", "subject:", f"  table: {subject.name}"]
    key = subject.primary_key
    out.append(f"  key: {key[0]}" if len(key) == 1 else f"  key: [{', '.join(key)}]")
    ids = _identifiers(subject)
    out.append("  identifiers:" + ("" if ids else " {}  # guess: none found; add them"))
    out += [f"    {t}: {c}  # guess: column name" for t, c in ids]
    out += ["  action: anonymize  # or delete", "  columns:"]
    out += _columns(subject, {c for _, c in ids}, indent=4)
    tables: list[str] = []
    for child, fk, depth in _tree(schema, subject.name):
        table = schema.tables[child]
        on = ", ".join(f"{c}: {p}" for c, p in zip(fk.columns, fk.referred_columns, strict=True))
        personal = [c for c in table.columns if looks_personal(c) and c not in fk.columns]
        tables += [f"  {child}:  # references {fk.referred_table} "
                   f"({depth} hop{'s' if depth > 1 else ''} from the subject)",
                   f"    link: {{parent: {fk.referred_table}, on: {{{on}}}}}"]
        if personal:
            tables += ["    action: anonymize  # guess: delete, anonymize or retain", "    columns:"]
            tables += _columns(table, set(), indent=6, only=personal)
        else:
            tables.append("    action: delete  # guess: no personal-looking columns")
    linked = {subject.name, *(c for c, _, _ in _tree(schema, subject.name))}
    for name, table in schema.tables.items():
        matches = [(t, c) for c in table.columns
                   if name not in linked and (t := identifier_type(c)) is not None
                   and table.columns[c].kind == "string"]
        if matches:
            inner = ", ".join(f"{t}: {c}" for t, c in matches)
            tables += [f"  {name}:  # guess: no foreign key to the subject; matched on "
                       "identifier columns", f"    match: {{{inner}}}",
                       "    action: delete"]
    if tables:
        out += ["tables:", *tables]
    return "\n".join(out) + "\n"


def _identifiers(table: TableSchema) -> list[tuple[str, str]]:
    seen: set[str] = set()
    found = []
    for column, info in table.columns.items():
        id_type = identifier_type(column)
        if id_type and id_type not in seen and column not in table.primary_key and (
                info.kind == "string" or id_type == "customer_number"):
            seen.add(id_type)
            found.append((id_type, column))
    return found


def _columns(table: TableSchema, required: set[str], *, indent: int,
             only: list[str] | None = None) -> list[str]:
    pad = " " * indent
    lines = []
    for column, info in table.columns.items():
        if column in table.primary_key:
            continue
        if column in required or (only is not None and column in only) or (
                only is None and looks_personal(column)):
            strategy = "year" if info.kind in ("date", "datetime") else "redact"
            why = "identifier column" if column in required else "guess: looks personal"
            lines.append(f"{pad}{column}: {strategy}  # {why}")
    return lines or [f"{pad}{{}}  # guess: nothing personal found"]


def _tree(schema: SnapshotSchema, root: str) -> list[tuple[str, ForeignKey, int]]:
    """Tables reaching ``root`` through foreign keys, breadth first: (table, fk, depth)."""
    found: list[tuple[str, ForeignKey, int]] = []
    seen = {root}
    frontier = [(root, 0)]
    while frontier:
        parent, depth = frontier.pop(0)
        for fk in schema.referencing(parent):
            if fk.table not in seen:
                seen.add(fk.table)
                found.append((fk.table, fk, depth + 1))
                frontier.append((fk.table, depth + 1))
    return found


__all__ = ["discover", "draft"]
