"""Fixtures for the reconciler tests: real databases, an in-memory ledger, a shop schema.

``db_url`` runs a test on SQLite, PostgreSQL and MariaDB, each in its own fresh schema or
database (``rc_<random>``) so parallel runs never collide. A server that cannot be reached
is skipped on a laptop and fails the test when ``CI=true``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from erasure_ledger import Entry, Keyring, Ledger, MemoryStore
from reconciler.datamap import DataMap

SERVERS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
HASH_KEY = b"k" * 32
AS_OF = dt.date(2026, 11, 25)
LEDGER_NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def _unreachable(name: str) -> None:
    message = f"{name} server is not reachable"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty database on each of the three servers."""
    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "snapshot.db"
        sa.create_engine(f"sqlite:///{path}").dispose()
        yield f"sqlite:///{path}"
        return
    name = f"rc_{secrets.token_hex(6)}"
    admin = sa.create_engine(SERVERS[kind], poolclass=NullPool, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 5})
    try:
        conn = admin.connect()
    except sa.exc.OperationalError:
        _unreachable(kind)
    with conn:
        if kind == "postgresql":
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
            url = f"{SERVERS[kind]}?options=-csearch_path%3D{name}"
        else:
            conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            url = SERVERS[kind].rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
            else:
                conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()


# -- the shop schema -----------------------------------------------------------------------------


def shop_metadata(*, invoice_cascade: bool = False) -> sa.MetaData:
    """customers <- orders <- order_lines, customers <- invoices, newsletter (no key)."""
    md = sa.MetaData()
    sa.Table(
        "customers", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(120), unique=True),
        sa.Column("phone", sa.String(40)),
        sa.Column("cust_no", sa.String(20)),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("birth_date", sa.Date),
        sa.Column("last_active_at", sa.DateTime),
        sa.Column("newsletter_opt_in", sa.Boolean, nullable=False),
    )
    sa.Table(
        "orders", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("shipping_address", sa.String(200)),
        sa.Column("total", sa.Numeric(10, 2)),
    )
    sa.Table(
        "order_lines", md,
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("product", sa.String(80)),
        sa.Column("gift_note", sa.Text),
    )
    sa.Table(
        "invoices", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("order_id", sa.Integer,
                  sa.ForeignKey("orders.id", ondelete="CASCADE" if invoice_cascade else None)),
        sa.Column("invoice_date", sa.Date, nullable=False),
        sa.Column("billing_name", sa.String(80), nullable=False),
        sa.Column("billing_iban", sa.String(34)),
        sa.Column("amount", sa.Numeric(10, 2)),
    )
    sa.Table(
        "newsletter", md,
        sa.Column("address", sa.String(120)),
        sa.Column("subscribed_at", sa.Date),
    )
    sa.Table(
        "complaints", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("body", sa.Text),
    )
    return md


SHOP_MAP = """\
version: 1
subject:
  table: customers
  key: id
  identifiers:
    email: email
    phone: phone
    customer_number: cust_no
  action: anonymize
  columns:
    email: redact
    phone: null
    cust_no: hash
    name: {fixed: "Erased"}
    birth_date: year
tables:
  orders:
    link: {parent: customers, on: {customer_id: id}}
    action: anonymize
    columns:
      shipping_address: redact
  order_lines:
    link: {parent: orders, on: {order_id: id}}
    action: delete
  invoices:
    link: {parent: customers, on: {customer_id: id}}
    action: retain
    retain: {years: 7, after: invoice_date}
    columns:
      billing_name: redact
      billing_iban: null
  newsletter:
    match: {email: address}
    action: delete
retention:
  - name: inactive-2y
    column: last_active_at
    years: 2
opt_outs:
  - purpose: marketing
    table: customers
    set: {newsletter_opt_in: false}
  - purpose: marketing
    table: newsletter
    delete: true
"""

JAN = {"id": 1, "email": " Jan@Example.NL ", "phone": "0416-853988", "cust_no": "C-1001",
       "name": "Jan Jansen", "birth_date": dt.date(1980, 6, 15),
       "last_active_at": dt.datetime(2026, 10, 1, 12, 0), "newsletter_opt_in": True}
PIET = {"id": 2, "email": "piet@example.nl", "phone": "+31 20 123 4567", "cust_no": "C-1002",
        "name": "Piet Pieters", "birth_date": dt.date(1975, 1, 2),
        "last_active_at": dt.datetime(2026, 9, 1, 8, 30), "newsletter_opt_in": True}
