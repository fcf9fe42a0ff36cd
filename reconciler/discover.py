"""discover: reflect a schema and write a draft data map (YAML with comments) for review.

From the subject table it follows foreign keys to every table that reaches the subject
(children, grandchildren ...), guesses identifier and personal columns from their names and
types, and adds tables outside that tree that hold identifier-looking columns as ``match``
tables. Names are not enough (a column ``address`` may hold e-mail addresses), so it also
reads a small sample of every string column (the first :data:`SAMPLE_SIZE` non-null values)
and tests them with ``find_emails``, ``find_phones`` and ``find_ibans``: a column whose
sampled values are mostly one e-mail address, phone number or IBAN each (the whole value,
separators aside) is guessed to hold that identifier; one whose values mostly merely contain
one (sentences that mention a number) is flagged as personal free text. Every guess is
marked in a comment, with the counts it rests on (never a value); the result loads as a valid
data map.

Left out on purpose: no writes to the database (read-only reflection and sampling); the CLI
writes the file. Partitions and inheriting tables are left to their parent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from erasure_ledger import InvalidIdentifierError, find_emails, find_ibans, find_phones, normalize
from reconciler.datamap import name_problem, shown_name
from reconciler.errors import DataMapError, SnapshotError, cannot_connect, redact_url
from reconciler.heuristics import identifier_type, looks_personal
from reconciler.replay import open_snapshot
from reconciler.schema import ForeignKey, SnapshotSchema, TableSchema, reflect

SAMPLE_SIZE = 50  # non-null values read per string column
# The identifier type of a draft whose subject has no identifier column: no ledger entry
# carries it, so the map loads and finds nobody until a person names the real ones.
_NO_IDENTIFIER = "none_found"
# Written as plain YAML: letters (any script), digits, _ $ . - and single inner spaces, not
# starting with a digit or '-'; anything else is double-quoted (a ':', '#', ',', '{' ...).
_PLAIN = re.compile(r"[^\W\d][\w$.-]*(?: [\w$.-]+)*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
GUESS_SHARE = 0.8  # share of sampled values that must be one identifier of a type
Samples = Mapping[tuple[str, str], Sequence[str]]  # (table, column) -> distinct sampled values

_FINDERS: dict[str, tuple[Callable[[str], list[str]], str]] = {
    "email": (find_emails, "e-mail addresses"),
    "phone": (find_phones, "phone numbers"),
    "iban": (find_ibans, "IBANs"),
}


@dataclass(frozen=True)
class ValueGuess:
    """A column guessed to hold identifiers of ``id_type`` from sampled values."""

    id_type: str
    matched: int
    sampled: int
    free_text: bool = False  # the values contain such identifiers but are more than that

    def comment(self) -> str:
        """Returns: the YAML comment text (counts only, never a value)."""
        noun = _FINDERS[self.id_type][1]
        if self.free_text:
            return (f"guess: personal free text: {self.matched} of {self.sampled} sampled "
                    f"values contain {noun}")
        return f"guess: {self.matched} of {self.sampled} sampled values look like {noun}"


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
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            reason = cannot_connect(exc, engine.url.password)
            raise SnapshotError(f"snapshot {redact_url(db)}: {reason}") from None
        try:
            with conn:
                schema = reflect(conn)
                samples = sample_values(conn, schema)
        except sa.exc.SQLAlchemyError as exc:
            # a failed query may quote values: name only its class
            raise SnapshotError(f"snapshot {redact_url(db)}: reading the schema failed: "
                                f"{type(exc).__name__}") from None
    return draft(schema, subject_table, source=redact_url(db), samples=samples)


def sample_values(conn: Connection, schema: SnapshotSchema, *,
                  limit: int = SAMPLE_SIZE) -> dict[tuple[str, str], list[str]]:
    """Read up to ``limit`` non-null values of every string column (one query per column).

    Returns:
        (table, column) -> the distinct values read.
    """
    out: dict[tuple[str, str], list[str]] = {}
    for name, table in schema.tables.items():
        if table.inherits is not None:
            continue
        for column, info in table.columns.items():
            if info.kind != "string":
                continue
            # Core, not text: SQLAlchemy quotes the names, and a '%' or ':' in one stays a
            # character of the name (text() would read ":x" as a parameter, and quote()
            # doubles '%' for drivers that format parameters).
            value: sa.ColumnClause[object] = sa.column(column)
            rows = conn.execute(sa.select(value).select_from(sa.table(name))
                                .where(value.is_not(None)).limit(limit))
            values = dict.fromkeys(v for (v,) in rows if isinstance(v, str) and v.strip())
            out[(name, column)] = list(values)
    return out


def value_guess(values: Sequence[str], *, default_region: str = "NL") -> ValueGuess | None:
    """The identifier type most sampled values are, each on its own, if any.

    Returns:
        The guess, or None.
    """
    if not values:
        return None
    for id_type, (finder, _) in _FINDERS.items():
        matched = sum(1 for value in values if _is_one(id_type, finder, value, default_region))
        if matched >= GUESS_SHARE * len(values):
            return ValueGuess(id_type, matched, len(values))
    for id_type, (finder, _) in _FINDERS.items():
        found = sum(1 for value in values if _finds(id_type, finder, value, default_region))
        if found >= GUESS_SHARE * len(values):
            return ValueGuess(id_type, found, len(values), free_text=True)
    return None


_SEPARATORS = re.compile(r"[\s().\-/+]")


def _finds(id_type: str, finder: Callable[..., list[str]], value: str, region: str) -> list[str]:
    return finder(value, default_region=region) if id_type == "phone" else finder(value)


def _is_one(id_type: str, finder: Callable[..., list[str]], value: str, region: str) -> bool:
    """The value is one identifier of ``id_type`` and nothing else (separators aside)."""
    try:
        normal = normalize(id_type, value, default_region=region)
    except InvalidIdentifierError:
        return False
    if _finds(id_type, finder, value, region) != [normal]:
        return False
    if id_type == "email":
        # The value's own normal form is the one address in it: nothing else is there. Its
        # spelling may differ from that form in more than case: an ACE domain
        # (xn--bcher-kva) is decoded to Unicode, decomposed accents are composed (NFC).
        return True
    bare = _SEPARATORS.sub("", value).lower()
    if id_type == "phone":  # normalised to E.164: a national 0 or 00 prefix differs
        return bare.isdigit()
    return bare == _SEPARATORS.sub("", normal).lower()


def yaml_name(name: str) -> str:
    """``name`` as a YAML scalar that reads back as exactly ``name``, in block or flow style.

    Returns:
        The name itself when it is plain, else a double-quoted YAML string.
    """
    if _PLAIN.fullmatch(name) and name.lower() not in _YAML_WORDS:
        return name
    out = []
    for char in name:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable() or char == " ":
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def mappable(schema: SnapshotSchema) -> tuple[SnapshotSchema, list[str]]:
    """``schema`` without the tables and columns a data map cannot name (docs/datamap.md).

    Foreign keys through such a table or column go too. A name with a control character,
    or longer than any of the supported databases allows, is rare and is reported, not
    guessed around.

    Returns:
        The schema left, and one line per name left out (escaped; what is wrong with it).
    """
    skipped: list[str] = []
    tables: dict[str, TableSchema] = {}
    for name, table in schema.tables.items():
        problem = name_problem(name, "table")
        if problem is not None:
            skipped.append(f"table {shown_name(name)}: {problem}")
            continue
        columns = {}
        for column, info in table.columns.items():
            problem = name_problem(column, "column")
            if problem is None:
                columns[column] = info
            else:
                skipped.append(f"column {name}.{shown_name(column)}: {problem}")
        tables[name] = replace(table, columns=columns)
    for name, table in tables.items():
        keep = tuple(fk for fk in table.foreign_keys
                     if fk.referred_table in tables
                     and all(c in table.columns for c in fk.columns)
                     and all(c in tables[fk.referred_table].columns
                             for c in fk.referred_columns))
        tables[name] = replace(table, foreign_keys=keep)
    return replace(schema, tables=tables), skipped


def draft(schema: SnapshotSchema, subject_table: str, *, source: str,
          samples: Samples | None = None) -> str:
    """The draft map for a reflected schema (pure; see :func:`discover`).

    Every table and column name is written so that it reads back as written (quoted when
    YAML needs it: ``"2fa"``, ``"a: b"``); names no data map can hold are left out and listed
    in a comment at the top.

    Args:
        schema: the reflected schema.
        subject_table: the table with one row per person.
        source: where the schema came from (a redacted URL), for the header comment.
        samples: sampled string values (:func:`sample_values`); none: names only.

    Raises:
        DataMapError: the subject table does not exist, has no primary key, or its name or
            a key column's cannot be written in a data map.

    Returns:
        YAML text.
    """
    if subject_table not in schema.tables:
        raise DataMapError(f"--subject-table: table {subject_table!r} is not in the database")
    full = schema.tables[subject_table]
    schema, skipped = mappable(schema)
    subject = schema.tables.get(subject_table)
    if subject is None:
        raise DataMapError(f"--subject-table: {name_problem(subject_table, 'table')}")
    if not full.primary_key:
        raise DataMapError(f"--subject-table: table {subject_table!r} has no primary key")
    for column in full.primary_key:
        if column not in subject.columns:
            raise DataMapError(f"--subject-table: key column {shown_name(column)}: "
                               f"{name_problem(column, 'column')}")
    y = yaml_name
    guesses = {key: guess for key, values in (samples or {}).items()
               if (guess := value_guess(values)) is not None}
    out = [f"# Draft data map written by `reconciler discover` from {source}.",
           "# Every line marked 'guess' needs a person's review (docs/datamap.md)."]
    out += [f"# Left out, a data map cannot name it: {line}" for line in skipped]
    out += ["version: 1", "subject:", f"  table: {y(subject.name)}"]
    key = subject.primary_key
    out.append(f"  key: {y(key[0])}" if len(key) == 1
               else f"  key: [{', '.join(y(k) for k in key)}]")
    out += _subject_identifiers(subject, guesses)
    tables: list[str] = []
    tree = _tree(schema, subject.name)
    for child, fk, depth in tree:
        table = schema.tables[child]
        on = ", ".join(f"{y(c)}: {y(p)}"
                       for c, p in zip(fk.columns, fk.referred_columns, strict=True))
        personal = [c for c in table.columns if c not in fk.columns and (
            looks_personal(c) or (child, c) in guesses)]
        tables += [f"  {y(child)}:  # references {fk.referred_table} "
                   f"({depth} hop{'s' if depth > 1 else ''} from the subject)",
                   f"    link: {{parent: {y(fk.referred_table)}, on: {{{on}}}}}"]
        if personal:
            tables += ["    action: anonymize  # guess: delete, anonymize or retain", "    columns:"]
            tables += _columns(table, set(), indent=6, only=personal, guesses=guesses)
        else:
            tables.append("    action: delete  # guess: no personal-looking columns")
    linked = {subject.name, *(c for c, _, _ in tree)}
    for name, table in schema.tables.items():
        if name in linked or table.inherits is not None:
            continue
        matches = _identifiers(table, guesses, by_name_any_type=False)
        if matches:
            tables += [f"  {y(name)}:  # guess: no foreign key to the subject; matched on "
                       "identifier columns", "    match:"]
            tables += [f"      {t}: {y(c)}  # {why}" for t, c, why in matches]
            tables.append("    action: delete")
    if tables:
        out += ["tables:", *tables]
    return "\n".join(out) + "\n"


def _identifiers(table: TableSchema, guesses: Mapping[tuple[str, str], ValueGuess], *,
                 by_name_any_type: bool = True) -> list[tuple[str, str, str]]:
    """(identifier type, column, why) per type, first by name then by sampled values."""
    seen: set[str] = set()
    found = []
    for column, info in table.columns.items():
        id_type = identifier_type(column)
        if id_type and id_type not in seen and column not in table.primary_key and (
                info.kind == "string" or (by_name_any_type and id_type == "customer_number")):
            seen.add(id_type)
            found.append((id_type, column, "guess: column name"))
    named = {c for _, c, _ in found}
    for column in table.columns:
        guess = guesses.get((table.name, column))
        if (guess is not None and not guess.free_text and guess.id_type not in seen
                and column not in named):
            seen.add(guess.id_type)
            found.append((guess.id_type, column, guess.comment()))
    return found


def _columns(table: TableSchema, required: set[str], *, indent: int,
             only: list[str] | None = None,
             guesses: Mapping[tuple[str, str], ValueGuess] | None = None) -> list[str]:
    pad = " " * indent
    guesses = guesses or {}
    lines = []
    for column, info in table.columns.items():
        if column in table.primary_key:
            continue
        guess = guesses.get((table.name, column))
        if column in required or (only is not None and column in only) or (
                only is None and (looks_personal(column) or guess is not None)):
            strategy = "year" if info.kind in ("date", "datetime") else "redact"
            why = ("identifier column" if column in required
                   else guess.comment() if guess is not None and not looks_personal(column)
                   else "guess: looks personal")
            lines.append(f"{pad}{yaml_name(column)}: {strategy}  # {why}")
    return lines


def _subject_identifiers(subject: TableSchema,
                         guesses: Mapping[tuple[str, str], ValueGuess]) -> list[str]:
    """The subject's ``identifiers``, ``action`` and ``columns`` lines."""
    ids = _identifiers(subject, guesses)
    if not ids:
        return _no_identifiers(subject, guesses)
    lines = ["  identifiers:", *(f"    {t}: {yaml_name(c)}  # {why}" for t, c, why in ids),
             "  action: anonymize  # or delete", "  columns:"]
    return lines + _columns(subject, {c for _, c, _ in ids}, indent=4, guesses=guesses)


