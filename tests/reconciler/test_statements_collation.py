"""``Statements.person(..., semi=True)``: ``key IN (SELECT ...)`` must select exactly
the rows the correlated ``EXISTS`` selects. Each test applies the same ledger to two copies of
one snapshot, once as written and once with the rewrite switched off, and compares."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.replay import replay
from reconciler.statements import Statements
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    SHOP_MAP,
    SHOP_ROWS,
    dump,
    load,
    shop_metadata,
)

MakeLedger = Callable[..., Ledger]


def _both(path: Path, tmp_path: Path, text: str, ledger: Ledger,
          monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    reference = tmp_path / "reference.db"
    shutil.copy(path, reference)
    replay(f"sqlite:///{path}", DataMap.from_text(text), ledger, as_of=AS_OF, dry_run=False,
           hash_key=HASH_KEY)
    with monkeypatch.context() as m:
        m.setattr(Statements, "_semi", lambda *args, **kwargs: None)  # EXISTS everywhere
        replay(f"sqlite:///{reference}", DataMap.from_text(text), ledger, as_of=AS_OF,
               dry_run=False, hash_key=HASH_KEY)
    return dump(f"sqlite:///{path}"), dump(f"sqlite:///{reference}")


def test_the_shop_is_erased_the_same_with_and_without_the_rewrite(
        tmp_path: Path, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "shop.db"
    load(f"sqlite:///{path}", shop_metadata(), SHOP_ROWS)
    rewritten, reference = _both(path, tmp_path, SHOP_MAP, make_ledger(ERASE_JAN), monkeypatch)
    assert rewritten == reference


COLLATED = """\
version: 1
subject:
  table: customers
  key: code
  identifiers: {email: email}
  action: delete
tables:
  orders:
    link: {parent: customers, on: {customer_code: code}}
    action: delete
"""



def test_a_forward_link_to_a_nocase_key_selects_the_same_rows(
        tmp_path: Path, make_ledger: MakeLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "collated.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE customers (code TEXT COLLATE NOCASE PRIMARY KEY, email TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY,
                                 customer_code TEXT REFERENCES customers (code), note TEXT);
            INSERT INTO customers VALUES ('C-1', 'jan@example.nl'), ('C-2', 'piet@example.nl');
            INSERT INTO orders VALUES (1, 'C-1', 'a'), (2, 'c-1', 'b'), (3, 'C-2', 'c');
        """)
    conn.close()
    rewritten, reference = _both(path, tmp_path, COLLATED, make_ledger(ERASE_JAN), monkeypatch)
    assert reference["orders"] == [(3, "C-2", "c")]  # EXISTS follows the reference as SQLite does
    assert rewritten == reference
