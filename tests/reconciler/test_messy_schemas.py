"""Real schemas are messy: partitioned and inherited tables (PostgreSQL), triggers that copy
personal data while the reconciler runs, identifiers with non-ASCII characters (in a latin1
table on MariaDB), composite keys. Each is found at plan time and handled or refused, never
half-applied.

Tests run on SQLite, PostgreSQL and MariaDB (``db_url``); PostgreSQL-only features only there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.errors import DataMapError, SnapshotError
from reconciler.replay import ReplayResult, replay, verify
from reconciler.schema import reflect
from tests.reconciler.conftest import AS_OF, HASH_KEY, dump, load, rows_of

MakeLedger = Callable[..., Ledger]
ERASE_B = {"request_id": "DSR-B", "kind": "erasure", "identifiers": {"email": "b@example.nl"}}
ERASE_C = {"request_id": "DSR-C", "kind": "erasure", "identifiers": {"email": "c@example.nl"}}
postgresql_only = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)


def run(url: str, ledger: Ledger, text: str, *, dry_run: bool = False) -> ReplayResult:
    return replay(url, DataMap.from_text(text), ledger, as_of=AS_OF, dry_run=dry_run,
                  hash_key=HASH_KEY)


def execute(url: str, script: str) -> None:
    """Run ``;``-separated statements (no ``;`` inside a statement unless it ends with ``$$``)."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for statement in script.split(";\n"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def findings(url: str, text: str, ledger: Ledger) -> list[tuple[str, str, str | None, str]]:
    result = verify(url, DataMap.from_text(text), ledger)
    return [(f.table, f.column, f.row_key, f.how) for f in result.scan.findings]


CUSTOMERS_MAP = """\
version: 1
subject:
  table: customers
  key: id
  identifiers: {email: email}
  action: anonymize
  columns: {email: redact, name: {fixed: Erased}}
"""

# -- PostgreSQL partitions: statements go through the parent ------------------------------------

PARTITIONS = """\
CREATE TABLE customers (id integer PRIMARY KEY, email varchar(120), name varchar(80) NOT NULL);
CREATE TABLE payments (id integer, paid_on date NOT NULL,
  customer_id integer REFERENCES customers (id), note varchar(200),
  PRIMARY KEY (id, paid_on)) PARTITION BY RANGE (paid_on);
CREATE TABLE payments_2024 PARTITION OF payments FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE payments_2025 PARTITION OF payments FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
ALTER TABLE payments_2025 ALTER COLUMN note SET NOT NULL;
ALTER TABLE payments_2025 ADD CONSTRAINT note_not_erased CHECK (note <> 'erased');
CREATE TABLE refunds (id integer PRIMARY KEY, payment_id integer, paid_on date,
  FOREIGN KEY (payment_id, paid_on) REFERENCES payments (id, paid_on));
INSERT INTO customers VALUES (1, 'a@example.nl', 'Anna'), (2, 'b@example.nl', 'Bert');
INSERT INTO payments VALUES (1, '2024-05-01', 2, 'card of b@example.nl'),
  (2, '2025-05-01', 2, 'paid by b@example.nl'), (3, '2025-06-01', 1, 'paid by a@example.nl');
INSERT INTO refunds VALUES (1, 3, '2025-06-01')
"""
PAYMENTS_MAP = CUSTOMERS_MAP + """\
tables:
  payments:
    link: {parent: customers, on: {customer_id: id}}
    action: anonymize
    columns: {note: null}
"""


@postgresql_only
def test_partitions_are_one_table_whose_parts_may_be_stricter(
        db_url: str, make_ledger: MakeLedger) -> None:
    execute(db_url, PARTITIONS)
    engine = sa.create_engine(db_url, poolclass=NullPool)
    with engine.connect() as conn:
        schema = reflect(conn)
    engine.dispose()
    assert schema.descendants("payments") == ["payments_2024", "payments_2025"]
    # the foreign keys PostgreSQL clones onto partitions, and into them, are kept once
    assert [(fk.table, fk.referred_table) for fk in schema.referencing("payments")] == [
        ("refunds", "payments")]
    assert schema.tables["payments_2025"].foreign_keys == ()

    ledger = make_ledger(ERASE_B)
    # each row is found once, in the table that holds it
    assert findings(db_url, PAYMENTS_MAP, ledger) == [
        ("customers", "email", "2", "mapped column"),
        ("payments_2024", "note", "1/2024-05-01", "free text"),
        ("payments_2025", "note", "2/2025-05-01", "free text")]
    before = dump(db_url)
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, ledger, PAYMENTS_MAP, dry_run=True)
    assert str(excinfo.value) == (
        "datamap.yaml:12: tables.payments.columns.note: strategy 'null' but the column is NOT "
        "NULL in 'payments_2025', which inherits from 'payments', in this snapshot")

    # a CHECK on one partition only: the statement fails and nothing is changed
    with pytest.raises(SnapshotError, match=r"a statement failed \(anonymize payments\): "
                                            r"IntegrityError; rolled back, nothing was changed$"):
        run(db_url, ledger, PAYMENTS_MAP.replace("{note: null}", "{note: redact}"))
    assert dump(db_url) == before

    result = run(db_url, ledger, PAYMENTS_MAP.replace("{note: null}", '{note: {fixed: "-"}}'))
    assert rows_of(db_url, "SELECT id, note FROM payments ORDER BY id") == [
        (1, "-"), (2, "-"), (3, "paid by a@example.nl")]
    assert result.scan is not None
    assert result.scan.clean


