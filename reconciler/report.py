"""The report for the privacy officer: JSON (``to_json``) and Markdown (``to_markdown``).

It names the tool version, the time, the snapshot (redacted URL and a schema fingerprint), the
ledger checkpoint replayed (tree size, root hash; the signature was verified before anything
was read), the data map's SHA-256, and per entry (sequence number and request id) the rows
deleted / anonymized / retained per table, "nothing found" or "production erasure
incomplete"; retention and opt-out results, schema drift, residual findings and totals; for
``apply --batch-rows``, the journal run(s), the batches and whether the apply was resumed.

It never holds an identifier value: only sequence numbers, request ids, tables, columns,
counts and row keys the scan considered safe to show.

Left out on purpose: no I/O (the CLI writes the file), no clock (``now`` is a parameter).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any, TextIO

from reconciler.datamap import DataMap
from reconciler.executor import Execution
from reconciler.locations import ObjectsOutcome
from reconciler.planner import EntryRef
from reconciler.replay import LedgerState
from reconciler.scan import ScanResult
from reconciler.watermark import SnapshotDating

REPORT_FORMAT = 1


@dataclass(frozen=True)
class Report:
    """Everything the report says, as plain data (see :func:`build_report`)."""

    command: str
    tool_version: str
    generated_at: dt.datetime
    snapshot: str
    ledger: LedgerState
    data_map_sha256: str
    data_map_source: str
    as_of: dt.date | None = None
    snapshot_time: dt.datetime | None = None
    schema_fingerprint: str | None = None
    dated_by: dict[str, Any] | None = None  # how the snapshot was dated (reconciler.watermark)
    drill: dict[str, Any] | None = None  # reconciler.drill: source, its SHA-256, the scratch
    systems: tuple[str, ...] = ()  # the database and every bucket reconciled
    objects: tuple[dict[str, Any], ...] = ()  # per objects[i] location: versions
    object_findings: tuple[dict[str, Any], ...] = ()  # object versions left (never a key)
    dry_run: bool = False
    entries: tuple[dict[str, Any], ...] = ()
    rules: tuple[dict[str, Any], ...] = ()
    operations: tuple[dict[str, Any], ...] = ()
    drift: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # triggers on changed tables, shared rows kept
    findings: tuple[dict[str, Any], ...] = ()
    unmapped_personal_columns: tuple[str, ...] = ()
    totals: dict[str, int] = field(default_factory=dict)
    duration_seconds: float | None = None
    batched: dict[str, Any] | None = None  # apply --batch-rows: runs, batches, resumed
    scan_failure: str | None = None  # the residual scan after a committed apply failed

    @property
    def clean(self) -> bool:
        """True when the residual scan found nothing (or did not run: plan); never when it
        failed after an apply."""
        return not self.findings and not self.object_findings and not self.scan_failure

    def to_dict(self) -> dict[str, Any]:
        """Returns: the JSON-ready form."""
        return {
            "format": REPORT_FORMAT,
            "command": self.command,
            "tool_version": self.tool_version,
            "generated_at": self.generated_at.isoformat(),
            "dry_run": self.dry_run,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "snapshot": {"location": self.snapshot, "schema_fingerprint": self.schema_fingerprint,
                         "snapshot_time": self.snapshot_time.isoformat()
                         if self.snapshot_time else None, "dated_by": self.dated_by},
            "ledger": {"origin": self.ledger.origin, "tree_size": self.ledger.tree_size,
                       "root_hash": self.ledger.root_hash, "signature_verified": True,
                       "checkpoint": self.ledger.checkpoint},
            "data_map": {"source": self.data_map_source, "sha256": self.data_map_sha256},
            "drill": self.drill,
            "batched": self.batched,
            "entries": list(self.entries),
            "rules": list(self.rules),
            "operations": list(self.operations),
            "schema_drift": list(self.drift),
            "warnings": list(self.warnings),
            "residual_findings": list(self.findings),
            "residual_scan_failed": self.scan_failure,
            "systems_reconciled": list(self.systems),
            "objects": list(self.objects),
            "residual_object_findings": list(self.object_findings),
            "unmapped_personal_columns": list(self.unmapped_personal_columns),
            "totals": self.totals,
            "duration_seconds": self.duration_seconds,
        }

    def to_json(self) -> str:
        """Returns: the report as indented JSON (see :meth:`write_json`)."""
        text = io.StringIO()
        self.write_json(text)
        return text.getvalue()

    def write_json(self, out: TextIO) -> None:
        """Write the report to ``out`` as indented JSON, a piece at a time, each item of a
        list on one line of its own (an entry, an operation, a finding).

        Both choices are for size: ``json.dumps`` with an indent held millions of small
        pieces at once (350 MB for 110,000 entries), and an indent makes ``json`` use its
        pure-Python encoder (5 s for them); one line per item is encoded in C.
        """
        data = self.to_dict()
        out.write("{\n")
        for at, (key, value) in enumerate(data.items()):
            out.write(f"  {json.dumps(key)}: ")
            if isinstance(value, list) and value:
                out.write("[\n")
                last = len(value) - 1
                for index, item in enumerate(value):
                    out.write(f"    {json.dumps(item)}{',' if index < last else ''}\n")
                out.write("  ]")
            else:  # JSON text holds no raw newline: each one starts an indented line
                out.write(json.dumps(value, indent=2).replace("\n", "\n  "))
            out.write(",\n" if at < len(data) - 1 else "\n")
        out.write("}\n")

    def to_markdown(self) -> str:
        """Returns: the report as Markdown for people."""
        verb = "to change (dry run)" if self.dry_run else "changed"
        lines = [
            f"# Reconciler {self.command} report",
            "",
            f"- tool version: {self.tool_version}",
            f"- generated at: {self.generated_at.isoformat()}",
            f"- snapshot: {self.snapshot}",
        ]
        if self.schema_fingerprint:
            lines.append(f"- schema fingerprint: {self.schema_fingerprint[:16]}")
        lines += self._provenance_lines()
        if self.as_of:
            lines.append(f"- retention as of: {self.as_of.isoformat()}")
        lines += [
            f"- ledger: {self.ledger.origin}, tree size {self.ledger.tree_size}, root "
            f"{self.ledger.root_hash[:16]}..., signature verified",
            f"- data map: {self.data_map_source} (sha256 {self.data_map_sha256[:16]}...)",
            "",
        ]
        if self.entries:
            lines += ["## Entries", "", "| seq | request | kind | result |", "|---|---|---|---|"]
            for entry in self.entries:
                rows = "; ".join(f"{t}: {', '.join(f'{n} {a}' for a, n in acts.items())}"
                                 for t, acts in entry["rows"].items())
                result = entry["status"] + (f" ({rows})" if rows else "")
                lines.append(f"| {entry['seq']} | {entry['request_id']} | {entry['kind']} | "
                             f"{result} |")
            lines.append("")
        if self.rules:
            lines += ["## Retention rules", ""]
            lines += [f"- {rule['name']}: {rule['subjects']} subject(s)" for rule in self.rules]
            lines.append("")
        if self.drift:
            lines += ["## Not in this snapshot", ""]
            lines += [f"- {note}" for note in self.drift]
            lines.append("")
        lines += self._object_lines()
        if self.warnings:
            lines += ["## Warnings", ""]
            lines += [f"- {note}" for note in self.warnings]
            lines.append("")
        if self.command != "plan":
            lines += self._scan_lines()
        if self.totals:
            lines += ["## Totals", ""]
            lines.append(f"- rows {verb}: {self.totals.get('rows_changed', 0)}")
            if self.command == "apply" and not self.totals.get("rows_changed"):
                lines.append("- nothing to change: the snapshot already reflects the ledger")
            if self.command != "plan":
                lines.append("- residual findings: "
                             f"{len(self.findings) + len(self.object_findings)}")
            lines.append("")
        if self.duration_seconds is not None:
            lines.append(f"Duration: {self.duration_seconds:.1f} s")
        return "\n".join(lines).rstrip() + "\n"


    def _provenance_lines(self) -> list[str]:
        lines = []
        if self.dated_by:
            lines.append(f"- snapshot dated by: {self.dated_by['description']}")
        if self.batched:
            b = self.batched
            how = (f"resumed after an interruption ({b['resumes']} time(s))" if b["resumed"]
                   else "not interrupted")
            lines.append(f"- batched: {b['batches']} batch(es) of at most {b['batch_rows']} "
                         f"row(s), each committed on its own; {how}; journal run(s) "
                         f"{', '.join(b['runs'])}")
        if self.drill:
            lines.append(f"- drill: source sha256 {self.drill['source_sha256'][:16]}... "
                         f"({self.drill['source_bytes']} bytes, only read), scratch "
                         f"{self.drill['scratch']}, removed afterwards")
        return lines

    def _object_lines(self) -> list[str]:
        if not self.objects:
            return []
        verb = "to delete (dry run)" if self.dry_run else "deleted"
        lines = ["## Object storage", ""]
        lines += [f"- {o['path']} s3://{o['bucket']} {o['template']}: {o['versions']} "
                  f"version(s) {verb}" for o in self.objects]
        return [*lines, ""]

    def _scan_lines(self) -> list[str]:
        lines = ["## Residual scan", ""]
        lines += [f"- {'entry ' + str(f['seq']) if f['seq'] is not None else f['source']} "
                  f"({f['request_id'] or '-'}): s3://{f['bucket']} {f['path']} "
                  f"({f['template']}): {f['versions']} object version(s) left"
                  for f in self.object_findings]
        if self.findings:
            lines += [f"- entry {f['seq']} ({f['request_id']}): {f['table']}.{f['column']} "
                      f"row {f['row_key'] or '(key not shown)'} [{f['how']}]"
                      + ("; production erasure incomplete"
                         if f.get("production_erasure_incomplete") else "")
                      for f in self.findings]
        elif self.scan_failure:
            lines.append(f"- **not proven**: {self.scan_failure}; the changes above were "
                         "committed: run reconciler verify to scan again")
        elif not self.object_findings:
            lines.append("- clean: no ledger identifier found")
        if self.unmapped_personal_columns:
            lines.append("- columns that look personal but are not in the map: "
                         + ", ".join(self.unmapped_personal_columns))
        return [*lines, ""]


def build_report(*, command: str, tool_version: str, now: dt.datetime, snapshot: str,
                 ledger: LedgerState, data_map: DataMap, entries: tuple[EntryRef, ...] = (),
                 execution: Execution | None = None, scan: ScanResult | None = None,
                 as_of: dt.date | None = None, snapshot_time: dt.datetime | None = None,
                 schema_fingerprint: str | None = None,
                 duration_seconds: float | None = None,
                 dating: SnapshotDating | None = None,
                 drill: dict[str, Any] | None = None,
                 objects: ObjectsOutcome | None = None,
                 drift: tuple[str, ...] = (), scan_failure: str | None = None) -> Report:
    """Assemble a report from a replay and/or a scan.

    ``dating`` (from the replay or verify result) decides "production erasure incomplete":
    exactly by the snapshot's watermark, or by ``--snapshot-time``. Without it,
    ``snapshot_time`` alone is used.

    Returns:
        The report.
    """
    per_entry: dict[str, dict[str, dict[str, int]]] = {}
    operations: list[dict[str, Any]] = []
    for result in execution.results if execution else ():
        operations.append({"table": result.table, "action": result.action,
                           "group": result.group, "rows": result.rows})
        for source, count in result.by_source:
            acts = per_entry.setdefault(source, {}).setdefault(result.table, {})
            acts[_verb(result.action)] = acts.get(_verb(result.action), 0) + count
    for located in objects.results if objects else ():
        for source, count in located.by_source:
            acts = per_entry.setdefault(source, {}).setdefault(f"s3://{located.bucket}", {})
            acts["object versions deleted"] = acts.get("object versions deleted", 0) + count
    residual_seqs = {f.seq for f in scan.findings} if scan else set()
    residual_seqs |= {f.seq for f in objects.findings if f.seq is not None} if objects else set()
    if dating is not None:
        snapshot_time = dating.taken_at
        erased_at_backup = set(dating.erased_at_backup)
    else:
        erased_at_backup = {ref.seq for ref in entries if SnapshotDating.erased_before(
            ref.seq, ref.kind, ref.effective, taken_at=snapshot_time, tree_size=None)}
    rows: list[dict[str, Any]] = []
    for ref in entries:
        found = per_entry.get(str(ref.seq), {})
        rows.append({"seq": ref.seq, "request_id": ref.request_id, "kind": ref.kind,
                     "purpose": ref.purpose,
                     "status": _status(ref, found, ref.seq in residual_seqs,
                                       ref.seq in erased_at_backup),
                     "rows": found})
    rules = []
    if execution is not None:
        counts = dict(execution.subjects)
        rules = [{"name": rule.name, "subjects": counts.get(f"retention:{rule.name}", 0),
                  "rows": per_entry.get(f"retention:{rule.name}", {})}
                 for rule in data_map.retention]
    findings = tuple({"seq": f.seq, "request_id": f.request_id, "table": f.table,
                      "column": f.column, "row_key": f.row_key, "how": f.how,
                      "production_erasure_incomplete": f.seq in erased_at_backup}
                     for f in (scan.findings if scan else ()))
    object_findings = tuple(
        {"seq": f.seq, "request_id": f.request_id, "source": f.source, "path": f.path,
         "bucket": f.bucket, "template": f.template, "versions": f.versions,
         "production_erasure_incomplete": f.seq in erased_at_backup}
        for f in (objects.findings if objects else ()))
    totals = {"entries": len(entries), "residual_findings": len(findings) + len(object_findings)}
    if execution is not None:
        totals["rows_changed"] = execution.rows_changed
    if objects is not None:
        totals["object_versions_changed"] = objects.versions
    return Report(
        command=command, tool_version=tool_version, generated_at=now, snapshot=snapshot,
        ledger=ledger, data_map_sha256=data_map.sha256, data_map_source=data_map.source,
        as_of=as_of, snapshot_time=snapshot_time,
        dated_by={**dating.to_dict(), "description": dating.describe()} if dating else None,
        drill=drill,
        schema_fingerprint=schema_fingerprint or (execution.schema_fingerprint
                                                  if execution else None),
        dry_run=bool(execution and execution.dry_run), entries=tuple(rows), rules=tuple(rules),
        operations=tuple(operations),
        drift=(execution.drift if execution else drift) + (objects.drift if objects else ()),
        systems=(snapshot, *(f"s3://{b}" for b in (objects.buckets if objects else ()))),
        objects=tuple({"path": r.path, "bucket": r.bucket, "template": r.template,
                       "versions": r.versions} for r in (objects.results if objects else ())),
        object_findings=object_findings,
        warnings=execution.warnings if execution else (),
        findings=findings,
        unmapped_personal_columns=scan.unmapped_personal_columns if scan else (),
        totals=totals, duration_seconds=duration_seconds,
        batched=_batched(execution), scan_failure=scan_failure)


def _batched(execution: Execution | None) -> dict[str, Any] | None:
    batches = execution.batches if execution else None
    if batches is None:
        return None
    return {"runs": list(batches.run_ids), "batch_rows": batches.batch_rows,
            "batches": batches.batches, "resumed": batches.resumed, "resumes": batches.resumes}


def _verb(action: str) -> str:
    return {"delete": "deleted", "anonymize": "anonymized", "retain": "retained",
            "opt-out": "opted out", "nullify": "reference nullified",
            "keep-referenced": "anonymized (still referenced)",
            "keep-shared": "kept (shared)"}.get(action, action)


def _status(ref: EntryRef, found: dict[str, dict[str, int]], residual: bool,
            erased_before_backup: bool) -> str:
    if ref.note:
        return ref.note
    if residual:
        return "residual data found"
    if not found:
        return "nothing found"
    if erased_before_backup:
        # the backup was taken after the erasure was carried out, yet still held the data
        return "production erasure incomplete"
    return "replayed"


__all__ = ["REPORT_FORMAT", "Report", "build_report"]
