"""``drill``: a scratch copy of a backup is applied and verified, the source is never written,
and the scratch is gone afterwards, also after a failure.

Tests taking ``db_url`` use it as the scratch database on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from erasure_ledger import IntegrityError, Ledger, MemoryStore
from reconciler.datamap import DataMap
from reconciler.drill import DrillResult, drill
from reconciler.errors import DataMapError, SnapshotError
from reconciler.watermark import stamp
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    OPTOUT_KLAAS,
    SHOP_MAP,
    SHOP_ROWS,
    load,
    shop_metadata,
)
from tests.reconciler.test_cli import CANARY, ERASE_CANARY, invoke, make_files
from tests.reconciler.test_cli_watermark import another_dir
from tests.reconciler.test_progress import Recorder

MakeLedger = Callable[..., Ledger]


def fingerprint(path: Path) -> tuple[str, int, list[str]]:
    """The file's hash, its mtime and what else is in its directory (journals, WAL files)."""
    return (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns,
            sorted(p.name for p in path.parent.iterdir()))


@pytest.fixture
def backup(tmp_path: Path) -> Path:
    """Tuesday's backup: the shop as a SQLite file in its own read-only-ish directory."""
    directory = tmp_path / "backups"
    directory.mkdir()
    path = directory / "shop-tuesday.db"
    load(f"sqlite:///{path}", shop_metadata(), SHOP_ROWS)
    return path


@pytest.fixture
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temporary directory, redirected so a test can see the scratch is gone."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def run(backup: Path, ledger: Ledger, text: str = SHOP_MAP, **options: object) -> DrillResult:
    return drill(str(backup), DataMap.from_text(text), ledger, as_of=AS_OF, hash_key=HASH_KEY,
                 **options)  # type: ignore[arg-type]


def tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_drill_applies_to_a_scratch_copy_and_never_writes_the_source(
        backup: Path, scratch_tmp: Path, make_ledger: MakeLedger) -> None:
    backup.chmod(0o444)  # any attempt to open it for writing would fail the drill
    before = fingerprint(backup)
    result = run(backup, make_ledger(ERASE_JAN, OPTOUT_KLAAS))

    assert result.replay.execution.rows_changed == 12
    assert result.replay.scan is not None
    assert result.replay.scan.clean
    assert fingerprint(backup) == before
    assert result.source_sha256 == before[0]
    assert result.source_bytes == backup.stat().st_size
    assert result.scratch == "temporary SQLite copy"
    assert list(scratch_tmp.iterdir()) == []


def test_a_drill_into_a_scratch_database_copies_table_by_table_and_drops_them(
        backup: Path, db_url: str, scratch_tmp: Path, make_ledger: MakeLedger) -> None:
    before = fingerprint(backup)
    progress = Recorder()
    result = run(backup, make_ledger(ERASE_JAN, OPTOUT_KLAAS), scratch_db=db_url,
                 progress=progress)

    assert result.replay.execution.rows_changed == 12
    assert result.replay.scan is not None
    assert result.replay.scan.clean
    assert result.scratch == sa.make_url(db_url).render_as_string()
    assert progress.events[0] == ("phase", "copy", 6)
    assert ("step", "copy customers", None) in progress.events
    assert tables(db_url) == []
    assert fingerprint(backup) == before
    assert list(scratch_tmp.iterdir()) == []


def test_the_drill_reads_the_backups_watermark(
        backup: Path, scratch_tmp: Path, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)
    stamp(str(backup), ledger, now=dt.datetime(2026, 11, 10, tzinfo=dt.UTC))
    result = run(backup, ledger)
    assert result.replay.dating is not None
    assert result.replay.dating.method == "watermark"
    assert result.replay.dating.erased_at_backup == frozenset({0})


def test_the_scratch_is_removed_after_a_failure(
        backup: Path, db_url: str, scratch_tmp: Path, make_ledger: MakeLedger) -> None:
    before = fingerprint(backup)
    newer_map = SHOP_MAP.replace("column: last_active_at", "column: last_login_at")
    with pytest.raises(DataMapError, match="column 'last_login_at' is not in table 'customers' "
                                           "of this snapshot"):
        run(backup, make_ledger(ERASE_JAN), newer_map, scratch_db=db_url)
    assert tables(db_url) == []
    assert list(scratch_tmp.iterdir()) == []
    assert fingerprint(backup) == before


def test_the_scratch_is_removed_when_the_ledger_is_tampered(
        backup: Path, scratch_tmp: Path, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)
    store = ledger.store
    assert isinstance(store, MemoryStore)
    leaf = store.leaves[0]
    store.leaves[0] = type(leaf)(leaf.seq, leaf.request_id, bytes([leaf.data[0] ^ 1]) + leaf.data[1:])
    with pytest.raises(IntegrityError):
        run(backup, ledger)
    assert list(scratch_tmp.iterdir()) == []