INHERITANCE = """\
CREATE TABLE contacts (id integer PRIMARY KEY, email varchar(120), name varchar(80));
CREATE TABLE vip_contacts (perks text) INHERITS (contacts);
ALTER TABLE vip_contacts ALTER COLUMN name SET NOT NULL;
INSERT INTO contacts VALUES (1, 'b@example.nl', 'Bert'), (3, 'a@example.nl', 'Anna');
INSERT INTO vip_contacts VALUES (2, 'B@Example.nl', 'Bert', 'champagne for b@example.nl')
"""
CONTACTS_MAP = """\
version: 1
subject:
  table: contacts
  key: id
  identifiers: {email: email}
  action: anonymize
  columns: {email: redact, name: null}
"""


@postgresql_only
def test_inheriting_tables_are_changed_through_the_parent(
        db_url: str, make_ledger: MakeLedger) -> None:
    execute(db_url, INHERITANCE)
    ledger = make_ledger(ERASE_B)
    assert findings(db_url, CONTACTS_MAP, ledger) == [
        ("contacts", "email", "1", "mapped column"), ("contacts", "email", "2", "mapped column"),
        ("vip_contacts", "perks", None, "free text")]  # INHERITS copies no primary key
    with pytest.raises(DataMapError) as excinfo:
        run(db_url, ledger, CONTACTS_MAP, dry_run=True)
    assert str(excinfo.value) == (
        "datamap.yaml:7: subject.columns.name: strategy 'null' but the column is NOT NULL in "
        "'vip_contacts', which inherits from 'contacts', in this snapshot")

    result = run(db_url, ledger, CONTACTS_MAP.replace("name: null", "name: {fixed: Erased}"))
    assert rows_of(db_url, "SELECT id, email, name FROM contacts ORDER BY id") == [
        (1, "erased", "Erased"), (2, "erased", "Erased"), (3, "a@example.nl", "Anna")]
    assert result.scan is not None  # the child's own column is outside the map: still found
    assert [(f.table, f.column) for f in result.scan.findings] == [("vip_contacts", "perks")]


# -- triggers that copy old values while the reconciler updates -------------------------------

AUDIT_TRIGGER = {
    "sqlite": """\
CREATE TRIGGER customers_audit AFTER UPDATE ON customers BEGIN
  INSERT INTO customer_audit (customer_id, old_email) VALUES (OLD.id, OLD.email); END""",
    "postgresql": """\
CREATE FUNCTION customers_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
  INSERT INTO customer_audit (customer_id, old_email) VALUES (OLD.id, OLD.email);
  RETURN NEW; END $$;
CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW
  EXECUTE FUNCTION customers_audit_fn()""",
    "mysql": """\
CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW
  INSERT INTO customer_audit (customer_id, old_email) VALUES (OLD.id, OLD.email)""",
}


