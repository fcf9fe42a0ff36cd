"""``reconciler stamp`` and the watermark through the command line: exit codes, the exact
one-line stderr, what the report says, and a canary identifier that never appears."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.reconciler.conftest import SHOP_ROWS, dump, load, shop_metadata
from tests.reconciler.test_cli import CANARY, ERASE_CANARY, common, invoke, make_files

ERASED_LONG_AGO = {"request_id": "DSR-1", "kind": "erasure",
                   "identifiers": {"email": "jan@example.nl"}, "effective": "2020-01-01"}
ANOTHER_LEDGER = ("reconciler: error: snapshot watermark (erasure_reconciler_watermark): not "
                  "signed by this ledger's key (stamped by another ledger, or forged); check "
                  "--ledger, or date the snapshot with --snapshot-time after removing the "
                  "watermark row\n")


def another_dir(parent: Path, name: str) -> Path:
    """A fresh directory for a second ledger's files."""
    path = parent / name
    path.mkdir()
    return path


def test_stamp_before_the_backup_then_apply_after_the_restore(shop: str, tmp_path: Path) -> None:
    ledger, key, map_path = make_files(tmp_path, [ERASED_LONG_AGO])
    stamped = invoke("stamp", "--db", shop, "--ledger", ledger)  # no keyring: head is signed
    assert stamped.exit_code == 0, stamped.stderr
    assert stamped.stdout.startswith(f"stamped {sa.make_url(shop).render_as_string()}: ledger "
                                     "test.example/ledger at tree size 1 (root ")
    assert stamped.stderr == ""

    report = tmp_path / "apply.json"
    applied = invoke("apply", *common(shop, (ledger, key, map_path)), "--report", str(report))
    assert applied.exit_code == 0, applied.stderr
    data = json.loads(report.read_text())
    assert data["snapshot"]["dated_by"]["method"] == "watermark"
    assert data["snapshot"]["dated_by"]["watermark"]["tree_size"] == 1
    assert data["snapshot"]["snapshot_time"] == data["snapshot"]["dated_by"]["taken_at"]
    assert data["entries"][0]["status"] == "production erasure incomplete"
    assert "- snapshot dated by: watermark (ledger tree size 1, stamped " in applied.stdout


def test_stamp_json_names_the_checkpoint(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'live.db'}"
    load(db, shop_metadata(), SHOP_ROWS)
    ledger, key, _ = make_files(tmp_path, [ERASED_LONG_AGO])
    result = invoke("stamp", "--db", db, "--ledger", ledger, "--keyring", key, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["snapshot"], data["origin"], data["tree_size"]) == (db, "test.example/ledger", 1)
    assert data["checkpoint"].startswith("test.example/ledger\n1\n")


def test_without_a_watermark_the_report_says_snapshot_time_served(
        tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    files = make_files(tmp_path, [ERASED_LONG_AGO])
    result = invoke("plan", *common(str(db), files), "--snapshot-time", "2026-11-01T03:00:00",
                    "--json")
    assert result.exit_code == 0, result.stderr
    dated = json.loads(result.stdout)["snapshot"]["dated_by"]
    assert dated == {"method": "snapshot-time", "taken_at": "2026-11-01T03:00:00+00:00",
                     "description": "--snapshot-time 2026-11-01T03:00:00+00:00 (no watermark "
                                    "in the snapshot)"}


@pytest.mark.parametrize("command", ["plan", "apply", "verify"])
def test_a_watermark_from_another_ledger_is_exit_3_and_changes_nothing(
        tmp_path: Path, command: str) -> None:
    db = tmp_path / "shop.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    other = make_files(another_dir(tmp_path, "other"), [ERASED_LONG_AGO])
    assert invoke("stamp", "--db", str(db), "--ledger", other[0]).exit_code == 0
    files = make_files(tmp_path, [ERASED_LONG_AGO])
    before = dump(f"sqlite:///{db}")
    args = common(str(db), files)
    result = invoke(command, *(args[:8] if command == "verify" else args))
    assert (result.exit_code, result.stderr, result.stdout) == (3, ANOTHER_LEDGER, "")
    assert dump(f"sqlite:///{db}") == before


@pytest.mark.parametrize(("db", "stderr"), [
    pytest.param("{tmp}/none.db", "reconciler: error: snapshot {tmp}/none.db: no such file",
                 id="no-file"),
    pytest.param("postgresql+psycopg://u:s3cret@127.0.0.1:1/x",
                 "reconciler: error: snapshot postgresql+psycopg://u:***@127.0.0.1:1/x: cannot "
                 'connect: connection failed: connection to server at "127.0.0.1", port 1 '
                 "failed: Connection refused", id="unreachable"),
])
def test_stamp_errors_are_one_line(tmp_path: Path, db: str, stderr: str) -> None:
    ledger, _, _ = make_files(tmp_path, [ERASED_LONG_AGO])
    result = invoke("stamp", "--db", db.format(tmp=tmp_path), "--ledger", ledger)
    assert (result.exit_code, result.stderr) == (2, stderr.format(tmp=tmp_path) + "\n")
    assert result.stdout == ""


def test_stamp_on_a_tampered_ledger_is_exit_3_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    ledger, _, _ = make_files(tmp_path, [ERASED_LONG_AGO])
    engine = sa.create_engine(f"sqlite:///{ledger}")
    with engine.begin() as conn:
        data = conn.execute(sa.text("SELECT data FROM erasure_ledger_leaves WHERE seq = 0")
                            ).scalar_one()
        conn.execute(sa.text("UPDATE erasure_ledger_leaves SET data = :d WHERE seq = 0"),
                     {"d": bytes([data[0] ^ 1]) + data[1:]})
    engine.dispose()
    before = dump(f"sqlite:///{db}")
    result = invoke("stamp", "--db", str(db), "--ledger", ledger)
    assert result.exit_code == 3
    assert result.stderr.startswith("reconciler: error: ")
    assert result.stderr.count("\n") == 1
    assert dump(f"sqlite:///{db}") == before


def test_the_canary_never_appears_in_stamp_or_watermark_output(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "shop.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"INSERT INTO complaints VALUES (7, 'mail {CANARY}')"))
    engine.dispose()
    files = make_files(tmp_path, [ERASE_CANARY])
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    for args in (["stamp", "--db", str(db), "--ledger", files[0], "--json"],
                 ["apply", *common(str(db), files), "--report", str(tmp_path / "r.json")],
                 ["verify", *common(str(db), files)[:8]]):
        result = invoke(*args)
        outputs += [result.stdout, result.stderr]
    outputs += [(tmp_path / "r.json").read_text(), (tmp_path / "r.md").read_text()]
    other = make_files(another_dir(tmp_path, "o"), [ERASE_CANARY])
    failed = invoke("apply", *common(str(db), other))
    assert failed.exit_code == 3
    outputs += [failed.stdout, failed.stderr, caplog.text]
    for text in outputs:
        assert CANARY not in text.lower()
