"""``drill`` of server dumps: a real ``pg_dump`` (custom format and plain SQL) or
``mariadb-dump`` of the shop is restored into an EMPTY scratch database by the database's own
client tool, applied and verified there; the dump is only read, the scratch is empty again
afterwards (also after a failure), and no tool message that could quote a row is shown.

These tests restore as the servers' superuser (``postgres``, ``root``), so they pass
``--trust-dump``; test_drill_restore_security.py covers the restricted drill user, hostile
dumps and what a superuser without the flag gets.

PostgreSQL tests use a database of their own (not a schema): a dump names its schemas. A
missing client tool or server is a skip on a laptop and a failure when ``CI=true``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from reconciler import restore
from reconciler.errors import SnapshotError
from tests.reconciler.conftest import (
    ERASE_JAN,
    OPTOUT_KLAAS,
    SHOP_MAP,
    SHOP_ROWS,
    dump,
    load,
    shop_metadata,
)
from tests.reconciler.test_cli import CANARY, ERASE_CANARY, invoke, make_files
from tests.reconciler.test_drill import drill_args, fingerprint, run, scratch_tmp  # noqa: F401
from tests.reconciler.test_progress import Recorder
from tests.support.databases import MARIADB_ADMIN_URL, PG_ADMIN_URL, require_server

FORMATS = {  # dump format -> (server, the tool that makes it, the tool that restores it)
    "pg-custom": ("postgresql", "pg_dump", "pg_restore"),
    "pg-plain": ("postgresql", "pg_dump", "psql"),
    "mariadb": ("mariadb", "mariadb-dump", "mariadb"),
}
LABELS = {"pg-custom": "pg_dump custom-format dump", "pg-plain": "pg_dump plain-SQL dump",
          "mariadb": "mariadb-dump SQL dump"}
ALL_FORMATS = [pytest.param(name, marks=getattr(pytest.mark, FORMATS[name][0]))
               for name in FORMATS]


def require_tool(name: str) -> None:
    """Skip without the client tool on a laptop; with CI=true a missing tool is a failure."""
    if shutil.which(name) is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {name} is not installed", pytrace=False)
    pytest.skip(f"{name} is not installed")


# -- server databases and their dumps -----------------------------------------------------------


NewDatabase = Callable[[str], str]


@pytest.fixture
def new_database() -> Iterator[NewDatabase]:
    """``new_database(server)``: the URL of a new, empty database there; dropped afterwards."""
    with ExitStack() as stack:

        def create(server: str) -> str:
            require_server(server)
            name = f"t_{secrets.token_hex(6)}"
            admin_url = PG_ADMIN_URL if server == "postgresql" else MARIADB_ADMIN_URL
            admin = sa.create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                if server == "postgresql":
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                else:
                    conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")

            def drop() -> None:
                with admin.connect() as conn:
                    if server == "postgresql":
                        conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
                    else:
                        conn.exec_driver_sql(f"DROP DATABASE `{name}`")
                admin.dispose()

            stack.callback(drop)
            url = sa.make_url(admin_url).set(database=name)
            if server == "mariadb":
                url = url.update_query_dict({"charset": "utf8mb4"})
            return url.render_as_string(hide_password=False)

        yield create


def make_dump(fmt: str, source: str, path: Path, options: tuple[str, ...] = ()) -> Path:
    """Dump the database at ``source`` with the real tool, as a backup job would."""
    server, tool, restorer = FORMATS[fmt]
    require_tool(tool)
    require_tool(restorer)
    url = sa.make_url(source)
    if server == "postgresql":
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        args = [tool, f"--dbname={libpq}", f"--file={path}"]
        args += ["--format=custom"] if fmt == "pg-custom" else ["--format=plain"]
        args += options
    else:
        args = [tool, f"--host={url.host}", f"--port={url.port}", f"--user={url.username}",
                "--protocol=TCP", f"--result-file={path}", *options, str(url.database)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return path


Backup = Callable[..., Path]


@pytest.fixture
def backup_of(tmp_path: Path, new_database: NewDatabase) -> Backup:
    """``backup_of(fmt, complaint=None, options=())``: a dump of the shop (plus a complaint
    row), made with the dump tool's extra ``options``."""

    def build(fmt: str, complaint: str | None = None, options: tuple[str, ...] = ()) -> Path:
        source = new_database(FORMATS[fmt][0])
        rows: dict[str, list[dict[str, Any]]] = {**SHOP_ROWS}
        if complaint is not None:
            rows["complaints"] = [*rows["complaints"], {"id": 9, "body": complaint}]
        load(source, shop_metadata(), rows)
        directory = tmp_path / "backups"
        directory.mkdir(exist_ok=True)
        return make_dump(fmt, source, directory / f"shop-{fmt}.dump", options)

    return build