def _no_identifiers(subject: TableSchema,
                    guesses: Mapping[tuple[str, str], ValueGuess]) -> list[str]:
    """The subject's ``identifiers``, ``action`` and ``columns`` when no identifier column was
    found: still a map that loads, and one that finds nobody until a person names them.

    A map needs at least one identifier, and ``anonymize`` needs every identifier column
    among the columns it masks. So the key stands in under a type no ledger entry uses
    (the plan warns that it matches nothing), the action is ``delete``, and the columns an
    ``anonymize`` would mask are written as comments.
    """
    personal = _columns(subject, set(), indent=4, guesses=guesses)
    lines = [
        "  # guess: no identifier column found (by name or sampled values). Name the columns",
        "  # holding the ledger's identifiers (email: ..., phone: ...). Until then the key",
        "  # stands in under a type no ledger entry has, so a run finds nobody.",
        f"  identifiers: {{{_NO_IDENTIFIER}: {yaml_name(subject.primary_key[0])}}}",
        "  action: delete  # guess: or anonymize, with the columns below",
    ]
    if personal:
        lines.append("  # columns:  # for anonymize: these and every identifier column")
        lines += [f"  #{line[1:]}" for line in personal]
    else:
        lines.append("  # columns:  # for anonymize: every identifier column (nothing else "
                     "looked personal)")
    return lines


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


__all__ = ["SAMPLE_SIZE", "ValueGuess", "discover", "draft", "mappable", "sample_values",
           "value_guess", "yaml_name"]
