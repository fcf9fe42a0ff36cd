"""Restore a server dump into an EMPTY scratch database with the database's own client tool,
and take everything it created away again.

Formats (recognised by their first bytes, see :func:`sniff`): ``pg_dump -Fc`` (magic
``PGDMP``, restored with ``pg_restore``), ``pg_dump`` plain SQL (``psql``) and
``mariadb-dump`` / ``mysqldump`` SQL (``mariadb``, else ``mysql``). :func:`restored` checks the
scratch database is empty, runs the tool as a subprocess with a timeout, and on the way out
drops every schema, table, view, sequence, routine, type, extension and large object that was
not there before, also when anything failed.

Secrets and data: the password goes to the tool through its environment (``PGPASSWORD``,
``MYSQL_PWD``), never on its command line; the tool's stdout is discarded and its stderr is
never passed on, because it can quote rows; a failure names the tool, its exit code and at most
a detail matched by a pattern that holds no data.

Left out on purpose: no printing, no clock, no configuration from the environment (the tool
inherits the process's environment, e.g. ``PGSSLROOTCERT``, and gets the password added);
``pg_dump -Fd``/``-Ft``, ``pg_dumpall`` and multi-database MariaDB dumps are refused; the
source file is never opened here (the drill passes its private copy).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from reconciler.errors import SnapshotError, cannot_connect, redact_url

logger = logging.getLogger(__name__)

_HEAD = 8192
_CONNECT_TIMEOUT = "10"  # seconds, for the tool's own connection


@dataclass(frozen=True)
class DumpKind:
    """A dump format this module restores."""

    label: str  # shown in messages and the report
    database: str  # "PostgreSQL" or "MariaDB/MySQL"
    tools: tuple[str, ...]  # the client binaries that restore it, first found wins

    @property
    def is_postgresql(self) -> bool:
        """Returns: whether the dump needs a PostgreSQL scratch database."""
        return self.database == "PostgreSQL"


PG_CUSTOM = DumpKind("pg_dump custom-format dump", "PostgreSQL", ("pg_restore",))
PG_PLAIN = DumpKind("pg_dump plain-SQL dump", "PostgreSQL", ("psql",))
MARIADB = DumpKind("mariadb-dump SQL dump", "MariaDB/MySQL", ("mariadb", "mysql"))

_MARIADB_HEADER = re.compile(r"^-- (MariaDB|MySQL) dump \d")


def sniff(path: Path, shown: str) -> DumpKind | None:
    """Recognise a dump by its first bytes.

    Args:
        path: the drill's private copy of the snapshot.
        shown: the snapshot's location as it may be printed.

    Raises:
        SnapshotError: a dump this drill cannot restore (compressed, tar, directory format's
            toc, pg_dumpall).

    Returns:
        The dump's kind, or None when it is no dump this module knows.
    """
    with path.open("rb") as src:
        head = src.read(_HEAD)
    if head.startswith(b"PGDMP"):
        return PG_CUSTOM
    if head.startswith((b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh")):
        raise SnapshotError(f"{shown}: a compressed file; decompress the dump first (a "
                            "pg_dump -Fc dump is compressed inside and needs no outer compression)")
    if head[257:262] == b"ustar":
        raise SnapshotError(f"{shown}: a tar archive (pg_dump -Ft?); drill restores pg_dump "
                            "custom-format (-Fc) or plain-SQL dumps")
    lines = head.decode("utf-8", errors="replace").splitlines()[:12]
    if "-- PostgreSQL database cluster dump" in lines:
        raise SnapshotError(f"{shown}: a pg_dumpall cluster dump; drill restores the dump of "
                            "one database (pg_dump)")
    if "-- PostgreSQL database dump" in lines:
        return PG_PLAIN
    if any(_MARIADB_HEADER.match(line) for line in lines):
        return MARIADB
    return None


@contextmanager
def restored(dump: Path, kind: DumpKind, scratch_db: str, *, shown: str,
             timeout: float) -> Iterator[str]:
    """Restore ``dump`` into the empty ``scratch_db``; remove what it created afterwards.

    Args:
        dump: the drill's private copy of the dump (only read).
        kind: what :func:`sniff` found.
        scratch_db: SQLAlchemy URL of an EMPTY database of the dump's kind.
        shown: the snapshot's location as it may be printed.
        timeout: seconds the client tool may run before it is stopped.

    Raises:
        SnapshotError: the scratch is of the wrong kind, not reachable or not empty, the
            client tool is missing, fails or times out, the dump would leave the scratch
            database, or what the restore created cannot be removed.

    Yields:
        ``scratch_db``, restored; everything the restore created is gone once the block ends.
    """
    where = redact_url(scratch_db)
    url = _scratch_url(kind, scratch_db, shown, where)
    tool = _find_tool(kind)
    _check_statements(dump, kind, shown)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        before = _inventory(engine, where)
        tables = [name for name in before if name.startswith("relation ")]
        if tables:
            # Never restore into a database that holds anything: it may be production.
            raise SnapshotError(f"scratch database {where} is not empty ({len(tables)} "
                                "table(s), view(s) or sequence(s)); a drill needs an empty scratch database")
        try:
            _run(tool, kind, dump, url, timeout)
            yield scratch_db
        except BaseException:
            _drop_new(engine, before, where, strict=False)
            raise
        _drop_new(engine, before, where, strict=True)
    finally:
        engine.dispose()


def _scratch_url(kind: DumpKind, scratch_db: str, shown: str, where: str) -> sa.URL:
    if "://" not in scratch_db:
        raise SnapshotError(f"--scratch-db {where}: expected a database URL")
    try:
        url = sa.make_url(scratch_db)
        backend = url.get_backend_name()
    except (sa.exc.ArgumentError, ValueError):
        raise SnapshotError(f"scratch database {where}: not a usable database URL") from None
    wanted = ("postgresql",) if kind.is_postgresql else ("mysql", "mariadb")
    if backend not in wanted:
        raise SnapshotError(f"{shown} is a {kind.label}: it restores only into an empty "
                            f"{kind.database} database, not into --scratch-db {where}")
    if not kind.is_postgresql and not url.database:
        raise SnapshotError(f"--scratch-db {where}: name the scratch database in the URL")
    return url


def _find_tool(kind: DumpKind) -> str:
    for name in kind.tools:
        found = shutil.which(name)
        if found:
            return found
    package = "postgresql-client" if kind.is_postgresql else "mariadb-client"
    raise SnapshotError(f"{' or '.join(kind.tools)} not found on PATH: a {kind.label} is "
                        f"restored with it (install {package})")


# -- what the dump may do ------------------------------------------------------------------------

_PSQL_ALLOWED = {b"restrict", b"unrestrict"}  # pg_dump >= 15.14 brackets its output with these
_PSQL_COMMAND = re.compile(rb"\s*\\([A-Za-z!?]*)")
_COPY_FROM_STDIN = re.compile(rb"^COPY .* FROM stdin;\s*$")
_LEAVES_DATABASE = re.compile(rb"^(USE\s|CREATE\s+DATABASE\s|CREATE\s+SCHEMA\s)", re.IGNORECASE)


def _check_statements(dump: Path, kind: DumpKind, shown: str) -> None:
    """Refuse a SQL dump that would switch databases or run client commands.

    ``pg_restore`` runs no client-side commands and ignores a ``--create`` entry; a SQL dump is
    a script for ``psql`` or ``mariadb``, which would follow ``\\connect`` or ``USE`` out of the
    scratch database, and ``psql`` would run ``\\!`` shell commands.
    """
    if kind is PG_CUSTOM:
        return
    in_copy = False
    with dump.open("rb") as src:
        for number, line in enumerate(src, 1):
            if kind is MARIADB:
                if _LEAVES_DATABASE.match(line):
                    raise SnapshotError(f"{shown}: line {number} switches to another database "
                                        "(a mariadb-dump --databases or --all-databases dump); "
                                        "drill restores the dump of one database")
                continue
            if in_copy:  # COPY data: psql reads it verbatim up to "\."
                in_copy = line.rstrip(b"\r\n") != b"\\."
                continue
            if _COPY_FROM_STDIN.match(line):
                in_copy = True
                continue
            command = _PSQL_COMMAND.match(line)
            if command is None or command.group(1) in _PSQL_ALLOWED:
                continue
            if command.group(1) in (b"connect", b"c"):
                raise SnapshotError(f"{shown}: line {number} connects to another database "
                                    "(pg_dump --create?); drill restores into --scratch-db")
            raise SnapshotError(f"{shown}: line {number} holds a psql meta-command; drill runs "
                                "only the SQL pg_dump writes (prefer pg_dump -Fc)")


# -- running the client tool ---------------------------------------------------------------------

# Query keys of a SQLAlchemy URL that are libpq connection keywords (others are not passed on).
_LIBPQ_KEYS = {"host", "hostaddr", "port", "options", "sslmode", "sslcert", "sslkey",
               "sslrootcert", "sslcrl", "application_name", "connect_timeout", "service",
               "target_session_attrs", "gssencmode", "channel_binding", "passfile"}


def _libpq_conninfo(url: sa.URL) -> tuple[str, str | None]:
    """A libpq keyword/value string without the password, and the password."""
    params: dict[str, str] = {"connect_timeout": _CONNECT_TIMEOUT}
    for key, value in url.query.items():
        if key in _LIBPQ_KEYS:
            params[key] = value if isinstance(value, str) else value[-1]
    for key, part in (("host", url.host), ("port", url.port), ("user", url.username),
                      ("dbname", url.database)):
        if part is not None:
            params[key] = str(part)
    password = url.password or url.query.get("password")
    secret = password if isinstance(password, str) or password is None else password[-1]

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={quote(value)}" for key, value in params.items()), secret


def _command(tool: str, kind: DumpKind, dump: Path,
             url: sa.URL) -> tuple[list[str], dict[str, str], bool]:
    """The argument list, the extra environment, and whether the dump goes to stdin."""
    if kind.is_postgresql:
        conninfo, password = _libpq_conninfo(url)
        env = {"PGPASSWORD": password} if password else {}
        if kind is PG_CUSTOM:
            return ([tool, "--no-password", "--exit-on-error", "--no-owner", "--no-privileges",
                     "--no-tablespaces", "--no-publications", "--no-subscriptions",
                     f"--dbname={conninfo}", str(dump)], env, False)
        return ([tool, "--no-psqlrc", "--no-password", "--quiet", "-v", "ON_ERROR_STOP=1",
                 f"--dbname={conninfo}", "-f", str(dump)], env, False)
    args = [tool, "--batch", "--binary-mode",  # binary mode: no client commands (\! system)
            f"--connect-timeout={_CONNECT_TIMEOUT}", f"--database={url.database}"]
    socket = url.query.get("unix_socket")
    if isinstance(socket, str):
        args.append(f"--socket={socket}")
    elif url.host:
        args += [f"--host={url.host}", "--protocol=TCP"]
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--user={url.username}")
    return args, ({"MYSQL_PWD": url.password} if url.password else {}), True


def _run(tool: str, kind: DumpKind, dump: Path, url: sa.URL, timeout: float) -> None:
    args, extra_env, via_stdin = _command(tool, kind, dump, url)
    name = Path(tool).name
    # The child inherits the environment (PGSSLROOTCERT, ~/.pgpass, ~/.my.cnf still apply);
    # the password is added to it, never to the arguments.
    env = {**os.environ, **extra_env}
    logger.debug("restoring a %s with %s", kind.label, name)
    try:
        with contextlib.ExitStack() as stack:
            stdin = stack.enter_context(dump.open("rb")) if via_stdin else subprocess.DEVNULL
            done = subprocess.run(args, stdin=stdin, stdout=subprocess.DEVNULL,  # noqa: S603 - fixed argv, no shell
                                  stderr=subprocess.PIPE, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SnapshotError(f"{name} did not finish the restore within {timeout:g} s and was "
                            "stopped; the scratch database was emptied") from None
    except OSError as exc:
        raise SnapshotError(f"{name} could not be started "
                            f"({exc.strerror or type(exc).__name__})") from None
    if done.returncode != 0:
        detail = _safe_detail(done.stderr)
        raise SnapshotError(f"{name} failed with exit code {done.returncode}"
                            f"{f' ({detail})' if detail else ''}; its messages are not shown "
                            "because they can quote rows; the scratch database was emptied")


# Parts of a tool's stderr that cannot hold data, and what is shown for them; nothing else is.
_SAFE_DETAILS = (
    (re.compile(r"^pg_restore: error: (did not find magic string in file header|"
                r"unsupported version \([\d.]+\) in file header|"
                r"could not read (?:from )?input file: end of file|input file is too short|"
                r"could not find block ID \d+ in archive|could not execute query|"
                r"COPY failed for table \"[^\"]{1,63}\")"), r"\1"),
    (re.compile(r"^pg_restore: error: connection to server .* failed"),
     "connection to server failed"),
    (re.compile(r"^psql:.*?:(\d+): (ERROR|FATAL):"), r"\2 at line \1 of the dump"),
    (re.compile(r"^(ERROR \d+ \([0-9A-Z]{5}\) at line \d+)"), r"\1 of the dump"),
)


def _safe_detail(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", errors="replace").splitlines():
        for pattern, shown in _SAFE_DETAILS:
            found = pattern.match(line)
            if found is not None:
                return found.expand(shown)
    return ""


# -- what the scratch holds ----------------------------------------------------------------------

# Every query keeps to user schemas (not pg_catalog, information_schema, pg_toast*, pg_temp_*)
# and leaves out objects that belong to an extension (pg_depend deptype 'e').
_PG_INVENTORY = {
    # kind -> query returning (quoted name for DROP, DROP keyword); dropped in this order
    "extension": "SELECT quote_ident(extname), 'EXTENSION' FROM pg_extension",
    "schema": (
        "SELECT quote_ident(n.nspname), 'SCHEMA' FROM pg_namespace n "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"),
    "relation": (
        "SELECT c.oid::regclass::text, CASE c.relkind WHEN 'v' THEN 'VIEW' "
        "WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' "
        "WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
        "AND d.objid = c.oid AND d.deptype = 'e')"),
    "routine": (
        "SELECT p.oid::regprocedure::text, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' "
        "WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
        "AND d.objid = p.oid AND d.deptype = 'e')"),
    "type": (
        "SELECT t.oid::regtype::text, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END "
        "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "LEFT JOIN pg_class c ON c.oid = t.typrelid "
        "WHERE (t.typtype IN ('d', 'e', 'r') OR c.relkind = 'c') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass "
        "AND d.objid = t.oid AND d.deptype = 'e')"),
    "large object": "SELECT oid::text, 'LARGE OBJECT' FROM pg_largeobject_metadata",
}
_MARIADB_INVENTORY = {
    "relation": ("SELECT TABLE_NAME, CASE TABLE_TYPE WHEN 'VIEW' THEN 'VIEW' WHEN 'SEQUENCE' "
                 "THEN 'SEQUENCE' ELSE 'TABLE' END FROM information_schema.TABLES "
                 "WHERE TABLE_SCHEMA = DATABASE()"),
    "routine": ("SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = DATABASE()"),
    "event": ("SELECT EVENT_NAME, 'EVENT' FROM information_schema.EVENTS "
              "WHERE EVENT_SCHEMA = DATABASE()"),
}


def _inventory(engine: sa.Engine, where: str) -> dict[str, str]:
    """``{"<kind> <name>": DROP statement}`` for every object a restore could create."""
    queries = _PG_INVENTORY if engine.dialect.name == "postgresql" else _MARIADB_INVENTORY
    found: dict[str, str] = {}
    try:
        with engine.connect().execution_options(no_parameters=True) as conn:
            for kind, query in queries.items():
                for name, keyword in conn.exec_driver_sql(query):
                    found[f"{kind} {name}"] = _drop_statement(engine, keyword, name)
    except sa.exc.SQLAlchemyError as exc:
        raise SnapshotError(f"scratch database {where}: "
                            f"{cannot_connect(exc, engine.url.password)}") from None
    return found


def _drop_statement(engine: sa.Engine, keyword: str, name: str) -> str:
    if keyword == "LARGE OBJECT":
        return f"SELECT lo_unlink({int(name)})"
    if engine.dialect.name == "postgresql":  # names come quoted from the catalog (regclass, ...)
        return f"DROP {keyword} IF EXISTS {name} CASCADE"
    return f"DROP {keyword} IF EXISTS `{name.replace('`', '``')}`"


def _drop_new(engine: sa.Engine, before: dict[str, str], where: str, *, strict: bool) -> None:
    """Drop what is in the scratch now and was not before (extensions and schemas first)."""
    try:
        after = _inventory(engine, where)
    except SnapshotError:
        if strict:
            raise
        logger.warning("scratch database %s: could not list what the restore created", where)
        return
    new = [statement for name, statement in after.items() if name not in before]
    failed = 0
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT",
                                                no_parameters=True) as conn:
            if engine.dialect.name != "postgresql":
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for statement in new:
                try:
                    conn.exec_driver_sql(statement)
                except sa.exc.SQLAlchemyError:
                    failed += 1
    except sa.exc.SQLAlchemyError:
        failed = len(new)
    logger.debug("scratch database %s: dropped %d object(s)", where, len(new) - failed)
    if failed:
        logger.warning("scratch database %s: could not drop %d object(s) the restore created",
                       where, failed)
        if strict:
            raise SnapshotError(f"scratch database {where}: could not drop {failed} object(s) "
                                "the restore created; drop them by hand")


__all__ = ["MARIADB", "PG_CUSTOM", "PG_PLAIN", "DumpKind", "restored", "sniff"]
