"""Real database servers for tests: a scratch schema (PostgreSQL) or database (MariaDB) per test.

A server that does not answer is a skip on a laptop and a failure when ``CI=true``, so CI can
never go green without having run the PostgreSQL and MariaDB tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
SERVER_KINDS = ("sqlite", "postgresql", "mariadb")


@cache
def server_problem(kind: str) -> str | None:
    """None when the server answers, else why not (cached per test process)."""
    url = PG_ADMIN_URL if kind == "postgresql" else MARIADB_ADMIN_URL
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{kind} not reachable at {sa.make_url(url).render_as_string(hide_password=True)}: {type(exc).__name__}"
    finally:
        engine.dispose()


def require_server(kind: str) -> None:
    problem = server_problem(kind)
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {problem}", pytrace=False)
    pytest.skip(problem)


@contextmanager
def scratch_database(kind: str, tmp_path_factory: pytest.TempPathFactory | None = None) -> Iterator[str]:
    """A URL naming an empty, private database of this kind; dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    if kind == "sqlite":
        base = tmp_path_factory.mktemp("db") if tmp_path_factory else None
        path = f"{base}/{name}.db" if base else f"/tmp/{name}.db"
        yield f"sqlite:///{path}"
        return
    require_server(kind)
    if kind == "postgresql":
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        url = sa.make_url(PG_ADMIN_URL).update_query_dict({"options": f"-csearch_path={name}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
            admin.dispose()
    else:
        admin = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        url = sa.make_url(MARIADB_ADMIN_URL).set(database=name)
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE `{name}`")
            admin.dispose()
