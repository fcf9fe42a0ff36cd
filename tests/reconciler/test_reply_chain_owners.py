"""Breaking a cycle of an erased person's replies on MariaDB (reconciler.chains) never cuts
the rows off from their owner.

MariaDB deletes rows that reference each other in rounds; a cycle is freed by setting a
nullable column of the blocking key to NULL. Where the key repeats the owner (a composite
self-reference ``(customer_id, reply_to) -> (customer_id, id)``, common in multi-tenant
schemas), only ``reply_to`` is set to NULL: a NULL in ``customer_id``, the column the map's
link goes through, would leave the rows found by nobody (InnoDB refused it first, and the
whole apply failed).

Every test here runs on SQLite, PostgreSQL and MariaDB (the ``db_url`` fixture); the
specification is the same everywhere.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.reconciler.conftest import ERASE_JAN, SHOP_ROWS, load, rows_of, shop_metadata
from tests.reconciler.test_batched_apply import run
from tests.reconciler.test_reply_chains import NOTES_MAP, execute


def owned_notes_metadata() -> sa.MetaData:
    """notes(customer_id, reply_to) -> notes(customer_id, id): a reply stays with its owner.
    customer_id is nullable (a note can be anonymous) and is the map's link to customers."""
    md = shop_metadata()
    sa.Table("notes", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=True),
             sa.Column("reply_to", sa.Integer, nullable=True),
             sa.Column("body", sa.Text),
             sa.UniqueConstraint("customer_id", "id", name="notes_owner_id"),
             sa.ForeignKeyConstraint(["customer_id", "reply_to"],
                                     ["notes.customer_id", "notes.id"], name="notes_reply"))
    return md


def notes(url: str) -> list[tuple[Any, ...]]:
    return rows_of(url, "SELECT id, customer_id, reply_to, body FROM notes ORDER BY id")


def test_a_cycle_of_an_erased_persons_notes_is_deleted_when_the_key_repeats_the_owner(
        db_url: str, make_ledger: Any) -> None:
    rows = {**SHOP_ROWS, "notes": [
        {"id": 5, "customer_id": 1, "reply_to": None, "body": "jan: my address is ..."},
        {"id": 6, "customer_id": 1, "reply_to": None, "body": "jan: and my phone ..."},
        {"id": 30, "customer_id": 2, "reply_to": None, "body": "piet's own"},
    ]}
    load(db_url, owned_notes_metadata(), rows)
    # Jan's notes 5 and 6 reply to each other
    execute(db_url, "UPDATE notes SET reply_to = 6 WHERE id = 5",
            "UPDATE notes SET reply_to = 5 WHERE id = 6")

    result = run(db_url, make_ledger(ERASE_JAN), NOTES_MAP)

    # Jan's notes are gone, whatever the database; nothing of his is left unlinked
    assert notes(db_url) == [(30, 2, None, "piet's own")]
    [deleted] = [r.rows for r in result.execution.results if (r.table, r.action) == ("notes", "delete")]
    assert deleted == 2


def test_a_note_of_an_erased_person_that_replies_to_itself_is_deleted(
        db_url: str, make_ledger: Any) -> None:
    rows = {**SHOP_ROWS, "notes": [
        {"id": 7, "customer_id": 1, "reply_to": None, "body": "jan: replies to itself"},
        {"id": 30, "customer_id": 2, "reply_to": None, "body": "piet's own"},
    ]}
    load(db_url, owned_notes_metadata(), rows)
    execute(db_url, "UPDATE notes SET reply_to = 7 WHERE id = 7")

    result = run(db_url, make_ledger(ERASE_JAN), NOTES_MAP)

    assert notes(db_url) == [(30, 2, None, "piet's own")]
    [deleted] = [r.rows for r in result.execution.results if (r.table, r.action) == ("notes", "delete")]
    assert deleted == 1


def test_a_batched_apply_deletes_the_same_cycle(db_url: str, make_ledger: Any) -> None:
    rows = {**SHOP_ROWS, "notes": [
        {"id": 5, "customer_id": 1, "reply_to": None, "body": "jan: a"},
        {"id": 6, "customer_id": 1, "reply_to": None, "body": "jan: b"},
        {"id": 7, "customer_id": 1, "reply_to": None, "body": "jan: replies to itself"},
    ]}
    load(db_url, owned_notes_metadata(), rows)
    execute(db_url, "UPDATE notes SET reply_to = 6 WHERE id = 5",
            "UPDATE notes SET reply_to = 5 WHERE id = 6",
            "UPDATE notes SET reply_to = 7 WHERE id = 7")

    run(db_url, make_ledger(ERASE_JAN), NOTES_MAP, batch_rows=1)

    assert notes(db_url) == []