def leftovers(url: str) -> list[str]:
    """Every table, view or sequence in the database, and every schema but ``public``."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                query = ("SELECT n.nspname || '.' || c.relname FROM pg_class c "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
                         "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                         "AND n.nspname NOT LIKE 'pg_toast%' "
                         "UNION ALL SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                         "('public', 'pg_catalog', 'information_schema') "
                         "AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%'")
            else:
                query = ("SELECT TABLE_NAME FROM information_schema.TABLES "
                         "WHERE TABLE_SCHEMA = DATABASE()")
            return sorted(row[0] for row in conn.execute(sa.text(query)))
    finally:
        engine.dispose()


def corrupt(path: Path, fmt: str, marker: str) -> Path:
    """A broken copy of the dump; for SQL dumps the tool's own error would quote ``marker``."""
    data = path.read_bytes()
    cut = path.with_name(f"cut-{path.name}")
    if fmt == "pg-custom":  # cut off in the middle of the table data
        cut.write_bytes(data[:len(data) * 2 // 3])
    elif fmt == "pg-plain":  # a COPY row without its tab: "invalid input syntax ... 9from <marker>"
        cut.write_bytes(data.replace(f"9\tfrom {marker}".encode(), f"9from {marker}".encode()))
    else:  # a quote too many: "syntax error ... near '<marker>..."
        cut.write_bytes(data.replace(f"'from {marker}".encode(), f"'from' {marker}".encode()))
    assert cut.read_bytes() != data
    return cut


# -- through the command line -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_dump_is_restored_applied_reported_and_removed(
        fmt: str, backup_of: Backup, new_database: NewDatabase, tmp_path: Path,
        scratch_tmp: Path) -> None:  # noqa: F811
    backup = backup_of(fmt)
    backup.chmod(0o444)  # any attempt to open it for writing would fail the drill
    before = fingerprint(backup)
    scratch = new_database(FORMATS[fmt][0])
    files = make_files(tmp_path, [ERASE_JAN, OPTOUT_KLAAS])
    report = tmp_path / "drill.json"

    result = invoke(*drill_args(backup, files, "--scratch-db", scratch, "--report", str(report),
                                "--trust-dump"))

    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(report.read_text())
    assert data["drill"] == {"source": str(backup), "source_sha256": before[0],
                             "source_bytes": backup.stat().st_size,
                             "source_format": LABELS[fmt],
                             "scratch": sa.make_url(scratch).render_as_string(),
                             "scratch_removed": True, "source_written": False}
    assert data["totals"] == {"entries": 2, "residual_findings": 0, "rows_changed": 12}
    assert fingerprint(backup) == before
    assert leftovers(scratch) == []
    assert list(scratch_tmp.iterdir()) == []


class Peek(Recorder):
    """Progress that looks into the scratch when the residual scan starts (after the commit)."""

    def __init__(self, scratch: str) -> None:
        super().__init__()
        self.scratch = scratch
        self.seen: dict[str, list[tuple[Any, ...]]] = {}

    def phase(self, name: str, total: int | None) -> None:
        super().phase(name, total)
        if name == "scan":
            self.seen = dump(self.scratch)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_the_erased_person_is_gone_in_the_restored_scratch(
        fmt: str, backup_of: Backup, new_database: NewDatabase, make_ledger: Any,
        scratch_tmp: Path) -> None:  # noqa: F811
    backup = backup_of(fmt)
    scratch = new_database(FORMATS[fmt][0])
    peek = Peek(scratch)
    result = run(backup, make_ledger(ERASE_JAN, OPTOUT_KLAAS), scratch_db=scratch, progress=peek,
                 trust_dump=True)

    assert result.replay.scan is not None
    assert result.replay.scan.clean
    assert peek.events[:3] == [("phase", "restore", 1), ("step", f"restore with "
                               f"{FORMATS[fmt][2]}", None), ("done", None, None)]
    customers = {row[0]: row for row in peek.seen["customers"]}
    assert "jan" not in repr(customers[1]).lower()  # anonymized in the restored copy
    assert "Piet Pieters" in repr(customers[2])
    assert [row for row in peek.seen["newsletter"] if "jan" in repr(row).lower()] == []
    assert peek.seen["order_lines"] == sorted([(20, 1, "lilies", None)], key=repr)
    assert leftovers(scratch) == []


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_corrupt_dump_is_exit_2_one_line_and_leaves_the_scratch_empty(
        fmt: str, backup_of: Backup, new_database: NewDatabase, tmp_path: Path,
        scratch_tmp: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    backup = corrupt(backup_of(fmt, complaint=f"from {CANARY}"), fmt, CANARY)
    before = fingerprint(backup)
    scratch = new_database(FORMATS[fmt][0])
    files = make_files(tmp_path, [ERASE_CANARY])
    caplog.set_level(logging.DEBUG)

    result = invoke(*drill_args(backup, files, "--scratch-db", scratch, "--trust-dump"))
    debug = invoke("--debug", *drill_args(backup, files, "--scratch-db", scratch,
                                          "--trust-dump"))

    tool = FORMATS[fmt][2]
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"reconciler: error: {tool} failed with exit code ")
    assert result.stderr.endswith("; its messages are not shown because they can quote rows; "
                                  "the scratch database was emptied\n")
    assert result.stderr.count("\n") == 1
    detail = {"pg-custom": r" \(could not read from input file: end of file\)",
              "pg-plain": r" \(ERROR at line \d+ of the dump\)",
              "mariadb": r" \(ERROR 1064 \(42000\) at line \d+ of the dump\)"}[fmt]
    assert re.match(rf"reconciler: error: {tool} failed with exit code \d+{detail}; ",
                    result.stderr), result.stderr
    assert debug.exit_code == 2
    for text in (result.stderr, debug.stdout, debug.stderr, caplog.text):
        assert CANARY not in text.lower()
    assert leftovers(scratch) == []
    assert fingerprint(backup) == before
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_scratch_database_that_is_not_empty_is_refused_and_unchanged(
        fmt: str, backup_of: Backup, new_database: NewDatabase, tmp_path: Path,
        scratch_tmp: Path) -> None:  # noqa: F811
    backup = backup_of(fmt)
    production = new_database(FORMATS[fmt][0])
    load(production, shop_metadata(), SHOP_ROWS)
    before = dump(production)
    files = make_files(tmp_path, [ERASE_JAN])

    result = invoke(*drill_args(backup, files, "--scratch-db", production))

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"reconciler: error: scratch database "
                             f"{sa.make_url(production).render_as_string()} is not empty "
                             "(6 table(s), view(s) or sequence(s)); a drill needs an empty "
                             "scratch database\n")
    assert dump(production) == before
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize(("fmt", "scratch_server", "database"), [
    pytest.param("pg-custom", "mariadb", "PostgreSQL", marks=[pytest.mark.postgresql,
                                                              pytest.mark.mariadb]),
    pytest.param("mariadb", "postgresql", "MariaDB/MySQL", marks=[pytest.mark.postgresql,
                                                                  pytest.mark.mariadb]),
])
def test_a_dump_and_a_scratch_of_different_kinds_are_exit_2(
        fmt: str, scratch_server: str, database: str, backup_of: Backup,
        new_database: NewDatabase, tmp_path: Path, scratch_tmp: Path) -> None:  # noqa: F811
    backup = backup_of(fmt)
    scratch = new_database(scratch_server)
    files = make_files(tmp_path, [ERASE_JAN])

    result = invoke(*drill_args(backup, files, "--scratch-db", scratch))

    shown = sa.make_url(scratch).render_as_string()
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (f"reconciler: error: {backup} is a {LABELS[fmt]}: it restores only "
                             f"into an empty {database} database, not into --scratch-db "
                             f"{shown}\n")
    assert leftovers(scratch) == []


