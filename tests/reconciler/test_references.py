"""Rows of other people that reference an erased person's rows, and rows shared between a
person and others: decided per reference by the data map, found at plan time, never
half-applied, and never leaving an orphan in any declared foreign key, enforced or not.

Every test here runs on SQLite, PostgreSQL and MariaDB (the ``db_url`` fixture) unless it
says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.errors import DataMapError
from reconciler.planner import make_plan
from reconciler.references import expand
from reconciler.replay import ReplayResult, replay
from reconciler.schema import reflect
from tests.reconciler.conftest import AS_OF, HASH_KEY, dump, load, rows_of
from tests.reconciler.test_cli import invoke, make_files

MakeLedger = Callable[..., Ledger]
ERASE_B = {"request_id": "DSR-B", "kind": "erasure", "identifiers": {"email": "b@example.nl"}}


def run(url: str, ledger: Ledger, text: str, *, dry_run: bool = False) -> ReplayResult:
    return replay(url, DataMap.from_text(text), ledger, as_of=AS_OF, dry_run=dry_run,
                  hash_key=HASH_KEY)


def changed(result: ReplayResult) -> dict[tuple[str, str], int]:
    return {(r.table, r.action): r.rows for r in result.execution.results if r.rows}


def orphans(url: str) -> dict[str, int]:
    """Rows whose declared foreign key (enforced or not) points at no row, per foreign key."""
    engine = sa.create_engine(url, poolclass=NullPool)
    found: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            for table in insp.get_table_names():
                for fk in insp.get_foreign_keys(table):
                    cols, refs = fk["constrained_columns"], fk["referred_columns"]
                    present = " AND ".join(f"c.{c} IS NOT NULL" for c in cols)
                    on = " AND ".join(f"p.{r} = c.{c}" for c, r in zip(cols, refs, strict=True))
                    count = conn.execute(sa.text(
                        f"SELECT COUNT(*) FROM {table} c WHERE {present} AND NOT EXISTS "
                        f"(SELECT 1 FROM {fk['referred_table']} p WHERE {on})")).scalar_one()
                    if count:
                        found[f"{table}({', '.join(cols)})"] = count
    finally:
        engine.dispose()
    return found


# -- a payment by customer A on a rental of customer B ------------------------------------------


def rental_metadata(*, payment_ref_nullable: bool = True) -> sa.MetaData:
    """customers <- rentals (composite key store_id, id) <- payments; payments -> customers."""
    md = sa.MetaData()
    sa.Table("customers", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120)),
             sa.Column("name", sa.String(80), nullable=False))
    sa.Table("rentals", md,
             sa.Column("store_id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id")),
             sa.Column("film", sa.String(80)))
    sa.Table("payments", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
             sa.Column("store_id", sa.Integer, nullable=payment_ref_nullable),
             sa.Column("rental_id", sa.Integer, nullable=payment_ref_nullable),
             sa.Column("amount", sa.Integer),
             sa.ForeignKeyConstraint(["store_id", "rental_id"], ["rentals.store_id", "rentals.id"]))
    return md


RENTAL_ROWS: dict[str, list[dict[str, Any]]] = {
    "customers": [{"id": 1, "email": "a@example.nl", "name": "Anna"},
                  {"id": 2, "email": "b@example.nl", "name": "Bert"}],
    "rentals": [{"store_id": 1, "id": 10, "customer_id": 2, "film": "Heat"},
                {"store_id": 1, "id": 11, "customer_id": 2, "film": "Alien"},
                {"store_id": 1, "id": 20, "customer_id": 1, "film": "Up"}],
    "payments": [
        {"id": 100, "customer_id": 1, "store_id": 1, "rental_id": 10, "amount": 5},  # A pays B's
        {"id": 101, "customer_id": 2, "store_id": 1, "rental_id": 11, "amount": 6},  # B's own
        {"id": 102, "customer_id": 1, "store_id": 1, "rental_id": 20, "amount": 7}],
}

RENTAL_MAP = """\
version: 1
subject:
  table: customers
  key: id
  identifiers: {email: email}
  action: anonymize
  columns: {email: redact, name: {fixed: Erased}}
