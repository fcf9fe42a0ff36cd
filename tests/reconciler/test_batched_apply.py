"""``apply --batch-rows N``: batches with a journal, on real SQLite, PostgreSQL and MariaDB.

A batched apply must end exactly where a one-transaction apply ends (rows and report counts),
also when it was interrupted and resumed; an interruption leaves no orphan; an unfinished
journal is never ignored; a finished run leaves no staging and no identifier behind.

Every test here runs once per database (the ``db_url`` fixture). Interruptions are injected
by replacing :func:`reconciler.batches.run_batch`, never by timing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from erasure_ledger import Entry, Ledger
from reconciler import batches
from reconciler.datamap import DataMap
from reconciler.errors import DataMapError, SnapshotError
from reconciler.replay import ReplayResult, replay
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    LEDGER_NOW,
    OPTOUT_KLAAS,
    SHOP_MAP,
    SHOP_ROWS,
    dump,
    load,
    rows_of,
    shop_metadata,
)
from tests.reconciler.test_cli import CANARY, ERASE_CANARY, common, invoke, make_files
from tests.reconciler.test_references import ADDRESS_MAP, ADDRESS_ROWS, address_metadata, orphans

MakeLedger = Callable[..., Ledger]
ERASE_PIET = {"request_id": "DSR-2", "kind": "erasure",
              "identifiers": {"customer_number": "C-1002"}}


def run(url: str, ledger: Ledger, text: str = SHOP_MAP, *,
        batch_rows: int | None = None, discard: bool = False) -> ReplayResult:
    return replay(url, DataMap.from_text(text), ledger, as_of=AS_OF, dry_run=False,
                  hash_key=HASH_KEY, batch_rows=batch_rows, discard_journal=discard)


def data(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the snapshot's own tables (the journal is the reconciler's)."""
    return {name: rows for name, rows in dump(url).items() if name != "rc_journal"}


def outcome(result: ReplayResult) -> tuple[Any, ...]:
    """Everything the report counts."""
    ex = result.execution
    return (ex.results, ex.subjects, ex.rows_changed, ex.warnings, ex.drift,
            result.scan.findings if result.scan else None)


