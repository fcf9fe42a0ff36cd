# ruff: noqa: S608 - SQL text is built from quoted identifiers; every value is a bound parameter
"""Object storage in a replay: whose objects, which versions, and what is left afterwards.

1. :func:`resolve_targets` (before any database change, in the replay's transaction) finds
   the erased subjects the way the executor does (identifier columns normalised in Python,
   retention cut-offs) and renders each ``objects:`` template with their column values.
   Templates whose placeholders are all identifier columns are also rendered with the
   ledger's own identifier values, so objects of a person whose rows are already gone (or
   anonymized) are still found.
2. :func:`reconcile_objects` lists every version and delete marker of those keys; in a dry run
   it counts them, otherwise it deletes them all.
3. :func:`check_objects` lists the same keys again: any remaining version is a residual
   finding (``verify``, and the end of ``apply``).

A rendered key can hold personal data (``customers/C-1001/id.pdf``): results name the map
path, the bucket, the template and sequence numbers, never a key.

Left out on purpose: no boto3 (reconciler.objects), no writes to the database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from erasure_ledger import InvalidIdentifierError, OpenedEntry, normalize
from reconciler.datamap import DataMap
from reconciler.dialects import dialect_for, quoter
from reconciler.objectmap import ObjectLocation
from reconciler.objects import ObjectStore, ObjectVersion
from reconciler.ops import ERASE
from reconciler.planner import RetentionCut, Wanted
from reconciler.progress import NullProgress, Progress
from reconciler.schema import SnapshotSchema, reflect

logger = logging.getLogger(__name__)

_LISTING_THREADS = 10  # listings in flight at once: botocore keeps 10 connections per client


@dataclass(frozen=True)
class ObjectTarget:
    """The objects of erased people at one location: a rendered key or prefix."""

    location: ObjectLocation
    key: str = field(repr=False)  # personal data: never shown
    sources: tuple[str, ...]  # "12" for ledger entry 12, "retention:<rule>"


@dataclass(frozen=True)
class ObjectResult:
    """What one ``objects[i]`` location had (dry run) or had deleted."""

    path: str
    bucket: str
    template: str
    versions: int
    by_source: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ObjectFinding:
    """Versions left at a location for one ledger entry or retention rule (never the key)."""

    path: str
    bucket: str
    template: str
    source: str
    versions: int
    seq: int | None = None  # the ledger entry, unless a retention rule (source) found it
    request_id: str | None = None


@dataclass(frozen=True)
class ObjectsOutcome:
    """Object storage in one run: per-location results, drift, residual findings."""

    dry_run: bool
    results: tuple[ObjectResult, ...] = ()
    drift: tuple[str, ...] = ()
    findings: tuple[ObjectFinding, ...] = ()
    checked: bool = False  # whether the residual listing ran
    buckets: tuple[str, ...] = ()  # every bucket the map names, sorted

    @property
    def versions(self) -> int:
        """Returns: versions deleted (to delete, in a dry run)."""
        return sum(r.versions for r in self.results)

    def with_findings(self, findings: tuple[ObjectFinding, ...]) -> ObjectsOutcome:
        """Returns: a copy carrying the residual findings."""
        return ObjectsOutcome(dry_run=self.dry_run, results=self.results, drift=self.drift,
                              findings=findings, checked=True, buckets=self.buckets)


def resolve_targets(conn: Connection, data_map: DataMap, wanted: Sequence[Wanted],
                    retention: Sequence[RetentionCut], *, schema: SnapshotSchema,
                    region: str = "NL") -> tuple[tuple[ObjectTarget, ...], tuple[str, ...]]:
    """Render every ``objects:`` location for every erased subject (read-only).

    Args:
        conn: a connection to the snapshot, before any change.
        data_map: the map with its ``objects:``.
        wanted: the plan's identifiers (only the ``erase`` group is used).
        retention: the plan's retention cut-offs (subjects they erase count too).
        schema: the snapshot's reflected schema.
        region: region for phone numbers without a country code.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: a query failed (the caller translates).

    Returns:
        The targets, and drift notes for locations whose columns the snapshot lacks.
    """
    subject = data_map.subject
    snap = schema.tables.get(subject.name)
    if snap is None or not data_map.objects:
        return (), ()
    usable: list[ObjectLocation] = []
    drift: list[str] = []
    for location in data_map.objects:
        missing = [c for c in location.columns if c not in snap.columns]
        if missing:
            drift.append(f"{location.path}.{location.kind}: column {missing[0]!r} not in this "
                         "snapshot")
        else:
            usable.append(location)
    found: dict[tuple[int, str], set[str]] = {}

    def add(rows: Iterable[Mapping[str, object]], sources: Iterable[str]) -> None:
        labels = list(sources)
        for row in rows:
            for location in usable:
                key = location.render(row)
                if key is not None:
                    found.setdefault((location.index, key), set()).update(labels)

    columns = sorted({c for loc in usable for c in loc.columns})
    if columns:
        reader = _SubjectReader(conn, data_map, snap.columns, columns)
        erased = _erasure_identifiers(wanted)
        for id_type, column in subject.match:
            if column in snap.columns and any(t == id_type for t, _ in erased):
                for raw, seqs in reader.matching(id_type, column, erased, region):
                    add(reader.rows_where(column, raw), (str(s) for s in seqs))
        for cut in retention:
            if cut.column in snap.columns:
                add(reader.rows_before(cut.column, cut.cutoff), [f"retention:{cut.name}"])
        add_from_ledger(usable, subject.match, wanted, found)
    by_index = {loc.index: loc for loc in usable}
    targets = tuple(ObjectTarget(location=by_index[index], key=key,
                                 sources=tuple(sorted(sources, key=_source_order)))
                    for (index, key), sources in sorted(found.items()))
    logger.debug("%d object location(s) for erased subjects", len(targets))
    return targets, tuple(drift)


def add_from_ledger(usable: Sequence[ObjectLocation], identifiers: Sequence[tuple[str, str]],
                    wanted: Sequence[Wanted], found: dict[tuple[int, str], set[str]]) -> None:
    """Render templates whose placeholders are all identifier columns with ledger values."""
    type_of = {column: id_type for id_type, column in identifiers}
    per_entry: dict[int, dict[str, list[str]]] = {}
    for item in wanted:
        if item.group == ERASE:
            per_entry.setdefault(item.seq, {}).setdefault(item.id_type, []).append(item.value)
    for location in usable:
        if not all(c in type_of for c in location.columns):
            continue
        for seq, values in per_entry.items():
            choices = [values.get(type_of[c], []) for c in location.columns]
            for combo in itertools.product(*choices):
                key = location.render(dict(zip(location.columns, combo, strict=True)))
                if key is not None:
                    found.setdefault((location.index, key), set()).add(str(seq))


def reconcile_objects(store: ObjectStore, targets: Sequence[ObjectTarget], *, dry_run: bool,
                      drift: tuple[str, ...] = (), locations: Sequence[ObjectLocation] = (),
                      progress: Progress | None = None) -> ObjectsOutcome:
    """List every version of every target; count them (dry run) or delete them all.

    Every listing happens before the first deletion, so a missing bucket or a denied listing
    changes nothing.

    Raises:
        ObjectStorageError: a listing or deletion failed (one line naming the bucket).

    Returns:
        Per-location counts.
    """
    observer = progress or NullProgress()
    observer.phase("objects", len(targets))
    listed: list[tuple[ObjectTarget, list[ObjectVersion]]] = []
    seen: set[tuple[str, str, str]] = set()
    for target, versions in zip(targets, _list_all(store, targets), strict=True):
        observer.step(f"list s3://{target.location.bucket} ({target.location.path})")
        # Two targets can overlap (a prefix and a key under it): each version counts once.
        fresh = [v for v in versions if (target.location.bucket, v.key, v.version_id) not in seen]
        seen.update((target.location.bucket, v.key, v.version_id) for v in fresh)
        listed.append((target, fresh))
    if not dry_run:
        _delete_all(store, listed)
    counts: dict[int, dict[str, int]] = {loc.index: {} for loc in locations}
    for target, versions in listed:
        per_source = counts.setdefault(target.location.index, {})
        for source in target.sources if versions else ():
            per_source[source] = per_source.get(source, 0) + len(versions)
    observer.done()
    everything = {loc.index: loc for loc in locations} | {
        t.location.index: t.location for t in targets}
    results = tuple(
        ObjectResult(path=everything[i].path, bucket=everything[i].bucket,
                     template=everything[i].template,
                     versions=sum(len(v) for t, v in listed if t.location.index == i),
                     by_source=tuple(sorted(counts[i].items(),
                                            key=lambda kv: _source_order(kv[0]))))
        for i in sorted(counts))
    return ObjectsOutcome(dry_run=dry_run, results=results, drift=drift,
                          buckets=_buckets(everything.values()))


def check_objects(store: ObjectStore, targets: Sequence[ObjectTarget],
                  request_ids: Mapping[int, str] | None = None) -> tuple[ObjectFinding, ...]:
    """List the targets again: every version left is a residual finding.

    Raises:
        ObjectStorageError: a listing failed.

    Returns:
        The findings, one per location and source.
    """
    findings: dict[tuple[str, str], int] = {}
    where: dict[str, ObjectLocation] = {}
    for target, versions in zip(targets, _list_all(store, targets), strict=True):
        left = len(versions)
        if not left:
            continue
        where[target.location.path] = target.location
        for source in target.sources:
            key = (target.location.path, source)
            findings[key] = findings.get(key, 0) + left
    names = request_ids or {}
    return tuple(ObjectFinding(path=path, bucket=where[path].bucket,
                               template=where[path].template, source=source, versions=count,
                               seq=int(source) if source.isdigit() else None,
                               request_id=names.get(int(source)) if source.isdigit() else None)
                 for (path, source), count in sorted(
                     findings.items(), key=lambda kv: (kv[0][0], _source_order(kv[0][1]))))


class ObjectPass:
    """Object storage for one replay or verify: resolve before any change, reconcile before
    the database commits (a failed deletion rolls the database back; a rerun finds the same
    subjects and finishes), check afterwards.

    Args:
        store: the object store (``ObjectStore(endpoint_url=...)``).
        data_map: the map; a pass is only made when it has ``objects:``.
        region: region for phone numbers without a country code.
        request_ids: sequence number -> request id, to name entries in findings.
    """

    def __init__(self, store: ObjectStore, data_map: DataMap, *, region: str,
                 request_ids: Mapping[int, str] | None = None) -> None:
        self.store = store
        self.map = data_map
        self.region = region
        self.request_ids = dict(request_ids or {})
        self.targets: tuple[ObjectTarget, ...] = ()
        self.drift: tuple[str, ...] = ()

    def resolve(self, conn: Connection, wanted: Sequence[Wanted],
                retention: Sequence[RetentionCut] = ()) -> None:
        """Find the erased subjects' locations (read-only; see :func:`resolve_targets`).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: a query failed.
        """
        self.targets, self.drift = resolve_targets(conn, self.map, wanted, retention,
                                                   schema=reflect(conn), region=self.region)

    def reconcile(self, *, dry_run: bool, progress: Progress | None = None) -> ObjectsOutcome:
        """Count (dry run) or delete every version of every target.

        Raises:
            ObjectStorageError: a listing or deletion failed.

        Returns:
            Per-location counts.
        """
        return reconcile_objects(self.store, self.targets, dry_run=dry_run, drift=self.drift,
                                 locations=self.map.objects, progress=progress)

    def check(self, outcome: ObjectsOutcome | None = None) -> ObjectsOutcome:
        """List the targets again; what is left are residual findings.

        Raises:
            ObjectStorageError: a listing failed.

        Returns:
            ``outcome`` (or an empty one) with the findings.
        """
        base = outcome or ObjectsOutcome(dry_run=True, drift=self.drift,
                                         buckets=_buckets(self.map.objects))
        return base.with_findings(check_objects(self.store, self.targets, self.request_ids))


def erasure_wanted(entries: Sequence[OpenedEntry]) -> tuple[Wanted, ...]:
    """The identifiers of every erasure entry that is not shredded (for ``verify``).

    Returns:
        Wanted identifiers in the ``erase`` group.
    """
    return tuple(Wanted(group=ERASE, seq=e.meta.seq, id_type=ident.type, value=ident.value)
                 for e in entries if e.entry is not None and e.meta.kind == "erasure"
                 for ident in e.entry.identifiers)


def _buckets(locations: Iterable[ObjectLocation]) -> tuple[str, ...]:
    return tuple(sorted({loc.bucket for loc in locations}))


def _list_all(store: ObjectStore, targets: Sequence[ObjectTarget]) -> Iterator[list[ObjectVersion]]:
    """Every target's versions, in order, listed by a few threads at once.

    A listing is one round trip per 1,000 versions, mostly waiting: thousands of erased
    subjects listed one after the other took one round trip each in sequence. boto3 clients
    are thread-safe once made, so the client is made first. The first failure is raised.
    """
    if len(targets) <= 1:
        yield from (_versions(store, t) for t in targets)
        return
    store.client  # noqa: B018 - made once, before the threads share it
    with ThreadPoolExecutor(max_workers=_LISTING_THREADS) as pool:
        yield from pool.map(lambda target: _versions(store, target), targets)


def _delete_all(store: ObjectStore, listed: Sequence[tuple[ObjectTarget,
                                                          list[ObjectVersion]]]) -> None:
    """Delete what was listed, per bucket in batches of up to 1,000 (one request each)."""
    by_bucket: dict[str, list[ObjectVersion]] = {}
    for target, versions in listed:
        by_bucket.setdefault(target.location.bucket, []).extend(versions)
    for bucket, versions in by_bucket.items():
        if versions:
            store.delete_versions(bucket, versions, label=f"s3://{bucket}")


def _versions(store: ObjectStore, target: ObjectTarget) -> list[ObjectVersion]:
    return store.versions(target.location.bucket, target.key, exact=target.location.exact,
                          label=_label(target))


def _label(target: ObjectTarget) -> str:
    return f"s3://{target.location.bucket} ({target.location.path})"


def _source_order(src: str) -> tuple[int, str]:
    return (0, f"{int(src):012d}") if src.isdigit() else (1, src)


def _erasure_identifiers(wanted: Sequence[Wanted]) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for item in wanted:
        if item.group == ERASE:
            out.setdefault((item.id_type, item.value), []).append(item.seq)
    return out


class _SubjectReader:
    """Reads the placeholder columns of subject rows (exact, like the executor's staging)."""

    def __init__(self, conn: Connection, data_map: DataMap, info: Mapping[str, Any],
                 columns: Sequence[str]) -> None:
        self.conn = conn
        self.info = info
        self.dialect = dialect_for(conn.dialect.name)
        self.quote = quoter(conn.dialect, "text")
        self.table = self.quote(data_map.subject.name)
        self.select = ", ".join(self.quote(c) for c in columns)
        self.columns = list(columns)

    def matching(self, id_type: str, column: str, erased: Mapping[tuple[str, str], list[int]],
                 region: str) -> list[tuple[str, list[int]]]:
        col = self.quote(column)
        query = (f"SELECT {self.dialect.distinct_values(col)} FROM {self.table} "
                 f"WHERE {col} IS NOT NULL")
        out: list[tuple[str, list[int]]] = []
        for (raw,) in self.conn.execute(sa.text(query)):
            value = self.dialect.decode_value(raw)
            if value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            try:
                seqs = erased.get((id_type, normalize(id_type, text, default_region=region)))
            except InvalidIdentifierError:
                continue
            if seqs:
                out.append((text, seqs))
        return out

    def rows_where(self, column: str, raw: str) -> list[dict[str, object]]:
        col = self.quote(column)
        expr = col if self.info[column].kind == "string" else self.dialect.cast_text(col)
        query = (f"SELECT {self.select} FROM {self.table} "
                 f"WHERE {self.dialect.exact_eq(expr, ':raw')}")
        return [dict(zip(self.columns, row, strict=True))
                for row in self.conn.execute(sa.text(query), {"raw": raw})]

    def rows_before(self, column: str, cutoff: dt.date) -> list[dict[str, object]]:
        value: object = cutoff
        type_: sa.types.TypeEngine[Any] = sa.Date()
        if self.info[column].kind == "datetime":
            value, type_ = dt.datetime(cutoff.year, cutoff.month, cutoff.day), sa.DateTime()
        query = sa.text(f"SELECT {self.select} FROM {self.table} "
                        f"WHERE {self.quote(column)} < :cutoff").bindparams(
            sa.bindparam("cutoff", value, type_=type_))
        return [dict(zip(self.columns, row, strict=True)) for row in self.conn.execute(query)]


__all__ = ["ObjectFinding", "ObjectPass", "ObjectResult", "ObjectTarget", "ObjectsOutcome",
           "check_objects", "erasure_wanted", "reconcile_objects", "resolve_targets"]
