"""The data map: YAML -> a validated, frozen :class:`DataMap` (reference: docs/datamap.md).

Parsing happens once, at the edge. Every key is checked; an error names the file, the line
and the key path (``datamap.yaml:14: tables.orders.action: unknown action 'erase'``). Checks
that need the snapshot's schema (columns, constraints, foreign keys) happen in the executor at
plan time, and name the same file:line through :meth:`DataMap.where`.

Left out on purpose: no database access, no ledger access.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from erasure_ledger import KNOWN_TYPES
from reconciler.errors import DataMapError
from reconciler.objectmap import ObjectLocation, parse_objects
from reconciler.strategies import Strategy, parse_strategy

Action = Literal["delete", "anonymize", "retain"]
ACTIONS: tuple[Action, ...] = ("delete", "anonymize", "retain")
OnReference = Literal["refuse", "nullify", "anonymize"]
ON_REFERENCE: tuple[OnReference, ...] = ("refuse", "nullify", "anonymize")
# A table or column name is taken as written and always quoted in SQL, so any name a database
# can hold is accepted: Straßen-Log, e-mail, "klant nummer", 2fa_secret. Refused are names no
# database holds or that are surely a slip (docs/datamap.md#table-and-column-names).
NAME_MAX_CHARS = 128  # SQL Server and Oracle; PostgreSQL allows 63 bytes, MariaDB 64 characters
# Cc: tab, newline, NUL ...; Cf: zero-width space, byte-order mark ...; Cs: a lone surrogate
# (not UTF-8); Zl, Zp: line and paragraph separators. None of them shows in a map, a log or
# an error message, and YAML and logs break lines at several of them.
_UNSEEN = ("Cc", "Cf", "Cs", "Zl", "Zp")
_TYPE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
# Names people write for a built-in type, in Dutch or spelled out: a map that says
# "telefoon" means "phone", and matching on a custom type no entry uses finds nobody.
_ALIASES = {
    "telefoon": "phone", "telefoonnummer": "phone", "mobiel": "phone", "tel": "phone",
    "phone_number": "phone", "mobile": "phone", "klantnummer": "customer_number",
    "klantnr": "customer_number", "customer_id": "customer_number", "e_mail": "email",
    "mail": "email", "emailadres": "email", "email_address": "email",
    "gebruikersnaam": "username", "user_name": "username", "rekeningnummer": "iban",
    "ip_address": "ip", "ip_adres": "ip", "kvk_nummer": "kvk",
}


def name_problem(name: str, kind: str = "table or column") -> str | None:
    """What makes ``name`` unusable as a table or column name, if anything.

    Args:
        name: the name as written in the map.
        kind: ``table``, ``column`` or ``table or column``, for the message.

    Returns:
        A message such as "a column name cannot be empty", or None when the name is fine.
    """
    if not name:
        return f"a {kind} name cannot be empty"
    for index, char in enumerate(name, start=1):
        if unicodedata.category(char) in _UNSEEN:
            return (f"a {kind} name cannot contain a control or invisible character "
                    f"(U+{ord(char):04X} at character {index})")
    if name != name.strip():
        # MariaDB refuses a trailing space; anywhere it is far more likely a slip than meant.
        return f"a {kind} name cannot start or end with a space"
    if len(name) > NAME_MAX_CHARS:
        return f"a {kind} name is at most {NAME_MAX_CHARS} characters (this one has {len(name)})"
    return None


def shown_name(name: str) -> str:
    """``name`` for a key path in a message: as written when valid, quoted and escaped if not.

    Returns:
        Printable text on one line, at most about 60 characters.
    """
    if name_problem(name) is None:
        return name
    escaped = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _UNSEEN
                      else c for c in name[:48])
    return f"'{escaped}{'...' if len(name) > 48 else ''}'"


def close_known_type(id_type: str) -> str | None:
    """The built-in identifier type a custom ``id_type`` most likely misspells, if any.

    Returns:
        A name from ``KNOWN_TYPES``, or None.
    """
    if id_type in KNOWN_TYPES:
        return None
    if id_type in _ALIASES:
        return _ALIASES[id_type]
    close = difflib.get_close_matches(id_type, sorted(KNOWN_TYPES), n=1, cutoff=0.75)
    return close[0] if close else None


@dataclass(frozen=True)
class Link:
    """How a table's rows belong to the person of another table's rows.

    ``on`` holds ``(this table's column, other table's column)`` pairs. ``parent`` is the other
    table. Normally this table references it (``link: {parent: ...}``); with ``reverse`` the
    other table references this one (``link: {referenced_by: ...}``): a row the person's rows
    point at, such as an address, which other rows may share.
    """

    parent: str
    on: tuple[tuple[str, str], ...]
    reverse: bool = False


@dataclass(frozen=True)
class Retain:
    """Keep rows ``years`` after the date in column ``after``, masked; delete them after that."""

    years: int
    after: str


@dataclass(frozen=True)
class TableMap:
    """One mapped table: how its rows are found and what happens to them."""

    name: str
    action: Action
    # how rows are found: through a parent (link) or on identifier columns (match)
    link: Link | None = None
    match: tuple[tuple[str, str], ...] = ()  # (identifier type, column)
    columns: tuple[tuple[str, Strategy], ...] = ()  # anonymize / retain: column -> strategy
    retain: Retain | None = None
    key: tuple[str, ...] = ()  # subject: its primary key; others: optional row key
    # rows of other tables (other people's, unmapped) that reference a row this run deletes:
    # referencing table -> refuse | nullify (their reference) | anonymize (this row instead)
    on_reference: tuple[tuple[str, OnReference], ...] = ()

    def reference_policy(self, referencing_table: str) -> OnReference:
        """What happens when rows of ``referencing_table`` still reference a deleted row.

        Returns:
            ``refuse`` unless ``on_reference`` says otherwise.
        """
        return dict(self.on_reference).get(referencing_table, "refuse")


@dataclass(frozen=True)
class RetentionRule:
    """Subjects whose ``column`` is more than ``years`` before as-of are erased."""

    name: str
    column: str
    years: int


@dataclass(frozen=True)
class OptOutRule:
    """For an objection with ``purpose``: set columns of, or delete, the person's rows."""

    purpose: str
    table: str
    set: tuple[tuple[str, object], ...] = ()
    delete: bool = False