tables:
  payments:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
  rentals:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
"""


def test_by_default_another_persons_reference_refuses_the_run(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, rental_metadata(), RENTAL_ROWS)
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_B), RENTAL_MAP, dry_run=True)
    assert str(excinfo.value) == (
        "datamap.yaml:14: tables.rentals.action: 1 row(s) of 'payments' reference 'rentals' rows "
        "this run deletes (payments(store_id, rental_id) -> rentals); add on_reference: "
        "{payments: nullify or anonymize} to tables.rentals; nothing was changed")
    assert dump(db_url) == before


def test_rows_deleted_through_the_very_foreign_key_never_block_their_parents_delete(
        db_url: str, make_ledger: MakeLedger) -> None:
    # payments belong to the rental they pay for: A's payment on B's rental goes with it
    load(db_url, rental_metadata(), RENTAL_ROWS)
    result = run(db_url, make_ledger(ERASE_B), RENTAL_MAP.replace(
        "payments:\n    link: {parent: customers, on: {customer_id: id}}",
        "payments:\n    link: {parent: rentals, on: {store_id: store_id, rental_id: id}}"))
    assert changed(result) == {("payments", "delete"): 2, ("rentals", "delete"): 2,
                               ("customers", "anonymize"): 1}
    assert rows_of(db_url, "SELECT id FROM payments") == [(102,)]
    assert orphans(db_url) == {}


def test_nullify_clears_the_other_persons_reference_and_says_so(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, rental_metadata(), RENTAL_ROWS)
    text = RENTAL_MAP + "    on_reference: {payments: nullify}\n"
    ledger = make_ledger(ERASE_B)
    planned = run(db_url, ledger, text, dry_run=True)
    applied = run(db_url, ledger, text)

    assert changed(planned) == changed(applied) == {
        ("payments", "delete"): 1, ("payments", "nullify"): 1, ("rentals", "delete"): 2,
        ("customers", "anonymize"): 1}
    # A's payment stays, without its reference to B's rental; B's own payment is gone
    assert rows_of(db_url, "SELECT id, customer_id, store_id, rental_id FROM payments "
                           "ORDER BY id") == [(100, 1, None, None), (102, 1, 1, 20)]
    assert rows_of(db_url, "SELECT id FROM rentals") == [(20,)]
    nullified = next(r for r in applied.execution.results if r.action == "nullify")
    assert (nullified.path, nullified.by_source) == ("tables.rentals.on_reference.payments",
                                                     (("0", 1),))
    assert orphans(db_url) == {}
    assert run(db_url, ledger, text).execution.rows_changed == 0


def test_nullify_is_refused_at_plan_time_for_a_not_null_reference(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, rental_metadata(payment_ref_nullable=False), RENTAL_ROWS)
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_B), RENTAL_MAP + "    on_reference: {payments: nullify}\n")
    assert str(excinfo.value) == (
        "datamap.yaml:15: tables.rentals.on_reference.payments: cannot nullify "
        "payments(store_id, rental_id) -> rentals: column 'store_id' is NOT NULL in this snapshot")
    assert dump(db_url) == before


def test_anonymize_keeps_a_referenced_row_masked_instead_of_deleting_it(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, rental_metadata(), RENTAL_ROWS)
    ledger = make_ledger(ERASE_B)
    text = RENTAL_MAP + "    on_reference: {payments: anonymize}\n    columns: {film: redact}\n"
    result = run(db_url, ledger, text)

    assert changed(result) == {("payments", "delete"): 1, ("rentals", "delete"): 1,
                               ("rentals", "keep-referenced"): 1, ("customers", "anonymize"): 1}
    assert rows_of(db_url, "SELECT id, customer_id, film FROM rentals ORDER BY id") == [
        (10, 2, "erased"), (20, 1, "Up")]
    assert rows_of(db_url, "SELECT id FROM payments ORDER BY id") == [(100,), (102,)]
    assert orphans(db_url) == {}
    assert run(db_url, ledger, text).execution.rows_changed == 0


def test_a_kept_row_whose_own_parent_is_deleted_needs_a_choice_too(
        db_url: str, make_ledger: MakeLedger) -> None:
    # The subject is deleted: the rental kept for A's payment would point at a deleted customer.
    load(db_url, rental_metadata(), RENTAL_ROWS)
    text = RENTAL_MAP.replace("""  action: anonymize
  columns: {email: redact, name: {fixed: Erased}}
