"""A read that fails on the driver (the staging's and the residual scan's streamed reads, which
bypass SQLAlchemy) is a snapshot error like any other failed statement: exit 2, one line, no
traceback, on every database."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from reconciler.schema import SnapshotSchema, reflect
from tests.reconciler.conftest import ERASE_JAN
from tests.reconciler.test_cli import common, invoke, make_files


@pytest.fixture
def gone(shop: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shop, whose ``newsletter`` table is dropped after its schema was read (the
    snapshot changed under the run): the reads of that table fail on the driver."""
    engine = sa.create_engine(shop, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            stale: SnapshotSchema = reflect(conn)
            conn.execute(sa.text("DROP TABLE newsletter"))
    finally:
        engine.dispose()
    for module in ("reconciler.executor", "reconciler.replay"):  # (shadowed by functions)
        monkeypatch.setattr(importlib.import_module(module), "reflect", lambda _conn: stale)
    return shop


@pytest.mark.parametrize(("command", "message"), [
    ("plan", "a statement failed: {error}; rolled back, nothing was changed"),
    ("verify", "the residual scan failed: {error}"),
])
def test_a_failed_driver_read_is_exit_2_with_one_line(
        gone: str, tmp_path: Path, command: str, message: str) -> None:
    files = make_files(tmp_path, [ERASE_JAN])

    args = common(gone, files)
    if command == "verify":  # no --as-of there
        at = args.index("--as-of")
        del args[at:at + 2]
    result = invoke(command, *args)

    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    # the driver's own class (UndefinedTable, ...) becomes SQLAlchemy's, like every other
    # failed statement's
    errors = {message.format(error=e) for e in ("OperationalError", "ProgrammingError")}
    assert any(lines[0].endswith(e) for e in errors), lines[0]
    assert lines[0].startswith("reconciler: error: snapshot ")
