"""A foreign key that points back along a link: a cart that names its last item, while the
items are linked to the cart.

Statements find a row's owner through the map's links, so a table runs before the table its
link goes through ("children before parents"): the items go first, found through their cart,
then the cart. The erased person's cart still names one of those items when they go, so a
database that checks the key (PostgreSQL, MariaDB) would refuse the items' delete. The
reconciler sets such a back reference to NULL just before, in the rows that are deleted right
after (an ``unlink``, not a change of its own in any report), on every database alike.

What a user can rely on, on SQLite, PostgreSQL and MariaDB alike (the ``db_url`` fixture):

- the erased person's carts and items are gone, everybody else's rows are as they were, and
  no declared foreign key points nowhere;
- the counts are the same on every database (the same literal expected everywhere), and
  ``plan`` counts what ``apply`` does; a second ``apply`` changes nothing;
- a batched apply ends where a one-transaction apply ends, wherever it is interrupted;
- a back reference that cannot be set to NULL (NOT NULL) is refused before any change, in
  one line naming the table, the key and its column, unless the database resolves it itself
  (a deferrable key on PostgreSQL in one transaction; ``ON DELETE CASCADE`` where keys are
  checked at the end of a statement);
- another person's row that references an erased row is still the map's ``on_reference``
  choice (refused by default), as before.

The items also reference each other (an item that replaces another: a self-referencing key),
so on MariaDB their delete runs in rounds (:mod:`reconciler.chains`) after the unlink.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.errors import DataMapError
from reconciler.replay import ReplayResult, replay
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    SHOP_MAP,
    SHOP_ROWS,
    load,
    rows_of,
    shop_metadata,
)
from tests.reconciler.test_batched_apply import (
    data,
    fail_after,
    outcome,
    pending_runs,
    reload,
    run,
    staging_tables,
)
from tests.reconciler.test_references import orphans
from tests.reconciler.test_reply_chains import execute

MakeLedger = Callable[..., Ledger]

CART_MAP = SHOP_MAP.replace("""  newsletter:
""", """  carts:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
  cart_items:
    link: {parent: carts, on: {cart_id: id}}
    action: delete
  newsletter:
""")

BACK_KEY = "carts_last_item"

# Jan (customer 1, erased) has two carts; Piet (customer 2) one. Item 1001 replaces 1000.
CART_ROWS: dict[str, list[dict[str, Any]]] = {
    **SHOP_ROWS,
    "carts": [{"id": 100, "customer_id": 1, "last_item_id": 1001},
              {"id": 101, "customer_id": 1, "last_item_id": 1100},
              {"id": 200, "customer_id": 2, "last_item_id": 2000}],
    "cart_items": [
        {"id": 1000, "cart_id": 100, "order_id": 10, "replaces_id": None, "wish": "jan: for mum"},
        {"id": 1001, "cart_id": 100, "order_id": None, "replaces_id": 1000, "wish": "jan: pink"},
        {"id": 1100, "cart_id": 101, "order_id": None, "replaces_id": None, "wish": "jan: red"},
        {"id": 2000, "cart_id": 200, "order_id": 20, "replaces_id": None, "wish": "piet's"},
    ],
}

# What every database reports for ERASE_JAN (the shop's own tables as in the shop tests).
CART_COUNTS = {("cart_items", "delete"): 3, ("carts", "delete"): 2}


def cart_metadata(*, back_key: bool = True, nullable: bool = True,
                  ondelete: str | None = None) -> sa.MetaData:
    """carts(last_item_id) -> cart_items and cart_items(cart_id) -> carts: a cycle of keys;
    an item may name the order it went into and the item it replaces."""
    md = shop_metadata()
    last_item: list[Any] = [sa.ForeignKey("cart_items.id", use_alter=True, name=BACK_KEY,
                                          ondelete=ondelete)] if back_key else []
    sa.Table("carts", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
             sa.Column("last_item_id", sa.Integer, *last_item, nullable=nullable))
    sa.Table("cart_items", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("cart_id", sa.Integer, sa.ForeignKey("carts.id"), nullable=False),
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id")),
             sa.Column("replaces_id", sa.Integer, sa.ForeignKey("cart_items.id")),
             sa.Column("wish", sa.Text))
    return md


def load_carts(url: str, rows: dict[str, list[dict[str, Any]]] = CART_ROWS, *,
               nullable: bool = True, ondelete: str | None = None,
               deferrable: bool = False) -> None:
    """The shop with carts at ``url``. A server gets the back key once the rows are in (a
    NOT NULL one could not be filled before); SQLite declares it in the table, unenforced."""
    if url.startswith("sqlite"):
        load(url, cart_metadata(nullable=nullable, ondelete=ondelete), rows)
        return
    load(url, cart_metadata(back_key=False, nullable=nullable), rows)
    execute(url, f"ALTER TABLE carts ADD CONSTRAINT {BACK_KEY} FOREIGN KEY (last_item_id) "
                 "REFERENCES cart_items (id)"
                 + (f" ON DELETE {ondelete}" if ondelete else "")
                 + (" DEFERRABLE" if deferrable else ""))


def reload_carts(url: str, **kwargs: Any) -> None:
    """Drop every table and load the carts again: the same snapshot, restored once more."""
    with warnings.catch_warnings():
        # SQLite cannot sort the cycle of keys for DROP; dropping in any order is fine there
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        reload(url, sa.MetaData(), {})
    load_carts(url, **kwargs)


def plan(url: str, ledger: Ledger, text: str = CART_MAP) -> ReplayResult:
    return replay(url, DataMap.from_text(text), ledger, as_of=AS_OF, dry_run=True,
                  hash_key=HASH_KEY)


def cart_counts(result: ReplayResult) -> dict[tuple[str, str], int]:
    """Rows per (table, action) of the cart tables, as the report counts them."""
    counts: dict[tuple[str, str], int] = {}
    for r in result.execution.results:
        if r.table in ("carts", "cart_items"):
            counts[(r.table, r.action)] = counts.get((r.table, r.action), 0) + r.rows
    return counts


def others(url: str) -> list[tuple[Any, ...]]:
    """Piet's cart and items, every column."""
    return (rows_of(url, "SELECT * FROM carts WHERE customer_id <> 1 ORDER BY id")
            + rows_of(url, "SELECT * FROM cart_items WHERE cart_id = 200 ORDER BY id"))


def journal_rows(url: str) -> int:
    """Returns: the batched runs journaled in the snapshot (0 without a journal)."""
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("rc_journal"):
            return 0
    finally:
        engine.dispose()
    return len(pending_runs(url))


def jans(url: str) -> list[tuple[Any, ...]]:
    return (rows_of(url, "SELECT id FROM carts WHERE customer_id = 1")
            + rows_of(url, "SELECT id FROM cart_items WHERE id IN (1000, 1001, 1100)"))


# -- a nullable back reference: unlinked, then deleted --------------------------------------------


def test_the_erased_persons_carts_and_items_go_and_nobody_elses(
        db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url)
    ledger = make_ledger(ERASE_JAN)
    piet = others(db_url)

    planned = plan(db_url, ledger)
    result = run(db_url, ledger, CART_MAP)

    assert jans(db_url) == []
    assert others(db_url) == piet  # Piet's cart still names his last item
    assert orphans(db_url) == {}
    assert cart_counts(result) == CART_COUNTS  # the same on every database
    assert outcome(planned)[:3] == outcome(result)[:3]  # plan counts what apply does
    assert result.scan is not None
    assert result.scan.clean


def test_an_unlink_is_no_change_of_its_own_in_the_report(
        db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url)

    result = run(db_url, make_ledger(ERASE_JAN), CART_MAP)

    # only deletes for the carts: the NULL before their delete is neither "anonymized" nor
    # "reference nullified", and the rows are counted once
    assert {r.action for r in result.execution.results if r.table == "carts"} == {"delete"}
    assert result.execution.rows_changed == sum(
        r.rows for r in result.execution.results if r.action != "keep-shared")


def test_a_second_apply_changes_nothing(db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url)
    ledger = make_ledger(ERASE_JAN)
    run(db_url, ledger, CART_MAP)
    after = data(db_url)

    again = run(db_url, ledger, CART_MAP)

    assert data(db_url) == after
    assert again.execution.rows_changed == 0


