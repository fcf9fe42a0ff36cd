"""The pure decision about foreign keys that point back along the links
(:func:`reconciler.references.back_references`): no database, the schema is plain data.

The databases' side (the unlink runs, refusals before any change, counts) is in
``test_link_cycles.py``.
"""

from __future__ import annotations

import pytest

from reconciler.datamap import DataMap
from reconciler.ops import DeleteRows, NullifyReferences
from reconciler.planner import make_plan
from reconciler.references import (
    BackReferences,
    back_references,
    expand,
    sort_ops,
    table_order,
)
from reconciler.schema import ForeignKey, SnapshotSchema, TableSchema
from reconciler.strategies import ColumnInfo
from tests.reconciler.conftest import AS_OF
from tests.reconciler.test_link_cycles import CART_MAP

COLUMNS = {
    "customers": {"id": False, "email": True, "phone": True, "cust_no": True, "name": False,
                  "birth_date": True, "last_active_at": True, "newsletter_opt_in": False},
    "orders": {"id": False, "customer_id": False, "shipping_address": True},
    "order_lines": {"order_id": False, "line_no": False},
    "invoices": {"id": False, "customer_id": False, "invoice_date": False,
                 "billing_name": False, "billing_iban": True},
    "newsletter": {"address": True},
    "carts": {"id": False, "customer_id": False, "last_item_id": True},
    "cart_items": {"id": False, "cart_id": False},
}


def schema(*, nullable: bool = True, ondelete: str | None = None,
           deferrable: bool = False) -> SnapshotSchema:
    keys = {
        "orders": [ForeignKey("orders", ("customer_id",), "customers", ("id",), None)],
        "order_lines": [ForeignKey("order_lines", ("order_id",), "orders", ("id",), None)],
        "invoices": [ForeignKey("invoices", ("customer_id",), "customers", ("id",), None)],
        "carts": [ForeignKey("carts", ("customer_id",), "customers", ("id",), None),
                  ForeignKey("carts", ("last_item_id",), "cart_items", ("id",), ondelete,
                             name="carts_last_item", deferrable=deferrable)],
        "cart_items": [ForeignKey("cart_items", ("cart_id",), "carts", ("id",), None)],
    }
    tables = {}
    for name, columns in COLUMNS.items():
        infos = {c: ColumnInfo(c, "integer", None,
                               nullable if (name, c) == ("carts", "last_item_id") else null,
                               False)
                 for c, null in columns.items()}
        tables[name] = TableSchema(name, infos, ("id",) if "id" in columns else (),
                                   tuple(keys.get(name, ())), {})
    return SnapshotSchema(tables=tables, fingerprint="-")


def decide(snapshot: SnapshotSchema, *, per_row: bool = False,
           batched: bool = False) -> BackReferences:
    data_map = DataMap.from_text(CART_MAP)
    plan = make_plan([], data_map, as_of=AS_OF)
    ops = sort_ops(expand(plan.ops, data_map, snapshot).ops,
                   table_order(data_map, snapshot.tables))
    return back_references(ops, data_map, snapshot, per_row=per_row, batched=batched)


def test_a_nullable_back_reference_is_unlinked_just_before_the_first_delete() -> None:
    back = decide(schema())

    ops = list(back.ops)
    unlinks = [op for op in ops if isinstance(op, NullifyReferences)]
    assert [(op.table, op.action, op.reference.columns) for op in unlinks] == [
        ("carts", "unlink", ("last_item_id",))]
    unlink = unlinks[0]
    assert ops[ops.index(unlink) + 1] == unlink.target
    assert (unlink.target.table, unlink.doomed and unlink.doomed.table) == ("cart_items", "carts")
    assert ops.index(unlink.target) < ops.index(unlink.doomed)  # the items go first
    assert (back.blocked, back.deferred, back.cascaded) == ((), (), ())


@pytest.mark.parametrize(("kwargs", "per_row", "batched", "why"), [
    ({}, False, False, "column 'last_item_id' is NOT NULL in this snapshot, so the reference "
                       "cannot be set to NULL first"),
    ({"deferrable": True}, False, True, "and the key is deferrable, but a batched apply "
                                        "commits between the two deletes"),
    ({"ondelete": "CASCADE"}, True, False, "and this database checks keys row by row"),
])
def test_a_back_reference_nothing_can_free_is_blocked(
        kwargs: dict[str, object], per_row: bool, batched: bool, why: str) -> None:
    back = decide(schema(nullable=False, **kwargs),  # type: ignore[arg-type]
                  per_row=per_row, batched=batched)

    assert not any(isinstance(op, NullifyReferences) for op in back.ops)
    [(blocked, reason)] = back.blocked
    assert (blocked.first.table, blocked.later.table, blocked.key.columns) == (
        "cart_items", "carts", ("last_item_id",))
    assert why in reason


def test_a_not_null_back_reference_the_database_resolves_is_left_to_it() -> None:
    deferred = decide(schema(nullable=False, deferrable=True))
    cascaded = decide(schema(nullable=False, ondelete="CASCADE"))

    assert [k.name for k in deferred.deferred] == ["carts_last_item"]
    assert [(b.first.table, b.later.table) for b in cascaded.cascaded] == [("cart_items", "carts")]
    assert deferred.blocked == cascaded.blocked == ()


def test_a_key_column_the_rows_are_found_by_is_never_nulled() -> None:
    # carts found through last_item_id would be cut off from their person by the NULL
    snapshot = schema()
    data_map = DataMap.from_text(CART_MAP.replace(
        "link: {parent: customers, on: {customer_id: id}}",
        "link: {parent: customers, on: {last_item_id: id}}"))
    ops = [DeleteRows("cart_items", "erase", "tables.cart_items.action"),
           DeleteRows("carts", "erase", "tables.carts.action")]

    back = back_references(ops, data_map, snapshot, per_row=False, batched=False)

    assert [reason for _, reason in back.blocked] == [
        "column 'last_item_id' is how the run finds the rows it deletes, so the reference "
        "cannot be set to NULL first"]