""", "  action: delete\n") + "    on_reference: {payments: anonymize}\n    columns: {film: redact}\n"
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_B), text)
    assert str(excinfo.value) == (
        "datamap.yaml:6: subject.action: 1 row(s) of 'rentals' reference 'customers' rows this "
        "run deletes (rentals(customer_id) -> customers); add on_reference: {rentals: nullify "
        "or anonymize} to subject; nothing was changed")
    assert dump(db_url) == before

    fixed = text.replace("  action: delete\ntables:",
                         "  action: delete\n  on_reference: {rentals: nullify}\ntables:")
    result = run(db_url, make_ledger(ERASE_B), fixed)
    assert changed(result) == {("payments", "delete"): 1, ("rentals", "delete"): 1,
                               ("rentals", "keep-referenced"): 1, ("rentals", "nullify"): 1,
                               ("customers", "delete"): 1}
    assert rows_of(db_url, "SELECT id, customer_id, film FROM rentals ORDER BY id") == [
        (10, None, "erased"), (20, 1, "Up")]
    assert orphans(db_url) == {}


def test_anonymize_choices_that_keep_each_other_are_refused() -> None:
    # a self-reference (a customer referred by another) cannot keep rows for itself
    md = sa.MetaData()
    sa.Table("customers", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("email", sa.String(120)),
             sa.Column("referred_by", sa.Integer, sa.ForeignKey("customers.id")))
    url = "sqlite://"
    engine = sa.create_engine(url)
    md.create_all(engine)
    data_map = DataMap.from_text("""\
version: 1
subject:
  table: customers
  key: id
  identifiers: {email: email}
  action: delete
  on_reference: {customers: anonymize}
  columns: {email: redact}
""")
    with engine.connect() as conn:
        schema = reflect(conn)
    plan = make_plan([], data_map, as_of=AS_OF)
    with pytest.raises(DataMapError) as excinfo:
        expand(plan.ops, data_map, schema)
    assert str(excinfo.value) == (
        "datamap.yaml:7: subject.on_reference.customers: 'anonymize' choices form a cycle "
        "(customers -> customers); use nullify for one of them")


# -- an address shared by a customer and a shop -------------------------------------------------


def address_metadata() -> sa.MetaData:
    """addresses (composite key) <- customers, addresses <- shops."""
    md = sa.MetaData()
    sa.Table("addresses", md,
             sa.Column("country", sa.String(2), primary_key=True),
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("street", sa.String(80)))
    sa.Table("customers", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120)),
             sa.Column("addr_country", sa.String(2)), sa.Column("addr_id", sa.Integer),
             sa.ForeignKeyConstraint(["addr_country", "addr_id"],
                                     ["addresses.country", "addresses.id"]))
    sa.Table("shops", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("addr_country", sa.String(2)), sa.Column("addr_id", sa.Integer),
             sa.ForeignKeyConstraint(["addr_country", "addr_id"],
                                     ["addresses.country", "addresses.id"]))
    return md


ADDRESS_ROWS: dict[str, list[dict[str, Any]]] = {
    "addresses": [{"country": "NL", "id": n, "street": s} for n, s in
                  [(1, "Dorpsstraat 1"), (2, "Markt 2"), (3, "Kerkweg 3"), (4, "Laan 4")]],
    "customers": [
        {"id": 1, "email": "a@example.nl", "addr_country": "NL", "addr_id": 4},  # kept
        {"id": 2, "email": "b@example.nl", "addr_country": "NL", "addr_id": 1},  # only user
        {"id": 3, "email": "c@example.nl", "addr_country": "NL", "addr_id": 2},  # + a shop
        {"id": 4, "email": "d@example.nl", "addr_country": "NL", "addr_id": 3},  # D and E
        {"id": 5, "email": "e@example.nl", "addr_country": "NL", "addr_id": 3}],
    "shops": [{"id": 1, "addr_country": "NL", "addr_id": 2}],
}

ADDRESS_MAP = """\
version: 1
subject:
  table: customers
  key: id
  identifiers: {email: email}
  action: anonymize
  columns: {email: redact, addr_country: null, addr_id: null}