def test_a_scratch_database_that_is_not_empty_is_refused(
        backup: Path, tmp_path: Path, scratch_tmp: Path, make_ledger: MakeLedger) -> None:
    production = f"sqlite:///{tmp_path / 'production.db'}"
    load(production, shop_metadata(), SHOP_ROWS)
    with pytest.raises(SnapshotError, match=r"is not empty \(6 table\(s\)\); a drill needs an "
                                            r"empty scratch database$"):
        run(backup, make_ledger(ERASE_JAN), scratch_db=production)
    assert len(tables(production)) == 6
    assert list(scratch_tmp.iterdir()) == []


# -- through the command line -------------------------------------------------------------------


def drill_args(backup: Path | str, files: tuple[str, str, str], *extra: str) -> list[str]:
    ledger, key, map_path = files
    return ["drill", "--snapshot", str(backup), "--map", map_path, "--ledger", ledger,
            "--keyring", key, "--as-of", "2026-11-25", *extra]


def test_drill_cli_writes_the_report_and_exits_0(
        backup: Path, tmp_path: Path, scratch_tmp: Path) -> None:
    files = make_files(tmp_path, [ERASE_JAN, OPTOUT_KLAAS])
    before = fingerprint(backup)
    report = tmp_path / "drill.json"
    result = invoke(*drill_args(backup, files, "--report", str(report)))

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(report.read_text())
    assert data["command"] == "drill"
    assert data["snapshot"]["location"] == str(backup)
    assert data["drill"] == {"source": str(backup), "source_sha256": before[0],
                             "source_bytes": backup.stat().st_size,
                             "source_format": "SQLite database file",
                             "scratch": "temporary SQLite copy", "scratch_removed": True,
                             "source_written": False}
    assert data["totals"]["rows_changed"] == 12
    assert "- drill: source sha256 " in (tmp_path / "drill.md").read_text()
    assert fingerprint(backup) == before
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize(("snapshot", "code", "stderr"), [
    pytest.param("{tmp}/none.db", 2, "snapshot {tmp}/none.db: no such file", id="no-file"),
    pytest.param("{tmp}/shop.yaml", 2, "{tmp}/shop.yaml: neither a SQLite database file nor "
                 "a pg_dump (custom format or plain SQL) or mariadb-dump file", id="not-sqlite"),
    pytest.param("postgresql://u:pw@h/db", 2, "--snapshot postgresql://u:***@h/db: expected a "
                 "SQLite snapshot file or s3://bucket/key", id="server-url"),
])
def test_drill_cli_input_errors_are_one_line(
        tmp_path: Path, scratch_tmp: Path, snapshot: str, code: int, stderr: str) -> None:
    files = make_files(tmp_path, [ERASE_JAN])
    result = invoke(*drill_args(snapshot.format(tmp=tmp_path), files))
    assert (result.exit_code, result.stderr) == (
        code, "reconciler: error: " + stderr.format(tmp=tmp_path) + "\n")
    assert result.stdout == ""
    assert list(scratch_tmp.iterdir()) == []


def test_drill_cli_exits_1_on_residuals_and_3_on_a_foreign_watermark(
        backup: Path, tmp_path: Path, scratch_tmp: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    engine = sa.create_engine(f"sqlite:///{backup}", poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO complaints VALUES (9, 'from {CANARY}')"))
    engine.dispose()
    caplog.set_level(logging.DEBUG)
    files = make_files(tmp_path, [ERASE_CANARY])
    report = tmp_path / "r.json"
    residual = invoke(*drill_args(backup, files, "--report", str(report)))
    assert residual.exit_code == 1
    assert residual.stderr == ("reconciler: error: residual personal data found: 1 finding(s) "
                               "for 1 ledger entry; see the report\n")
    assert list(scratch_tmp.iterdir()) == []

    other = make_files(another_dir(tmp_path, "o"), [ERASE_CANARY])
    assert invoke("stamp", "--db", str(backup), "--ledger", other[0]).exit_code == 0
    foreign = invoke(*drill_args(backup, files))
    assert foreign.exit_code == 3
    assert foreign.stderr.startswith("reconciler: error: snapshot watermark ")
    assert list(scratch_tmp.iterdir()) == []
    for text in (residual.stdout, residual.stderr, foreign.stdout, foreign.stderr,
                 report.read_text(), report.with_suffix(".md").read_text(), caplog.text):
        assert CANARY not in text.lower()