def test_a_dump_needs_a_scratch_database(tmp_path: Path, scratch_tmp: Path) -> None:  # noqa: F811
    fake = tmp_path / "shop.dump"
    fake.write_bytes(b"PGDMP\x01\x0e\x00" + b"\x00" * 100)
    result = invoke(*drill_args(fake, make_files(tmp_path, [ERASE_JAN])))
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: {fake} is a pg_dump custom-format dump: give --scratch-db, "
           "the URL of an empty PostgreSQL database to restore it into\n")
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize(("head", "tools", "scratch"), [
    (b"PGDMP\x01\x0e\x00", "pg_restore", "postgresql+psycopg://u:pw@127.0.0.1:1/scratch"),
    (b"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n", "mariadb or mysql",
     "mysql+pymysql://u:pw@127.0.0.1:1/scratch"),
])
def test_a_missing_client_tool_is_one_line_exit_2(
        head: bytes, tools: str, scratch: str, tmp_path: Path, scratch_tmp: Path) -> None:  # noqa: F811
    fake = tmp_path / "shop.dump"
    fake.write_bytes(head + b"\x00" * 100)
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    result = invoke(*drill_args(fake, make_files(tmp_path, [ERASE_JAN]), "--scratch-db", scratch),
                    env={"PATH": str(empty_path)})
    package = "postgresql-client" if tools == "pg_restore" else "mariadb-client"
    kind = "pg_dump custom-format dump" if tools == "pg_restore" else "mariadb-dump SQL dump"
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: {tools} not found on PATH: a {kind} is restored with it "
           f"(install {package})\n")
    assert "pw" not in result.stderr.replace("PATH", "")