tables:
  addresses:
    link: {referenced_by: customers, on: {addr_country: country, addr_id: id}}
    action: delete
"""


def test_a_shared_row_goes_only_when_nothing_else_references_it(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, address_metadata(), ADDRESS_ROWS)
    ledger = make_ledger(*({"request_id": f"DSR-{c}", "kind": "erasure",
                            "identifiers": {"email": f"{c}@example.nl"}} for c in "bcde"))
    planned = run(db_url, ledger, ADDRESS_MAP, dry_run=True)
    applied = run(db_url, ledger, ADDRESS_MAP)

    assert changed(planned) == changed(applied) == {
        ("customers", "anonymize"): 4, ("addresses", "delete"): 2, ("addresses", "keep-shared"): 1}
    # Markt 2 is the shop's address too; Laan 4 belongs to a customer nobody asked to erase
    assert rows_of(db_url, "SELECT id, street FROM addresses ORDER BY id") == [
        (2, "Markt 2"), (4, "Laan 4")]
    assert applied.execution.warnings == (
        "tables.addresses.link: 1 row(s) of 'addresses' kept: rows outside this request "
        "reference them too (erase)",)
    assert applied.execution.rows_changed == 6
    kept = next(r for r in applied.execution.results if r.action == "keep-shared")
    assert kept.by_source == (("1", 1),)  # the entry of C, whose address it was
    assert orphans(db_url) == {}
    assert run(db_url, ledger, ADDRESS_MAP).execution.rows_changed == 0


def test_a_shared_row_the_person_still_references_is_refused_or_nullified(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, address_metadata(), ADDRESS_ROWS)
    keeps_reference = ADDRESS_MAP.replace(", addr_country: null, addr_id: null", "")
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_B), keeps_reference)
    assert str(excinfo.value) == (
        "datamap.yaml:11: tables.addresses.action: 1 row(s) of 'customers' reference 'addresses' "
        "rows this run deletes (customers(addr_country, addr_id) -> addresses); add "
        "on_reference: {customers: nullify or anonymize} to tables.addresses; nothing was "
        "changed")
    assert dump(db_url) == before

    result = run(db_url, make_ledger(ERASE_B),
                 keeps_reference + "    on_reference: {customers: nullify}\n")
    assert changed(result) == {("customers", "anonymize"): 1, ("customers", "nullify"): 1,
                               ("addresses", "delete"): 1}
    assert rows_of(db_url, "SELECT addr_id FROM customers WHERE id = 2") == [(None,)]
    assert orphans(db_url) == {}


# -- foreign keys SQLite does not enforce -----------------------------------------------------


def test_without_foreign_key_enforcement_apply_leaves_no_orphans(
        tmp_path: Path, make_ledger: MakeLedger) -> None:
    url = f"sqlite:///{tmp_path / 'snapshot.db'}"
    md = rental_metadata()
    sa.Table("reviews", md,  # unmapped; ON DELETE CASCADE that SQLite would not carry out
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("store_id", sa.Integer), sa.Column("rental_id", sa.Integer),
             sa.ForeignKeyConstraint(["store_id", "rental_id"], ["rentals.store_id", "rentals.id"],
                                     ondelete="CASCADE"))
    load(url, md, {**RENTAL_ROWS, "reviews": [{"id": 1, "store_id": 1, "rental_id": 11}]})
    assert rows_of(url, "PRAGMA foreign_keys") == [(0,)]  # declared, not enforced
    text = RENTAL_MAP + "    on_reference: {payments: nullify}\n"
    before = dump(url)

    with pytest.raises(DataMapError, match=r"1 row\(s\) of 'reviews' reference 'rentals' rows"):
        run(url, make_ledger(ERASE_B), text)  # the cascade would not run: refused, not orphaned
    assert dump(url) == before

    run(url, make_ledger(ERASE_B), text.replace("{payments: nullify}",
                                                "{payments: nullify, reviews: nullify}"))
    assert rows_of(url, "SELECT id, store_id, rental_id FROM reviews") == [(1, None, None)]
    assert orphans(url) == {}


def test_on_reference_naming_no_foreign_key_is_reported_as_drift(
        tmp_path: Path, make_ledger: MakeLedger) -> None:
    url = f"sqlite:///{tmp_path / 'snapshot.db'}"
    load(url, rental_metadata(), {**RENTAL_ROWS, "payments": []})
    result = run(url, make_ledger(ERASE_B), RENTAL_MAP + "    on_reference: {refunds: nullify}\n",
                 dry_run=True)
    assert result.execution.drift == (
        "tables.rentals.on_reference.refunds: foreign key from 'refunds' to 'rentals' not in "
        "this snapshot",)



# -- strategies on key columns --------------------------------------------------------------


def test_a_foreign_key_column_may_only_be_set_to_null(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, rental_metadata(), RENTAL_ROWS)
    text = RENTAL_MAP.replace("""  rentals:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
