"""Replay on real SQLite, PostgreSQL and MariaDB: what apply changes, what it must not touch.

Every test here runs once per database (the ``db_url`` fixture).
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.errors import DataMapError, SnapshotError
from reconciler.replay import ReplayResult, replay, verify
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    OPTOUT_KLAAS,
    SHOP_MAP,
    SHOP_ROWS,
    dump,
    load,
    rows_of,
    shop_metadata,
)

MakeLedger = Callable[..., Ledger]
NO_RETENTION = SHOP_MAP.split("retention:")[0] + "opt_outs:" + SHOP_MAP.split("opt_outs:")[1]


def run(url: str, ledger: Ledger, text: str = SHOP_MAP, *, dry_run: bool = False,
        as_of: dt.date = AS_OF) -> ReplayResult:
    return replay(url, DataMap.from_text(text), ledger, as_of=as_of, dry_run=dry_run,
                  hash_key=HASH_KEY)


def customer(url: str, id_: int) -> tuple[Any, ...]:
    return rows_of(url, f"SELECT email, phone, cust_no, name, birth_date FROM customers "
                        f"WHERE id = {id_}")[0]


def changed(result: ReplayResult) -> dict[tuple[str, str, str], int]:
    return {(r.table, r.action, r.group): r.rows for r in result.execution.results if r.rows}


def test_apply_erases_a_requested_person_in_every_mapped_table(
        shop: str, make_ledger: MakeLedger) -> None:
    result = run(shop, make_ledger(ERASE_JAN), NO_RETENTION)

    # the snapshot spells Jan " Jan@Example.NL " and "JAN@example.nl"; the ledger normalises
    email, phone, cust_no, name, birth = customer(shop, 1)
    assert (email, phone, name, str(birth)) == ("erased-1@erased.invalid", None, "Erased",
                                               "1980-01-01")
    assert cust_no.startswith("h:")
    assert rows_of(shop, "SELECT shipping_address FROM orders WHERE customer_id = 1") == [
        ("erased",), ("erased",)]
    assert rows_of(shop, "SELECT COUNT(*) FROM order_lines WHERE order_id = 10") == [(0,)]
    assert rows_of(shop, "SELECT address FROM newsletter ORDER BY address") == [
        ("klaas@example.nl",), ("piet@example.nl",)]
    assert changed(result) == {
        ("order_lines", "delete", "erase"): 2,
        ("invoices", "delete", "erase"): 1,
        ("invoices", "retain", "erase"): 1,
        ("newsletter", "delete", "erase"): 1,
        ("orders", "anonymize", "erase"): 2,
        ("customers", "anonymize", "erase"): 1,
    }
    by_entry = {r.table: r.by_source for r in result.execution.results if r.by_source}
    assert by_entry["orders"] == (("0", 2),)


def test_other_people_are_untouched(shop: str, make_ledger: MakeLedger) -> None:
    before = dump(shop)
    run(shop, make_ledger(ERASE_JAN), NO_RETENTION)
    after = dump(shop)
    for table in ("customers", "orders", "invoices"):
        assert [r for r in after[table] if 2 in r[:2]] == [r for r in before[table] if 2 in r[:2]]
    assert after["complaints"] == before["complaints"]


def test_plan_counts_what_apply_changes_and_changes_nothing(
        shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN, OPTOUT_KLAAS)
    before = dump(shop)
    planned = run(shop, ledger, dry_run=True)
    assert dump(shop) == before
    applied = run(shop, ledger)
    assert planned.execution.dry_run
    assert changed(planned) == changed(applied)
    assert applied.execution.rows_changed == 12


def test_a_second_apply_changes_nothing(shop: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_JAN, OPTOUT_KLAAS)
    first = run(shop, ledger)
    after_first = dump(shop)
    second = run(shop, ledger)
    assert first.execution.rows_changed > 0
    assert second.execution.rows_changed == 0
    assert dump(shop) == after_first


def test_retention_erases_inactive_customers_as_of_the_given_day(
        shop: str, make_ledger: MakeLedger) -> None:
    # OLD was last active 2023-01-01: more than 2 years before 2026-11-25, not before 2024-12-31
    run(shop, make_ledger(), as_of=dt.date(2024, 12, 31))
    assert customer(shop, 3)[0] == "old@example.nl"
    result = run(shop, make_ledger())
    assert customer(shop, 3)[0] == "erased-3@erased.invalid"
    assert result.execution.subjects == (("retention:inactive-2y", 1),)
    assert customer(shop, 2)[0] == "piet@example.nl"


def test_retained_invoices_are_masked_in_their_period_and_deleted_after_it(
        shop: str, make_ledger: MakeLedger) -> None:
    run(shop, make_ledger(ERASE_JAN), NO_RETENTION)
    rows = rows_of(shop, "SELECT id, invoice_date, billing_name, billing_iban, amount FROM "
                         "invoices WHERE customer_id = 1")
    assert [(i, str(d), n, b, float(a)) for i, d, n, b, a in rows] == [
        (101, "2025-03-01", "erased", None, 6.0)]


def test_an_objection_sets_the_opt_out_and_deletes_subscriptions(
        shop: str, make_ledger: MakeLedger) -> None:
    result = run(shop, make_ledger(OPTOUT_KLAAS), NO_RETENTION)
    assert rows_of(shop, "SELECT newsletter_opt_in FROM customers WHERE id = 4") == [(False,)]
    assert rows_of(shop, "SELECT COUNT(*) FROM newsletter WHERE address LIKE 'klaas%'") == [(0,)]
    assert customer(shop, 4)[0] == "klaas@example.nl"  # an objection is not an erasure
    assert changed(result) == {("newsletter", "delete", "optout:marketing"): 1,
                               ("customers", "opt-out", "optout:marketing"): 1}


def test_phone_numbers_match_in_any_spelling(shop: str, make_ledger: MakeLedger) -> None:
    run(shop, make_ledger({"request_id": "DSR-9", "kind": "erasure",
                           "identifiers": {"phone": "+31 416 853 988"}}), NO_RETENTION)
    assert customer(shop, 1)[0] == "erased-1@erased.invalid"


def test_opaque_identifiers_match_case_exactly(shop: str, make_ledger: MakeLedger) -> None:
    # customer numbers are case-sensitive keys; MariaDB's collation would say 'c-1002' = 'C-1002'
    run(shop, make_ledger({"request_id": "DSR-9", "kind": "erasure",
                           "identifiers": {"customer_number": "c-1002"}}), NO_RETENTION)
    assert customer(shop, 2)[0] == "piet@example.nl"
    run(shop, make_ledger({"request_id": "DSR-10", "kind": "erasure",
                           "identifiers": {"customer_number": "C-1002"}}), NO_RETENTION)
    assert customer(shop, 2)[0] == "erased-2@erased.invalid"


def test_non_ascii_identifiers_match(db_url: str, make_ledger: MakeLedger) -> None:
    rows = {**SHOP_ROWS, "customers": [
        {**SHOP_ROWS["customers"][0], "email": " JÜRGEN@Bücher.DE "}, *SHOP_ROWS["customers"][1:]]}
    load(db_url, shop_metadata(), rows)
    run(db_url, make_ledger({"request_id": "DSR-7", "kind": "erasure",
                             "identifiers": {"email": "jürgen@bücher.de"}}), NO_RETENTION)
    assert customer(db_url, 1)[0] == "erased-1@erased.invalid"


def test_mapped_tables_missing_from_the_snapshot_are_reported_not_fatal(
        db_url: str, make_ledger: MakeLedger) -> None:
    md = shop_metadata()
    md.remove(md.tables["newsletter"])
    load(db_url, md, {k: v for k, v in SHOP_ROWS.items() if k != "newsletter"})
    result = run(db_url, make_ledger(ERASE_JAN), NO_RETENTION.replace(
        "      shipping_address: redact", "      shipping_address: redact\n      fax: null"))
    assert result.execution.drift == (
        "tables.newsletter: table 'newsletter' not in this snapshot",
        "tables.orders.columns.fax: column 'fax' not in this snapshot",
    )
    assert customer(db_url, 1)[0] == "erased-1@erased.invalid"


def test_an_opt_out_column_missing_from_the_snapshot_is_reported_not_skipped_silently(
        shop: str, make_ledger: MakeLedger) -> None:
    text = NO_RETENTION.replace("set: {newsletter_opt_in: false}",
                                "set: {newsletter_opt_in: false, sms_consent: false}")
    note = "opt_outs[0].set.sms_consent: column 'sms_consent' not in this snapshot"
    result = run(shop, make_ledger(OPTOUT_KLAAS), text)
    assert note in result.execution.drift
    # the column the snapshot has is still reset
    assert rows_of(shop, "SELECT newsletter_opt_in FROM customers WHERE id = 4") == [(False,)]
    assert note in verify(shop, DataMap.from_text(text), make_ledger(OPTOUT_KLAAS)).drift


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param("on: {customer_id: id}}\n    action: anonymize",
                     "on: {customer_id: idd}}\n    action: anonymize",
                     "datamap.yaml:18: tables.orders.link.on.customer_id: column customers.idd "
                     "is not in this snapshot, so the rows of erased people cannot be found",
                     id="parent-column"),
        pytest.param("on: {order_id: id}}", "on: {order_no: id}}",
                     "datamap.yaml:23: tables.order_lines.link.on.order_no: column "
                     "order_lines.order_no is not in this snapshot, so the rows of erased "
                     "people cannot be found", id="child-column"),
        pytest.param("match: {email: address}", "match: {email: adres}",
                     "datamap.yaml:33: tables.newsletter.match.email: column newsletter.adres "
                     "is not in this snapshot, so the rows of erased people cannot be found",
                     id="match-column"),
    ],
)
def test_a_missing_link_or_match_column_of_a_present_table_is_an_error(
        shop: str, make_ledger: MakeLedger, old: str, new: str, message: str) -> None:
    # Not drift: the table is there, so the erased people's rows are too, and skipping the
    # table would keep them all.
    assert old in NO_RETENTION
    before = dump(shop)
    with pytest.raises(DataMapError) as excinfo:
        run(shop, make_ledger(ERASE_JAN), NO_RETENTION.replace(old, new), dry_run=True)
    assert str(excinfo.value) == message
    assert dump(shop) == before


def test_a_missing_parent_table_skips_its_children_as_drift(
        db_url: str, make_ledger: MakeLedger) -> None:
    md = shop_metadata()
    gone = ("order_lines", "invoices", "orders")
    for name in gone:
        md.remove(md.tables[name])
    load(db_url, md, {k: v for k, v in SHOP_ROWS.items() if k not in gone})
    result = run(db_url, make_ledger(ERASE_JAN), NO_RETENTION, dry_run=True)
    assert result.execution.drift == (
        "tables.invoices: table 'invoices' not in this snapshot",
        "tables.order_lines: table 'order_lines' not in this snapshot",
        "tables.orders: table 'orders' not in this snapshot",
    )


def test_plan_counts_a_row_an_erasure_and_an_objection_both_delete_once(
        shop: str, make_ledger: MakeLedger) -> None:
    # Jan's erasure deletes his newsletter row first; his objection then finds nothing there.
    optout_jan = {"request_id": "OPT-2", "kind": "objection", "purpose": "marketing",
                  "identifiers": {"email": "jan@example.nl"}}
    planned = run(shop, make_ledger(ERASE_JAN, optout_jan), NO_RETENTION, dry_run=True)
    applied = run(shop, make_ledger(ERASE_JAN, optout_jan), NO_RETENTION)

    def newsletter(result: ReplayResult) -> list[tuple[str, str, int, tuple[tuple[str, int], ...]]]:
        return [(r.action, r.group, r.rows, r.by_source) for r in result.execution.results
                if r.table == "newsletter"]

    assert newsletter(planned) == newsletter(applied) == [
        ("delete", "erase", 1, (("0", 1),)), ("delete", "optout:marketing", 0, ())]
    assert planned.execution.rows_changed == applied.execution.rows_changed


def test_a_missing_subject_table_or_key_is_an_error(db_url: str, make_ledger: MakeLedger) -> None:
    md = shop_metadata()
    load(db_url, sa.MetaData(), {})
    md.tables["complaints"].to_metadata(empty := sa.MetaData())
    load(db_url, empty, {})
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_JAN))
    assert str(excinfo.value) == ("datamap.yaml:3: subject.table: table 'customers' is not in "
                                  "this snapshot")
    load(db_url, md, SHOP_ROWS)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_JAN), SHOP_MAP.replace("key: id", "key: customer_id"))
    assert str(excinfo.value) == ("datamap.yaml:4: subject.key: column 'customer_id' is not in "
                                  "table 'customers' of this snapshot")


def test_a_strategy_that_breaks_a_constraint_is_refused_at_plan_time(
        shop: str, make_ledger: MakeLedger) -> None:
    before = dump(shop)
    with pytest.raises(DataMapError) as excinfo:
        run(shop, make_ledger(ERASE_JAN), SHOP_MAP.replace('name: {fixed: "Erased"}', "name: null"))
    assert str(excinfo.value) == ("datamap.yaml:14: subject.columns.name: strategy 'null' but the "
                                  "column is NOT NULL in this snapshot")
    assert dump(shop) == before


DELETE_ORDERS = NO_RETENTION.replace("""    action: anonymize
    columns:
      shipping_address: redact""", "    action: delete")


def test_on_delete_cascade_into_retained_rows_is_refused(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, shop_metadata(invoice_cascade=True), SHOP_ROWS)
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_JAN), DELETE_ORDERS)
    assert str(excinfo.value) == (
        "datamap.yaml:24: tables.invoices: foreign key invoices(order_id) -> orders ON DELETE "
        "CASCADE would delete kept rows when 'orders' rows are deleted; refusing")
    assert dump(db_url) == before


def test_unmapped_rows_that_reference_deleted_rows_stop_the_run(
        db_url: str, make_ledger: MakeLedger) -> None:
    md = shop_metadata()
    sa.Table("payments", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id")))
    load(db_url, md, {**SHOP_ROWS, "payments": [{"id": 1, "order_id": 11}]})
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_JAN), DELETE_ORDERS)
    assert str(excinfo.value) == (
        "datamap.yaml:19: tables.orders.action: 1 row(s) of 'payments' reference 'orders' rows "
        "this run deletes (payments(order_id) -> orders); add on_reference: {payments: nullify "
        "or anonymize} to tables.orders, or map 'payments' (link it to 'orders'); nothing was "
        "changed")
    assert dump(db_url) == before


def test_a_failing_statement_rolls_everything_back(db_url: str, make_ledger: MakeLedger) -> None:
    md = shop_metadata()
    md.tables["invoices"].append_constraint(
        sa.CheckConstraint("billing_name <> 'erased'", name="no_erased_names"))
    load(db_url, md, SHOP_ROWS)
    before = dump(db_url)
    with pytest.raises(SnapshotError) as excinfo:
        run(db_url, make_ledger(ERASE_JAN), NO_RETENTION)
    # a CHECK violation is an IntegrityError on SQLite and PostgreSQL, OperationalError on MariaDB
    assert re.search(r": a statement failed \(retain invoices\): (Integrity|Operational)Error; "
                     r"rolled back, nothing was changed$", str(excinfo.value))
    assert "jan" not in str(excinfo.value).lower()
    assert dump(db_url) == before


def test_map_order_does_not_matter(shop: str, make_ledger: MakeLedger) -> None:
    lines = NO_RETENTION.split("\n")
    start = lines.index("  order_lines:")
    moved = lines[start:start + 3]
    del lines[start:start + 3]
    lines[lines.index("tables:") + 1:lines.index("tables:") + 1] = moved  # child before parent
    result = run(shop, make_ledger(ERASE_JAN), "\n".join(lines))
    assert result.execution.drift == ()
    assert rows_of(shop, "SELECT COUNT(*) FROM order_lines WHERE order_id = 10") == [(0,)]


def test_composite_subject_keys_and_integer_identifier_columns(
        db_url: str, make_ledger: MakeLedger) -> None:
    md = sa.MetaData()
    sa.Table("members", md,
             sa.Column("club", sa.String(10), primary_key=True),
             sa.Column("no", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("card", sa.Integer),
             sa.Column("email", sa.String(100)))
    sa.Table("visits", md,
             sa.Column("club", sa.String(10)), sa.Column("member_no", sa.Integer),
             sa.Column("note", sa.String(100)),
             sa.ForeignKeyConstraint(["club", "member_no"], ["members.club", "members.no"]))
    load(db_url, md, {
        "members": [{"club": "A", "no": 1, "card": 4711, "email": "x@a.nl"},
                    {"club": "B", "no": 1, "card": 4712, "email": "y@b.nl"}],
        "visits": [{"club": "A", "member_no": 1, "note": "n1"},
                   {"club": "B", "member_no": 1, "note": "n2"}]})
    text = """\