@dataclass(frozen=True)
class DataMap:
    """A validated data map. Build it with :meth:`load` or :meth:`from_text`."""

    source: str
    sha256: str
    subject: TableMap
    tables: tuple[TableMap, ...]
    retention: tuple[RetentionRule, ...] = ()
    opt_outs: tuple[OptOutRule, ...] = ()
    objects: tuple[ObjectLocation, ...] = ()  # object storage, keyed by subject columns
    lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> DataMap:
        """Read and validate a data map file.

        Raises:
            DataMapError: unreadable file, bad YAML, or any invalid key.

        Returns:
            The data map.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
            raise DataMapError(f"{path.name}: cannot read the data map ({reason})") from None
        return cls.from_text(text, source=path.name)

    @classmethod
    def from_text(cls, text: str, *, source: str = "datamap.yaml") -> DataMap:
        """Validate a data map given as YAML text.

        Raises:
            DataMapError: bad YAML or any invalid key (names ``source:line: key.path``).

        Returns:
            The data map.
        """
        return _Parser(text, source).parse()

    def table(self, name: str) -> TableMap:
        """The mapped table (or the subject) called ``name``.

        Raises:
            KeyError: not mapped.

        Returns:
            Its map.
        """
        for table in self.all_tables():
            if table.name == name:
                return table
        raise KeyError(name)

    def all_tables(self) -> Iterator[TableMap]:
        """The subject, then every related table, in map order.

        Returns:
            An iterator of table maps.
        """
        yield self.subject
        yield from self.tables

    def where(self, path: str) -> str:
        """``source:line: path`` for the closest mapped key of ``path``.

        Returns:
            A message prefix.
        """
        probe = path
        while probe and probe not in self.lines:
            probe = probe.rpartition(".")[0]
        line = self.lines.get(probe)
        return f"{self.source}:{line}: {path}" if line else f"{self.source}: {path}"


# -- parsing -----------------------------------------------------------------------------------

_Node = yaml.Node


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.lines: dict[str, int] = {}
        self.loader = yaml.SafeLoader(text)

    def fail(self, node: _Node | None, path: str, message: str) -> DataMapError:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        where = f"{path}: " if path else ""
        return DataMapError(f"{self.source}{line}: {where}{message}")

    def parse(self) -> DataMap:
        try:
            root = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            raise DataMapError(f"{self.source}{line}: invalid YAML ({exc.problem})") from None
        except yaml.YAMLError:
            raise DataMapError(f"{self.source}: invalid YAML") from None
        finally:
            self.loader.dispose()
        if root is None:
            raise DataMapError(f"{self.source}: the data map is empty")
        top = self.mapping(root, "", required={"version", "subject"},
                           optional={"tables", "retention", "opt_outs", "objects"})
        version = self.scalar(top["version"], "version")
        if version != 1:
            raise self.fail(top["version"], "version", "unsupported data map version (expected 1)")
        subject = self.subject(top["subject"])
        tables: list[TableMap] = []
        if "tables" in top:
            tables_node = top["tables"]
            if not isinstance(tables_node, yaml.MappingNode):
                raise self.fail(tables_node, "tables", "expected a mapping of table names")
            for key_node, value_node in tables_node.value:
                name = self.checked_name(key_node, self.key(key_node, "tables"), "tables",
                                         "table")
                if name == subject.name or any(t.name == name for t in tables):
                    raise self.fail(key_node, f"tables.{name}", "table is mapped twice")
                tables.append(self.table(name, value_node, f"tables.{name}"))
        retention = [self.retention(n, f"retention[{i}]")
                     for i, n in enumerate(self.sequence(top.get("retention"), "retention"))]
        opt_outs = [self.opt_out(n, f"opt_outs[{i}]")
                    for i, n in enumerate(self.sequence(top.get("opt_outs"), "opt_outs"))]
        data_map = DataMap(
            source=self.source,
            sha256=hashlib.sha256(self.text.encode("utf-8")).hexdigest(),
            subject=subject,
            tables=tuple(tables),
            retention=tuple(retention),
            opt_outs=tuple(opt_outs),
            objects=parse_objects(self, top.get("objects")),
            lines=dict(self.lines),
        )
        self.cross_check(data_map, top)
        return data_map

    # -- node helpers ----------------------------------------------------------------------------

    def mapping(self, node: _Node, path: str, *, required: set[str],
                optional: set[str]) -> dict[str, _Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, path, "expected a mapping")
        self.lines.setdefault(path, node.start_mark.line + 1)
        out: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            key_path = f"{path}.{key}" if path else str(key)
            if key not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                raise self.fail(key_node, key_path, f"unknown key (expected one of: {allowed})")
            if key in out:
                raise self.fail(key_node, key_path, "duplicate key")
            self.lines[key_path] = key_node.start_mark.line + 1
            out[key] = value_node
        for key in sorted(required - set(out)):
            raise self.fail(node, f"{path}.{key}" if path else key, "required key is missing")
        return out

    def key(self, node: _Node, path: str) -> str:
        # Keys are taken as written: YAML 1.1 would read a key "on" or "no" as a boolean.
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "expected a plain key")
        return str(node.value)

    def scalar(self, node: _Node, path: str) -> object:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "expected a single value")
        return self.loader.construct_object(node, deep=True)

    def value(self, node: _Node) -> object:
        return self.loader.construct_object(node, deep=True)

    def sequence(self, node: _Node | None, path: str) -> list[_Node]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, path, "expected a list")
        for index, item in enumerate(node.value):
            self.lines[f"{path}[{index}]"] = item.start_mark.line + 1
        return list(node.value)

    def name(self, node: _Node, path: str, kind: str = "column") -> str:
        # As written: YAML 1.1 would read a column called "no" or "on" as a boolean.
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, str):
            raise self.fail(node, path, f"expected a {kind} name")
        problem = name_problem(value, kind)
        if problem is not None:
            raise self.fail(node, path, problem)
        return value

    def checked_name(self, node: _Node, value: str, path: str, kind: str = "column") -> str:
        """A name written as a mapping key under ``path``; errors name ``path.<the key>``."""
        problem = name_problem(value, kind)
        if problem is not None:
            raise self.fail(node, f"{path}.{shown_name(value)}", problem)
        return value

    def names(self, node: _Node, path: str) -> tuple[str, ...]:
        if isinstance(node, yaml.SequenceNode):
            names = tuple(self.name(item, f"{path}[{index}]")
                          for index, item in enumerate(node.value))
            if not names:
                raise self.fail(node, path, "expected at least one column")
            return names
        return (self.name(node, path),)

    def positive_int(self, node: _Node, path: str) -> int:
        value = self.scalar(node, path)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self.fail(node, path, "expected a positive whole number")
        return value

    def pairs(self, node: _Node, path: str, *, key_kind: str) -> list[tuple[str, _Node, _Node]]:
        if not isinstance(node, yaml.MappingNode) or not node.value:
            raise self.fail(node, path, f"expected a mapping of {key_kind}")
        self.lines.setdefault(path, node.start_mark.line + 1)
        out: list[tuple[str, _Node, _Node]] = []
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key in seen:
                raise self.fail(key_node, f"{path}.{shown_name(key)}", "duplicate key")
            seen.add(key)
            self.lines[f"{path}.{key}"] = key_node.start_mark.line + 1
            out.append((key, key_node, value_node))
        return out

    def identifiers(self, node: _Node, path: str) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        for id_type, key_node, value_node in self.pairs(node, path, key_kind="identifier types"):
            if id_type not in KNOWN_TYPES and not _TYPE.fullmatch(id_type):
                raise self.fail(key_node, f"{path}.{id_type}", "not an identifier type")
            meant = close_known_type(id_type)
            if meant is not None:
                raise self.fail(key_node, f"{path}.{id_type}",
                                f"unknown identifier type {id_type!r} (did you mean {meant!r}?)")
            out.append((id_type, self.name(value_node, f"{path}.{id_type}")))
        return tuple(out)

    def columns(self, node: _Node, path: str) -> tuple[tuple[str, Strategy], ...]:
        out: list[tuple[str, Strategy]] = []
        for column, key_node, value_node in self.pairs(node, path, key_kind="columns"):
            self.checked_name(key_node, column, path)
            try:
                strategy = parse_strategy(self.value(value_node))
            except ValueError as exc:
                raise self.fail(value_node, f"{path}.{column}", str(exc)) from None
            out.append((column, strategy))
        return tuple(out)

    def action(self, node: _Node, path: str, allowed: tuple[str, ...]) -> Action:
        value = self.scalar(node, path)
        if value not in allowed:
            shown = f" {value!r}" if isinstance(value, str) and len(value) <= 40 else ""
            raise self.fail(node, path, f"unknown action{shown} (expected {', '.join(allowed)})")
        assert isinstance(value, str)
        return value  # type: ignore[return-value]

    # -- sections --------------------------------------------------------------------------------

    def subject(self, node: _Node) -> TableMap:
        keys = self.mapping(node, "subject", required={"table", "key", "identifiers", "action"},
                            optional={"columns", "on_reference"})
        action = self.action(keys["action"], "subject.action", ("delete", "anonymize"))
        on_reference = self.on_reference(keys, "subject")
        table = TableMap(
            name=self.name(keys["table"], "subject.table", "table"),
            action=action,
            match=self.identifiers(keys["identifiers"], "subject.identifiers"),
            columns=self.columns_for(action, keys, "subject", on_reference),
            key=self.names(keys["key"], "subject.key"),
            on_reference=on_reference,
        )
        self.check_identified_columns_masked(table, keys, "subject")
        return table

    def columns_for(self, action: Action, keys: dict[str, _Node], path: str,
                    on_reference: tuple[tuple[str, OnReference], ...] = (),
                    ) -> tuple[tuple[str, Strategy], ...]:
        kept_when_referenced = [t for t, choice in on_reference if choice == "anonymize"]
        if action == "delete" and not kept_when_referenced:
            if "columns" in keys:
                raise self.fail(keys["columns"], f"{path}.columns",
                                "columns are only used with anonymize or retain "
                                "(or on_reference: anonymize)")
            return ()
        if "columns" not in keys:
            if action == "delete":
                where = f"{path}.on_reference.{kept_when_referenced[0]}"
                raise self.err(self.line_of(where), where,
                               "'anonymize' keeps referenced rows: it needs columns: "
                               "(the strategies that mask them)")
            raise self.fail(keys["action"], f"{path}.columns",
                            f"action {action!r} needs the columns to mask")
        return self.columns(keys["columns"], f"{path}.columns")

    def on_reference(self, keys: dict[str, _Node],
                     path: str) -> tuple[tuple[str, OnReference], ...]:
        if "on_reference" not in keys:
            return ()
        path = f"{path}.on_reference"
        out: list[tuple[str, OnReference]] = []
        for table, key_node, value_node in self.pairs(keys["on_reference"], path,
                                                      key_kind="referencing tables"):
            self.checked_name(key_node, table, path, "table")
            choice = self.scalar(value_node, f"{path}.{table}")
            if choice not in ON_REFERENCE:
                shown = f" {choice!r}" if isinstance(choice, str) and len(choice) <= 40 else ""
                raise self.fail(value_node, f"{path}.{table}",
                                f"unknown choice{shown} (expected {', '.join(ON_REFERENCE)})")
            out.append((table, choice))
        return tuple(out)

    def check_identified_columns_masked(self, table: TableMap, keys: dict[str, _Node],
                                        path: str) -> None:
        # A kept row that still holds the identifier it was found by has not been erased, and
        # would be found again by every later run.
        if table.action == "delete" and not table.columns:
            return
        masked = {column for column, _ in table.columns}
        for id_type, column in table.match:
            if column not in masked:
                raise self.fail(keys["columns"], f"{path}.columns",
                                f"identifier column {column!r} ({id_type}) must be masked too")

    def table(self, name: str, node: _Node, path: str) -> TableMap:
        keys = self.mapping(node, path, required={"action"},
                            optional={"link", "match", "columns", "retain", "key",
                                      "on_reference"})
        action = self.action(keys["action"], f"{path}.action", ACTIONS)
        if ("link" in keys) == ("match" in keys):
            raise self.fail(node, path, "needs exactly one of 'link' (to a parent table) "
                                        "or 'match' (identifier columns)")
        link = self.link(keys["link"], f"{path}.link") if "link" in keys else None
        on_reference = self.on_reference(keys, path)
        retain = None
        if action == "retain":
            if "retain" not in keys:
                raise self.fail(keys["action"], f"{path}.retain",
                                "action 'retain' needs retain: {years: N, after: COLUMN}")
            r_keys = self.mapping(keys["retain"], f"{path}.retain", required={"years", "after"},
                                  optional=set())
            retain = Retain(years=self.positive_int(r_keys["years"], f"{path}.retain.years"),
                            after=self.name(r_keys["after"], f"{path}.retain.after"))
        elif "retain" in keys:
            raise self.fail(keys["retain"], f"{path}.retain", "only used with action 'retain'")
        table = TableMap(
            name=name,
            action=action,
            link=link,
            match=self.identifiers(keys["match"], f"{path}.match") if "match" in keys else (),
            columns=self.columns_for(action, keys, path, on_reference),
            retain=retain,
            key=self.names(keys["key"], f"{path}.key") if "key" in keys else (),
            on_reference=on_reference,
        )
        self.check_identified_columns_masked(table, keys, path)
        return table

    def link(self, node: _Node, path: str) -> Link:
        keys = self.mapping(node, path, required={"on"}, optional={"parent", "referenced_by"})
        if ("parent" in keys) == ("referenced_by" in keys):
            raise self.fail(node, path, "needs exactly one of 'parent' (a table these rows "
                                        "reference) or 'referenced_by' (a table whose rows "
                                        "reference these)")
        # on: {child column: parent column}, the referencing table's column first either way
        on = tuple(
            (self.checked_name(k_node, child, f"{path}.on"),
             self.name(v_node, f"{path}.on.{child}"))
            for child, k_node, v_node in self.pairs(keys["on"], f"{path}.on",
                                                    key_kind="child: parent columns")
        )
        if "parent" in keys:
            return Link(parent=self.name(keys["parent"], f"{path}.parent", "table"), on=on)
        return Link(parent=self.name(keys["referenced_by"], f"{path}.referenced_by", "table"),
                    on=tuple((mine, theirs) for theirs, mine in on), reverse=True)

    def retention(self, node: _Node, path: str) -> RetentionRule:
        keys = self.mapping(node, path, required={"name", "column", "years"}, optional=set())
        name = self.scalar(keys["name"], f"{path}.name")
        if not isinstance(name, str) or not _PURPOSE.fullmatch(name):
            raise self.fail(keys["name"], f"{path}.name",
                            "expected a short lower-case name (letters, digits, '-', '_')")
        return RetentionRule(name=name, column=self.name(keys["column"], f"{path}.column"),
                             years=self.positive_int(keys["years"], f"{path}.years"))

    def opt_out(self, node: _Node, path: str) -> OptOutRule:
        keys = self.mapping(node, path, required={"purpose", "table"}, optional={"set", "delete"})
        purpose = self.scalar(keys["purpose"], f"{path}.purpose")
        if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
            raise self.fail(keys["purpose"], f"{path}.purpose",
                            "expected a short lower-case purpose (letters, digits, '-', '_')")
        if ("set" in keys) == ("delete" in keys):
            raise self.fail(node, path, "needs exactly one of 'set' or 'delete'")
        values: list[tuple[str, object]] = []
        if "set" in keys:
            for column, key_node, value_node in self.pairs(keys["set"], f"{path}.set",
                                                           key_kind="column: value"):
                self.checked_name(key_node, column, f"{path}.set")
                value = self.value(value_node)
                if value is not None and not isinstance(value, str | int | float | bool):
                    raise self.fail(value_node, f"{path}.set.{column}",
                                    "expected a string, number, boolean or null")
                values.append((column, value))
        elif self.scalar(keys["delete"], f"{path}.delete") is not True:
            raise self.fail(keys["delete"], f"{path}.delete", "expected 'true'")
        return OptOutRule(purpose=purpose, table=self.name(keys["table"], f"{path}.table", "table"),
                          set=tuple(values), delete="delete" in keys)

    # -- whole-map checks ------------------------------------------------------------------------

    def cross_check(self, data_map: DataMap, top: dict[str, _Node]) -> None:
        names = {t.name: t for t in data_map.all_tables()}
        for table in data_map.tables:
            path = f"tables.{table.name}"
            if table.link is None:
                continue
            key = f"{path}.link.{'referenced_by' if table.link.reverse else 'parent'}"
            if table.link.parent not in names:
                raise self.err(self.line_of(key), key,
                               f"{table.link.parent!r} is not the subject or a mapped table")
            parent = names[table.link.parent]
            # Kept rows must keep a parent: a deleted parent would orphan them (or, with
            # ON DELETE CASCADE, delete what the map says to keep). A shared row (reverse
            # link) is the parent itself; the rows pointing at it are checked at plan time.
            if parent.action == "delete" and table.action != "delete" and not table.link.reverse:
                raise self.err(self.line_of(f"{path}.action"), f"{path}.action",
                               f"rows are kept ({table.action}) but their parent "
                               f"{parent.name!r} is deleted; anonymize {parent.name!r} instead")
        for table in data_map.tables:
            seen = {table.name}
            current = table
            while current.link is not None:
                current = names[current.link.parent]
                if current.name in seen:
                    reverse = table.link is not None and table.link.reverse
                    key = f"tables.{table.name}.link.{'referenced_by' if reverse else 'parent'}"
                    raise self.err(self.line_of(key), key, "links form a cycle")
                seen.add(current.name)
        for index, rule in enumerate(data_map.opt_outs):
            if rule.table not in names:
                raise self.err(self.line_of(f"opt_outs[{index}].table"),
                               f"opt_outs[{index}].table",
                               f"{rule.table!r} is not the subject or a mapped table")
        del top

    def line_of(self, path: str) -> int | None:
        return self.lines.get(path)

    def err(self, line: int | None, path: str, message: str) -> DataMapError:
        where = f":{line}" if line else ""
        return DataMapError(f"{self.source}{where}: {path}: {message}")


__all__ = ["ACTIONS", "NAME_MAX_CHARS", "ON_REFERENCE", "Action", "DataMap", "Link", "OnReference",
           "OptOutRule", "Retain", "RetentionRule", "TableMap", "close_known_type", "name_problem",
           "shown_name"]