@pytest.mark.parametrize(("text", "stderr"), [
    pytest.param("--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE t (a int);\n"
                 "\\! touch /tmp/owned\n", "{dump}: line 6 holds a psql meta-command; drill runs "
                 "only the SQL pg_dump writes (prefer pg_dump -Fc)", id="psql-shell"),
    pytest.param("--\n-- PostgreSQL database dump\n--\n\\connect shop\n",
                 "{dump}: line 4 connects to another database (pg_dump --create?); drill "
                 "restores into --scratch-db", id="psql-connect"),
    pytest.param("-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n--\n\nCREATE DATABASE "
                 "`shop`;\nUSE `shop`;\n", "{dump}: line 4 switches to another database (a "
                 "mariadb-dump --databases or --all-databases dump); drill restores the dump of "
                 "one database", id="mariadb-databases"),
    pytest.param("--\n-- PostgreSQL database cluster dump\n--\n", "{dump}: a pg_dumpall "
                 "cluster dump; drill restores the dump of one database (pg_dump)",
                 id="pg_dumpall"),
])
def test_a_dump_that_would_leave_the_scratch_is_refused(
        text: str, stderr: str, tmp_path: Path, scratch_tmp: Path) -> None:  # noqa: F811
    require_tool("psql" if "PostgreSQL" in text else "mariadb")
    path = tmp_path / "shop.sql"
    path.write_text(text)
    scratch = ("postgresql+psycopg://u:pw@127.0.0.1:1/scratch" if "PostgreSQL" in text
               else "mysql+pymysql://u:pw@127.0.0.1:1/scratch")
    result = invoke(*drill_args(path, make_files(tmp_path, [ERASE_JAN]), "--scratch-db",
                                scratch))
    assert (result.exit_code, result.stderr) == (
        2, "reconciler: error: " + stderr.format(dump=path) + "\n")
    assert not Path("/tmp/owned").exists()


