"""The residual scan finds erased identifiers in mapped columns and in free text, and names
where (table, column, row key, entry) but never what."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from erasure_ledger import Identifier, Ledger
from reconciler.datamap import DataMap
from reconciler.replay import replay, verify
from reconciler.scan import Finding
from tests.reconciler.conftest import AS_OF, ERASE_JAN, HASH_KEY, SHOP_MAP

MakeLedger = Callable[..., Ledger]


def execute(url: str, sql: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def test_before_apply_the_scan_finds_the_person_in_mapped_columns(
        shop: str, make_ledger: MakeLedger) -> None:
    result = verify(shop, DataMap.from_text(SHOP_MAP), make_ledger(ERASE_JAN))
    assert result.scan.findings == (
        Finding("customers", "email", "1", 0, "DSR-1", "mapped column"),
        Finding("newsletter", "address", None, 0, "DSR-1", "mapped column"),
    )
    assert result.ledger.tree_size == 1


def test_after_apply_the_scan_is_clean(shop: str, make_ledger: MakeLedger) -> None:
    result = replay(shop, DataMap.from_text(SHOP_MAP), make_ledger(ERASE_JAN), as_of=AS_OF,
                    dry_run=False, hash_key=HASH_KEY)
    assert result.scan is not None
    assert result.scan.clean
    assert result.scan.unmapped_personal_columns == ()


def test_free_text_is_scanned_for_emails_phones_ibans_and_tokens(
        shop: str, make_ledger: MakeLedger) -> None:
    execute(shop, "INSERT INTO complaints (id, body) VALUES "
                  "(2, 'Please mail JAN@Example.nl!'), (3, 'Bel 0416 853 988 aub'), "
                  "(4, 'Refund to NL91 ABNA 0417 1643 00'), (5, 'Klantnummer C-1001.'), "
                  "(6, 'nothing personal')")
    ledger = make_ledger({"request_id": "DSR-5", "kind": "erasure", "identifiers": {
        "email": "jan@example.nl", "phone": "+31416853988", "iban": "NL91ABNA0417164300",
        "customer_number": "C-1001"}})
    result = replay(shop, DataMap.from_text(SHOP_MAP), ledger, as_of=AS_OF, dry_run=False,
                    hash_key=HASH_KEY)
    assert result.scan is not None
    assert [(f.table, f.column, f.row_key, f.request_id, f.how)
            for f in result.scan.findings] == [
        ("complaints", "body", str(n), "DSR-5", "free text") for n in (2, 3, 4, 5)]
    shown = repr(result).lower()
    for value in ("jan@example.nl", "c-1001", "853988", "nl91abna"):
        assert value not in shown


def test_the_phone_prefilter_lets_every_spelling_of_a_ledger_number_through():
    from reconciler.scan import _Index

    class Meta:
        seq, request_id, kind = 7, "DSR-7", "erasure"

    class Opened:
        meta = Meta()
        entry = type("E", (), {"identifiers": (Identifier.parse("phone", "0416-853988"),)})()

    index = _Index.of([Opened()])
    for text in ["bel 0416-853988", "+31 416 85 39 88 graag", "(0416) 85.39.88", "0031416853988"]:
        assert index.in_text(text, "NL") == {7}, text
    assert index.in_text("order 123456789 of 2026", "NL") == set()


def test_a_value_holding_the_field_separator_is_still_attributed_to_its_column(
        shop: str, make_ledger: MakeLedger) -> None:
    # a row's columns are read as one text joined by U+0001; a value holding U+0001 itself
    # sends the table to the column-by-column scan, which still names the right column
    execute(shop, "INSERT INTO complaints (id, body) VALUES "
                  "(7, 'odd\x01text, mail JAN@example.nl'), (8, 'plain\x01text')")
    result = verify(shop, DataMap.from_text(SHOP_MAP), make_ledger(ERASE_JAN))
    found = [(f.table, f.column, f.row_key, f.how) for f in result.scan.findings
             if f.how == "free text"]
    assert found == [("complaints", "body", "7", "free text")]


def test_verify_reports_the_maps_tables_and_columns_the_snapshot_lacks(
        shop: str, make_ledger: MakeLedger) -> None:
    text = SHOP_MAP.replace("      shipping_address: redact",
                            "      shipping_address: redact\n      fax: null").replace(
        "tables:\n", "tables:\n  loyalty:\n    link: {parent: customers, on: {customer_id: id}}\n"
                      "    action: delete\n")
    result = verify(shop, DataMap.from_text(text), make_ledger(ERASE_JAN))
    assert result.drift == ("tables.loyalty: table 'loyalty' not in this snapshot",
                            "tables.orders.columns.fax: column 'fax' not in this snapshot")
