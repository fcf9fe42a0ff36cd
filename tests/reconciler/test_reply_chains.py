"""Rows of one table that reference each other (a reply to a note: a self-referencing foreign
key), deleted by ``apply`` and ``apply --batch-rows`` on SQLite, PostgreSQL and MariaDB.

PostgreSQL (and SQLite, when it enforces keys) checks such a key at the end of a statement;
MariaDB's InnoDB checks it row by row, so there the reconciler deletes the chain in rounds,
leaves first (reconciler.chains). Whatever the database: the same rows go, the report counts
the same, and no row is left pointing nowhere.

Every test here runs on the three databases (the ``db_url`` fixture); SQLite with its foreign
keys enforced where a test says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool, Pool

from reconciler.errors import DataMapError, SnapshotError
from tests.reconciler.conftest import ERASE_JAN, SHOP_MAP, SHOP_ROWS, dump, load, rows_of, shop_metadata
from tests.reconciler.test_batched_apply import data, fail_after, outcome, reload, run
from tests.reconciler.test_references import orphans

NOTES_MAP = SHOP_MAP.replace("""  newsletter:
""", """  notes:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
  newsletter:
""")

# Jan (customer 1) wrote two threads. In the second the ids run against the chain, so neither
# id order deletes it in one pass. Piet (customer 2) wrote one note.
JAN_THREADS = [
    {"id": 1, "customer_id": 1, "reply_to": None, "body": "question"},
    {"id": 2, "customer_id": 1, "reply_to": 1, "body": "follow-up"},
    {"id": 3, "customer_id": 1, "reply_to": 2, "body": "and another"},
    {"id": 4, "customer_id": 1, "reply_to": 3, "body": "still waiting"},
    {"id": 19, "customer_id": 1, "reply_to": None, "body": "complaint"},
    {"id": 18, "customer_id": 1, "reply_to": 19, "body": "more"},
    {"id": 17, "customer_id": 1, "reply_to": 18, "body": "even more"},
    {"id": 16, "customer_id": 1, "reply_to": 17, "body": "last"},
]
PIET_NOTE = {"id": 30, "customer_id": 2, "reply_to": None, "body": "piet's own"}


def notes_metadata(*, ondelete: str | None = None, nullable: bool = True) -> sa.MetaData:
    md = shop_metadata()
    sa.Table("notes", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
             sa.Column("reply_to", sa.Integer, sa.ForeignKey("notes.id", ondelete=ondelete),
                       nullable=nullable),
             sa.Column("body", sa.Text))
    return md


@pytest.fixture
def enforced_sqlite_keys() -> Iterator[None]:
    """SQLite enforces foreign keys only when asked, per connection, and the reconciler never
    asks: ask on every connection, to show that SQLite too checks a key at the end of the
    statement. (An enforced ON DELETE CASCADE would also run inside the statement and the
    statement's count leave its rows out; the reconciler's connections never enforce.)"""

    def on(dbapi_conn: Any, _record: Any) -> None:
        if type(dbapi_conn).__module__.startswith("sqlite3"):
            dbapi_conn.execute("PRAGMA foreign_keys = ON")

    sa.event.listen(Pool, "connect", on)
    yield
    sa.event.remove(Pool, "connect", on)


def notes_of(url: str) -> list[tuple[Any, ...]]:
    return rows_of(url, "SELECT id, customer_id, reply_to FROM notes ORDER BY id")


def deleted_notes(result: Any) -> int:
    [rows] = [r.rows for r in result.execution.results if (r.table, r.action) == ("notes", "delete")]
    return int(rows)


def same_by_every_apply(url: str, md: sa.MetaData, rows: dict[str, list[dict[str, Any]]],
                        ledger: Any, text: str = NOTES_MAP) -> tuple[Any, Any]:
    """A one-transaction apply, then batched applies of the same snapshot restored again: each
    ends in the same rows and reports the same counts. Returns: the first result and end state."""
    expected = run(url, ledger, text)
    end_state = data(url)
    for batch_rows in (1, 3):
        reload(url, md, rows)
        result = run(url, ledger, text, batch_rows=batch_rows)
        assert data(url) == end_state, batch_rows
        assert outcome(result) == outcome(expected), batch_rows
    assert orphans(url) == {}
    return expected, end_state


@pytest.mark.parametrize("ondelete", [None, "CASCADE"])
def test_a_reply_chain_of_an_erased_person_is_deleted_whole(
        db_url: str, make_ledger: Any, ondelete: str | None, request: pytest.FixtureRequest
        ) -> None:
    if ondelete is None:
        request.getfixturevalue("enforced_sqlite_keys")
    md = notes_metadata(ondelete=ondelete)
    rows = {**SHOP_ROWS, "notes": [*JAN_THREADS, PIET_NOTE]}
    load(db_url, md, rows)

    result, _ = same_by_every_apply(db_url, md, rows, make_ledger(ERASE_JAN))

    assert notes_of(db_url) == [(30, 2, None)]
    # every deleted row counted once, also where InnoDB's cascade could have taken it
    assert deleted_notes(result) == len(JAN_THREADS)
    [by_source] = [r.by_source for r in result.execution.results if r.table == "notes"]
    assert by_source == (("0", len(JAN_THREADS)),)  # ledger entry 0: Jan's request


PIET_REPLIES = [PIET_NOTE, {"id": 31, "customer_id": 2, "reply_to": 2, "body": "piet answers"}]


@pytest.mark.usefixtures("enforced_sqlite_keys")
def test_another_persons_reply_to_an_erased_note_is_refused_by_default(
        db_url: str, make_ledger: Any) -> None:
    load(db_url, notes_metadata(), {**SHOP_ROWS, "notes": [*JAN_THREADS, *PIET_REPLIES]})
    before = dump(db_url)
    for batch_rows in (None, 1):
        with pytest.raises(DataMapError) as excinfo:
            run(db_url, make_ledger(ERASE_JAN), NOTES_MAP, batch_rows=batch_rows)
        assert str(excinfo.value) == (
            "datamap.yaml:34: tables.notes.action: 1 row(s) of 'notes' reference 'notes' rows "
            "this run deletes (notes(reply_to) -> notes); add on_reference: {notes: nullify or "
            "anonymize} to tables.notes; nothing was changed")
        assert data(db_url) == {k: v for k, v in before.items() if k != "rc_journal"}


@pytest.mark.usefixtures("enforced_sqlite_keys")
def test_another_persons_reply_keeps_its_row_with_on_reference_nullify(
        db_url: str, make_ledger: Any) -> None:
    md = notes_metadata()
    rows = {**SHOP_ROWS, "notes": [*JAN_THREADS, *PIET_REPLIES]}
    load(db_url, md, rows)
    text = NOTES_MAP.replace("""  notes:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
