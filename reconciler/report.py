"""The report for the privacy officer: JSON (``to_json``) and Markdown (``to_markdown``).

It names the tool version, the time, the snapshot (redacted URL and a schema fingerprint), the
ledger checkpoint replayed (tree size, root hash; the signature was verified before anything
was read), the data map's SHA-256, and per entry (sequence number and request id) the rows
deleted / anonymized / retained per table, "nothing found" or "production erasure
incomplete"; retention and opt-out results, schema drift, residual findings and totals.

It never holds an identifier value: only sequence numbers, request ids, tables, columns,
counts and row keys the scan considered safe to show.

Left out on purpose: no I/O (the CLI writes the file), no clock (``now`` is a parameter).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from reconciler.datamap import DataMap
from reconciler.executor import Execution
from reconciler.planner import EntryRef
from reconciler.replay import LedgerState
from reconciler.scan import ScanResult

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
    dry_run: bool = False
    entries: tuple[dict[str, Any], ...] = ()
    rules: tuple[dict[str, Any], ...] = ()
    operations: tuple[dict[str, Any], ...] = ()
    drift: tuple[str, ...] = ()
    findings: tuple[dict[str, Any], ...] = ()
    unmapped_personal_columns: tuple[str, ...] = ()
    totals: dict[str, int] = field(default_factory=dict)
    duration_seconds: float | None = None

    @property
    def clean(self) -> bool:
        """True when the residual scan found nothing (or did not run)."""
        return not self.findings

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
                         if self.snapshot_time else None},
            "ledger": {"origin": self.ledger.origin, "tree_size": self.ledger.tree_size,
                       "root_hash": self.ledger.root_hash, "signature_verified": True,
                       "checkpoint": self.ledger.checkpoint},
            "data_map": {"source": self.data_map_source, "sha256": self.data_map_sha256},
            "entries": list(self.entries),
            "rules": list(self.rules),
            "operations": list(self.operations),
            "schema_drift": list(self.drift),
            "residual_findings": list(self.findings),
            "unmapped_personal_columns": list(self.unmapped_personal_columns),
            "totals": self.totals,
            "duration_seconds": self.duration_seconds,
        }

    def to_json(self) -> str:
        """Returns: the report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

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
        if self.command != "plan":
            lines += self._scan_lines()
        if self.totals:
            lines += ["## Totals", ""]
            lines.append(f"- rows {verb}: {self.totals.get('rows_changed', 0)}")
            if self.command == "apply" and not self.totals.get("rows_changed"):
                lines.append("- nothing to change: the snapshot already reflects the ledger")
            if self.command != "plan":
                lines.append(f"- residual findings: {len(self.findings)}")
            lines.append("")
        if self.duration_seconds is not None:
            lines.append(f"Duration: {self.duration_seconds:.1f} s")
        return "\n".join(lines).rstrip() + "\n"


    def _scan_lines(self) -> list[str]:
        lines = ["## Residual scan", ""]
        if self.findings:
            lines += [f"- entry {f['seq']} ({f['request_id']}): {f['table']}.{f['column']} "
                      f"row {f['row_key'] or '(key not shown)'} [{f['how']}]"
                      for f in self.findings]
        else:
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
                 duration_seconds: float | None = None) -> Report:
    """Assemble a report from a replay and/or a scan.

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
    residual_seqs = {f.seq for f in scan.findings} if scan else set()
    rows: list[dict[str, Any]] = []
    for ref in entries:
        found = per_entry.get(str(ref.seq), {})
        rows.append({"seq": ref.seq, "request_id": ref.request_id, "kind": ref.kind,
                     "purpose": ref.purpose,
                     "status": _status(ref, found, ref.seq in residual_seqs, snapshot_time),
                     "rows": found})
    rules = []
    if execution is not None:
        counts = dict(execution.subjects)
        rules = [{"name": rule.name, "subjects": counts.get(f"retention:{rule.name}", 0),
                  "rows": per_entry.get(f"retention:{rule.name}", {})}
                 for rule in data_map.retention]
    findings = tuple({"seq": f.seq, "request_id": f.request_id, "table": f.table,
                      "column": f.column, "row_key": f.row_key, "how": f.how}
                     for f in (scan.findings if scan else ()))
    totals = {"entries": len(entries), "residual_findings": len(findings)}
    if execution is not None:
        totals["rows_changed"] = execution.rows_changed
    return Report(
        command=command, tool_version=tool_version, generated_at=now, snapshot=snapshot,
        ledger=ledger, data_map_sha256=data_map.sha256, data_map_source=data_map.source,
        as_of=as_of, snapshot_time=snapshot_time,
        schema_fingerprint=schema_fingerprint or (execution.schema_fingerprint
                                                  if execution else None),
        dry_run=bool(execution and execution.dry_run), entries=tuple(rows), rules=tuple(rules),
        operations=tuple(operations), drift=execution.drift if execution else (),
        findings=findings,
        unmapped_personal_columns=scan.unmapped_personal_columns if scan else (),
        totals=totals, duration_seconds=duration_seconds)


def _verb(action: str) -> str:
    return {"delete": "deleted", "anonymize": "anonymized", "retain": "retained",
            "opt-out": "opted out"}.get(action, action)


def _status(ref: EntryRef, found: dict[str, dict[str, int]], residual: bool,
            snapshot_time: dt.datetime | None) -> str:
    if ref.note:
        return ref.note
    if residual:
        return "residual data found"
    if not found:
        return "nothing found"
    if (snapshot_time is not None and ref.kind == "erasure" and ref.effective is not None
            and ref.effective <= snapshot_time):
        # the backup was taken after the erasure was carried out, yet still held the data
        return "production erasure incomplete"
    return "replayed"


__all__ = ["REPORT_FORMAT", "Report", "build_report"]
