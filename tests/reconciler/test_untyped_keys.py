"""A SQLite subject key declared without a type (``id PRIMARY KEY``) still finds the person.

Such a column has no affinity and keeps integers as integers. SQLAlchemy reflects it as
NullType, which has no DDL; staged as TEXT the key 1 became '1', and 1 = '1' is false between
columns without a numeric affinity: the erased person's subject row and its children were
never found. The staging column now has no type either.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reconciler.conftest import rows_of
from tests.reconciler.test_batched_apply import run
from tests.reconciler.test_reply_chains import execute

UNTYPED_MAP = """\
version: 1
subject:
  table: customers
  key: id
  identifiers:
    email: email
  action: delete
tables:
  orders:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
  notes:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
"""


def test_a_subject_whose_key_column_has_no_declared_type_is_erased_with_its_rows(
        db_url: str, make_ledger: Any) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("only SQLite has columns without a declared type")
    execute(db_url,
            "CREATE TABLE customers (id PRIMARY KEY, email VARCHAR(120), name VARCHAR(80))",
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER "
            "REFERENCES customers(id), address VARCHAR(200))",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, customer_id REFERENCES customers(id), "
            "body TEXT)",
            "INSERT INTO customers VALUES (1, 'jan@example.nl', 'Jan Jansen'), "
            "(2, 'piet@example.nl', 'Piet')",
            "INSERT INTO orders VALUES (10, 1, 'Dorpsstraat 1'), (20, 2, 'Kerkweg 2')",
            "INSERT INTO notes VALUES (50, 1, 'call me back'), (60, 2, 'piet')")

    result = run(db_url, make_ledger({"request_id": "DSR-1", "kind": "erasure",
                                      "identifiers": {"email": "jan@example.nl"}}), UNTYPED_MAP)

    assert rows_of(db_url, "SELECT id FROM customers ORDER BY id") == [(2,)]
    assert rows_of(db_url, "SELECT id FROM orders ORDER BY id") == [(20,)]
    assert rows_of(db_url, "SELECT id FROM notes ORDER BY id") == [(60,)]
    assert result.scan is not None
    assert not result.scan.findings
