r"""``drill`` restores of dumps that may be hostile or slow: the dump stays in the scratch.

* psql runs a plain-SQL dump in its restricted mode (``\restrict KEY``, a new key per run): no
  meta-command of the dump runs, wherever it stands on a line, whatever comments around it
  say, even with ``--trust-dump``; an older psql gets no plain SQL at all.
* The scratch user's rights keep the dump's SQL in the scratch database: a user that could
  reach beyond it (a superuser, CREATEDB/CREATEROLE, server files or programs, grants on other
  databases or globally) is refused without ``--trust-dump``, and nothing is changed. A
  restricted user (created as docs/operations.md says) restores without the flag, and the
  server refuses what a dump tries beyond the scratch.
* After a timeout or a failure the sessions still working on the scratch are terminated before
  it is emptied (nothing commits afterwards), the tool's whole process group is killed, its
  session has a server-side statement timeout, and only the start of its stderr is kept.

Superuser tests restore as ``postgres``/``root`` with ``trust_dump=True``; restricted ones as a
user of their own with an empty database of its own (both dropped afterwards).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from reconciler import restore
from reconciler.errors import SnapshotError
from tests.reconciler.conftest import ERASE_JAN, OPTOUT_KLAAS
from tests.reconciler.test_cli import invoke, make_files
from tests.reconciler.test_drill import drill_args, scratch_tmp  # noqa: F401
from tests.reconciler.test_drill_dumps import (  # noqa: F401
    FORMATS,
    Backup,
    NewDatabase,
    backup_of,
    leftovers,
    new_database,
    require_tool,
)
from tests.support.databases import MARIADB_ADMIN_URL, PG_ADMIN_URL, require_server

PG_HEAD = "--\n-- PostgreSQL database dump\n--\n\n"  # 4 lines
MDB_HEAD = "-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n--\n\n"
FAILED = "; its messages are not shown because they can quote rows; the scratch database was emptied"


def restore_text(tmp_path: Path, text: str, kind: restore.DumpKind, scratch: str,
                 timeout: float = 30, *, trust_dump: bool = False) -> None:
    path = tmp_path / "dump.sql"
    path.write_text(text)
    with restore.restored(path, kind, scratch, shown="dump.sql", timeout=timeout,
                          trust_dump=trust_dump):
        pass


def admin_engine(server: str) -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL if server == "postgresql" else MARIADB_ADMIN_URL,
                            poolclass=NullPool, isolation_level="AUTOCOMMIT")


def admin_run(server: str, *statements: str) -> None:
    engine = admin_engine(server)
    try:
        with engine.connect().execution_options(no_parameters=True) as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


RestrictedScratch = Callable[..., str]


@pytest.fixture
def restricted_scratch() -> Iterator[RestrictedScratch]:
    """``restricted_scratch(server, *grants)``: the URL of a new user and its new, empty
    database, set up as docs/operations.md says (``grants``: extra SQL run as the admin,
    ``{user}`` and ``{db}`` filled in); both dropped afterwards."""
    with ExitStack() as stack:

        def create(server: str, *grants: str) -> str:
            require_server(server)
            user = db = f"drill{secrets.token_hex(5)}"  # no "_": a wildcard in MariaDB grants
            if server == "postgresql":
                setup = [f'CREATE ROLE "{user}" LOGIN', f'CREATE DATABASE "{db}" OWNER "{user}"']
                teardown = [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)',
                            f'DROP ROLE IF EXISTS "{user}"']
            else:
                setup = [f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4",
                         f"CREATE USER '{user}'@'%'",
                         f"GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'%'"]
                teardown = [f"DROP DATABASE IF EXISTS `{db}`", f"DROP USER IF EXISTS '{user}'@'%'"]
            stack.callback(admin_run, server, *teardown)
            admin_run(server, *setup, *(grant.format(user=user, db=db) for grant in grants))
            url = sa.make_url(PG_ADMIN_URL if server == "postgresql" else MARIADB_ADMIN_URL)
            url = url.set(username=user, password=None, database=db)
            if server == "mariadb":
                url = url.update_query_dict({"charset": "utf8mb4"})
            return url.render_as_string(hide_password=False)

        yield create


# -- psql runs no meta-command of the dump -------------------------------------------------------


@pytest.mark.postgresql
@pytest.mark.parametrize(("body", "line"), [
    pytest.param("SELECT 1; \\! touch {marker}\n", 5, id="after-sql-on-a-line"),
    pytest.param("/*\nCOPY t FROM stdin;\n*/\n\\! touch {marker}\n\\.\n", 8,
                 id="copy-inside-a-comment"),
    pytest.param("\\restrict abc\nSELECT 1;\n\\unrestrict abc\nSELECT 2; \\! touch {marker}\n", 8,
                 id="the-dumps-own-unrestrict"),
    pytest.param("SELECT 1 \\g |touch {marker}\n", 5, id="pipe-to-a-command"),
])
def test_psql_refuses_every_meta_command_of_a_plain_sql_dump_even_when_trusted(
        body: str, line: int, tmp_path: Path, new_database: NewDatabase) -> None:  # noqa: F811
    require_tool("psql")
    scratch = new_database("postgresql")
    marker = tmp_path / "owned"
    with pytest.raises(SnapshotError) as raised:
        restore_text(tmp_path, PG_HEAD + body.format(marker=marker), restore.PG_PLAIN, scratch,
                     trust_dump=True)
    assert str(raised.value) == (f"psql failed with exit code 3 (a psql meta-command at line "
                                 f"{line} of the dump, refused){FAILED}")
    assert not marker.exists()
    assert leftovers(scratch) == []


def test_psql_gets_restrict_with_a_new_key_and_not_the_dumps_own_brackets(tmp_path: Path) -> None:
    path = tmp_path / "dump.sql"
    path.write_bytes(b"--\n\\restrict AbC123\nSELECT 1;\nCOPY t FROM stdin;\n1\n\\.\n"
                     b"\\unrestrict AbC123\n")
    read, write = os.pipe()
    with open(write, "wb") as sink, open(read, "rb") as source:
        restore._feed_psql(path, sink, "K3y")
        fed = source.read()
    assert fed == b"\\restrict K3y\n--\n\nSELECT 1;\nCOPY t FROM stdin;\n1\n\\.\n\n"
    keys = {restore._restrict_key() for _ in range(3)}
    assert len(keys) == 3
    assert all(len(key) == 32 and key.isalnum() for key in keys)


@pytest.mark.parametrize(("version", "restricts"), [
    ("psql (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)", False),
    ("psql (PostgreSQL) 15.14", True), ("psql (PostgreSQL) 16.9", False),
    ("psql (PostgreSQL) 16.10", True), ("psql (PostgreSQL) 17.5", False),
    ("psql (PostgreSQL) 17.6", True), ("psql (PostgreSQL) 18.0", True),
    ("psql (PostgreSQL) 12.22", False), ("psql (PostgreSQL) 18beta1", False), ("", False),
])
def test_only_a_psql_with_restrict_runs_plain_sql(version: str, restricts: bool) -> None:
    assert restore._psql_restricts(version) is restricts


def test_a_plain_sql_dump_is_refused_with_a_psql_without_restrict(
        tmp_path: Path, scratch_tmp: Path) -> None:  # noqa: F811
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "psql"
    fake.write_text("#!/bin/sh\necho 'psql (PostgreSQL) 15.13'\n")
    fake.chmod(0o755)
    path = tmp_path / "shop.sql"
    path.write_text(PG_HEAD + "CREATE TABLE t (a int);\n")
    result = invoke(*drill_args(path, make_files(tmp_path, [ERASE_JAN]), "--scratch-db",
                                "postgresql+psycopg://u:pw@127.0.0.1:1/scratch", "--trust-dump"),
                    env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: {path}: this psql (psql (PostgreSQL) 15.13) cannot run a "
           "plain-SQL dump safely (it lacks \\restrict, added in 15.14, 16.10 and 17.6); make "
           "the dump with pg_dump -Fc, or install a newer postgresql-client\n")


# -- the scratch user's rights --------------------------------------------------------------------

SUPERUSER = {"postgresql": "its user is a superuser", "mariadb": "its user has global "
             "privileges (ALL PRIVILEGES ON *.*)"}


@pytest.mark.parametrize("fmt", [pytest.param(name, marks=getattr(pytest.mark, FORMATS[name][0]))
                                 for name in FORMATS])
def test_a_superuser_is_refused_without_trust_dump_and_nothing_changes(
        fmt: str, backup_of: Backup, new_database: NewDatabase, tmp_path: Path,  # noqa: F811
        scratch_tmp: Path) -> None:  # noqa: F811
    server = FORMATS[fmt][0]
    backup = backup_of(fmt)
    scratch = new_database(server)
    files = make_files(tmp_path, [ERASE_JAN])

    result = invoke(*drill_args(backup, files, "--scratch-db", scratch))

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"reconciler: error: scratch database {sa.make_url(scratch).render_as_string()}: "
        f"{SUPERUSER[server]}, so a dump could reach beyond the scratch database; restore as "
        "a user with rights on the scratch database only (see docs/operations.md, \"Drills of "
        "server dumps\"), or pass --trust-dump if the dump comes from a source you trust\n")
    assert leftovers(scratch) == []
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize(("fmt", "options"), [
    pytest.param("pg-custom", (), marks=pytest.mark.postgresql),
    # a plain dump's "ALTER ... OWNER TO postgres" would fail for the drill user
    pytest.param("pg-plain", ("--no-owner", "--no-privileges"), marks=pytest.mark.postgresql),
    pytest.param("mariadb", (), marks=pytest.mark.mariadb),
])
def test_a_restricted_user_restores_without_the_flag(
        fmt: str, options: tuple[str, ...], backup_of: Backup,  # noqa: F811
        restricted_scratch: RestrictedScratch, tmp_path: Path, scratch_tmp: Path) -> None:  # noqa: F811
    backup = backup_of(fmt, options=options)
    scratch = restricted_scratch(FORMATS[fmt][0])
    report = tmp_path / "drill.json"
    result = invoke(*drill_args(backup, make_files(tmp_path, [ERASE_JAN, OPTOUT_KLAAS]),
                                "--scratch-db", scratch, "--report", str(report)))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert '"rows_changed": 12' in report.read_text()
    assert leftovers(scratch) == []
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.postgresql
@pytest.mark.parametrize(("grants", "reason"), [
    pytest.param(['ALTER ROLE "{user}" CREATEDB'], "its user is allowed CREATEDB", id="createdb"),
    pytest.param(['ALTER ROLE "{user}" CREATEROLE'], "its user is allowed CREATEROLE",
                 id="createrole"),
    pytest.param(['GRANT pg_execute_server_program TO "{user}"'],
                 "its user is a member of pg_execute_server_program", id="server-programs"),
    pytest.param(['GRANT pg_write_server_files TO "{user}"'],
                 "its user is a member of pg_write_server_files", id="server-files"),
    pytest.param(['CREATE ROLE "{user}x" CREATEDB', 'GRANT "{user}x" TO "{user}"'],
                 "its user is a member of {user}x (CREATEDB)", id="via-set-role"),
    pytest.param(['CREATE DATABASE "{db}x" OWNER "{user}"'], "its user owns 1 other "
                 "database(s)", id="owns-another-database"),
])
def test_a_postgresql_user_that_reaches_beyond_the_scratch_is_refused(
        grants: list[str], reason: str, restricted_scratch: RestrictedScratch,
        tmp_path: Path) -> None:
    require_tool("psql")
    scratch = restricted_scratch("postgresql", *grants)
    user = sa.make_url(scratch).username
    marker = tmp_path / "owned"
    try:
        with pytest.raises(SnapshotError, match="^scratch database .*: " + re.escape(reason.format(user=user))
                           + ", so a dump could reach beyond the scratch database; restore as "):
            restore_text(tmp_path, PG_HEAD + f"COPY (SELECT 1) TO PROGRAM 'touch {marker}';\n",
                         restore.PG_PLAIN, scratch)
        assert not marker.exists()
        assert leftovers(scratch) == []
    finally:
        admin_run("postgresql", f'DROP DATABASE IF EXISTS "{user}x"',
                  f'DROP ROLE IF EXISTS "{user}x"')


@pytest.mark.postgresql
@pytest.mark.parametrize("statement", [
    "SELECT 1; COPY (SELECT 1) TO PROGRAM 'touch {marker}';",
    "SELECT 1; COPY (SELECT 1) TO '{marker}';",
    "SELECT 1; CREATE DATABASE {name};",
    "SELECT 1; CREATE ROLE {name};",
    "SELECT 1; ALTER ROLE CURRENT_USER SUPERUSER;",
])
def test_the_server_stops_a_plain_sql_dump_of_a_restricted_user_at_the_scratchs_edge(
        statement: str, restricted_scratch: RestrictedScratch, tmp_path: Path) -> None:
    require_tool("psql")
    scratch = restricted_scratch("postgresql")
    marker = tmp_path / "owned"
    name = f"evil{secrets.token_hex(4)}"
    text = PG_HEAD + "CREATE TABLE a (x int);\n" + statement.format(marker=marker, name=name) + "\n"
    with pytest.raises(SnapshotError, match=r"^psql failed with exit code 3 \(ERROR at line 6 "):
        restore_text(tmp_path, text, restore.PG_PLAIN, scratch)
    assert not marker.exists()
    assert leftovers(scratch) == []
    engine = admin_engine("postgresql")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql(
                f"SELECT count(*) FROM pg_database WHERE datname = '{name}' UNION ALL "
                f"SELECT count(*) FROM pg_roles WHERE rolname = '{name}'").scalars().all() == [0, 0]
    finally:
        engine.dispose()


@pytest.mark.mariadb
@pytest.mark.parametrize("statement", [
    pytest.param("CREATE TABLE a (x int); /*!40000 USE `{other}` */;\nCREATE TABLE stolen (v text);",
                 id="use-in-a-versioned-comment"),
    pytest.param("CREATE TABLE a (x int); CREATE TABLE `{other}`.stolen (v text);",
                 id="database-qualified-name"),
    pytest.param("CREATE TABLE a (x int); CREATE DATABASE `{other}x`;", id="create-database"),
    pytest.param("CREATE TABLE a (x int); DROP DATABASE `{other}`;", id="drop-database"),
])
def test_the_server_stops_a_mariadb_dump_of_a_restricted_user_at_the_scratchs_edge(
        statement: str, restricted_scratch: RestrictedScratch,
        new_database: NewDatabase, tmp_path: Path) -> None:  # noqa: F811
    require_tool("mariadb")
    scratch = restricted_scratch("mariadb")
    other = new_database("mariadb")
    admin_run("mariadb", f"CREATE TABLE `{sa.make_url(other).database}`.kept (x int)")
    text = MDB_HEAD + statement.format(other=sa.make_url(other).database) + "\n"
    with pytest.raises(SnapshotError, match=r"^mariadb failed with exit code 1 \(ERROR 1(044|064|142) "):
        restore_text(tmp_path, text, restore.MARIADB, scratch)
    assert leftovers(other) == ["kept"]
    assert leftovers(scratch) == []


@pytest.mark.parametrize(("grants", "reasons"), [
    (["GRANT USAGE ON *.* TO `drill`@`%`", "GRANT ALL PRIVILEGES ON `drill`.* TO `drill`@`%`"],
     []),
    (["GRANT USAGE ON *.* TO `drill`@`%` IDENTIFIED BY PASSWORD '*AB12'",
      "GRANT SELECT, INSERT ON `drill`.`t` TO `drill`@`%`",
      "GRANT EXECUTE ON PROCEDURE `drill`.`p` TO `drill`@`%`",
      "GRANT PROXY ON ''@'%' TO 'drill'@'%'"], []),
    (["GRANT FILE ON *.* TO `drill`@`%`"], ["has global privileges (FILE ON *.*)"]),
    (["GRANT ALL PRIVILEGES ON `shop`.* TO `drill`@`%`"], ["has a grant on database `shop`"]),
    (["GRANT SELECT ON `shop`.`customers` TO `drill`@`%`"], ["has a grant on database `shop`"]),
    (["GRANT ALL PRIVILEGES ON `dr_ll`.* TO `drill`@`%`"],
     ["has a grant on `dr_ll`, a pattern (_ and % are wildcards in grants) that covers other "
      "databases too"]),
    (["GRANT `admin` TO `drill`@`%`"], ["has the role(s) `admin`"]),
])
def test_mariadb_grants_beyond_the_scratch_database_are_named(
        grants: list[str], reasons: list[str]) -> None:
    assert restore._mariadb_reasons(grants, "drill") == reasons
    assert restore._mariadb_reasons(["GRANT ALL ON `dr\\_ll`.* TO `d`@`%`"], "dr_ll") == []


@pytest.mark.mariadb
def test_a_mariadb_user_with_a_grant_on_another_database_is_refused(
        restricted_scratch: RestrictedScratch, new_database: NewDatabase,  # noqa: F811
        tmp_path: Path) -> None:
    require_tool("mariadb")
    other = str(sa.make_url(new_database("mariadb")).database).replace("_", "\\_")
    scratch = restricted_scratch("mariadb", f"GRANT SELECT ON `{other}`.* TO '{{user}}'@'%'")
    with pytest.raises(SnapshotError, match=re.escape(f": its user has a grant on database "
                                                      f"`{other}`, ")):
        restore_text(tmp_path, MDB_HEAD + "CREATE TABLE a (x int);\n", restore.MARIADB, scratch)
    assert leftovers(scratch) == []


# -- nothing outlives the drill ---------------------------------------------------------------------


@pytest.mark.postgresql
@pytest.mark.parametrize("restricted", [False, True], ids=["superuser", "restricted-user"])
def test_a_statement_still_running_after_the_timeout_never_commits(
        restricted: bool, tmp_path: Path, new_database: NewDatabase,  # noqa: F811
        restricted_scratch: RestrictedScratch) -> None:
    require_tool("psql")
    scratch = restricted_scratch("postgresql") if restricted else new_database("postgresql")
    text = PG_HEAD + ("CREATE TABLE late AS SELECT 'jan@example.nl'::text AS email "
                      "FROM pg_sleep(3);\n")
    with pytest.raises(SnapshotError, match="did not finish"):
        restore_text(tmp_path, text, restore.PG_PLAIN, scratch, timeout=1,
                     trust_dump=not restricted)
    time.sleep(3)
    assert leftovers(scratch) == []


@pytest.mark.mariadb
@pytest.mark.parametrize("restricted", [False, True], ids=["root", "restricted-user"])
def test_a_mariadb_statement_still_running_after_the_timeout_never_commits(
        restricted: bool, tmp_path: Path, new_database: NewDatabase,  # noqa: F811
        restricted_scratch: RestrictedScratch) -> None:
    require_tool("mariadb")
    scratch = restricted_scratch("mariadb") if restricted else new_database("mariadb")
    text = MDB_HEAD + ("DELIMITER ;;\nCREATE PROCEDURE p() BEGIN DO BENCHMARK(7000000, MD5('a')); "
                       "CREATE TABLE late (email text); "
                       "INSERT INTO late VALUES ('jan@example.nl'); END;;\nDELIMITER ;\n"
                       "CALL p();\n")
    with pytest.raises(SnapshotError, match="did not finish"):
        restore_text(tmp_path, text, restore.MARIADB, scratch, timeout=1,
                     trust_dump=not restricted)
    time.sleep(4)
    assert leftovers(scratch) == []


def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.mariadb
def test_the_tools_whole_process_group_is_killed_after_the_timeout(
        tmp_path: Path, new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    scratch = new_database("mariadb")
    marker = tmp_path / "survivor"
    fake_tool(tmp_path, monkeypatch, "mariadb", f"(sleep 1.5; touch {marker}) &\nsleep 30\n")
    with pytest.raises(SnapshotError, match="did not finish"):
        restore_text(tmp_path, MDB_HEAD, restore.MARIADB, scratch, timeout=0.5, trust_dump=True)
    time.sleep(2)
    assert not marker.exists()


@pytest.mark.mariadb
def test_only_the_start_of_the_tools_stderr_is_kept(
        tmp_path: Path, new_database: NewDatabase, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    scratch = new_database("mariadb")
    fake_tool(tmp_path, monkeypatch, "mariadb",
              "echo 'ERROR 1064 (42000) at line 7: quoting jan@example.nl' >&2\n"
              "head -c 20000000 /dev/zero >&2\nexit 1\n")
    seen: list[int] = []
    real = restore._safe_detail

    def spy(stderr: bytes, offset: int = 0) -> str:
        seen.append(len(stderr))
        return real(stderr, offset)

    monkeypatch.setattr(restore, "_safe_detail", spy)
    with pytest.raises(SnapshotError) as raised:
        restore_text(tmp_path, MDB_HEAD, restore.MARIADB, scratch, trust_dump=True)
    assert str(raised.value) == ("mariadb failed with exit code 1 (ERROR 1064 (42000) at line 7 "
                                 f"of the dump){FAILED}")
    assert seen == [64 * 1024]


def test_the_tools_session_has_a_server_side_statement_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGOPTIONS", raising=False)
    pg = sa.make_url("postgresql+psycopg://drill@db/drill?options=-csearch_path%3Dshop")
    for kind in (restore.PG_CUSTOM, restore.PG_PLAIN):
        args, _, _ = restore._command("/usr/bin/tool", kind, tmp_path / "d", pg, 60)
        [dbname] = [arg for arg in args if arg.startswith("--dbname=")]
        assert "options='-csearch_path=shop -c statement_timeout=65000'" in dbname
    args, _, via_stdin = restore._command("/usr/bin/psql", restore.PG_PLAIN, tmp_path / "d", pg, 60)
    assert (args[-2:], via_stdin) == (["-f", "-"], True)  # the dump comes behind \restrict
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=64MB")
    args, _, _ = restore._command("/usr/bin/pg_restore", restore.PG_CUSTOM, tmp_path / "d",
                                  sa.make_url("postgresql+psycopg://drill@db/drill"), 60)
    assert "options='-c work_mem=64MB -c statement_timeout=65000'" in " ".join(args)
    mdb = sa.make_url("mysql+pymysql://drill@db/drill")
    args, _, _ = restore._command("/usr/bin/mariadb", restore.MARIADB, tmp_path / "d", mdb, 60)
    assert "--init-command=SET SESSION max_statement_time=65.000" in args


def test_a_failed_restore_ends_the_scratchs_other_sessions_before_the_cleanup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fail(*args: Any) -> None:
        calls.append("run")
        raise SnapshotError("psql failed")

    monkeypatch.setattr(restore, "_run", fail)
    monkeypatch.setattr(restore, "_find_tool", lambda kind: "/usr/bin/pg_restore")
    monkeypatch.setattr(restore, "_inventory", lambda engine, where: {})
    monkeypatch.setattr(restore, "_check_rights", lambda engine, where: calls.append("rights"))
    monkeypatch.setattr(restore, "_end_other_sessions",
                        lambda engine, where: calls.append("end sessions"))
    monkeypatch.setattr(restore, "_drop_new", lambda *a, **k: calls.append("drop"))
    path = tmp_path / "d"
    path.write_bytes(b"PGDMP")
    with pytest.raises(SnapshotError), restore.restored(
            path, restore.PG_CUSTOM, "postgresql+psycopg://drill@127.0.0.1:1/drill",
            shown="d", timeout=1):
        pass
    assert calls == ["rights", "run", "end sessions", "drop"]