version: 1
subject:
  table: members
  key: [club, no]
  identifiers: {loyalty_card: card}
  action: delete
tables:
  visits:
    link: {parent: members, on: {club: club, member_no: no}}
    action: delete
"""
    result = run(db_url, make_ledger({"request_id": "DSR-3", "kind": "erasure",
                                      "identifiers": {"loyalty_card": "4711"}}), text)
    assert rows_of(db_url, "SELECT club FROM members") == [("B",)]
    assert rows_of(db_url, "SELECT note FROM visits") == [("n2",)]
    assert result.execution.rows_changed == 2


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  invoices:\n", "  invoice:\n",
         "tables.invoice: table 'invoice' is not in this snapshot; did you mean 'invoices'? "),
        ("      shipping_address: redact", "      shiping_address: redact",
         "tables.orders.columns.shiping_address: column 'shiping_address' is not in this "
         "snapshot; did you mean 'shipping_address'? "),
        ("set: {newsletter_opt_in: false}", "set: {newsleter_opt_in: false}",
         "opt_outs[0].set.newsleter_opt_in: column 'newsleter_opt_in' is not in this "
         "snapshot; did you mean 'newsletter_opt_in'? "),
    ],
    ids=["table", "column", "opt-out-column"],
)
def test_a_misspelt_name_is_refused_not_taken_for_schema_drift(
        shop: str, make_ledger: MakeLedger, old: str, new: str, message: str) -> None:
    # a missing table is usually an older backup; a missing name next to an unmapped one
    # that is almost the same is usually a typo, and would leave personal data behind
    before = dump(shop)
    assert old in NO_RETENTION
    with pytest.raises(DataMapError, match=re.escape(message)):
        run(shop, make_ledger(ERASE_JAN), NO_RETENTION.replace(old, new))
    assert dump(shop) == before


class GcWatch:
    """A progress observer that notes whether the cyclic collector runs during each step."""

    def __init__(self) -> None:
        self.enabled: list[bool] = []

    def phase(self, name: str, total: int | None) -> None:
        self.enabled.append(gc.isenabled())

    def step(self, label: str) -> None:
        self.enabled.append(gc.isenabled())

    def done(self) -> None:
        pass


@pytest.mark.parametrize("was_enabled", [True, False])
def test_the_cyclic_collector_is_held_back_during_a_run_and_restored_after(
        shop: str, make_ledger: MakeLedger, was_enabled: bool) -> None:
    ledger = make_ledger(ERASE_JAN)
    watch = GcWatch()
    (gc.enable if was_enabled else gc.disable)()
    try:
        replay(shop, DataMap.from_text(SHOP_MAP), ledger, as_of=AS_OF, dry_run=False,
               hash_key=HASH_KEY, progress=watch)
        after = gc.isenabled()
    finally:
        gc.enable()
    assert watch.enabled  # apply and the residual scan reported steps
    assert not any(watch.enabled)
    assert after is was_enabled