OLD = {"id": 3, "email": "old@example.nl", "phone": None, "cust_no": "C-1003",
       "name": "Oud Klant", "birth_date": None,
       "last_active_at": dt.datetime(2023, 1, 1, 0, 0), "newsletter_opt_in": True}
KLAAS = {"id": 4, "email": "klaas@example.nl", "phone": None, "cust_no": "C-1004",
         "name": "Klaas", "birth_date": None,
         "last_active_at": dt.datetime(2026, 11, 1, 0, 0), "newsletter_opt_in": True}

SHOP_ROWS: dict[str, list[dict[str, Any]]] = {
    "customers": [JAN, PIET, OLD, KLAAS],
    "orders": [
        {"id": 10, "customer_id": 1, "shipping_address": "Dorpsstraat 1, Oss", "total": 10},
        {"id": 11, "customer_id": 1, "shipping_address": "Dorpsstraat 1, Oss", "total": 20},
        {"id": 20, "customer_id": 2, "shipping_address": "Kerkweg 2, Ede", "total": 30},
        {"id": 30, "customer_id": 3, "shipping_address": "Laan 3, Epe", "total": 40},
    ],
    "order_lines": [
        {"order_id": 10, "line_no": 1, "product": "tulips", "gift_note": "for mum"},
        {"order_id": 10, "line_no": 2, "product": "roses", "gift_note": None},
        {"order_id": 20, "line_no": 1, "product": "lilies", "gift_note": None},
    ],
    "invoices": [
        {"id": 100, "customer_id": 1, "order_id": None, "invoice_date": dt.date(2018, 3, 1),
         "billing_name": "Jan Jansen", "billing_iban": "NL91ABNA0417164300", "amount": 5},
        {"id": 101, "customer_id": 1, "order_id": None, "invoice_date": dt.date(2025, 3, 1),
         "billing_name": "Jan Jansen", "billing_iban": "NL91ABNA0417164300", "amount": 6},
        {"id": 200, "customer_id": 2, "order_id": None, "invoice_date": dt.date(2025, 4, 1),
         "billing_name": "Piet Pieters", "billing_iban": None, "amount": 7},
    ],
    "newsletter": [
        {"address": "JAN@example.nl", "subscribed_at": dt.date(2024, 1, 1)},
        {"address": "piet@example.nl", "subscribed_at": dt.date(2024, 1, 2)},
        {"address": "klaas@example.nl", "subscribed_at": dt.date(2024, 1, 3)},
    ],
    "complaints": [{"id": 1, "body": "Late delivery, call me back"}],
}


def load(url: str, md: sa.MetaData, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Create ``md``'s tables at ``url`` and insert ``rows``."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            for table in md.sorted_tables:
                if rows.get(table.name):
                    conn.execute(table.insert(), list(rows[table.name]))
    finally:
        engine.dispose()


def dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted, for before/after comparisons."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        md = sa.MetaData()
        md.reflect(engine)
        with engine.connect() as conn:
            return {name: sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
                    for name, table in md.tables.items()}
    finally:
        engine.dispose()


def rows_of(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


@pytest.fixture
def shop(db_url: str) -> str:
    """The shop schema with its rows, at ``db_url``."""
    load(db_url, shop_metadata(), SHOP_ROWS)
    return db_url


@pytest.fixture
def make_ledger() -> Callable[..., Ledger]:
    """``make_ledger(*records)``: an in-memory ledger holding these entry records."""

    def factory(*records: Mapping[str, Any]) -> Ledger:
        ledger = Ledger.create(MemoryStore(), Keyring.generate("test.example/ledger"),
                               now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
        if records:
            ledger.append([Entry.from_dict(dict(r)) for r in records], now=LEDGER_NOW)
        return ledger

    return factory


@pytest.fixture
def shop_map() -> DataMap:
    return DataMap.from_text(SHOP_MAP)


ERASE_JAN = {"request_id": "DSR-1", "kind": "erasure", "identifiers": {"email": "jan@example.nl"},
             "effective": "2026-10-01"}
OPTOUT_KLAAS = {"request_id": "OPT-1", "kind": "objection", "purpose": "marketing",
                "identifiers": {"email": "Klaas@Example.nl"}}