def test_a_compressed_dump_is_named_as_such(tmp_path: Path, scratch_tmp: Path) -> None:  # noqa: F811
    path = tmp_path / "shop.sql.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 64)
    result = invoke(*drill_args(path, make_files(tmp_path, [ERASE_JAN])))
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: {path}: a compressed file; decompress the dump first (a pg_dump "
           "-Fc dump is compressed inside and needs no outer compression)\n")


# -- secrets and time -----------------------------------------------------------------------------


@pytest.mark.postgresql
def test_the_password_goes_through_the_environment_never_the_command_line(
        backup_of: Backup, new_database: NewDatabase, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, scratch_tmp: Path) -> None:  # noqa: F811
    backup = backup_of("pg-custom")
    password = "s3cret-" + secrets.token_hex(4)  # trust auth: any password is accepted
    scratch = sa.make_url(new_database("postgresql")).set(password=password)
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def spy(args: list[str], **kwargs: Any) -> Any:
        calls.append((list(args), dict(kwargs["env"])))
        return real_popen(args, **kwargs)

    monkeypatch.setattr(restore.subprocess, "Popen", spy)
    report = tmp_path / "drill.json"
    result = invoke(*drill_args(backup, make_files(tmp_path, [ERASE_JAN]), "--scratch-db",
                                scratch.render_as_string(hide_password=False),
                                "--report", str(report), "--trust-dump"))

    assert result.exit_code == 0, result.stderr
    [(args, env)] = calls
    assert not any(password in arg for arg in args)
    assert env["PGPASSWORD"] == password
    for text in (result.stdout, result.stderr, report.read_text()):
        assert password not in text


def test_the_mariadb_password_goes_through_the_environment(tmp_path: Path) -> None:
    url = sa.make_url("mysql+pymysql://drill:s3cret@db.internal:3307/scratch?charset=utf8mb4")
    args, env, via_stdin = restore._command("/usr/bin/mariadb", restore.MARIADB,
                                            tmp_path / "d.sql", url)
    assert not any("s3cret" in arg for arg in args)
    assert env == {"MYSQL_PWD": "s3cret"}
    assert via_stdin
    assert "--binary-mode" in args  # no client commands (\! system) from the dump


@pytest.mark.postgresql
def test_a_restore_that_runs_too_long_is_stopped_and_the_scratch_emptied(
        backup_of: Backup, new_database: NewDatabase, make_ledger: Any,
        scratch_tmp: Path) -> None:  # noqa: F811
    backup = backup_of("pg-plain")
    scratch = new_database("postgresql")
    with pytest.raises(SnapshotError, match=r"^psql did not finish the restore within 0.001 s "
                                            r"and was stopped; the scratch database was emptied$"):
        run(backup, make_ledger(ERASE_JAN), SHOP_MAP, scratch_db=scratch, restore_timeout=0.001,
            trust_dump=True)
    assert leftovers(scratch) == []
    assert list(scratch_tmp.iterdir()) == []


def test_sniffing_tells_the_formats_apart(tmp_path: Path) -> None:
    path = tmp_path / "f"
    for head, kind in [(b"PGDMP\x01", restore.PG_CUSTOM),
                       (b"--\n-- PostgreSQL database dump\n--\n", restore.PG_PLAIN),
                       (b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19 "
                        b"Distrib\n", restore.MARIADB),
                       (b"-- MySQL dump 10.13  Distrib 8.0.36\n", restore.MARIADB),
                       (b"CREATE TABLE t (a int);\n", None)]:
        path.write_bytes(head)
        assert restore.sniff(path, "f") is kind