""", """  notes:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
    on_reference: {notes: nullify}
""")

    result, _ = same_by_every_apply(db_url, md, rows, make_ledger(ERASE_JAN), text)

    assert notes_of(db_url) == [(30, 2, None), (31, 2, None)]  # the reply stays, unlinked
    changed = {(r.table, r.action): r.rows for r in result.execution.results if r.rows}
    assert changed[("notes", "nullify")] == 1
    assert changed[("notes", "delete")] == len(JAN_THREADS)


def test_anonymize_for_a_self_reference_is_refused_as_a_cycle(
        db_url: str, make_ledger: Any) -> None:
    # docs/datamap.md, on_reference: rows of one table would keep each other; use nullify
    load(db_url, notes_metadata(), {**SHOP_ROWS, "notes": [*JAN_THREADS, *PIET_REPLIES]})
    text = NOTES_MAP.replace("""    action: delete
  newsletter:""", """    action: delete
    on_reference: {notes: anonymize}
    columns: {body: redact}
  newsletter:""")
    with pytest.raises(DataMapError, match=r"tables\.notes\.on_reference\.notes: 'anonymize' "
                       r"choices form a cycle \(notes -> notes\); use nullify"):
        run(db_url, make_ledger(ERASE_JAN), text)


# -- rows that reference each other in a cycle ---------------------------------------------------

UPDATE_TRIGGER = {
    "sqlite": "CREATE TRIGGER notes_touched AFTER UPDATE ON notes BEGIN SELECT 1; END",
    "postgresql": "CREATE OR REPLACE FUNCTION notes_touched_fn() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN RETURN NEW; END $$; CREATE TRIGGER notes_touched AFTER UPDATE ON "
                  "notes FOR EACH ROW EXECUTE FUNCTION notes_touched_fn()",
    "mysql": "CREATE TRIGGER notes_touched AFTER UPDATE ON notes FOR EACH ROW SET @touched = 1",
}
TRIGGER_WARNING = ("trigger 'notes_touched' on 'notes' fires on UPDATE: what it writes is not in "
                   "the plan; the residual scan after apply covers it")


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def add_update_trigger(url: str) -> None:
    """A trigger on UPDATE of notes: one the reconciler itself never fires on PostgreSQL or
    SQLite, where it only deletes notes."""
    dialect = sa.make_url(url).get_dialect().name
    # PostgreSQL: the function, then the trigger
    execute(url, *(s + ("$$" if s.endswith("END ") else "")
                   for s in UPDATE_TRIGGER[dialect].split("$$; ")))


def make_cycles(url: str) -> None:
    """Jan's notes 5 and 6 reply to each other; his note 7 replies to itself."""
    add_update_trigger(url)
    execute(url, "UPDATE notes SET reply_to = 6 WHERE id = 5",
            "UPDATE notes SET reply_to = 7 WHERE id = 7")


CYCLE_ROWS = [{"id": 5, "customer_id": 1, "reply_to": None, "body": "a"},
              {"id": 6, "customer_id": 1, "reply_to": 5, "body": "b"},
              {"id": 7, "customer_id": 1, "reply_to": None, "body": "c"},
              {"id": 8, "customer_id": 1, "reply_to": 6, "body": "reply into the cycle"}]