""", """  rentals:
    link: {parent: customers, on: {customer_id: id}}
    action: anonymize
    columns: {customer_id: {fixed: 0}}
""")
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_B), text, dry_run=True)
    assert str(excinfo.value) == (
        "datamap.yaml:15: tables.rentals.columns.customer_id: column 'customer_id' is in the "
        "foreign key rentals(customer_id) -> customers: only NULL keeps it valid, any other "
        "value would point nowhere; use the null strategy")


def test_a_column_other_rows_reference_is_not_anonymized_under_them(
        db_url: str, make_ledger: MakeLedger) -> None:
    md = sa.MetaData()
    sa.Table("customers", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120), unique=True))
    sa.Table("newsletter", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120), sa.ForeignKey("customers.email")))
    load(db_url, md, {"customers": [{"id": 1, "email": "a@example.nl"},
                                    {"id": 2, "email": "b@example.nl"}],
                      "newsletter": [{"id": 1, "email": "b@example.nl"}]})
    text = ("version: 1\nsubject:\n  table: customers\n  key: id\n  identifiers: {email: email}\n"
            "  action: anonymize\n  columns: {email: redact}\n")
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, make_ledger(ERASE_B), text)
    assert str(excinfo.value) == (
        "datamap.yaml:7: subject.columns.email: 1 row(s) of 'newsletter' reference column "
        "'email' of 'customers' rows this run anonymizes (newsletter(email) -> customers); they "
        "would point nowhere; nothing was changed")
    assert dump(db_url) == before

    # mapped, the referencing rows go first, and nothing is left pointing at the old value
    run(db_url, make_ledger(ERASE_B),
        text + "tables:\n  newsletter:\n    match: {email: email}\n    action: delete\n")
    assert rows_of(db_url, "SELECT COUNT(*) FROM newsletter") == [(0,)]
    assert orphans(db_url) == {}


# -- through the command line -----------------------------------------------------------------


def cli_args(tmp_path: Path, md: sa.MetaData, rows: dict[str, list[dict[str, Any]]],
             text: str, *records: dict[str, Any]) -> tuple[list[str], Path]:
    db = tmp_path / "snapshot.db"
    load(f"sqlite:///{db}", md, rows)
    ledger, key, map_path = make_files(tmp_path, list(records))
    Path(map_path).write_text(text, encoding="utf-8")
    return ["--db", str(db), "--map", map_path, "--ledger", ledger, "--keyring", key,
            "--as-of", "2026-11-25"], Path(map_path)


def test_the_cli_refuses_in_one_line_then_reports_the_nullified_references(
        tmp_path: Path) -> None:
    args, map_path = cli_args(tmp_path, rental_metadata(), RENTAL_ROWS, RENTAL_MAP, ERASE_B)
    refused = invoke("plan", *args)
    assert (refused.exit_code, refused.stderr, refused.stdout) == (2, (
        "reconciler: error: shop.yaml:14: tables.rentals.action: 1 row(s) of 'payments' "
        "reference 'rentals' rows this run deletes (payments(store_id, rental_id) -> rentals); "
        "add on_reference: {payments: nullify or anonymize} to tables.rentals; nothing was "
        "changed\n"), "")

    map_path.write_text(RENTAL_MAP + "    on_reference: {payments: nullify}\n", encoding="utf-8")
    report = tmp_path / "apply.json"
    applied = invoke("apply", *args, "--report", str(report))
    assert applied.exit_code == 0, applied.stderr
    data = json.loads(report.read_text())
    assert data["entries"][0]["rows"] == {
        "payments": {"deleted": 1, "reference nullified": 1}, "rentals": {"deleted": 2},
        "customers": {"anonymized": 1}}
    assert {"table": "payments", "action": "nullify", "group": "erase", "rows": 1} in (
        data["operations"])
    assert ("| 0 | DSR-B | erasure | replayed (payments: 1 deleted, 1 reference nullified; "
            "rentals: 2 deleted; customers: 1 anonymized) |") in applied.stdout


def test_the_report_lists_kept_shared_rows(tmp_path: Path) -> None:
    args, _ = cli_args(tmp_path, address_metadata(), ADDRESS_ROWS, ADDRESS_MAP,
                       {"request_id": "DSR-C", "kind": "erasure",
                        "identifiers": {"email": "c@example.nl"}})
    report = tmp_path / "plan.json"
    planned = invoke("plan", *args, "--report", str(report))
    assert planned.exit_code == 0, planned.stderr
    warning = ("tables.addresses.link: 1 row(s) of 'addresses' kept: rows outside this request "
               "reference them too (erase)")
    assert json.loads(report.read_text())["warnings"] == [warning]
    assert f"## Warnings\n\n- {warning}\n" in planned.stdout
    assert "addresses: 1 kept (shared)" in planned.stdout


def test_a_self_reference_to_an_erased_person_can_be_nullified(
        db_url: str, make_ledger: MakeLedger) -> None:
    md = sa.MetaData()
    sa.Table("customers", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120)),
             sa.Column("referred_by", sa.Integer, sa.ForeignKey("customers.id")))
    load(db_url, md, {"customers": [{"id": 2, "email": "b@example.nl", "referred_by": None},
                                    {"id": 1, "email": "a@example.nl", "referred_by": 2},
                                    {"id": 3, "email": "c@example.nl", "referred_by": 1}]})
    text = ("version: 1\nsubject:\n  table: customers\n  key: id\n  identifiers: {email: email}\n"
            "  action: delete\n  on_reference: {customers: nullify}\n")
    result = run(db_url, make_ledger(ERASE_B), text)
    assert changed(result) == {("customers", "nullify"): 1, ("customers", "delete"): 1}
    assert rows_of(db_url, "SELECT id, referred_by FROM customers ORDER BY id") == [
        (1, None), (3, 1)]
    assert orphans(db_url) == {}