def test_an_update_trigger_on_the_unlinked_table_is_warned_about(
        db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url)
    execute(db_url, *UPDATE_TRIGGER[sa.make_url(db_url).get_dialect().name])

    result = run(db_url, make_ledger(ERASE_JAN), CART_MAP)

    assert any(w.startswith("trigger 'carts_touched' on 'carts' fires on UPDATE")
               for w in result.execution.warnings)
    assert jans(db_url) == []


UPDATE_TRIGGER = {
    "sqlite": ["CREATE TABLE touched (n INTEGER)",
               "CREATE TRIGGER carts_touched AFTER UPDATE ON carts "
               "BEGIN INSERT INTO touched VALUES (1); END"],
    "postgresql": ["CREATE TABLE touched (n INTEGER)",
                   "CREATE FUNCTION touch() RETURNS trigger AS $$ BEGIN "
                   "INSERT INTO touched VALUES (1); RETURN NEW; END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER carts_touched AFTER UPDATE ON carts "
                   "FOR EACH ROW EXECUTE FUNCTION touch()"],
    "mysql": ["CREATE TABLE touched (n INTEGER)",
              "CREATE TRIGGER carts_touched AFTER UPDATE ON carts "
              "FOR EACH ROW INSERT INTO touched VALUES (1)"],
}


# -- another person's row: the map's on_reference, as before -------------------------------------

PIETS_CART_NAMES_JANS_ITEM = {
    **CART_ROWS,
    "carts": [*CART_ROWS["carts"][:2], {"id": 200, "customer_id": 2, "last_item_id": 1100}],
}


def test_another_persons_reference_to_an_erased_row_is_refused_by_default(
        db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url, PIETS_CART_NAMES_JANS_ITEM)
    before = data(db_url)

    with pytest.raises(DataMapError, match=(
            r"tables\.cart_items\.action: 1 row\(s\) of 'carts' reference 'cart_items' rows "
            r"this run deletes \(carts\(last_item_id\) -> cart_items\); add on_reference: "
            r"\{carts: nullify or anonymize\}")):
        run(db_url, make_ledger(ERASE_JAN), CART_MAP)

    assert data(db_url) == before


def test_another_persons_reference_is_nullified_when_the_map_says_so(
        db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url, PIETS_CART_NAMES_JANS_ITEM)
    text = CART_MAP.replace("""    link: {parent: carts, on: {cart_id: id}}
    action: delete
""", """    link: {parent: carts, on: {cart_id: id}}
    action: delete
    on_reference: {carts: nullify}
""")

    result = run(db_url, make_ledger(ERASE_JAN), text)

    assert jans(db_url) == []
    assert rows_of(db_url, "SELECT id, customer_id, last_item_id FROM carts") == [(200, 2, None)]
    assert cart_counts(result) == {**CART_COUNTS, ("carts", "nullify"): 1}
    assert orphans(db_url) == {}


# -- a NOT NULL back reference: refused before any change ------------------------------------------

NOT_NULL_REFUSAL = (
    "tables.carts.action: 2 row(s) of 'carts' this run deletes reference 'cart_items' rows it "
    "deletes before them (carts(last_item_id) -> cart_items, a key pointing back along the "
    "links); column 'last_item_id' is NOT NULL in this snapshot, so the reference cannot be "
    "set to NULL first; nothing was changed")


@pytest.mark.parametrize("batch_rows", [None, 1])
def test_a_not_null_back_reference_is_refused_at_plan_time(
        db_url: str, make_ledger: MakeLedger, batch_rows: int | None) -> None:
    load_carts(db_url, nullable=False)
    ledger = make_ledger(ERASE_JAN)
    before = data(db_url)

    with pytest.raises(DataMapError) as planned:
        plan(db_url, ledger)
    with pytest.raises(DataMapError) as applied:
        run(db_url, ledger, CART_MAP, batch_rows=batch_rows)

    for error in (planned.value, applied.value):
        message = str(error)
        assert message.endswith(NOT_NULL_REFUSAL)
        assert "\n" not in message
        assert error.exit_code == 2
        assert not any(value in message.lower() for value in ("jan", "1001", "1100", "pink"))
    assert data(db_url) == before
    assert staging_tables(db_url) == []
    assert journal_rows(db_url) == 0


