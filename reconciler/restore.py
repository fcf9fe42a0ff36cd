r"""Restore a server dump into an EMPTY scratch database with the database's own client tool,
and take everything it created away again.

Formats (recognised by their first bytes, see :func:`sniff`): ``pg_dump -Fc`` (magic
``PGDMP``, restored with ``pg_restore``), ``pg_dump`` plain SQL (``psql``) and
``mariadb-dump`` / ``mysqldump`` SQL (``mariadb``, else ``mysql``). :func:`restored` checks the
scratch database is empty and that its user cannot leave it, runs the tool as a subprocess
with a timeout, and on the way out drops every schema, table, view, sequence, routine, type,
extension and large object that was not there before, also when anything failed.

What keeps a hostile dump in the scratch is not the regular expressions here (they only give
an early, friendlier refusal) but two things the database's own software enforces:

* ``psql`` runs a plain-SQL dump in its restricted mode (``\restrict KEY``, psql 15.14, 16.10,
  17.6 and later): it refuses every meta-command (``\!``, ``\connect``, ``\copy``, ...)
  wherever it stands; an older psql does not get plain SQL at all.
* The scratch user's rights (:func:`_check_rights`): not a superuser, no CREATEDB/CREATEROLE,
  no server files or programs (PostgreSQL); no global privileges and no grant on another
  database (MariaDB). A user with more is refused unless the caller trusts the dump.

After a timeout or a failure every other session connected to the scratch database is
terminated (and waited for) before the cleanup, so a statement the server is still running
cannot commit after the scratch was emptied; the tool's whole process group is killed.

Secrets and data: the password goes to the tool through its environment (``PGPASSWORD``,
``MYSQL_PWD``), never on its command line; the tool's stdout is discarded and its stderr (at
most the first 64 KiB is kept) is never passed on, because it can quote rows; a failure names
the tool, its exit code and at most a detail matched by a pattern that holds no data.

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
import secrets
import shutil
import signal
import string
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from reconciler.errors import SnapshotError, cannot_connect, redact_url

logger = logging.getLogger(__name__)

_HEAD = 8192
_CONNECT_TIMEOUT = "10"  # seconds, for the tool's own connection
_STDERR_KEPT = 64 * 1024  # bytes of the tool's stderr kept (for the safe detail); rest discarded
_STATEMENT_GRACE = 5.0  # the server stops a statement this long after the tool's timeout
_SESSIONS_GONE = 10.0  # seconds to wait for terminated sessions to end
_LINE = 1 << 20  # bytes read at a time when feeding a dump to psql


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
             timeout: float, trust_dump: bool = False) -> Iterator[str]:
    """Restore ``dump`` into the empty ``scratch_db``; remove what it created afterwards.

    Args:
        dump: the drill's private copy of the dump (only read).
        kind: what :func:`sniff` found.
        scratch_db: SQLAlchemy URL of an EMPTY database of the dump's kind.
        shown: the snapshot's location as it may be printed.
        timeout: seconds the client tool may run before it is stopped.
        trust_dump: restore even when the scratch user has rights beyond the scratch database
            (a superuser, CREATEDB, server files, global or other databases' grants): the dump
            comes from a source the caller trusts. psql's restricted mode applies anyway.

    Raises:
        SnapshotError: the scratch is of the wrong kind, not reachable or not empty, its user
            could leave it (without ``trust_dump``), the client tool is missing, too old for
            a plain-SQL dump, fails or times out, the dump would leave the scratch database,
            or what the restore created cannot be removed.

    Yields:
        ``scratch_db``, restored; everything the restore created is gone once the block ends.
    """
    where = redact_url(scratch_db)
    url = _scratch_url(kind, scratch_db, shown, where)
    tool = _find_tool(kind)
    _check_statements(dump, kind, shown)
    if kind is PG_PLAIN:
        _require_restricted_psql(tool, shown)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        before = _inventory(engine, where)
        tables = [name for name in before if name.startswith("relation ")]
        if tables:
            # Never restore into a database that holds anything: it may be production.
            raise SnapshotError(f"scratch database {where} is not empty ({len(tables)} "
                                "table(s), view(s) or sequence(s)); a drill needs an empty scratch database")
        if not trust_dump:
            _check_rights(engine, where)
        try:
            try:
                _run(tool, kind, dump, url, timeout)
            except BaseException:
                # A statement the server still runs must not commit after the cleanup.
                _end_other_sessions(engine, where)
                raise
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

# An early, friendlier refusal of what pg_dump and mariadb-dump of one database never write.
# It looks at line starts only and is no guarantee: psql's restricted mode and the scratch
# user's rights are (see the module docstring).
_PSQL_ALLOWED = {b"restrict", b"unrestrict"}  # pg_dump >= 15.14 brackets its output with these
_PSQL_COMMAND = re.compile(rb"\s*\\([A-Za-z!?]*)")
_COPY_FROM_STDIN = re.compile(rb"^COPY .* FROM stdin;\s*$")
_LEAVES_DATABASE = re.compile(rb"^(USE\s|CREATE\s+DATABASE\s|CREATE\s+SCHEMA\s)", re.IGNORECASE)
# pg_dump's own brackets, removed before psql gets the dump (psql gets ours instead).
_PG_DUMP_RESTRICT = re.compile(rb"^\\(?:un)?restrict [A-Za-z0-9]+\r?\n$")


def _check_statements(dump: Path, kind: DumpKind, shown: str) -> None:
    """Refuse a SQL dump that plainly switches databases or runs client commands.

    ``pg_restore`` runs no client-side commands and ignores a ``--create`` entry; a SQL dump is
    a script for ``psql`` or ``mariadb``, which would follow ``\\connect`` or ``USE`` out of the
    scratch database. This check only names the usual cases early (line starts, outside COPY
    data); what keeps the dump in the scratch is psql's restricted mode and the user's rights.
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


# First minor release of each major version whose psql has \restrict (August 2025).
_PSQL_RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
_PSQL_VERSION = re.compile(r"\bpsql \(PostgreSQL\) (\d+)\.(\d+)\b")


def _psql_restricts(version_line: str) -> bool:
    """Whether the psql of ``psql --version`` has the restricted mode (``\\restrict``)."""
    found = _PSQL_VERSION.search(version_line)
    if found is None:
        return False
    major, minor = int(found.group(1)), int(found.group(2))
    if major >= 18:
        return True
    return minor >= _PSQL_RESTRICT_SINCE.get(major, 10**6)


def _require_restricted_psql(tool: str, shown: str) -> None:
    """Refuse a plain-SQL dump when psql cannot refuse the dump's meta-commands itself."""
    try:
        done = subprocess.run([tool, "--version"], stdin=subprocess.DEVNULL,  # noqa: S603 - fixed argv
                              capture_output=True, timeout=30, check=False)
        version = done.stdout.decode("ascii", errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    if not _psql_restricts(version):
        raise SnapshotError(f"{shown}: this psql ({version[:40] or 'version unknown'}) cannot "
                            "run a plain-SQL dump safely (it lacks \\restrict, added in 15.14, "
                            "16.10 and 17.6); make the dump with pg_dump -Fc, or install a "
                            "newer postgresql-client")


# -- what the scratch user may do ----------------------------------------------------------------

_HOW_TO = ("restore as a user with rights on the scratch database only (see docs/operations.md, "
           "\"Drills of server dumps\"), or pass --trust-dump if the dump comes from a source "
           "you trust")

# The roles the session can act as (itself and every role it is a member of, which SET ROLE
# reaches) that are superusers, may create databases or roles, replicate, or are predefined
# roles that reach beyond the scratch database: server programs and files, signals to other
# sessions, subscriptions (connections to other databases).
_PG_RIGHTS = (
    "SELECT r.rolname, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication "
    "FROM pg_roles r WHERE pg_has_role(session_user, r.oid, 'MEMBER') "
    "AND (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication "
    "OR r.rolname IN ('pg_execute_server_program', 'pg_write_server_files', "
    "'pg_read_server_files', 'pg_signal_backend', 'pg_create_subscription')) "
    "ORDER BY r.rolname = session_user DESC, r.rolname")
# Other databases that role (or a role it is a member of) owns, and so could drop or alter.
_PG_OTHER_DATABASES = (
    "SELECT count(*) FROM pg_database d WHERE d.datname <> current_database() "
    "AND pg_has_role(session_user, d.datdba, 'MEMBER')")


def _check_rights(engine: sa.Engine, where: str) -> None:
    """Refuse a scratch user whose rights reach beyond the scratch database.

    What a dump's SQL can do is what this user may do; these rights, not the checks of the
    dump's lines, keep a hostile dump inside the scratch database.
    """
    try:
        with engine.connect().execution_options(no_parameters=True) as conn:
            if engine.dialect.name == "postgresql":
                reasons = _pg_reasons(conn)
            else:
                database = str(conn.exec_driver_sql("SELECT DATABASE()").scalar())
                grants = [str(row[0]) for row in conn.exec_driver_sql("SHOW GRANTS")]
                reasons = _mariadb_reasons(grants, database)
    except sa.exc.SQLAlchemyError as exc:
        raise SnapshotError(f"scratch database {where}: "
                            f"{cannot_connect(exc, engine.url.password)}") from None
    if reasons:
        raise SnapshotError(f"scratch database {where}: its user {'; '.join(reasons)}, so a "
                            f"dump could reach beyond the scratch database; {_HOW_TO}")


def _pg_reasons(conn: sa.Connection) -> list[str]:
    reasons: list[str] = []
    user = conn.exec_driver_sql("SELECT session_user").scalar()
    for name, superuser, createdb, createrole, replication in conn.exec_driver_sql(_PG_RIGHTS):
        what = [label for flag, label in ((superuser, "SUPERUSER"), (createdb, "CREATEDB"),
                                          (createrole, "CREATEROLE"),
                                          (replication, "REPLICATION")) if flag]
        if name == user:
            reasons.append(f"is {'a superuser' if superuser else 'allowed ' + '/'.join(what)}")
        elif what:
            reasons.append(f"is a member of {name} ({'/'.join(what)})")
        else:
            reasons.append(f"is a member of {name}")
        if superuser:
            break  # a superuser is a member of every role; the rest says nothing more
    others = conn.exec_driver_sql(_PG_OTHER_DATABASES).scalar() or 0
    if others and not reasons:
        reasons.append(f"owns {others} other database(s)")
    return reasons


_GRANT_ON = re.compile(
    r"^GRANT (?P<privileges>.*) ON (?:(?:TABLE|FUNCTION|PROCEDURE|PACKAGE BODY|PACKAGE) )?"
    r"(?P<database>\*|`(?:[^`]|``)*`)\.(?P<object>\*|`(?:[^`]|``)*`) TO ")
_GRANT_ROLE = re.compile(r"^GRANT (?P<role>`(?:[^`]|``)*`(?:, `(?:[^`]|``)*`)*) TO ")


def _mariadb_reasons(grants: list[str], database: str) -> list[str]:
    """Why the grants (``SHOW GRANTS``) reach beyond ``database``; empty when they do not.

    Only ``USAGE ON *.*`` (the right to connect) is accepted globally; grants on the scratch
    database (or its tables and routines) are fine whatever they are; ``PROXY`` only matters
    when logging in. A role can be switched to with ``SET ROLE`` and is refused.
    """
    reasons: list[str] = []
    for grant in grants:
        if grant.startswith("GRANT PROXY ON ") or grant.startswith("SET DEFAULT ROLE "):
            continue
        found = _GRANT_ON.match(grant)
        if found is None:
            role = _GRANT_ROLE.match(grant)
            reasons.append(f"has the role(s) {role.group('role')}" if role
                           else "has a grant this drill does not know")
            continue
        target = found.group("database")
        if target == "*":
            privileges = found.group("privileges").upper()
            if privileges != "USAGE":
                reasons.append(f"has global privileges ({privileges[:80]} ON *.*)")
            continue
        pattern = target[1:-1].replace("``", "`")
        if _unescaped_wildcard(pattern):
            reasons.append(f"has a grant on {target}, a pattern (_ and % are wildcards in "
                           "grants) that covers other databases too")
        elif re.sub(r"\\(.)", r"\1", pattern) != database:
            reasons.append(f"has a grant on database {target}")
    return reasons


def _unescaped_wildcard(pattern: str) -> bool:
    escaped = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "_%":
            return True
    return False


# -- running the client tool ---------------------------------------------------------------------

# Query keys of a SQLAlchemy URL that are libpq connection keywords (others are not passed on).
_LIBPQ_KEYS = {"host", "hostaddr", "port", "options", "sslmode", "sslcert", "sslkey",
               "sslrootcert", "sslcrl", "application_name", "connect_timeout", "service",
               "target_session_attrs", "gssencmode", "channel_binding", "passfile"}


def _libpq_conninfo(url: sa.URL, options: str = "") -> tuple[str, str | None]:
    """A libpq keyword/value string without the password, and the password.

    ``options`` (server settings, ``-c name=value``) is added to the URL's own ``options``
    (or to ``PGOPTIONS``, which a conninfo ``options`` would otherwise replace).
    """
    params: dict[str, str] = {"connect_timeout": _CONNECT_TIMEOUT}
    for key, value in url.query.items():
        if key in _LIBPQ_KEYS:
            params[key] = value if isinstance(value, str) else value[-1]
    if options:
        own = params.get("options", os.environ.get("PGOPTIONS", ""))
        params["options"] = f"{own} {options}".strip()
    for key, part in (("host", url.host), ("port", url.port), ("user", url.username),
                      ("dbname", url.database)):
        if part is not None:
            params[key] = str(part)
    password = url.password or url.query.get("password")
    secret = password if isinstance(password, str) or password is None else password[-1]

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={quote(value)}" for key, value in params.items()), secret


def _command(tool: str, kind: DumpKind, dump: Path, url: sa.URL,
             timeout: float = 3600.0) -> tuple[list[str], dict[str, str], bool]:
    """The argument list, the extra environment, and whether the dump goes to stdin.

    The tool's session gets a server-side statement timeout a little longer than ``timeout``,
    so no statement can outlive the drill by much even if terminating its session failed
    (a dump can turn it off again: pg_dump's own output sets ``statement_timeout = 0``).
    """
    if kind.is_postgresql:
        limit_ms = int((timeout + _STATEMENT_GRACE) * 1000)
        conninfo, password = _libpq_conninfo(url, f"-c statement_timeout={limit_ms}")
        env = {"PGPASSWORD": password} if password else {}
        if kind is PG_CUSTOM:
            return ([tool, "--no-password", "--exit-on-error", "--no-owner", "--no-privileges",
                     "--no-tablespaces", "--no-publications", "--no-subscriptions",
                     f"--dbname={conninfo}", str(dump)], env, False)
        # The script comes on stdin, behind "\restrict KEY" (see _feed_psql).
        return ([tool, "--no-psqlrc", "--no-password", "--quiet", "-v", "ON_ERROR_STOP=1",
                 f"--dbname={conninfo}", "-f", "-"], env, True)
    limit_s = timeout + _STATEMENT_GRACE
    args = [tool, "--batch", "--binary-mode",  # binary mode: no client commands (\! system)
            f"--connect-timeout={_CONNECT_TIMEOUT}", f"--database={url.database}",
            f"--init-command=SET SESSION max_statement_time={limit_s:.3f}"]
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


def _restrict_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def _feed_psql(dump: Path, sink: IO[bytes], key: str) -> None:
    """Write ``\\restrict KEY`` and then the dump to psql's stdin.

    In restricted mode psql refuses every meta-command but ``\\unrestrict KEY``, and the key
    is new for every run and never in the dump, so none of the dump's meta-commands runs (and
    ``ON_ERROR_STOP`` ends the restore). pg_dump's own ``\\restrict X`` / ``\\unrestrict X``
    lines (psql would refuse the first) become empty lines, so psql's line N is the dump's
    line N - 1. A line psql reads as COPY data is no command, whatever it looks like.
    """
    try:
        with sink, dump.open("rb") as src:
            sink.write(f"\\restrict {key}\n".encode("ascii"))
            at_line_start = True
            while chunk := src.readline(_LINE):
                if at_line_start and _PG_DUMP_RESTRICT.match(chunk):
                    chunk = b"\n"
                sink.write(chunk)
                at_line_start = chunk.endswith(b"\n")
    except OSError:  # psql stopped reading (it failed, or was stopped): its exit code tells
        pass


def _keep_head(source: IO[bytes], kept: bytearray) -> None:
    """Read ``source`` to its end; keep only its first bytes (a dump can raise millions)."""
    with contextlib.suppress(OSError), source:
        while chunk := source.read(_STDERR_KEPT):
            if len(kept) < _STDERR_KEPT:
                kept += chunk[:_STDERR_KEPT - len(kept)]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the tool and everything it started (its own session, its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_SESSIONS_GONE)


def _run(tool: str, kind: DumpKind, dump: Path, url: sa.URL, timeout: float) -> None:
    args, extra_env, via_stdin = _command(tool, kind, dump, url, timeout)
    name = Path(tool).name
    # The child inherits the environment (PGSSLROOTCERT, ~/.pgpass, ~/.my.cnf still apply);
    # the password is added to it, never to the arguments.
    env = {**os.environ, **extra_env}
    logger.debug("restoring a %s with %s", kind.label, name)
    kept = bytearray()
    threads: list[threading.Thread] = []
    with contextlib.ExitStack() as stack:
        if not via_stdin:
            stdin: int | IO[bytes] = subprocess.DEVNULL
        elif kind is PG_PLAIN:
            stdin = subprocess.PIPE
        else:
            stdin = stack.enter_context(dump.open("rb"))
        try:
            process = subprocess.Popen(args, stdin=stdin, stdout=subprocess.DEVNULL,  # noqa: S603 - fixed argv, no shell
                                       stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            raise SnapshotError(f"{name} could not be started "
                                f"({exc.strerror or type(exc).__name__})") from None
        threads.append(threading.Thread(target=_keep_head, args=(process.stderr, kept),
                                        daemon=True))
        if kind is PG_PLAIN:
            threads.append(threading.Thread(target=_feed_psql,
                                            args=(dump, process.stdin, _restrict_key()),
                                            daemon=True))
        for thread in threads:
            thread.start()
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise SnapshotError(f"{name} did not finish the restore within {timeout:g} s and "
                                "was stopped; the scratch database was emptied") from None
        except BaseException:
            _stop(process)
            raise
        finally:
            for thread in threads:
                thread.join(timeout=_SESSIONS_GONE)
    if returncode != 0:
        detail = _safe_detail(bytes(kept), offset=1 if kind is PG_PLAIN else 0)
        raise SnapshotError(f"{name} failed with exit code {returncode}"
                            f"{f' ({detail})' if detail else ''}; its messages are not shown "
                            "because they can quote rows; the scratch database was emptied")


# Parts of a tool's stderr that cannot hold data, and what is shown for them; nothing else is.
# "{line}" is a line number of the dump (psql's, less the line of "\restrict KEY").
_SAFE_DETAILS = (
    (re.compile(r"^pg_restore: error: (did not find magic string in file header|"
                r"unsupported version \([\d.]+\) in file header|"
                r"could not read (?:from )?input file: end of file|input file is too short|"
                r"could not find block ID \d+ in archive|could not execute query|"
                r"COPY failed for table \"[^\"]{1,63}\")"), r"\1"),
    (re.compile(r"^pg_restore: error: connection to server .* failed"),
     "connection to server failed"),
    (re.compile(r"^psql:.*?:(?P<line>\d+): error: backslash commands are restricted"),
     "a psql meta-command at line {line} of the dump, refused"),
    (re.compile(r"^psql:.*?:(?P<line>\d+): (ERROR|FATAL):"), r"\2 at line {line} of the dump"),
    (re.compile(r"^(ERROR \d+ \([0-9A-Z]{5}\) at line \d+)"), r"\1 of the dump"),
)


def _safe_detail(stderr: bytes, offset: int = 0) -> str:
    for line in stderr.decode("utf-8", errors="replace").splitlines():
        for pattern, shown in _SAFE_DETAILS:
            found = pattern.match(line)
            if found is not None:
                text = found.expand(shown)
                if "line" in pattern.groupindex:
                    text = text.replace("{line}", str(int(found.group("line")) - offset))
                return text
    return ""


# -- stopping what the server still runs ---------------------------------------------------------

_PG_OTHERS = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
              "AND pid <> pg_backend_pid()")
_MARIADB_OTHERS = ("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() "
                   "AND ID <> CONNECTION_ID()")


def _end_other_sessions(engine: sa.Engine, where: str) -> None:
    """Terminate every other session connected to the scratch database; wait until they end.

    Killing the client tool does not stop the server: it finishes the running statement and
    commits it, possibly after the cleanup. A session of the same user may terminate its own
    sessions (PostgreSQL) or kill its own threads (MariaDB) without further rights. Failures
    are logged, not raised: the restore's own error is what the caller reports.
    """
    postgresql = engine.dialect.name == "postgresql"
    others = _PG_OTHERS if postgresql else _MARIADB_OTHERS
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT",
                                                no_parameters=True) as conn:
            pids = {int(row[0]) for row in conn.exec_driver_sql(others)}
            for pid in pids:
                statement = (f"SELECT pg_terminate_backend({pid})" if postgresql
                             else f"KILL CONNECTION {pid}")
                try:
                    conn.exec_driver_sql(statement)
                except sa.exc.SQLAlchemyError:  # gone already, or not ours to end
                    logger.debug("scratch database %s: could not end session %d", where, pid)
            deadline = time.monotonic() + _SESSIONS_GONE
            while pids:
                pids &= {int(row[0]) for row in conn.exec_driver_sql(others)}
                if not pids or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    except sa.exc.SQLAlchemyError:
        logger.warning("scratch database %s: could not end the restore's sessions", where)
        return
    if pids:
        logger.warning("scratch database %s: %d session(s) still running after %g s",
                       where, len(pids), _SESSIONS_GONE)


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
