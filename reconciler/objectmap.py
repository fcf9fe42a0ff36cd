"""The data map's ``objects:`` section: object-storage locations keyed by subject columns.

::

    objects:
      - {bucket: id-documents, key: "customers/{cust_no}/id.pdf"}   # exactly this key
      - {bucket: id-documents, prefix: "uploads/{id}/"}             # every key under it

``{column}`` placeholders name columns of the subject table; each erased subject's values fill
them in, and every version and delete marker of the matching keys is deleted. Validation here
is structural (names, placeholders, bucket names); whether the columns exist is checked
against the snapshot at plan time (a missing one is schema drift).

Left out on purpose: no database, no S3 (reconciler.locations and reconciler.objects).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from reconciler.errors import DataMapError

# S3 bucket naming rules (3-63 characters; lower-case letters, digits, '.', '-').
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class ObjectLocation:
    """One ``objects[i]`` entry: a key (``exact``) or prefix template in a bucket."""

    index: int
    bucket: str
    template: str  # with {column} placeholders; a template is not personal data
    exact: bool
    columns: tuple[str, ...]  # the subject columns the placeholders name, in order

    @property
    def path(self) -> str:
        """Returns: the map key path, ``objects[0]``."""
        return f"objects[{self.index}]"

    @property
    def kind(self) -> str:
        """Returns: ``key`` or ``prefix``."""
        return "key" if self.exact else "prefix"

    def render(self, values: Mapping[str, object]) -> str | None:
        """The key or prefix for one subject; None when a placeholder value is missing.

        Returns:
            The rendered key or prefix (personal data: never print it).
        """
        out: list[str] = []
        for literal, field, _, _ in string.Formatter().parse(self.template):
            out.append(literal)
            if field is not None:
                value = values.get(field)
                if value is None or str(value).strip() == "":
                    return None
                out.append(str(value))
        return "".join(out)


class _Parser(Protocol):
    def sequence(self, node: Any, path: str) -> list[Any]: ...
    def mapping(self, node: Any, path: str, *, required: set[str],
                optional: set[str]) -> dict[str, Any]: ...
    def scalar(self, node: Any, path: str) -> object: ...
    def fail(self, node: Any, path: str, message: str) -> DataMapError: ...


def parse_objects(parser: _Parser, node: yaml.Node | None) -> tuple[ObjectLocation, ...]:
    """Validate the ``objects:`` list with the data map parser's helpers.

    Raises:
        DataMapError: names ``file:line: objects[i].key`` and what is wrong.

    Returns:
        The locations, in map order.
    """
    locations: list[ObjectLocation] = []
    seen: set[tuple[str, str, bool]] = set()
    for index, item in enumerate(parser.sequence(node, "objects")):
        path = f"objects[{index}]"
        keys = parser.mapping(item, path, required={"bucket"}, optional={"key", "prefix"})
        bucket = parser.scalar(keys["bucket"], f"{path}.bucket")
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise parser.fail(keys["bucket"], f"{path}.bucket", "not a valid S3 bucket name")
        if ("key" in keys) == ("prefix" in keys):
            raise parser.fail(item, path, "needs exactly one of 'key' (one object per subject) "
                                          "or 'prefix' (every object under it)")
        kind = "key" if "key" in keys else "prefix"
        template = parser.scalar(keys[kind], f"{path}.{kind}")
        if not isinstance(template, str) or not template:
            raise parser.fail(keys[kind], f"{path}.{kind}", "expected a key template")
        columns = _placeholders(parser, keys[kind], f"{path}.{kind}", template, kind)
        if (bucket, template, kind == "key") in seen:
            raise parser.fail(item, path, "this location is listed twice")
        seen.add((bucket, template, kind == "key"))
        locations.append(ObjectLocation(index=index, bucket=bucket, template=template,
                                        exact=kind == "key", columns=columns))
    return tuple(locations)


def _placeholders(parser: _Parser, node: Any, path: str, template: str,
                  kind: str) -> tuple[str, ...]:
    # The same rule as every other column name of the map ("{klant nummer}" is fine).
    # Imported here: reconciler.datamap imports this module.
    from reconciler.datamap import name_problem

    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        raise parser.fail(node, path, "unbalanced '{' or '}' (write '{{' for a literal "
                                      "brace)") from None
    columns: list[str] = []
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if spec or conversion:  # "{id!r}", "{id:>8}": a column name cannot hold '!' or ':' here
            raise parser.fail(node, path, "placeholders are subject column names, like "
                                          "{cust_no}")
        problem = name_problem(field, "column")
        if problem is not None:
            raise parser.fail(node, path, f"placeholders are subject column names: {problem}")
        columns.append(field)
    if not columns:
        # Without a placeholder every erased person would map to the same objects.
        raise parser.fail(node, path, "needs at least one {column} placeholder of the subject "
                                      "table")
    if kind == "prefix" and parts[-1][1] is not None:
        # "customers/{id}" would also match "customers/10/..." for id 1
        raise parser.fail(node, path, "a prefix must not end with a placeholder (end it with "
                                      "'/', e.g. \"customers/{id}/\")")
    return tuple(dict.fromkeys(columns))


__all__ = ["ObjectLocation", "parse_objects"]
