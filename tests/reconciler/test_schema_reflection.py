"""Reflecting a snapshot is quiet: what SQLAlchemy cannot reflect must not reach stderr."""

from __future__ import annotations

import sqlite3
import warnings

import sqlalchemy as sa

from reconciler.schema import reflect


def test_an_expression_index_is_reflected_without_a_warning(tmp_path):
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
    con.execute("CREATE INDEX customers_email_ix ON customers (lower(trim(email)))")
    con.commit()
    con.close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with warnings.catch_warnings(record=True) as caught, engine.connect() as conn:
        warnings.simplefilter("always")
        schema = reflect(conn)
    engine.dispose()
    assert "customers" in schema.tables
    assert [str(w.message) for w in caught] == []