@pytest.mark.usefixtures("enforced_sqlite_keys")
def test_a_cycle_is_deleted_after_its_references_are_set_to_null(
        db_url: str, make_ledger: Any) -> None:
    md = notes_metadata()
    rows = {**SHOP_ROWS, "notes": [*CYCLE_ROWS, PIET_NOTE]}
    load(db_url, md, rows)
    make_cycles(db_url)
    ledger = make_ledger(ERASE_JAN)

    expected = run(db_url, ledger, NOTES_MAP)
    end_state = data(db_url)
    reload(db_url, md, rows)
    make_cycles(db_url)
    batched = run(db_url, ledger, NOTES_MAP, batch_rows=1)

    assert data(db_url) == end_state
    assert outcome(batched) == outcome(expected)
    assert notes_of(db_url) == [(30, 2, None)]
    assert deleted_notes(expected) == len(CYCLE_ROWS)
    # only MariaDB needed the UPDATE, and only there is its trigger reported
    assert (TRIGGER_WARNING in expected.execution.warnings) == db_url.startswith("mysql")


def test_a_chain_without_a_cycle_needs_no_update(db_url: str, make_ledger: Any) -> None:
    load(db_url, notes_metadata(), {**SHOP_ROWS, "notes": [*JAN_THREADS, PIET_NOTE]})
    add_update_trigger(db_url)
    result = run(db_url, make_ledger(ERASE_JAN), NOTES_MAP)
    assert deleted_notes(result) == len(JAN_THREADS)
    assert TRIGGER_WARNING not in result.execution.warnings


def self_rooted(url: str, *, ondelete: str | None) -> None:
    """Every thread's first note replies to itself, so the key can be NOT NULL."""
    md = notes_metadata(ondelete=ondelete, nullable=False)
    threads = [{**r, "reply_to": r["reply_to"] or r["id"]} for r in [*JAN_THREADS, PIET_NOTE]]
    load(url, md, {**SHOP_ROWS, "notes": threads})


@pytest.mark.usefixtures("enforced_sqlite_keys")
def test_a_cycle_through_a_not_null_key_is_refused_on_mariadb(
        db_url: str, make_ledger: Any) -> None:
    self_rooted(db_url, ondelete=None)
    before = data(db_url)
    if not db_url.startswith("mysql"):  # checked at the end of the statement: deleted
        result = run(db_url, make_ledger(ERASE_JAN), NOTES_MAP)
        assert deleted_notes(result) == len(JAN_THREADS)
        assert notes_of(db_url) == [(30, 2, 30)]
        return
    # InnoDB cannot delete a note that replies to itself, nor set its reference to NULL
    for batch_rows in (None, 1):
        with pytest.raises(DataMapError) as excinfo:
            run(db_url, make_ledger(ERASE_JAN), NOTES_MAP, batch_rows=batch_rows)
        assert str(excinfo.value) == (
            "datamap.yaml:34: tables.notes.action: 2 row(s) of 'notes' this run deletes "
            "reference each other in a cycle (notes(reply_to) -> notes); this database checks "
            "the key row by row, so they can be deleted only after the reference is set to "
            "NULL, and the key's column(s) are NOT NULL; rolled back")
        if batch_rows is None:
            assert data(db_url) == before
    assert notes_of(db_url) == [(r["id"], 1, r["reply_to"] or r["id"]) for r in
                                sorted(JAN_THREADS, key=lambda r: r["id"])] + [(30, 2, 30)]


def test_a_cycle_through_a_cascading_not_null_key_is_deleted(
        db_url: str, make_ledger: Any) -> None:
    self_rooted(db_url, ondelete="CASCADE")
    result = run(db_url, make_ledger(ERASE_JAN), NOTES_MAP)
    assert deleted_notes(result) == len(JAN_THREADS)  # the cascade's rows counted too
    assert notes_of(db_url) == [(30, 2, 30)]
    assert orphans(db_url) == {}


@pytest.mark.usefixtures("enforced_sqlite_keys")
def test_an_interrupted_batched_apply_resumes_to_the_same_counts_and_warnings(
        db_url: str, make_ledger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    md = notes_metadata()
    rows = {**SHOP_ROWS, "notes": [*CYCLE_ROWS, *JAN_THREADS, PIET_NOTE]}
    load(db_url, md, rows)
    make_cycles(db_url)
    ledger = make_ledger(ERASE_JAN)
    expected = outcome(run(db_url, ledger, NOTES_MAP))
    end_state = data(db_url)
    for k in range(1, 40):  # the (k+1)-th batch fails, then the same apply resumes
        reload(db_url, md, rows)
        make_cycles(db_url)
        with monkeypatch.context() as patch:
            fail_after(patch, k)
            try:
                run(db_url, ledger, NOTES_MAP, batch_rows=4)
                break
            except SnapshotError:
                pass
        result = run(db_url, ledger, NOTES_MAP, batch_rows=4)
        assert data(db_url) == end_state, k
        assert outcome(result) == expected, k  # the UPDATE's trigger warning included
    else:
        pytest.fail("never finished")
    assert k > 2