def reload(url: str, md: sa.MetaData, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Drop every table and load ``rows`` again: the same snapshot, restored once more."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        everything = sa.MetaData()
        everything.reflect(engine)
        everything.drop_all(engine)
    finally:
        engine.dispose()
    load(url, md, rows)


def fail_after(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """The (k+1)-th batch statement fails, as a killed connection or a full disk would."""
    real = batches.run_batch
    calls = {"n": 0}

    def flaky(conn: sa.Connection, statement: sa.TextClause) -> int:
        if calls["n"] == k:
            raise sa.exc.OperationalError("batch", {}, Exception("injected failure"))
        calls["n"] += 1
        return real(conn, statement)

    monkeypatch.setattr(batches, "run_batch", flaky)


def pending_runs(url: str) -> list[tuple[str, str]]:
    return [(str(r), str(s)) for r, s in rows_of(url, "SELECT run_id, status FROM rc_journal")]


def staging_tables(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        return [t for t in sa.inspect(engine).get_table_names() if t.startswith("rc_tmp_")]
    finally:
        engine.dispose()


@pytest.fixture
def one_transaction(db_url: str, make_ledger: MakeLedger) -> tuple[Ledger, Any, Any]:
    """The shop after a one-transaction apply (end state and outcome), then restored again."""
    load(db_url, shop_metadata(), SHOP_ROWS)
    ledger = make_ledger(ERASE_JAN, OPTOUT_KLAAS, ERASE_PIET)
    expected = run(db_url, ledger)
    end_state = data(db_url)
    reload(db_url, shop_metadata(), SHOP_ROWS)
    return ledger, end_state, outcome(expected)


def test_batches_end_where_one_transaction_ends(
        db_url: str, one_transaction: tuple[Ledger, Any, Any]) -> None:
    ledger, end_state, expected = one_transaction
    result = run(db_url, ledger, batch_rows=1)  # fewer than the rows of every changed table
    assert data(db_url) == end_state
    assert outcome(result) == expected
    assert result.execution.rows_changed == 16
    info = result.execution.batches
    assert info is not None
    assert (info.batch_rows, info.resumed) == (1, False)
    assert info.batches > result.execution.rows_changed  # one row each, plus a last empty one
    assert staging_tables(db_url) == []
    assert pending_runs(db_url) == [(info.run_ids[0], "finished")]


def test_an_interrupted_apply_leaves_a_consistent_snapshot_and_resumes(
        db_url: str, one_transaction: tuple[Ledger, Any, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, end_state, expected = one_transaction
    with monkeypatch.context() as patch:
        fail_after(patch, 4)
        with pytest.raises(SnapshotError) as excinfo:
            run(db_url, ledger, batch_rows=1)
    run_id = pending_runs(db_url)[0][0]
    assert str(excinfo.value).endswith(
        ": a statement failed (delete invoices): OperationalError; 4 batch(es) committed and "
        f"journaled (run {run_id}); run the same apply again to resume")
    assert orphans(db_url) == {}
    assert rows_of(db_url, "SELECT COUNT(*) FROM order_lines") == [(0,)]  # deleted first
    assert pending_runs(db_url) == [(run_id, "running")]

    result = run(db_url, ledger, batch_rows=2)  # another batch size is fine
    assert data(db_url) == end_state
    assert outcome(result) == expected  # the counts of the first attempt are not lost
    info = result.execution.batches
    assert info is not None
    assert (info.run_ids, info.resumed, info.resumes) == ((run_id,), True, 1)
    assert staging_tables(db_url) == []
    assert orphans(db_url) == {}


def test_a_shared_row_found_through_a_changed_row_is_still_handled_after_resume(
        db_url: str, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = make_ledger(*({"request_id": f"DSR-{c}", "kind": "erasure",
                            "identifiers": {"email": f"{c}@example.nl"}} for c in "bcde"))
    load(db_url, address_metadata(), ADDRESS_ROWS)
    expected = run(db_url, ledger, ADDRESS_MAP)
    end_state = data(db_url)
    reload(db_url, address_metadata(), ADDRESS_ROWS)

    # the customers' references are nulled one per batch: stop once all four are
    with monkeypatch.context() as patch:
        fail_after(patch, 4)
        with pytest.raises(SnapshotError):
            run(db_url, ledger, ADDRESS_MAP, batch_rows=1)
    assert rows_of(db_url, "SELECT COUNT(*) FROM customers WHERE addr_id IS NULL") == [(4,)]
    assert rows_of(db_url, "SELECT COUNT(*) FROM addresses") == [(4,)]
    assert orphans(db_url) == {}

    result = run(db_url, ledger, ADDRESS_MAP, batch_rows=1)
    assert rows_of(db_url, "SELECT id, street FROM addresses ORDER BY id") == [
        (2, "Markt 2"), (4, "Laan 4")]
    assert data(db_url) == end_state
    assert outcome(result) == outcome(expected)
    assert orphans(db_url) == {}


def test_a_second_batched_apply_changes_nothing(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, shop_metadata(), SHOP_ROWS)
    ledger = make_ledger(ERASE_JAN, OPTOUT_KLAAS)
    first = run(db_url, ledger, batch_rows=2)
    after_first = data(db_url)
    second = run(db_url, ledger, batch_rows=2)
    assert first.execution.rows_changed == 12
    assert second.execution.rows_changed == 0
    assert second.execution.batches is not None
    assert second.execution.batches.batches == 0
    assert data(db_url) == after_first
    assert [s for _, s in pending_runs(db_url)] == ["finished", "finished"]


def test_a_grown_ledger_finishes_the_journaled_run_then_replays_the_rest(
        db_url: str, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    load(db_url, shop_metadata(), SHOP_ROWS)
    ledger = make_ledger(ERASE_JAN)
    with monkeypatch.context() as patch:
        fail_after(patch, 2)
        with pytest.raises(SnapshotError):
            run(db_url, ledger, batch_rows=1)
    ledger.append([Entry.from_dict(dict(OPTOUT_KLAAS))], now=LEDGER_NOW)
    result = run(db_url, ledger, batch_rows=1)
    assert result.scan is not None
    assert result.scan.clean
    assert rows_of(db_url, "SELECT newsletter_opt_in FROM customers WHERE id = 4") == [(False,)]
    info = result.execution.batches
    assert info is not None
    assert len(info.run_ids) == 2
    assert info.resumed
    assert [s for _, s in pending_runs(db_url)] == ["finished", "finished"]
    by_table = {(r.table, r.action, r.group): r.rows for r in result.execution.results}
    assert by_table[("order_lines", "delete", "erase")] == 2
    assert by_table[("customers", "opt-out", "optout:marketing")] == 1


def test_a_run_refused_before_its_first_batch_leaves_nothing_behind(
        db_url: str, make_ledger: MakeLedger) -> None:
    # MariaDB commits the staging tables' DDL at once: they must be dropped again
    md = shop_metadata()
    sa.Table("payments", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id")))
    load(db_url, md, {**SHOP_ROWS, "payments": [{"id": 1, "order_id": 11}]})
    before = dump(db_url)
    delete_orders = SHOP_MAP.replace("""    action: anonymize
    columns:
      shipping_address: redact""", "    action: delete")
    with pytest.raises(DataMapError, match=r"1 row\(s\) of 'payments' reference 'orders' rows"):
        run(db_url, make_ledger(ERASE_JAN), delete_orders, batch_rows=1)
    assert dump(db_url) == before
    assert staging_tables(db_url) == []


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_files(tmp_path: Path) -> tuple[str, str, str]:
    return make_files(tmp_path, [ERASE_JAN, OPTOUT_KLAAS])


def test_the_cli_applies_in_batches_and_reports_them(
        db_url: str, cli_files: tuple[str, str, str], tmp_path: Path) -> None:
    load(db_url, shop_metadata(), SHOP_ROWS)
    report = tmp_path / "apply.json"
    result = invoke("apply", *common(db_url, cli_files), "--batch-rows", "2",
                    "--report", str(report))
    assert (result.exit_code, result.stderr) == (0, "")
    batched = json.loads(report.read_text())["batched"]
    assert batched["batch_rows"] == 2
    assert batched["resumed"] is False
    assert batched["batches"] > 0
    assert json.loads(report.read_text())["totals"]["rows_changed"] == 12
    assert "- batched: " in result.stdout
    assert "not interrupted" in result.stdout

    again = invoke("apply", *common(db_url, cli_files), "--batch-rows", "2")
    assert again.exit_code == 0
    assert "nothing to change: the snapshot already reflects the ledger" in again.stdout

    bad = invoke("apply", *common(db_url, cli_files), "--batch-rows", "0")
    assert (bad.exit_code, bad.stderr) == (
        2, "reconciler: error: invalid value for --batch-rows: expected integer range\n")
    alone = invoke("apply", *common(db_url, cli_files), "--discard-journal")
    assert (alone.exit_code, alone.stderr) == (
        2, "reconciler: error: --discard-journal needs --batch-rows; nothing was changed\n")


def test_an_unfinished_journal_is_never_ignored(
        db_url: str, cli_files: tuple[str, str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    load(db_url, shop_metadata(), SHOP_ROWS)
    args = common(db_url, cli_files)
    with monkeypatch.context() as patch:
        fail_after(patch, 3)
        stopped = invoke("apply", *args, "--batch-rows", "1")
    assert stopped.exit_code == 2
    assert stopped.stderr.count("\n") == 1
    assert "run the same apply again to resume" in stopped.stderr
    run_id = pending_runs(db_url)[0][0]
    half_applied = dump(db_url)

    # another map, another as-of: refused, nothing changed
    other_map = tmp_path / "other.yaml"
    other_map.write_text(SHOP_MAP.replace("years: 2", "years: 3"))
    changed = list(args)
    changed[changed.index("--map") + 1] = str(other_map)
    sha = DataMap.from_text(SHOP_MAP).sha256[:16]
    for variant in (changed, [*args[:-1], "2026-11-26"]):
        refused = invoke("apply", *variant, "--batch-rows", "1")
        assert (refused.exit_code, refused.stdout) == (2, "")
        assert refused.stderr.startswith("reconciler: error: snapshot ")
        assert refused.stderr.endswith(
            f": an unfinished batched apply (run {run_id}) used data map sha256 {sha}... and "
            "--as-of 2026-11-25; finish it with that map and --as-of, or start over with "
            "--discard-journal\n")
        assert dump(db_url) == half_applied

    # a plain apply or plan must not run on a half-applied snapshot
    for command in ("apply", "plan"):
        plain = invoke(command, *args)
        assert (plain.exit_code, plain.stdout) == (2, "")
        assert plain.stderr.endswith(
            f": an unfinished batched apply (run {run_id}) is journaled in rc_journal; finish "
            "it with reconciler apply --batch-rows N (same map, --as-of 2026-11-25) before "
            f"{command}, or start over with apply --batch-rows N --discard-journal\n")
        assert dump(db_url) == half_applied

    # the way out for a lost map: abandon the journaled run and start over
    fresh = invoke("apply", *changed, "--batch-rows", "1", "--discard-journal")
    assert fresh.exit_code == 0, fresh.stderr
    assert sorted(s for _, s in pending_runs(db_url)) == ["abandoned", "finished"]
    assert staging_tables(db_url) == []


def test_no_identifier_in_the_journal_or_any_output(
        db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    load(db_url, shop_metadata(), SHOP_ROWS)
    engine = sa.create_engine(db_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE customers SET email = ' {CANARY.upper()} ' "
                                 "WHERE id = 2"))
            conn.execute(sa.text(f"INSERT INTO newsletter (address) VALUES ('{CANARY}')"))
    finally:
        engine.dispose()
    files = make_files(tmp_path, [ERASE_CANARY])
    caplog.set_level(logging.DEBUG)
    args = [*common(db_url, files), "--batch-rows", "1"]
    with monkeypatch.context() as patch:
        fail_after(patch, 1)
        stopped = invoke("apply", *args)
    assert stopped.exit_code == 2
    report = tmp_path / "apply.json"
    done = invoke("apply", *args, "--report", str(report))
    assert done.exit_code == 0, done.stderr
    journal = rows_of(db_url, "SELECT * FROM rc_journal")
    outputs = [stopped.stdout, stopped.stderr, done.stdout, done.stderr, report.read_text(),
               report.with_suffix(".md").read_text(), caplog.text, repr(journal)]
    for text in outputs:
        assert CANARY not in text.lower()
    assert staging_tables(db_url) == []
    if db_url.startswith("sqlite"):
        # secure_delete: the dropped staging and the changed rows left no bytes behind
        assert CANARY.encode() not in Path(db_url.removeprefix("sqlite:///")).read_bytes().lower()
