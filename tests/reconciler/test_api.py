"""Meta-tests: the public surface, the error model, the report's production-incomplete rule and
the per-dialect SQL differences (asserted without a database)."""

from __future__ import annotations

import datetime as dt
import inspect
import json

import reconciler
from reconciler import errors
from reconciler.datamap import DataMap
from reconciler.dialects import dialect_for
from reconciler.executor import Execution, OpResult
from reconciler.planner import EntryRef
from reconciler.replay import LedgerState
from reconciler.report import build_report
from tests.reconciler.conftest import SHOP_MAP


def test_public_api_matches___all__() -> None:
    public = {name for name in dir(reconciler) if not name.startswith("_")}
    modules = {name for name, value in vars(reconciler).items() if inspect.ismodule(value)}
    assert public - modules - {"annotations", "logging"} == set(reconciler.__all__) - {"__version__"}


def test_every_error_class_has_its_exit_code() -> None:
    codes = {cls.__name__: cls.exit_code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.ReconcileError)}
    assert codes == {"ReconcileError": 2, "DataMapError": 2, "SnapshotError": 2,
                     "ObjectStorageError": 2, "ResidualDataFound": 1, "ResidualScanFailed": 1}


def test_redact_url_hides_the_password() -> None:
    assert errors.redact_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert errors.redact_url("shop.db") == "shop.db"


def entry(seq: int, effective: dt.datetime | None) -> EntryRef:
    return EntryRef(seq=seq, request_id=f"DSR-{seq}", kind="erasure", purpose=None,
                    effective=effective, appended_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                    shredded=False)


def test_data_found_for_an_entry_effective_before_the_backup_is_production_incomplete() -> None:
    execution = Execution(dry_run=False, schema_fingerprint="f" * 64, drift=(), results=(
        OpResult("customers", "delete", "erase", "subject.action", 2, (("0", 1), ("1", 1))),))
    report = build_report(
        command="apply", tool_version="0", now=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        snapshot="shop.db", ledger=LedgerState("o", 3, "ab" * 32, "note"),
        data_map=DataMap.from_text(SHOP_MAP),
        entries=(entry(0, dt.datetime(2026, 10, 1, tzinfo=dt.UTC)),
                 entry(1, dt.datetime(2026, 11, 20, tzinfo=dt.UTC)), entry(2, None)),
        execution=execution, snapshot_time=dt.datetime(2026, 11, 18, tzinfo=dt.UTC))
    assert [e["status"] for e in report.entries] == [
        "production erasure incomplete", "replayed", "nothing found"]
    assert report.entries[0]["rows"] == {"customers": {"deleted": 1}}
    assert "| 0 | DSR-0 | erasure | production erasure incomplete (customers: 1 deleted) |" in (
        report.to_markdown())


def test_dialects_differ_only_where_needed() -> None:
    sqlite, pg, maria = dialect_for("sqlite"), dialect_for("postgresql"), dialect_for("mariadb")
    assert sqlite.exact_eq("t.c", "m.raw") == "t.c = m.raw"
    # UTF-8 bytes whatever the column's character set (a latin1 'Müller' must match too)
    assert maria.exact_eq("t.c", "m.raw") == (
        "(t.c = m.raw AND BINARY CONVERT(t.c USING utf8mb4) = BINARY m.raw)")
    assert maria.distinct_values("t.c") == "DISTINCT BINARY CONVERT(t.c USING utf8mb4)"
    assert pg.only("t") == "ONLY t"
    assert sqlite.only("t") == "t"
    assert pg.year_trunc("t.d", datetime=False) == "CAST(date_trunc('year', t.d) AS DATE)"
    assert maria.year_trunc("t.d", datetime=False) == "MAKEDATE(YEAR(t.d), 1)"
    assert sqlite.year_trunc("t.d", datetime=False) == "(substr(t.d, 1, 4) || '-01-01')"
    assert maria.concat(["a", "b"]) == "CONCAT(a, b)"
    assert pg.create_temp_table("x", [("a", "TEXT")]).endswith("ON COMMIT DROP")


def test_the_json_report_is_indented_with_one_line_per_entry_and_reads_back_whole() -> None:
    execution = Execution(dry_run=False, schema_fingerprint="f" * 64, drift=("gone.t",), results=(
        OpResult("customers", "delete", "erase", "subject.action", 2, (("0", 1), ("1", 1))),))
    report = build_report(
        command="apply", tool_version="0", now=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        snapshot="shöp.db", ledger=LedgerState("o", 3, "ab" * 32, "note\nline"),
        data_map=DataMap.from_text(SHOP_MAP),
        entries=(entry(0, None), entry(1, None), entry(2, None)), execution=execution)
    text = report.to_json()
    assert json.loads(text) == json.loads(json.dumps(report.to_dict()))
    lines = text.splitlines()
    assert lines[0] == "{"
    assert lines[-1] == "}"
    assert sum(1 for line in lines if line.startswith('    {"seq": ')) == 3  # an entry a line
    assert '  "ledger": {' in lines
    assert '    "origin": "o",' in lines  # small objects stay indented
