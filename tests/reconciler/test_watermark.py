"""The backup watermark: ``stamp`` writes the ledger's signed checkpoint into the live database
before a backup; after a restore, plan / apply / verify read it back from the snapshot, prove it
belongs to this ledger, and know exactly which entries post-date the backup.

Tests taking ``shop`` or ``db_url`` run on SQLite, PostgreSQL and MariaDB; ``sqlite_shop``
covers rules that do not depend on the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from erasure_ledger import (
    BadSignatureError,
    Entry,
    IntegrityError,
    Keyring,
    Ledger,
    MemoryStore,
    RollbackError,
)
from reconciler.datamap import DataMap
from reconciler.discover import discover
from reconciler.replay import ReplayResult, replay, verify
from reconciler.report import build_report
from reconciler.watermark import WATERMARK_TABLE, SnapshotDating, Watermark, stamp
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    LEDGER_NOW,
    SHOP_MAP,
    SHOP_ROWS,
    load,
    rows_of,
    shop_metadata,
)

MakeLedger = Callable[..., Ledger]
STAMPED = dt.datetime(2026, 11, 10, 3, 0, tzinfo=dt.UTC)  # the nightly backup
# Piet's erasure took effect on 5 November, before the backup, but was recorded in the ledger
# only after the stamp: by time alone it looks incomplete; the watermark knows it was not yet
# in the ledger when the backup was taken.
ERASE_PIET_LATE = {"request_id": "DSR-2", "kind": "erasure",
                   "identifiers": {"email": "piet@example.nl"}, "effective": "2026-11-05"}
ERASE_BY_NUMBER = {"request_id": "DSR-3", "kind": "erasure",
                   "identifiers": {"customer_number": "1"}, "effective": "2026-10-02"}


@pytest.fixture
def sqlite_shop(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    load(url, shop_metadata(), SHOP_ROWS)
    return url


def append(ledger: Ledger, *records: Mapping[str, Any]) -> None:
    ledger.append([Entry.from_dict(dict(r)) for r in records], now=LEDGER_NOW)


def run(url: str, ledger: Ledger, *, dry_run: bool = False,
        snapshot_time: dt.datetime | None = None) -> ReplayResult:
    return replay(url, DataMap.from_text(SHOP_MAP), ledger, as_of=AS_OF, dry_run=dry_run,
                  hash_key=HASH_KEY, snapshot_time=snapshot_time)


def statuses(result: ReplayResult, snapshot_time: dt.datetime | None = None) -> dict[str, str]:
    report = build_report(
        command="apply", tool_version="0", now=dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
        snapshot=result.snapshot, ledger=result.ledger, data_map=DataMap.from_text(SHOP_MAP),
        entries=result.plan.entries, execution=result.execution, scan=result.scan,
        snapshot_time=snapshot_time, dating=result.dating)
    return {e["request_id"]: e["status"] for e in report.entries}


def test_stamp_adds_one_row_per_stamp_and_the_newest_wins(
        shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)
    first = stamp(shop, ledger, now=STAMPED - dt.timedelta(days=1))
    append(ledger, ERASE_PIET_LATE)
    second = stamp(shop, ledger, now=STAMPED.replace(microsecond=123456))

    assert (first.tree_size, second.tree_size) == (1, 2)
    assert second.checkpoint == ledger.checkpoint().note
    assert second.root_hash == ledger.checkpoint().checkpoint.root_hash.hex()
    assert rows_of(shop, f"SELECT tree_size FROM {WATERMARK_TABLE} ORDER BY id") == [(1,), (2,)]
    result = run(shop, ledger, dry_run=True)
    assert result.dating is not None
    assert result.dating.method == "watermark"
    assert result.dating.watermark == second


def test_the_watermark_table_is_invisible_to_scan_checks_and_discover(
        shop: str, make_ledger: MakeLedger) -> None:
    # A customer number "2" is a token of the note text (its tree size line): if the scan read
    # the watermark table it would report it.
    ledger = make_ledger({"request_id": "DSR-9", "kind": "erasure",
                          "identifiers": {"customer_number": "2"}}, ERASE_JAN)
    before = verify(shop, DataMap.from_text(SHOP_MAP), ledger)
    stamp(shop, ledger, now=STAMPED)
    after = verify(shop, DataMap.from_text(SHOP_MAP), ledger)

    assert after.scan.findings == before.scan.findings
    assert all(f.table != WATERMARK_TABLE for f in after.scan.findings)
    assert after.schema_fingerprint == before.schema_fingerprint
    assert WATERMARK_TABLE not in discover(shop, "customers")
    assert run(shop, ledger).scan is not None


def test_the_watermark_says_exactly_which_entries_the_backup_should_not_have_held(
        shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)  # effective 1 October, in the ledger before the backup
    stamp(shop, ledger, now=STAMPED)
    append(ledger, ERASE_PIET_LATE)  # effective 5 November, recorded after the backup

    planned = run(shop, ledger, dry_run=True)
    assert planned.dating is not None
    assert planned.dating.erased_at_backup == frozenset({0})
    assert statuses(planned) == {"DSR-1": "production erasure incomplete",
                                 "DSR-2": "replayed"}
    # by time alone, Piet's entry would wrongly count as incomplete too
    by_time = SnapshotDating.erased_before(1, "erasure", dt.datetime(2026, 11, 5, tzinfo=dt.UTC),
                                           taken_at=STAMPED, tree_size=None)
    assert by_time is True


def test_a_watermark_wins_over_snapshot_time_and_the_report_says_so(
        sqlite_shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)
    stamp(sqlite_shop, ledger, now=STAMPED)
    option = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)  # would make DSR-1 "replayed"
    result = run(sqlite_shop, ledger, dry_run=True, snapshot_time=option)

    assert result.dating is not None
    assert statuses(result, option) == {"DSR-1": "production erasure incomplete"}
    assert result.dating.ignored_snapshot_time == option
    assert result.dating.describe().endswith("; --snapshot-time ignored")
    assert result.dating.to_dict()["watermark"]["signature_verified"] is True


def test_without_a_watermark_snapshot_time_serves_and_the_report_says_which(
        sqlite_shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN, ERASE_PIET_LATE)
    by_time = run(sqlite_shop, ledger, dry_run=True, snapshot_time=STAMPED)
    undated = run(sqlite_shop, ledger, dry_run=True)

    assert by_time.dating is not None
    assert undated.dating is not None
    assert (by_time.dating.method, undated.dating.method) == ("snapshot-time", "none")
    assert statuses(by_time) == {"DSR-1": "production erasure incomplete",
                                 "DSR-2": "production erasure incomplete"}
    assert statuses(undated) == {"DSR-1": "replayed", "DSR-2": "replayed"}
    assert "no watermark" in by_time.dating.describe()
    assert undated.dating.describe().startswith("unknown (no watermark in the snapshot, no "
                                                "--snapshot-time)")


def test_verify_marks_residuals_of_entries_erased_before_the_backup(
        sqlite_shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)
    stamp(sqlite_shop, ledger, now=STAMPED)
    append(ledger, ERASE_PIET_LATE)
    result = verify(sqlite_shop, DataMap.from_text(SHOP_MAP), ledger)
    report = build_report(command="verify", tool_version="0", now=STAMPED, snapshot=result.snapshot,
                          ledger=result.ledger, data_map=DataMap.from_text(SHOP_MAP),
                          scan=result.scan, dating=result.dating)

    flags = {(f["request_id"], f["production_erasure_incomplete"]) for f in report.findings}
    assert flags == {("DSR-1", True), ("DSR-2", False)}
    assert "; production erasure incomplete" in report.to_markdown()
    assert report.to_dict()["snapshot"]["dated_by"]["method"] == "watermark"


# -- a watermark that is not a checkpoint this ledger extends: exit 3, nothing changed ----------


def twin(keyring: Keyring, *records: Mapping[str, Any]) -> Ledger:
    """Another ledger under the same key and origin (a rolled-back or rewritten copy)."""
    ledger = Ledger.create(MemoryStore(), keyring, now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    if records:
        append(ledger, *records)
    return ledger


def set_row(url: str, **values: object) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        conn.execute(sa.text(f"UPDATE {WATERMARK_TABLE} SET {sets}"), values)
    engine.dispose()


def test_a_watermark_from_another_ledger_is_exit_3(sqlite_shop: str, make_ledger: MakeLedger) -> None:
    stamp(sqlite_shop, make_ledger(ERASE_JAN), now=STAMPED)
    with pytest.raises(BadSignatureError, match=r"^snapshot watermark \(erasure_reconciler_"
                                                r"watermark\): not signed by this ledger's "
                                                r"key \(stamped by another ledger") as excinfo:
        run(sqlite_shop, make_ledger(ERASE_JAN))
    assert excinfo.value.exit_code == 3


@pytest.mark.parametrize(("change", "error", "message"), [
    pytest.param(lambda note: note.replace("\n1\n", "\n7\n", 1), BadSignatureError,
                 "not signed by this ledger's key", id="forged-size"),
    pytest.param(lambda note: note.split("\n\n")[0] + "\n", IntegrityError, "malformed note",
                 id="signature-stripped"),
])
def test_a_forged_watermark_is_exit_3(
        db_url: str, make_ledger: MakeLedger, change: Callable[[str], str],
        error: type[Exception], message: str) -> None:
    load(db_url, shop_metadata(), SHOP_ROWS)
    ledger = make_ledger(ERASE_JAN)
    mark = stamp(db_url, ledger, now=STAMPED)
    set_row(db_url, checkpoint=change(mark.checkpoint))
    with pytest.raises(error, match=message):
        run(db_url, ledger)


def test_an_edited_row_with_an_intact_note_is_exit_3(sqlite_shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)
    stamp(sqlite_shop, ledger, now=STAMPED)
    set_row(sqlite_shop, tree_size=0)
    with pytest.raises(IntegrityError, match="the row's tree size or root hash differ from its "
                                             "signed note"):
        run(sqlite_shop, ledger, dry_run=True)


def test_a_ledger_rolled_back_behind_the_watermark_is_exit_3(sqlite_shop: str) -> None:
    keyring = Keyring.generate("test.example/ledger")
    current = twin(keyring, ERASE_JAN, ERASE_PIET_LATE)
    stamp(sqlite_shop, current, now=STAMPED)
    with pytest.raises(RollbackError, match=r"^snapshot watermark \(erasure_reconciler_watermark"
                                            r"\): ledger has 1 entries but the trusted "
                                            r"checkpoint has 2: rolled back or truncated$"):
        run(sqlite_shop, twin(keyring, ERASE_JAN))
    with pytest.raises(RollbackError, match="history was rewritten"):
        run(sqlite_shop, twin(keyring, ERASE_JAN, ERASE_BY_NUMBER, ERASE_PIET_LATE))


def test_stamp_refuses_a_tampered_ledger_and_writes_nothing(
        sqlite_shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN)
    store = ledger.store
    assert isinstance(store, MemoryStore)
    leaf = store.leaves[0]
    store.leaves[0] = dataclasses.replace(leaf, data=bytes([leaf.data[0] ^ 1]) + leaf.data[1:])
    with pytest.raises(IntegrityError):
        stamp(sqlite_shop, ledger, now=STAMPED)
    engine = sa.create_engine(sqlite_shop)
    assert WATERMARK_TABLE not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_a_watermark_round_trips_as_plain_data() -> None:
    mark = Watermark(origin="o", tree_size=3, root_hash="ab" * 32, checkpoint="note",
                     stamped_at=STAMPED)
    assert mark.to_dict() == {"origin": "o", "tree_size": 3, "root_hash": "ab" * 32,
                              "stamped_at": "2026-11-10T03:00:00+00:00", "checkpoint": "note"}