def test_a_not_null_back_reference_no_erased_row_holds_is_no_problem(
        db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url, nullable=False)
    klaas = {"request_id": "DSR-4", "kind": "erasure",
             "identifiers": {"email": "klaas@example.nl"}}  # no cart

    run(db_url, make_ledger(klaas), CART_MAP)

    assert rows_of(db_url, "SELECT COUNT(*) FROM carts") == [(3,)]
    assert orphans(db_url) == {}


# -- keys the database resolves itself ---------------------------------------------------------------


def test_a_not_null_key_on_delete_cascade_is_left_to_the_database_where_it_can(
        db_url: str, make_ledger: MakeLedger) -> None:
    """PostgreSQL checks keys at the end of a statement: the items' delete takes the carts
    with it (counted all the same); SQLite never enforces them here. InnoDB checks row by
    row, and a cart the cascade deletes is still the cart of an item not deleted yet."""
    load_carts(db_url, nullable=False, ondelete="CASCADE")
    ledger = make_ledger(ERASE_JAN)
    before = data(db_url)

    if db_url.startswith("mysql"):
        with pytest.raises(DataMapError, match=(
                "column 'last_item_id' is NOT NULL in this snapshot, and this database checks "
                "keys row by row, so its ON DELETE CASCADE cannot delete them first; nothing "
                "was changed")):
            run(db_url, ledger, CART_MAP)
        assert data(db_url) == before
        return
    planned = plan(db_url, ledger)
    result = run(db_url, ledger, CART_MAP)
    assert jans(db_url) == []
    assert orphans(db_url) == {}
    assert cart_counts(result) == CART_COUNTS
    assert outcome(planned)[:3] == outcome(result)[:3]
    end_state = data(db_url)

    reload_carts(db_url, nullable=False, ondelete="CASCADE")
    batched = run(db_url, ledger, CART_MAP, batch_rows=1)
    assert data(db_url) == end_state
    assert outcome(batched) == outcome(result)


def test_a_deferrable_key_is_checked_at_commit_in_one_transaction(
        db_url: str, make_ledger: MakeLedger) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL has deferrable keys")
    load_carts(db_url, nullable=False, deferrable=True)  # INITIALLY IMMEDIATE
    ledger = make_ledger(ERASE_JAN)
    before = data(db_url)

    # a batched apply commits between the items' and the carts' delete
    with pytest.raises(DataMapError, match=(
            "column 'last_item_id' is NOT NULL in this snapshot, and the key is deferrable, "
            r"but a batched apply commits between the two deletes \(run apply without "
            r"--batch-rows\); nothing was changed")):
        run(db_url, ledger, CART_MAP, batch_rows=1)
    assert data(db_url) == before

    result = run(db_url, ledger, CART_MAP)
    assert jans(db_url) == []
    assert orphans(db_url) == {}
    assert cart_counts(result) == CART_COUNTS


# -- batched apply ------------------------------------------------------------------------------------


def test_a_batched_apply_ends_where_one_transaction_ends(
        db_url: str, make_ledger: MakeLedger) -> None:
    load_carts(db_url)
    ledger = make_ledger(ERASE_JAN)
    expected = run(db_url, ledger, CART_MAP)
    end_state = data(db_url)
    reload_carts(db_url)

    result = run(db_url, ledger, CART_MAP, batch_rows=1)

    assert data(db_url) == end_state
    assert outcome(result) == outcome(expected)
    assert orphans(db_url) == {}


def test_an_interrupted_batched_apply_converges_wherever_it_stops(
        db_url: str, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    load_carts(db_url)
    ledger = make_ledger(ERASE_JAN)
    expected = run(db_url, ledger, CART_MAP, batch_rows=1)
    end_state = data(db_url)
    info = expected.execution.batches
    assert info is not None

    for k in range(info.batches):
        reload_carts(db_url)
        with monkeypatch.context() as patch:
            fail_after(patch, k)
            with pytest.raises(Exception, match="run the same apply again to resume"):
                run(db_url, ledger, CART_MAP, batch_rows=1)
        assert orphans(db_url) == {}, k  # every committed batch leaves the keys whole
        result = run(db_url, ledger, CART_MAP, batch_rows=2)
        assert data(db_url) == end_state, k
        assert outcome(result) == outcome(expected), k
        assert pending_runs(db_url)[-1][1] == "finished"
