# ruff: noqa: S608 - SQL text is built from quoted identifiers; values are bound
"""Residual scan: prove that no erased person's identifier is left anywhere in the snapshot.

Two passes over one connection (read-only):

1. **Mapped identifier columns** (the subject's ``identifiers`` and every ``match`` column):
   each distinct value is normalised with ``erasure_ledger.normalize`` and looked up among
   the identifiers of the ledger's erasure entries.
2. **Every other string or JSON column** of every table (free text, columns added since the
   map was written, audit tables a trigger fills): e-mail addresses, phone numbers and IBANs
   are extracted with ``find_emails``, ``find_phones`` and ``find_ibans`` (already
   normalised); the other identifier types are matched as exact tokens from
   ``candidate_tokens`` (normalised first for ip, kvk and mac). Each row is read once: a
   PostgreSQL table with partitions or inheriting tables is read with ``ONLY``.

A :class:`Finding` names table, column, row key and the entry's sequence number, never the
value; a row key that could itself be personal data is not shown. Columns that look personal
by name but are not in the map are listed too. Nothing here raises for findings.

Left out on purpose: no writes, no ledger I/O (entries are passed in), no printing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy.engine import Connection

from erasure_ledger import (
    InvalidIdentifierError,
    OpenedEntry,
    candidate_tokens,
    find_emails,
    find_ibans,
    find_phones,
    normalize,
)
from reconciler.columns import stream_rows, text_pages
from reconciler.datamap import DataMap
from reconciler.dialects import dialect_for, quoter
from reconciler.fanout import can_fork, fan_out
from reconciler.heuristics import looks_personal
from reconciler.prefilter import TextFilter, digits_of
from reconciler.progress import NullProgress, Progress
from reconciler.schema import SnapshotSchema, reflect

_NORMALISED_TOKENS = frozenset({"ip", "kvk", "mac"})
_EXTRACTED = frozenset({"email", "phone", "iban"})
# country code and check digits: an IBAN in text starts with those of a ledger IBAN (two
# such hints never overlap, so findall sees every one)
_IBAN_HINT = re.compile(r"[A-Za-z]{2}\d{2}")
_DIGIT = re.compile(r"\d")
_FIELD = "\x01"  # between the columns of a row text (Dialect.field_separator)


@dataclass(frozen=True)
class Finding:
    """One residual: where ledger data was found, never what.

    ``row_key`` is the row's primary key as text; ``None`` when the table has no primary key
    or the key itself could be personal data.
    """

    table: str
    column: str
    row_key: str | None
    seq: int
    request_id: str
    how: str  # "mapped column" | "free text"


@dataclass(frozen=True)
class ScanResult:
    """What the residual scan found; ``clean`` when nothing."""

    findings: tuple[Finding, ...] = ()
    columns_scanned: int = 0
    unmapped_personal_columns: tuple[str, ...] = field(default=())

    @property
    def clean(self) -> bool:
        """True when there are no findings."""
        return not self.findings


class _Index:
    """The erasure entries' identifiers: type -> normal form -> sequence numbers.

    Every test starts with a cheap pre-test (:mod:`reconciler.prefilter`), so only values
    that may hold a ledger identifier are normalised or handed to the extractors.
    """

    def __init__(self, by_type: dict[str, dict[str, list[int]]],
                 request_ids: dict[int, str]) -> None:
        self.by_type = by_type
        self.request_ids = request_ids
        self.text = TextFilter(self.by_type)
        self.values = self.text.values
        # exact tokens: opaque types share one table (a token is compared as written)
        self.opaque: dict[str, list[int]] = {}
        for id_type, values in self.by_type.items():
            if id_type not in _EXTRACTED and id_type not in _NORMALISED_TOKENS:
                for value, seqs in values.items():
                    self.opaque.setdefault(value, []).extend(seqs)
        self.normalised_tokens = [t for t in self.by_type if t in _NORMALISED_TOKENS]

    @classmethod
    def of(cls, entries: Iterable[OpenedEntry]) -> _Index:
        """The index of the erasure entries among ``entries`` (shredded ones have none)."""
        by_type: dict[str, dict[str, list[int]]] = {}
        request_ids: dict[int, str] = {}
        for opened in entries:
            if opened.entry is None or opened.meta.kind != "erasure":
                continue
            request_ids[opened.meta.seq] = opened.meta.request_id
            for ident in opened.entry.identifiers:
                by_type.setdefault(ident.type, {}).setdefault(ident.value, []).append(
                    opened.meta.seq)
        return cls(by_type, request_ids)

    def lookup(self, id_type: str, value: str) -> Sequence[int]:
        return self.by_type.get(id_type, {}).get(value, [])

    def exact(self, id_type: str, raw: str, region: str) -> Sequence[int]:
        if id_type not in self.by_type or not self.values.may_match(id_type, raw):
            return []
        try:
            return self.lookup(id_type, normalize(id_type, raw, default_region=region))
        except InvalidIdentifierError:
            return []

    def in_text(self, text: str, region: str) -> set[int]:
        found: set[int] = set()
        pretest = self.text
        if pretest.emails and "@" in text:
            for email in find_emails(text):
                found.update(self.lookup("email", email))
        digits = digits_of(text) if _DIGIT.search(text) else ""
        if digits and pretest.phone_candidate(digits):
            for phone in find_phones(text, default_region=region):
                found.update(self.lookup("phone", phone))
        if pretest.iban_heads and any(h.upper() in pretest.iban_heads
                                      for h in _IBAN_HINT.findall(text)):
            for iban in find_ibans(text):
                found.update(self.lookup("iban", iban))
        if pretest.token_candidate(text, digits):
            for token in candidate_tokens(text):
                found.update(self.opaque.get(token, ()))
                for id_type in self.normalised_tokens:
                    found.update(self.exact(id_type, token, region))
        return found


def scan(conn: Connection, data_map: DataMap, entries: Sequence[OpenedEntry], *,
         default_region: str = "NL", schema: SnapshotSchema | None = None,
         progress: Progress | None = None, workers: int = 1) -> ScanResult:
    """Look for every erasure entry's identifiers in the snapshot.

    Args:
        conn: a connection to the snapshot, not in a transaction (only read; the scan reads
            in transactions of its own).
        data_map: says which columns are identifier columns.
        entries: the ledger's opened entries; only erasure entries are looked for.
        default_region: region for phone numbers written without a country code.
        schema: the reflected schema, if the caller has it already.
        progress: told about each pass (phase ``scan``).
        workers: processes to share the reading and testing (:mod:`reconciler.fanout`):
            large tables are then read in ranges of their integer key.

    Returns:
        The findings (empty when clean), never raising for them.
    """
    if schema is None:
        with conn.begin():
            schema = reflect(conn)
    scanner = _Scanner(conn, data_map, _Index.of(entries), default_region, schema)
    passes = scanner.passes()
    if workers > 1 and can_fork(conn):
        with conn.begin():
            passes = scanner.split(conn, passes)
    observer = progress or NullProgress()
    observer.phase("scan", len(passes))
    shown = 0

    def started(count: int) -> None:
        nonlocal shown
        while shown < count:
            observer.step(f"scan {passes[shown].table}")
            shown += 1

    for found in fan_out(conn, passes, scanner.run, workers=workers, started=started):
        scanner.add(found)
    started(len(passes))
    observer.done()
    ordered = sorted(scanner.findings.values(),
                     key=lambda f: (f.seq, f.table, f.column, f.row_key or ""))
    return ScanResult(findings=tuple(ordered), columns_scanned=scanner.scanned,
                      unmapped_personal_columns=tuple(sorted(scanner.unmapped)))


@dataclass(frozen=True)
class _Pass:
    """One read of the scan: a table's identifier columns (``mapped``: id type and column)
    or its other text columns (``text``), every row or only the rows whose integer key is
    in ``[low, high)``, or NULL when both are None (a large table is split so that worker
    processes share it)."""

    table: str
    mapped: tuple[tuple[str, str], ...] = ()
    text: tuple[str, ...] = ()
    key_range: tuple[str, int | None, int | None] | None = None  # key column, low, high


# A pass's hits: (table, column, row key, sequence numbers, how found)
_Hit = tuple[str, str, str | None, tuple[int, ...], str]
# Tables with at least this many keys (max - min + 1) are split into ranges of about this
# many, at most _MAX_RANGES of them: small enough that two processes end close together,
# large enough that one statement per range costs nothing next to its rows.
_RANGE_KEYS = 50_000
_MAX_RANGES = 64


class _Scanner:
    def __init__(self, conn: Connection, data_map: DataMap, index: _Index, region: str,
                 schema: SnapshotSchema) -> None:
        self.map = data_map
        self.index = index
        self.region = region
        self.schema = schema
        self.dialect = dialect_for(conn.dialect.name)
        # the reads go to the driver's cursor (reconciler.columns); key_bounds() alone
        # runs through exec_driver_sql
        self.quote = quoter(conn.dialect, "cursor")
        self.driver_quote = quoter(conn.dialect, "driver")
        tables = list(data_map.all_tables())
        self.mapped_ids = {(t.name, c) for t in tables for _, c in t.match}
        # rows of partitions and inheriting tables are read through their mapped parent
        self.mapped_ids |= {(child, c) for t, c in self.mapped_ids
                            for child in schema.descendants(t)}
        self.mapped_all = self.mapped_ids | {(t.name, c) for t in tables for c, _ in t.columns}
        self.mapped_all |= {(t.name, c) for t in tables if t.link for c, _ in t.link.on}
        self.findings: dict[tuple[str, str, str | None, int], Finding] = {}
        self.scanned = 0
        self.unmapped: list[str] = []

    def add(self, hits: Iterable[_Hit]) -> None:
        for table, column, key, seqs, how in hits:
            for seq in seqs:
                self.findings.setdefault((table, column, key, seq), Finding(
                    table=table, column=column, row_key=key, seq=seq,
                    request_id=self.index.request_ids[seq], how=how))

    def row_key(self, table: str, values: Sequence[object]) -> str | None:
        snap = self.schema.tables[table]
        if not values or None in values or any(
                (table, c) in self.mapped_ids or looks_personal(c) for c in snap.primary_key):
            return None  # no key to show (NULL, where SQLite allows it), or a personal one
        text = "/".join(str(v) for v in values)
        # a key that is itself an erased identifier is not shown either
        return None if self.index.in_text(text, self.region) else text

    def passes(self) -> list[_Pass]:
        """Every read of the scan: first the mapped identifier columns, then every other
        string or JSON column (also counts the columns and lists the unmapped personal
        ones)."""
        passes = []
        for table in self.map.all_tables():
            snap = self.schema.tables.get(table.name)
            if snap is None:
                continue
            columns = tuple((id_type, column) for id_type, column in table.match
                            if column in snap.columns and id_type in self.index.by_type)
            if columns:
                self.scanned += len(columns)
                passes.append(_Pass(table.name, mapped=columns))
        # rows of deleted tables go as a whole, so their columns need no mapping
        mapped_tables = {t.name for t in self.map.all_tables() if t.action != "delete"}
        for name, snap in self.schema.tables.items():
            if name in mapped_tables:
                self.unmapped.extend(f"{name}.{c}" for c in snap.columns
                                     if looks_personal(c) and (name, c) not in self.mapped_all)
            strings = tuple(c for c, info in snap.columns.items()
                            if info.kind in ("string", "json") and (name, c) not in self.mapped_ids)
            if strings and self.index.by_type:
                self.scanned += len(strings)
                passes.append(_Pass(name, text=strings))
        return passes

    def split(self, conn: Connection, passes: Sequence[_Pass]) -> list[_Pass]:
        """``passes`` for worker processes: the tables with a single integer key and many
        keys in ranges of it, after the passes that stay whole (so those start first)."""
        whole: list[_Pass] = []
        ranges: list[_Pass] = []
        bounds: dict[str, tuple[str, int, int] | None] = {}
        quote = self.driver_quote  # key_bounds() runs exec_driver_sql
        for one in passes:
            source = quote(one.table) if one.mapped else self.source(one.table, quote)
            if source not in bounds:
                bounds[source] = self.key_bounds(conn, one.table, source)
            found = bounds[source]
            if found is None:
                whole.append(one)
                continue
            key, low, high = found
            count = min(-(-(high - low) // _RANGE_KEYS), _MAX_RANGES)
            step = -(-(high - low) // count)
            ranges.extend(replace(one, key_range=(key, start, min(start + step, high)))
                          for start in range(low, high, step))
            # MIN and MAX skip NULL and no range holds it, yet SQLite lets a primary key that
            # is not INTEGER PRIMARY KEY (BIGINT, INT) be NULL: those rows get a pass too
            ranges.append(replace(one, key_range=(key, None, None)))
        return whole + ranges

    def key_bounds(self, conn: Connection, table: str, source: str,
                   ) -> tuple[str, int, int] | None:
        """The integer key of ``table`` and the span ``[min, max + 1)`` of its keys in
        ``source`` (the table, or ``ONLY`` the table, quoted for exec_driver_sql), when it
        is worth splitting."""
        snap = self.schema.tables[table]
        if len(snap.primary_key) != 1 or snap.columns[snap.primary_key[0]].kind != "integer":
            return None
        key = snap.primary_key[0]
        column = self.driver_quote(key)
        low, high = conn.exec_driver_sql(
            f"SELECT MIN({column}), MAX({column}) FROM {source}"
        ).one()
        if not isinstance(low, int) or not isinstance(high, int) or high - low < 2 * _RANGE_KEYS:
            return None
        return key, low, high + 1

    def run(self, conn: Connection, one: _Pass) -> list[_Hit]:
        """The hits of one pass, read through ``conn`` (this or a worker process's)."""
        where = None
        if one.key_range is not None:
            key, low, high = one.key_range
            column = self.quote(key)
            where = (f"{column} IS NULL" if low is None or high is None
                     else f"{column} >= {int(low)} AND {column} < {int(high)}")
        if one.mapped:
            return self.mapped_table(conn, one.table, one.mapped, where)
        return self.text_table(conn, one.table, one.text, where)

    def mapped_table(self, conn: Connection, table: str, columns: Sequence[tuple[str, str]],
                     where: str | None) -> list[_Hit]:
        """One pass over ``table``'s identifier columns (with the row keys, so a finding
        needs no second query)."""
        snap = self.schema.tables[table]
        keys = [self.quote(c) for c in snap.primary_key]
        quoted = [self.quote(column) for _, column in columns]
        hits: list[_Hit] = []
        for rows, texts in text_pages(conn, self.dialect, self.quote(table), quoted, keys,
                                      where=where):
            for (id_type, column), page in zip(columns, texts, strict=True):
                for at in self.index.values.candidates(id_type, page):
                    seqs = self.index.exact(id_type, page[at], self.region) if page[at] else ()
                    if seqs:
                        key = self.row_key(table, tuple(rows[at][:len(keys)])) if keys else None
                        hits.append((table, column, key, tuple(seqs), "mapped column"))
        return hits

    def text_table(self, conn: Connection, name: str, strings: Sequence[str],
                   where: str | None) -> list[_Hit]:
        """Scan the text columns of one table, each row read once as ONE text.

        The database concatenates a row's columns with U+0001 between them; pages of such
        row texts go through the page pre-tests of :mod:`reconciler.prefilter` (no needle
        holds U+0001, so a match never spans two columns; the digit and letter passes may
        join neighbouring columns, which only lets more rows through). A suspect row is
        split back into its columns and each one tested exactly. A value that itself holds
        U+0001 cannot be split back: the table is then scanned column by column.
        """
        snap = self.schema.tables[name]
        keys = [self.quote(c) for c in snap.primary_key]
        fields = [self.dialect.text_field(self.quote(c) if snap.columns[c].kind == "string"
                                          else self.dialect.cast_text(self.quote(c)))
                  for c in strings]
        separator = self.dialect.field_separator()
        parts = [part for index, field in enumerate(fields)
                 for part in ((separator, field) if index else (field,))]
        row_text = self.dialect.concat(parts) if len(parts) > 1 else parts[0]
        pretest = self.index.text
        width = len(keys)
        unsplit = False
        hits: list[_Hit] = []
        sql = f"SELECT {', '.join([*keys, row_text])} FROM {self.source(name)}"
        for rows in stream_rows(conn, f"{sql} WHERE {where}" if where else sql):
            texts = [row[width] for row in rows]
            for at in pretest.suspects(texts):
                text = texts[at]
                values = text.split(_FIELD) if isinstance(text, str) else []
                if len(values) != len(strings):
                    unsplit = True
                    continue
                for column, value in zip(strings, values, strict=True):
                    seqs = self.index.in_text(value, self.region) if value else set()
                    if seqs:
                        key = self.row_key(name, tuple(rows[at][:width]))
                        hits.append((name, column, key, tuple(sorted(seqs)), "free text"))
        if unsplit:
            hits.extend(self.text_table_by_column(conn, name, strings, where))
        return hits

    def source(self, name: str, quote: Callable[[str], str] | None = None) -> str:
        """The table to read: a partition's or inheriting table's rows are read from that
        table, never again through its parent (``ONLY``); quoted for the cursor unless
        ``quote`` is given."""
        table = (quote or self.quote)(name)
        return self.dialect.only(table) if self.schema.descendants(name) else table

    def text_table_by_column(self, conn: Connection, name: str, strings: Sequence[str],
                             where: str | None) -> list[_Hit]:
        """The text columns of one table, read as separate columns (slower, always exact)."""
        snap = self.schema.tables[name]
        keys = list(snap.primary_key)
        select = ", ".join([*(self.quote(c) for c in keys),
                            *(self.quote(c) if snap.columns[c].kind == "string"
                              else self.dialect.cast_text(self.quote(c)) for c in strings)])
        pretest = self.index.text
        width = len(keys)
        hits: list[_Hit] = []
        sql = f"SELECT {select} FROM {self.source(name)}"
        for page in stream_rows(conn, f"{sql} WHERE {where}" if where else sql):
            columns = list(zip(*page, strict=True))  # a page's rows as columns, in C
            for offset, column in enumerate(strings, start=width):
                values: Sequence[str] = columns[offset]
                if None in values:
                    values = [value or "" for value in values]
                for at in pretest.suspects(values):
                    value = values[at]
                    if not isinstance(value, str) or not value:
                        continue
                    seqs = self.index.in_text(value, self.region)
                    if seqs:
                        key = self.row_key(name, tuple(page[at][:width]))
                        hits.append((name, column, key, tuple(sorted(seqs)), "free text"))
        return hits


__all__ = ["Finding", "ScanResult", "scan"]