def audited_shop(url: str) -> None:
    md = sa.MetaData()
    sa.Table("customers", md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120)), sa.Column("name", sa.String(80)))
    sa.Table("customer_audit", md, sa.Column("customer_id", sa.Integer),
             sa.Column("old_email", sa.String(120)))
    load(url, md, {"customers": [
        {"id": 1, "email": "a@example.nl", "name": "Anna"},
        {"id": 2, "email": " B@Example.nl", "name": "Bert"},
        {"id": 3, "email": "c@example.nl", "name": "Cees"}]})
    engine = sa.create_engine(url, poolclass=NullPool)
    script = AUDIT_TRIGGER[engine.dialect.name]
    engine.dispose()
    for statement in script.split("$$;\n"):  # PostgreSQL: the function, then the trigger
        engine = sa.create_engine(url, poolclass=NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(statement + ("$$" if statement.endswith("END ") else ""))
        engine.dispose()


def test_an_update_trigger_is_reported_and_its_copies_are_found_or_erased(
        db_url: str, make_ledger: MakeLedger) -> None:
    audited_shop(db_url)
    warning = ("trigger 'customers_audit' on 'customers' fires on UPDATE: what it writes is not "
               "in the plan; the residual scan after apply covers it")
    planned = run(db_url, make_ledger(ERASE_B), CUSTOMERS_MAP, dry_run=True)
    assert planned.execution.warnings == (warning,)

    # the audit table is not mapped: apply works, and the scan finds what the trigger copied
    applied = run(db_url, make_ledger(ERASE_B), CUSTOMERS_MAP)
    assert applied.execution.warnings == (warning,)
    assert applied.scan is not None
    assert [(f.table, f.column, f.how) for f in applied.scan.findings] == [
        ("customer_audit", "old_email", "free text")]

    # mapped by e-mail, it is handled after the trigger fired, in the same run
    audit_map = CUSTOMERS_MAP + "tables:\n  customer_audit:\n    match: {email: old_email}\n" \
                                "    action: delete\n"
    again = run(db_url, make_ledger(ERASE_B, ERASE_C), audit_map)
    assert again.scan is not None
    assert again.scan.clean
    assert rows_of(db_url, "SELECT COUNT(*) FROM customer_audit") == [(0,)]
    assert rows_of(db_url, "SELECT id, email FROM customers ORDER BY id") == [
        (1, "a@example.nl"), (2, "erased"), (3, "erased")]


# -- non-ASCII identifiers and keys, also in a latin1 table on MariaDB ---------------------------


def accounts_metadata() -> sa.MetaData:
    md = sa.MetaData()
    sa.Table("accounts", md,
             sa.Column("username", sa.String(40), primary_key=True),
             sa.Column("email", sa.String(120)),
             sa.Column("name", sa.String(80)), mysql_charset="latin1")
    sa.Table("logins", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("username", sa.String(40), sa.ForeignKey("accounts.username")),
             sa.Column("note", sa.String(200)), mysql_charset="latin1")
    return md


ACCOUNT_ROWS: dict[str, list[dict[str, Any]]] = {
    "accounts": [
        {"username": "Müller", "email": "mueller@example.de", "name": "Jürgen Müller"},
        {"username": "Muller", "email": "muller@example.fr", "name": "Jean Muller"},
        {"username": "Zoë", "email": "José@Bloemen.nl", "name": "Zoë José"},
        {"username": "jose", "email": "jose@bloemen.nl", "name": "Jose"}],
    "logins": [{"id": 1, "username": "Müller", "note": "ok"},
               {"id": 2, "username": "Muller", "note": "ok"},
               {"id": 3, "username": "Zoë", "note": "ok"}],
}
ACCOUNTS_MAP = """\
version: 1
subject:
  table: accounts
  key: username
  identifiers: {username: username, email: email}
  action: delete
tables:
  logins:
    link: {parent: accounts, on: {username: username}}
    action: delete
"""


def test_non_ascii_identifiers_and_keys_match_exactly(
        db_url: str, make_ledger: MakeLedger) -> None:
    load(db_url, accounts_metadata(), ACCOUNT_ROWS)
    ledger = make_ledger(
        {"request_id": "DSR-M", "kind": "erasure", "identifiers": {"username": "Müller"}},
        {"request_id": "DSR-J", "kind": "erasure", "identifiers": {"email": "josé@bloemen.nl"}})
    # the username also appears in free text: a full name, the logins' reference
    assert findings(db_url, ACCOUNTS_MAP, ledger) == [
        ("accounts", "name", None, "free text"), ("accounts", "username", None, "mapped column"),
        ("logins", "username", "1", "free text"), ("accounts", "email", None, "mapped column")]

    result = run(db_url, ledger, ACCOUNTS_MAP)
    assert sorted(rows_of(db_url, "SELECT username FROM accounts")) == [("Muller",), ("jose",)]
    assert rows_of(db_url, "SELECT id FROM logins") == [(2,)]
    assert result.execution.rows_changed == 4
    assert result.scan is not None
    assert result.scan.clean


# -- composite primary keys -------------------------------------------------------------------


def test_composite_keys_give_distinct_fake_values_and_row_keys(
        db_url: str, make_ledger: MakeLedger) -> None:
    md = sa.MetaData()
    sa.Table("members", md,
             sa.Column("club", sa.String(10), primary_key=True),
             sa.Column("no", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("email", sa.String(120), unique=True),
             sa.Column("note", sa.String(200)))
    load(db_url, md, {"members": [
        {"club": "A", "no": 1, "email": "b@example.nl", "note": "mail b@example.nl"},
        {"club": "B", "no": 1, "email": "C@Example.NL ", "note": None},
        {"club": "B", "no": 2, "email": "a@example.nl", "note": None}]})
    text = ("version: 1\nsubject:\n  table: members\n  key: [club, no]\n"
            "  identifiers: {email: email}\n  action: anonymize\n  columns: {email: redact}\n")
    ledger = make_ledger(ERASE_B, ERASE_C)
    assert findings(db_url, text, ledger) == [
        ("members", "email", "A/1", "mapped column"), ("members", "note", "A/1", "free text"),
        ("members", "email", "B/1", "mapped column")]

    result = run(db_url, ledger, text)
    assert sorted(rows_of(db_url, "SELECT club, no, email FROM members")) == [
        ("A", 1, "erased-A-1@erased.invalid"), ("B", 1, "erased-B-1@erased.invalid"),
        ("B", 2, "a@example.nl")]
    assert result.scan is not None
    assert [(f.table, f.column, f.row_key) for f in result.scan.findings] == [
        ("members", "note", "A/1")]  # free text outside the map is found, not changed
