"""Benchmark the reconciler: `reconciler apply` against a naive script and a set-based floor.

Usage (from the repository root, in the project's virtualenv):

    python scripts/bench_reconcile.py                                # 1,000,000 subjects, 100,000 requests
    python scripts/bench_reconcile.py --subjects 20000 --requests 2000 --db sqlite   # quick try
    python scripts/bench_reconcile.py --db postgresql --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python scripts/bench_reconcile.py --subjects 50000 --requests 5000   # the figures in docs/benchmarks.md

The default size does not finish with the reconciler as of commit 234dff3 (its time grows with
N x K, see docs/benchmarks.md, "Reconciler"): use the 50,000 / 5,000 run, or --apply-timeout.

What one run does, per database (SQLite file, PostgreSQL over TCP):

1. Builds a florist webshop (the schema and data map of ``scripts/florist_shop.py``) with N
   subjects and about six related rows each (orders, order lines, invoices under the 7-year
   retention, newsletter rows keyed by e-mail without a foreign key, web sessions, a few
   complaints and contact-form messages), by bulk insert (SQLite ``executemany``, PostgreSQL
   ``COPY``). E-mail addresses are stored the way web forms collect them (mixed case, stray
   spaces), phone numbers in four spellings, so matching must be normalisation-aware. The
   snapshot has the indexes a shop has (foreign-key columns, unique e-mail and customer
   number, and ``lower(trim(email))`` expression indexes that the hand-written scripts use)
   and fresh planner statistics (ANALYZE).
2. Builds ONE ledger of K erasure requests plus K/10 objections (marketing, tracking cookies)
   through the public API (``Ledger.create``, ``ledger.append(batch, now=...)``). 90 % of the
   erasure requests name a customer of the snapshot, 10 % name nobody in it.
3. Times, each on a fresh copy of the snapshot (SQLite: file copy; PostgreSQL:
   ``CREATE DATABASE ... TEMPLATE``):
   (a) ``reconciler apply`` through its CLI in a child process (``reconciler.cli.main`` with
       timers wrapped around a few library functions for the breakdown; start-up, ledger
       verification and decryption, replay, residual scan and report included);
   (b) a naive hand-written restore script: the requests one at a time, in one transaction,
       looking the customer up by each identifier, then DELETE/UPDATE statements per table;
   (c) the floor: hand-written set-based SQL, one statement per table and action, with the
       requests' normalised identifiers already staged in a table (not timed).
   It checks that (a), (b) and (c) leave the same end state (row count and content digest
   per table, and no ledger e-mail left), runs ``reconciler verify`` on the applied copy and
   sets its scan time beside a plain SELECT of the same columns, and measures the peak RSS
   of the apply child at N and N/4 subjects (same ledger).
4. Prints a Markdown table (with the command, machine and date) for docs/benchmarks.md.

PostgreSQL databases are named ``bench_rc_*`` and dropped at the end; the SQLite files and the
ledger live in ``--workdir`` (a temporary folder by default). MariaDB is not covered.

``--apply-timeout SECONDS`` kills an apply that runs longer and reports it as "> SECONDS"
(verify then scans the floor's copy, which has the same end state). To measure a candidate fix
without editing reconciler/, set ``BENCH_RECONCILE_PRELOAD=module`` (on ``PYTHONPATH``): the
child imports it before it runs the CLI, so it can monkeypatch the library.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import importlib
import json
import os
import platform
import random
import resource
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
import florist_shop

from erasure_ledger import Entry, Identifier, Keyring, Ledger, open_store
from reconciler.fanout import default_workers

AS_OF = dt.date(2026, 11, 20)
LEDGER_NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_PREFIX = "bench_rc"
CHUNK = 50_000  # subjects generated and inserted per batch
APPEND_BATCH = 25_000  # ledger entries per Ledger.append call

# ASCII names only: SQL lower() on SQLite folds ASCII only, and the hand-written scripts (b)
# and (c) rely on lower(trim(email)). The reconciler itself also handles non-ASCII (tests).
FIRST = ["Jan", "Anouk", "Pieter", "Sanne", "Dirk", "Fleur", "Henk", "Lotte", "Bram", "Iris",
         "Joost", "Noor", "Kees", "Femke", "Ruud", "Maud", "Sem", "Eva", "Thijs", "Jose"]
LAST = ["de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
        "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
        "Brouwer", "de Wit", "Dijkstra", "Muller"]
DOMAINS = ["gmail.com", "hotmail.nl", "ziggo.nl", "kpnmail.nl"]
BANKS = ["ABNA", "RABO", "INGB", "TRIO", "SNSB"]

COLUMNS: dict[str, tuple[str, ...]] = {
    t.name: tuple(c.name for c in t.columns) for t in florist_shop.metadata.sorted_tables
}
TABLES = tuple(COLUMNS)  # parents before children
INDEXES = [
    "CREATE INDEX ix_orders_customer ON orders (customer_id)",
    "CREATE INDEX ix_order_lines_order ON order_lines (order_id)",
    "CREATE INDEX ix_invoices_customer ON invoices (customer_id)",
    "CREATE INDEX ix_complaints_customer ON complaints (customer_id)",
    "CREATE INDEX ix_web_sessions_customer ON web_sessions (customer_id)",
    "CREATE INDEX ix_customers_email_ci ON customers (lower(trim(email)))",
    "CREATE INDEX ix_newsletter_address_ci ON newsletter (lower(trim(address)))",
    "CREATE INDEX ix_contact_sender_ci ON contact_messages (lower(trim(sender_email)))",
]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the shop's data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """What the ledger needs to know about subject ``i`` (a pure function of ``i``)."""

    email: str  # canonical (lower case)
    stored_email: str  # as the snapshot spells it
    cust_no: str
    phone_digits: str  # the 8 digits after 06
    iban: str


def person(i: int) -> Person:
    h = (i * 2654435761) & 0xFFFFFFFF
    first, last = FIRST[h % 20], LAST[(h >> 8) % 20]
    email = f"{first}.{last}".lower().replace(" ", "") + f"{i}@{DOMAINS[(h >> 16) % 4]}"
    stored = email.title() if i % 4 == 0 else (f" {email} " if i % 7 == 0 else email)
    bank, account = BANKS[(h >> 4) % 5], f"{i:010d}"
    digits = "".join(str(int(c, 36)) for c in bank + account + "NL00")
    iban = f"NL{98 - int(digits) % 97:02d}{bank}{account}"
    return Person(email=email, stored_email=stored, cust_no=f"K-{10000 + i}",
                  phone_digits=f"{20000000 + i}", iban=iban)


def stored_phone(i: int, d: str) -> str:
    """Four ways people write the same Dutch mobile number."""
    return (f"06-{d}", f"+31 6 {d[:4]} {d[4:]}", f"06{d}", f"06 {d[0:2]} {d[2:4]} {d[4:6]} {d[6:8]}")[i % 4]


class Clock:
    """SQLAlchemy's SQLite text formats for dates and datetimes (PostgreSQL parses them too)."""

    def __init__(self) -> None:
        self.base = dt.datetime.combine(AS_OF, dt.time())
        self.cache: dict[int, tuple[str, str]] = {}

    def ago(self, days: int) -> tuple[str, str]:
        """(datetime text, date text) ``days`` before AS_OF."""
        hit = self.cache.get(days)
        if hit is None:
            moment = self.base - dt.timedelta(days=days)
            hit = self.cache[days] = (moment.strftime("%Y-%m-%d %H:%M:%S.%f"), moment.strftime("%Y-%m-%d"))
        return hit


def shop_rows(ids: Iterable[int], seed: int = 42) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Rows of every table, in chunks of CHUNK subjects, in COLUMNS order."""
    rnd = random.Random(seed)
    clock = Clock()
    n = {t: 0 for t in TABLES}
    buf: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
    for count, i in enumerate(ids, 1):
        p = person(i)
        h = (i * 2654435761) & 0xFFFFFFFF
        first, last = FIRST[h % 20], LAST[(h >> 8) % 20]
        name = f"{first} {last}"
        phone = stored_phone(i, p.phone_digits)
        city = florist_shop.CITIES[h % 6][0]
        # 2 % inactive for more than two years (the retention rule erases them)
        inactive = 800 + rnd.randint(0, 900) if i % 50 == 7 else rnd.randint(1, 700)
        active_at = clock.ago(inactive)[0]
        opt_in = rnd.random() < 0.6
        business = i % 9 == 0
        buf["customers"].append((
            i, p.cust_no, name, f"{florist_shop.STREETS[h % 6]} {1 + h % 180}", f"{5000 + h % 999} AB",
            city, p.stored_email, phone, f"{1950 + h % 55}-{1 + h % 12:02d}-{1 + h % 28:02d}",
            ("v", "m", "x")[h % 3], p.iban, f"{first.lower()}{i}",
            f"{30000000 + i}" if business else None, "inkoper" if business else None,
            int(opt_in), int(rnd.random() < 0.5), active_at,
        ))
        for _ in range(rnd.choice((0, 1, 1, 2))):
            n["orders"] += 1
            oid = n["orders"]
            ordered, ordered_day = clock.ago(inactive + rnd.randint(0, 3000))
            buf["orders"].append((oid, i, ordered, name, f"{florist_shop.STREETS[h % 6]} {1 + h % 180}, {city}",
                                  rnd.choice(("Gefeliciteerd!", "Sterkte", f"Liefs, {first}", None)),
                                  rnd.randint(1500, 12000)))
            for _ in range(rnd.choice((1, 1, 2, 2))):
                n["order_lines"] += 1
                buf["order_lines"].append((n["order_lines"], oid, rnd.choice(florist_shop.PRODUCTS),
                                           rnd.randint(1, 3)))
            n["invoices"] += 1
            buf["invoices"].append((n["invoices"], i, ordered_day, name, f"{5000 + h % 999} AB {city}",
                                    p.iban, rnd.randint(1500, 12000)))
        if opt_in:
            n["newsletter"] += 1
            buf["newsletter"].append((n["newsletter"], p.email.upper() if i % 5 == 0 else p.email,
                                      clock.ago(inactive + 400)[0]))
        if i % 6 == 0:
            n["complaints"] += 1
            buf["complaints"].append((n["complaints"], i, active_at,
                                      f"Het boeket kwam verlept aan. Bel me op {phone} of mail {p.email}."))
        if i % 8 == 0:
            n["contact_messages"] += 1
            buf["contact_messages"].append((n["contact_messages"], p.email.upper() if i % 3 == 0 else p.email,
                                            active_at, f"Graag een offerte voor een bruiloft. Mijn nummer is {phone}."))
        for _ in range(rnd.choice((1, 1, 2, 2))):
            n["web_sessions"] += 1
            buf["web_sessions"].append((n["web_sessions"], f"ck_{rnd.getrandbits(64):016x}",
                                        f"83.{rnd.randint(80, 99)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
                                        active_at, i if rnd.random() < 0.75 else None))
        if count % CHUNK == 0:
            yield buf
            buf = {t: [] for t in TABLES}
    yield buf


# -- the ledger -----------------------------------------------------------------------------------


@dataclass
class Requests:
    """The ledger's entries as a hand-written script would read them (normalised values)."""

    entries: list[Entry]
    targets: set[int]  # subject ids the requests name
    erasures: int = 0
    objections: int = 0
    matching: int = 0  # erasure requests that name a customer of the N-subject snapshot

    def simple(self) -> list[tuple[str, list[str], list[str]]]:
        """(group, e-mails, customer numbers) per entry, in ledger order."""
        out = []
        for e in self.entries:
            group = "erase" if e.kind == "erasure" else f"optout:{e.purpose}"
            out.append((group, [i.value for i in e.identifiers if i.type == "email"],
                        [i.value for i in e.identifiers if i.type == "customer_number"]))
        return out


def make_requests(subjects: int, k: int, seed: int = 7) -> Requests:
    rnd = random.Random(seed)
    matching = int(k * 0.9)
    erased = rnd.sample(range(1, subjects + 1), min(matching, subjects))
    objecting = rnd.sample(range(1, subjects + 1), min(k // 10, subjects))
    received, effective = "2026-10-01T09:00:00Z", "2026-10-08T09:00:00Z"
    entries: list[Entry] = []
    obj = iter(enumerate(objecting))
    for j in range(k):
        if j < len(erased):
            i = erased[j]
            p = person(i)
            # the ledger gets the value as the person wrote it in the request form
            ids = [Identifier.parse("email", p.email.upper() if j % 3 == 0 else f" {p.email}")]
            if j % 3 == 0:
                ids.append(Identifier.parse("customer_number", p.cust_no))
            if j % 5 == 0:
                d = p.phone_digits
                ids.append(Identifier.parse("phone", f"+31 6 {d[:4]} {d[4:]}"))
            if j % 10 == 0:
                ids.append(Identifier.parse("iban", " ".join(p.iban[x:x + 4] for x in range(0, 18, 4))))
        else:  # a person who is not in this snapshot (signed up after the backup)
            ids = [Identifier.parse("email", f"ghost{j}@example.org")]
        entries.append(Entry(request_id=f"DSR-{j:08d}", kind="erasure", identifiers=tuple(ids),
                             received=received, effective=effective))
        if j % 10 == 9:
            n, i = next(obj, (None, 0))
            if n is not None:
                purpose = "marketing" if n % 2 == 0 else "tracking-cookies"
                entries.append(Entry(request_id=f"OBJ-{n:08d}", kind="objection", purpose=purpose,
                                     identifiers=(Identifier.parse("email", person(i).email),),
                                     received=received))
    req = Requests(entries=entries, targets=set(erased) | set(objecting))
    req.erasures = sum(e.kind == "erasure" for e in entries)
    req.objections = len(entries) - req.erasures
    req.matching = len(erased)
    return req


def build_ledger(path: Path, keyring_path: Path, requests: Requests) -> float:
    keyring = Keyring.generate("bench.example/erasures")
    keyring.save(keyring_path, overwrite=True)
    path.unlink(missing_ok=True)
    ledger = Ledger.create(open_store(str(path), create=True), keyring, now=LEDGER_NOW)
    start = time.perf_counter()
    for lo in range(0, len(requests.entries), APPEND_BATCH):
        ledger.append(requests.entries[lo:lo + APPEND_BATCH], now=LEDGER_NOW)
    ledger.checkpoint()
    ledger.store.close()
    return time.perf_counter() - start


# -- databases ------------------------------------------------------------------------------------


class Target:
    """One database kind: build a source snapshot, make fresh copies, talk to them."""

    name = ""
    param = "?"

    def build(self, label: str, ids: Iterable[int]) -> tuple[float, dict[str, int]]:
        raise NotImplementedError

    def copy(self, source: str, name: str) -> str:
        raise NotImplementedError

    def db_arg(self, handle: str) -> str:
        """What ``reconciler --db`` gets."""
        raise NotImplementedError

    def url(self, handle: str) -> str:
        raise NotImplementedError

    def connect(self, handle: str) -> Any:
        """A DB-API connection in autocommit mode (the caller sends BEGIN / COMMIT)."""
        raise NotImplementedError

    def drop(self, handle: str) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass

    def sql(self, text: str) -> str:
        return text if self.param == "?" else text.replace("?", "%s")

    def digest(self, handle: str) -> dict[str, tuple[int, str]]:
        raise NotImplementedError


class SqliteTarget(Target):
    name = "SQLite"

    def __init__(self, work: Path) -> None:
        self.work = work

    def path(self, handle: str) -> Path:
        return self.work / f"{handle}.db"

    def build(self, label: str, ids: Iterable[int]) -> tuple[float, dict[str, int]]:
        path = self.path(label)
        path.unlink(missing_ok=True)
        start = time.perf_counter()
        engine = sa.create_engine(f"sqlite:///{path}")
        florist_shop.metadata.create_all(engine)
        engine.dispose()
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("BEGIN")
        counts = dict.fromkeys(TABLES, 0)
        for chunk in shop_rows(ids):
            for table in TABLES:
                cols = COLUMNS[table]
                con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                chunk[table])
                counts[table] += len(chunk[table])
        con.execute("COMMIT")
        for ddl in INDEXES:
            con.execute(ddl)
        con.execute("ANALYZE")
        con.close()
        return time.perf_counter() - start, counts

    def copy(self, source: str, name: str) -> str:
        shutil.copyfile(self.path(source), self.path(name))
        return name

    def db_arg(self, handle: str) -> str:
        return str(self.path(handle))

    def url(self, handle: str) -> str:
        return f"sqlite:///{self.path(handle)}"

    def connect(self, handle: str) -> Any:
        return sqlite3.connect(self.path(handle), isolation_level=None)

    def drop(self, handle: str) -> None:
        self.path(handle).unlink(missing_ok=True)

    def digest(self, handle: str) -> dict[str, tuple[int, str]]:
        con = self.connect(handle)
        out = {}
        for table in TABLES:
            h = hashlib.sha256()
            n = 0
            for row in con.execute(f"SELECT * FROM {table} ORDER BY id"):
                h.update(repr(row).encode())
                n += 1
            out[table] = (n, h.hexdigest()[:16])
        con.close()
        return out


class PostgresTarget(Target):
    name = "PostgreSQL"
    param = "%s"

    def __init__(self, url: str) -> None:
        self.base = sa.make_url(url)
        self.admin = sa.create_engine(self.base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.made: set[str] = set()

    def dbname(self, handle: str) -> str:
        return f"{PG_PREFIX}_{handle}".replace("-", "_")

    def _drop_db(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def build(self, label: str, ids: Iterable[int]) -> tuple[float, dict[str, int]]:
        import psycopg

        name = self.dbname(label)
        self._drop_db(name)
        start = time.perf_counter()
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.made.add(name)
        engine = sa.create_engine(self.url(label), poolclass=NullPool)
        florist_shop.metadata.create_all(engine)
        engine.dispose()
        counts = dict.fromkeys(TABLES, 0)
        with psycopg.connect(self.conninfo(label)) as con:
            # a restore (pg_restore) loads data before it checks foreign keys; so do we
            con.execute("SET session_replication_role = replica")
            for chunk in shop_rows(ids):
                with con.cursor() as cur:
                    for table in TABLES:
                        with cur.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as cp:
                            for row in chunk[table]:
                                cp.write_row(row)
                        counts[table] += len(chunk[table])
            con.commit()
        with psycopg.connect(self.conninfo(label), autocommit=True) as con:
            for ddl in INDEXES:
                con.execute(ddl)
            con.execute("VACUUM ANALYZE")
        return time.perf_counter() - start, counts

    def conninfo(self, handle: str) -> str:
        u = self.base
        return f"host={u.host} port={u.port or 5432} user={u.username} dbname={self.dbname(handle)}" + (
            f" password={u.password}" if u.password else "")

    def copy(self, source: str, name: str) -> str:
        target = self.dbname(name)
        self._drop_db(target)
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{target}" TEMPLATE "{self.dbname(source)}" STRATEGY FILE_COPY')
        self.made.add(target)
        return name

    def db_arg(self, handle: str) -> str:
        return self.url(handle)

    def url(self, handle: str) -> str:
        return self.base.set(database=self.dbname(handle)).render_as_string(hide_password=False)

    def connect(self, handle: str) -> Any:
        import psycopg

        return psycopg.connect(self.conninfo(handle), autocommit=True)

    def drop(self, handle: str) -> None:
        name = self.dbname(handle)
        self._drop_db(name)
        self.made.discard(name)

    def cleanup(self) -> None:
        for name in sorted(self.made):
            self._drop_db(name)
        self.made.clear()
        self.admin.dispose()

    def digest(self, handle: str) -> dict[str, tuple[int, str]]:
        out = {}
        with self.connect(handle) as con:
            for table in TABLES:
                n, md5 = con.execute(f"SELECT count(*), md5(string_agg(md5(t::text), ',' ORDER BY id)) "
                                     f"FROM {table} t").fetchone()
                out[table] = (int(n), (md5 or "")[:16])
        return out


# -- (a) the reconciler CLI in a child process ----------------------------------------------------


@dataclass
class ChildRun:
    seconds: float
    exit_code: int
    max_rss_mb: float  # peak RSS of the child (VmHWM)
    worker_rss_mb: float = 0.0  # peak RSS of its largest scan worker (ru_maxrss of its children)
    timings: dict[str, float] = field(default_factory=dict)
    stderr: str = ""
    killed: bool = False  # ran into --apply-timeout

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.killed

    def shown(self) -> str:
        if self.killed:
            return f"> {self.seconds:.0f} s (killed at the timeout)"
        return f"{self.seconds:.1f} s" + ("" if self.exit_code == 0 else f" (exit {self.exit_code})")


def run_cli(args: Sequence[str], work: Path, tag: str, timeout: float | None = None) -> ChildRun:
    """``reconciler ARGS`` in a child process (see ``child_main``); wall time and peak RSS."""
    out = work / f"timings-{tag}.json"
    out.unlink(missing_ok=True)
    err = work / f"stderr-{tag}.txt"
    cmd = [sys.executable, str(Path(__file__).resolve()), "_child", str(out), *args]
    killed = False
    with err.open("w") as err_file:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_file)
        while True:
            pid, status, usage = os.wait4(proc.pid, 0 if timeout is None else os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > (timeout or 0):
                proc.kill()
                killed = True
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    timings = json.loads(out.read_text()) if out.exists() else {}
    # a killed child wrote nothing: fall back to ru_maxrss (an upper bound, see peak_rss_mb)
    peak = timings.pop(PEAK_KEY, usage.ru_maxrss / 1024)
    return ChildRun(seconds=seconds, exit_code=proc.returncode, max_rss_mb=peak,
                    worker_rss_mb=timings.pop(WORKER_PEAK_KEY, 0.0), timings=timings, stderr=err.read_text()[-2000:], killed=killed)


def child_main(argv: list[str]) -> None:
    """Run ``reconciler.cli.main`` with timers around library functions; dump them as JSON."""
    out, cli_args = Path(argv[0]), argv[1:]
    timings: dict[str, float] = {}

    def timed(label: str | Callable[..., str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(func)
            def inner(*a: Any, **k: Any) -> Any:
                start = time.perf_counter()
                try:
                    return func(*a, **k)
                finally:
                    name = label(*a, **k) if callable(label) else label
                    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
            return inner
        return wrap

    def hook(module: str, path: str, label: str | Callable[..., str]) -> None:
        """Time ``module.path`` if this version of the library has it (the layout changes)."""
        try:
            owner: Any = importlib.import_module(module)  # not `import a.b`: the package
        except ImportError:  # re-exports functions named like its modules (reconciler.replay)
            return
        *parents, name = path.split(".")
        for part in parents:
            owner = getattr(owner, part, None)
        if owner is not None and callable(getattr(owner, name, None)):
            setattr(owner, name, timed(label)(getattr(owner, name)))

    def op_label(prefix: str) -> Callable[..., str]:
        def label(*a: Any, **_: Any) -> str:
            op = next(x for x in a if hasattr(x, "action") and hasattr(x, "table"))
            group = "" if op.group == "erase" else f" [{op.group}]"
            return f"execute/{prefix} {op.action} {op.table}{group}"
        return label

    def column_label(_self: Any, table: str, *rest: Any) -> str:
        columns = rest[0] if rest and isinstance(rest[0], list) else [(None, rest[1])]
        return f"execute/staging/read+normalise {table}.{'+'.join(c for _, c in columns)}"

    hook("erasure_ledger.ledger", "Ledger.open_all", "ledger open_all (verify + decrypt)")
    for name, label in (("make_plan", "plan"), ("replay", "replay"), ("execute", "execute"),
                        ("_scan", "residual scan (reflect + scan)")):
        hook("reconciler.replay", name, label)
    cli = importlib.import_module("reconciler.cli")
    cli.replay = importlib.import_module("reconciler.replay").replay  # the CLI imported it by name
    hook("reconciler.executor", "reflect", "execute/reflect")
    # executor as one class (_Run) ...
    hook("reconciler.executor", "_Run.check", "execute/checks")
    hook("reconciler.executor", "_Run.stage", "execute/staging")
    hook("reconciler.executor", "_Run.match_column", column_label)
    hook("reconciler.executor", "_Run.check_orphans", "execute/orphan check")
    hook("reconciler.executor", "_Run.count", op_label("count"))
    hook("reconciler.executor", "_Run.run_op", op_label("run"))
    hook("reconciler.executor", "_Run.stage_hashes", "execute/hash staging")
    # ... or split by job (checks, staging, statements)
    hook("reconciler.checks", "Checks.schema", "execute/checks")
    hook("reconciler.checks", "Checks.refusals", "execute/orphan check")
    hook("reconciler.checks", "Checks.referenced_columns", "execute/orphan check")
    hook("reconciler.staging", "Staging.stage", "execute/staging")
    hook("reconciler.staging", "Staging.match_column", column_label)
    hook("reconciler.staging", "Staging.match_columns", column_label)
    hook("reconciler.staging", "Staging.stage_hashes", "execute/hash staging")
    hook("reconciler.executor", "_run", op_label("count+run"))
    hook("reconciler.cli", "build_report", "report build")
    hook("reconciler.cli", "_emit", "report write")
    if os.environ.get("BENCH_RECONCILE_PRELOAD"):  # a candidate patch to try, see the docstring
        importlib.import_module(os.environ["BENCH_RECONCILE_PRELOAD"])
    try:
        cli.main(cli_args, prog_name="reconciler")
    finally:
        timings[PEAK_KEY] = peak_rss_mb()
        # the scan's forked workers: a fork starts with its parent's resident pages (shared,
        # counted again here), so this is an upper bound of what a worker adds
        timings[WORKER_PEAK_KEY] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out.write_text(json.dumps(timings))


PEAK_KEY = "__peak_rss_mb"
WORKER_PEAK_KEY = "__worker_peak_rss_mb"


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (VmHWM).

    Not ``ru_maxrss``: Linux carries the parent's high-water mark across fork + exec into the
    child's ``ru_maxrss``, so a child of a big parent looks big.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- (b) the naive script -------------------------------------------------------------------------


def erase_statements(cut7: object) -> list[tuple[str, Callable[[int], tuple[Any, ...]]]]:
    return [
        ("DELETE FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE customer_id = ?)", lambda c: (c,)),
        ("DELETE FROM orders WHERE customer_id = ?", lambda c: (c,)),
        ("DELETE FROM invoices WHERE customer_id = ? AND invoice_date < ?", lambda c: (c, cut7)),
        ("UPDATE invoices SET billing_name = CASE WHEN billing_name IS NULL THEN NULL ELSE 'erased' END, "
         "billing_address = CASE WHEN billing_address IS NULL THEN NULL ELSE 'erased' END, billing_iban = NULL "
         "WHERE customer_id = ? AND invoice_date >= ?", lambda c: (c, cut7)),
        ("DELETE FROM complaints WHERE customer_id = ?", lambda c: (c,)),
        ("DELETE FROM web_sessions WHERE customer_id = ?", lambda c: (c,)),
        (f"UPDATE customers SET {ERASE_CUSTOMER} WHERE id = ?", lambda c: (False, False, c)),
    ]


ERASE_CUSTOMER = (
    "cust_no = 'erased-' || CAST(id AS TEXT), email = 'erased-' || CAST(id AS TEXT) || '@erased.invalid', "
    "name = '(verwijderd)', street = NULL, postcode = NULL, city = NULL, phone = NULL, birth_date = NULL, "
    "gender = NULL, iban = NULL, username = NULL, kvk = NULL, job_title = NULL, "
    "newsletter_opt_in = ?, tracking_consent = ?"
)


def cutoffs(target: Target) -> tuple[object, object]:
    """(retention cut-off on last_active_at, 7-year cut-off on invoice_date) as the driver wants them."""
    cut2 = dt.datetime(AS_OF.year - 2, AS_OF.month, AS_OF.day)
    cut7 = dt.date(AS_OF.year - 7, AS_OF.month, AS_OF.day)
    if isinstance(target, SqliteTarget):
        return cut2.strftime("%Y-%m-%d %H:%M:%S.%f"), cut7.isoformat()
    return cut2, cut7


def run_naive(target: Target, handle: str, requests: Requests) -> float:
    """One request at a time, one transaction: what a hand-written restore script does."""
    cut2, cut7 = cutoffs(target)
    q = target.sql
    erase = [(q(s), f) for s, f in erase_statements(cut7)]
    by_email = q("SELECT id FROM customers WHERE lower(trim(email)) = ?")
    by_number = q("SELECT id FROM customers WHERE cust_no = ?")
    del_newsletter = q("DELETE FROM newsletter WHERE lower(trim(address)) = ?")
    del_contact = q("DELETE FROM contact_messages WHERE lower(trim(sender_email)) = ?")
    set_marketing = q("UPDATE customers SET newsletter_opt_in = ? WHERE id = ?")
    set_tracking = q("UPDATE customers SET tracking_consent = ? WHERE id = ?")
    del_sessions = q("DELETE FROM web_sessions WHERE customer_id = ?")
    work = requests.simple()
    con = target.connect(handle)
    cur = con.cursor()
    start = time.perf_counter()
    cur.execute("BEGIN")
    for group, emails, numbers in work:
        ids: set[int] = set()
        for email in emails:
            cur.execute(by_email, (email,))
            ids.update(r[0] for r in cur.fetchall())
        for number in numbers:
            cur.execute(by_number, (number,))
            ids.update(r[0] for r in cur.fetchall())
        if group == "erase":
            for cid in sorted(ids):
                for sql, params in erase:
                    cur.execute(sql, params(cid))
            for email in emails:
                cur.execute(del_newsletter, (email,))
                cur.execute(del_contact, (email,))
        elif group == "optout:marketing":
            for cid in sorted(ids):
                cur.execute(set_marketing, (False, cid))
            for email in emails:
                cur.execute(del_newsletter, (email,))
        else:  # optout:tracking-cookies
            for cid in sorted(ids):
                cur.execute(set_tracking, (False, cid))
                cur.execute(del_sessions, (cid,))
    cur.execute(q("SELECT id FROM customers WHERE last_active_at < ? ORDER BY id"), (cut2,))
    for (cid,) in cur.fetchall():
        for sql, params in erase:
            cur.execute(sql, params(cid))
    cur.execute("COMMIT")
    seconds = time.perf_counter() - start
    con.close()
    return seconds


# -- (c) the set-based floor ----------------------------------------------------------------------

FLOOR = [
    # subjects: by e-mail (normalised in SQL, ASCII data), by customer number, by retention
    "CREATE TEMPORARY TABLE f_subj AS "
    "SELECT i.grp AS grp, c.id AS id FROM customers c JOIN bench_ids i "
    "ON i.id_type = 'email' AND lower(trim(c.email)) = i.value "
    "UNION SELECT i.grp, c.id FROM customers c JOIN bench_ids i ON i.id_type = 'customer_number' AND c.cust_no = i.value "
    "UNION SELECT 'erase', c.id FROM customers c WHERE c.last_active_at < ?",
    "CREATE INDEX f_subj_ix ON f_subj (grp, id)",
    "DELETE FROM order_lines WHERE order_id IN (SELECT o.id FROM orders o WHERE o.customer_id IN "
    "(SELECT id FROM f_subj WHERE grp = 'erase'))",
    "DELETE FROM orders WHERE customer_id IN (SELECT id FROM f_subj WHERE grp = 'erase')",
    "DELETE FROM invoices WHERE customer_id IN (SELECT id FROM f_subj WHERE grp = 'erase') AND invoice_date < ?",
    "UPDATE invoices SET billing_name = CASE WHEN billing_name IS NULL THEN NULL ELSE 'erased' END, "
    "billing_address = CASE WHEN billing_address IS NULL THEN NULL ELSE 'erased' END, billing_iban = NULL "
    "WHERE customer_id IN (SELECT id FROM f_subj WHERE grp = 'erase') AND invoice_date >= ?",
    "DELETE FROM complaints WHERE customer_id IN (SELECT id FROM f_subj WHERE grp = 'erase')",
    "DELETE FROM web_sessions WHERE customer_id IN (SELECT id FROM f_subj WHERE grp IN ('erase', 'optout:tracking-cookies'))",
    f"UPDATE customers SET {ERASE_CUSTOMER} WHERE id IN (SELECT id FROM f_subj WHERE grp = 'erase')",
    "UPDATE customers SET newsletter_opt_in = ? WHERE id IN (SELECT id FROM f_subj WHERE grp = 'optout:marketing')",
    "UPDATE customers SET tracking_consent = ? WHERE id IN (SELECT id FROM f_subj WHERE grp = 'optout:tracking-cookies')",
    "DELETE FROM newsletter WHERE lower(trim(address)) IN "
    "(SELECT value FROM bench_ids WHERE id_type = 'email' AND grp IN ('erase', 'optout:marketing'))",
    "DELETE FROM contact_messages WHERE lower(trim(sender_email)) IN "
    "(SELECT value FROM bench_ids WHERE id_type = 'email' AND grp = 'erase')",
]


def run_floor(target: Target, handle: str, requests: Requests) -> float:
    cut2, cut7 = cutoffs(target)
    q = target.sql
    con = target.connect(handle)
    cur = con.cursor()
    # not timed: the normalised identifiers, staged in a table
    cur.execute("CREATE TABLE bench_ids (grp VARCHAR(40), id_type VARCHAR(20), value VARCHAR(200))")
    rows = [(g, "email", e) for g, emails, _ in requests.simple() for e in emails]
    rows += [(g, "customer_number", n) for g, _, numbers in requests.simple() for n in numbers]
    cur.execute("BEGIN")
    cur.executemany(q("INSERT INTO bench_ids VALUES (?, ?, ?)"), rows)
    cur.execute("CREATE INDEX bench_ids_ix ON bench_ids (id_type, value)")
    cur.execute("COMMIT")
    cur.execute("ANALYZE bench_ids")
    params: dict[int, tuple[Any, ...]] = {0: (cut2,), 4: (cut7,), 5: (cut7,), 8: (False, False), 9: (False,),
                                          10: (False,)}
    start = time.perf_counter()
    cur.execute("BEGIN")
    for n, sql in enumerate(FLOOR):
        cur.execute(q(sql), params.get(n, ()))
        if n == 1 and isinstance(target, PostgresTarget):
            cur.execute("ANALYZE f_subj")
    cur.execute("COMMIT")
    seconds = time.perf_counter() - start
    cur.execute("DROP TABLE bench_ids")
    cur.execute("DROP TABLE f_subj")
    con.close()
    return seconds


# -- verify's floor: a plain SELECT of the scanned columns ----------------------------------------


def plain_select(target: Target, handle: str, data_map_path: Path, id_types: set[str]) -> float:
    """Read exactly what the residual scan reads, and do nothing with it."""
    from reconciler.datamap import DataMap
    from reconciler.schema import reflect

    data_map = DataMap.load(data_map_path)
    warnings.filterwarnings("ignore", message="Skipped unsupported reflection")
    mapped = {(t.name, c) for t in data_map.all_tables() for _, c in t.match}
    scanned_ids = [(t.name, c) for t in data_map.all_tables() for ty, c in t.match if ty in id_types]
    engine = sa.create_engine(target.url(handle), poolclass=NullPool)
    start = time.perf_counter()
    seen = 0
    with engine.connect() as conn:
        schema = reflect(conn)
        for table, column in scanned_ids:
            for (value,) in conn.execute(sa.text(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")):
                seen += value is not None
        for name, snap in schema.tables.items():
            strings = [c for c, info in snap.columns.items() if info.kind == "string" and (name, c) not in mapped]
            if not strings:
                continue
            cols = ", ".join([*snap.primary_key, *strings])
            result = conn.execution_options(stream_results=True).execute(sa.text(f"SELECT {cols} FROM {name}"))
            for row in result:
                seen += len(row)
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds


# -- end-state checks -----------------------------------------------------------------------------


def ledger_emails_left(target: Target, handle: str, requests: Requests) -> int:
    erased = {i.value for e in requests.entries if e.kind == "erasure" for i in e.identifiers if i.type == "email"}
    marketing = {i.value for e in requests.entries if e.purpose == "marketing" for i in e.identifiers}
    con = target.connect(handle)
    cur = con.cursor()
    left = 0
    for sql, wanted in (("SELECT email FROM customers", erased), ("SELECT sender_email FROM contact_messages", erased),
                        ("SELECT address FROM newsletter", erased | marketing)):
        cur.execute(sql)
        left += sum(1 for (v,) in cur.fetchall() if v.strip().lower() in wanted)
    con.close()
    return left


# -- one database ---------------------------------------------------------------------------------


@dataclass
class DbResult:
    name: str
    build_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    apply: ChildRun | None = None
    apply_small: ChildRun | None = None
    small_subjects: int = 0
    naive: float = 0.0
    floor: float = 0.0
    verify: ChildRun | None = None
    verify_one: ChildRun | None = None  # verify --workers 1
    select: float = 0.0
    same: bool = False
    differences: list[str] = field(default_factory=list)
    left: dict[str, int] = field(default_factory=dict)
    base_rss_mb: float = 0.0  # `reconciler --version` in the same child: interpreter + imports


def reconciler_args(command: str, target: Target, handle: str, work: Path) -> list[str]:
    args = [command, "--db", target.db_arg(handle), "--map", str(work / "datamap.yaml"),
            "--ledger", str(work / "ledger.db"), "--keyring", str(work / "ledger.key"),
            "--report", str(work / f"report-{command}-{target.name}-{handle}.json")]
    return [*args, "--as-of", AS_OF.isoformat()] if command == "apply" else args


def bench_db(target: Target, args: argparse.Namespace, work: Path, requests: Requests) -> DbResult:
    res = DbResult(name=target.name)
    n = args.subjects
    log(f"{target.name}: building the snapshot ({n:,} subjects)")
    res.build_seconds, res.rows = target.build("src", range(1, n + 1))
    log(f"{target.name}: built {sum(res.rows.values()):,} rows in {res.build_seconds:.1f} s")

    # (a) reconciler apply, CLI
    target.copy("src", "a")
    log(f"{target.name}: (a) reconciler apply")
    res.apply = run_cli(reconciler_args("apply", target, "a", work), work, f"apply-{target.name}",
                        args.apply_timeout)
    log(f"{target.name}: (a) {res.apply.shown()}, max RSS {res.apply.max_rss_mb:.0f} MB")
    if not res.apply.ok:
        log(f"{target.name}: apply did not finish cleanly: {res.apply.stderr}")

    # (b) naive
    target.copy("src", "b")
    log(f"{target.name}: (b) naive, one request at a time")
    res.naive = run_naive(target, "b", requests)
    log(f"{target.name}: (b) {res.naive:.1f} s")

    # (c) floor
    target.copy("src", "c")
    log(f"{target.name}: (c) set-based floor")
    res.floor = run_floor(target, "c", requests)
    log(f"{target.name}: (c) {res.floor:.1f} s")

    # verify on the applied copy (on the floor's copy if apply did not finish), beside a plain
    # SELECT of the same columns
    scanned = "a" if res.apply.ok else "c"
    log(f"{target.name}: reconciler verify + plain SELECT on copy ({scanned})")
    res.verify = run_cli(reconciler_args("verify", target, scanned, work), work, f"verify-{target.name}")
    if res.verify.exit_code != 0:
        log(f"{target.name}: verify exit {res.verify.exit_code}: {res.verify.stderr}")
    res.verify_one = run_cli([*reconciler_args("verify", target, scanned, work), "--workers", "1"], work,
                             f"verify-one-{target.name}")
    id_types = {i.type for e in requests.entries if e.kind == "erasure" for i in e.identifiers}
    res.select = plain_select(target, scanned, work / "datamap.yaml", id_types)

    log(f"{target.name}: comparing end states")
    compared = ("a", "b", "c") if res.apply.ok else ("b", "c")
    digests = {h: target.digest(h) for h in compared}
    res.left = {h: ledger_emails_left(target, h, requests) for h in compared}
    for table in TABLES:
        values = {h: digests[h][table] for h in digests}
        if len(set(values.values())) != 1:
            res.differences.append(f"{table}: " + ", ".join(f"({h}) {v[0]:,} rows {v[1]}" for h, v in values.items()))
    res.same = not res.differences and not any(res.left.values())
    for h in ("a", "b", "c"):
        target.drop(h)
    target.drop("src")

    res.base_rss_mb = run_cli(["--version"], work, "version").max_rss_mb
    # memory at N/4 subjects, same ledger: every subject the ledger names, filled up to N/4
    small = max(n // 4, len(requests.targets))
    others = (i for i in range(1, n + 1) if i not in requests.targets)
    ids = sorted(requests.targets) + [next(others) for _ in range(small - len(requests.targets))]
    log(f"{target.name}: building the N/4 snapshot ({small:,} subjects) for the memory check")
    target.build("small", sorted(ids))
    res.small_subjects = small
    res.apply_small = run_cli(reconciler_args("apply", target, "small", work), work, f"apply-small-{target.name}",
                              args.apply_timeout)
    log(f"{target.name}: apply at N/4: {res.apply_small.shown()}, max RSS {res.apply_small.max_rss_mb:.0f} MB")
    target.drop("small")
    return res


# -- report ---------------------------------------------------------------------------------------


def machine() -> str:
    mem_kb = 0
    with Path("/proc/meminfo").open() as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    try:
        with Path("/proc/cpuinfo").open() as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.0f} GB RAM, Python {platform.python_version()}"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def code_version() -> str:
    """Which reconciler was measured: its folder, and the git commit when it is a work tree."""
    import reconciler

    folder = Path(reconciler.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"reconciler {reconciler.__version__} from {folder}"
    return f"reconciler at commit {head}" + (" with uncommitted changes" if dirty else "")


def ratio(num: ChildRun | float, den: ChildRun | float) -> str:
    """num / den; a killed run only gives a bound."""
    n = num.seconds if isinstance(num, ChildRun) else num
    d = den.seconds if isinstance(den, ChildRun) else den
    bound = ">= " if isinstance(num, ChildRun) and num.killed else "<= " if isinstance(den, ChildRun) and den.killed else ""
    return f"{bound}{n / d:.2f}x"


def report(results: list[DbResult], args: argparse.Namespace, requests: Requests, ledger_seconds: float,
           command: str, loads: tuple[float, float]) -> str:
    pg = next((r for r in results if r.name == "PostgreSQL"), None)
    lines = [
        f"Run {dt.date.today().isoformat()} on {machine()}; SQLite {sqlite3.sqlite_version}"
        + (f", PostgreSQL {server_version(args)} on 127.0.0.1 (TCP)" if pg else "")
        + f"; {code_version()}. Load average (1 min) {loads[0]:.1f} at the start, {loads[1]:.1f} at the end"
        " (a shared machine: other processes ran at the same time). Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"Snapshot: {args.subjects:,} customers; ledger: {requests.erasures:,} erasure requests "
        f"({requests.matching:,} name a customer of the snapshot, the rest nobody in it) and "
        f"{requests.objections:,} objections, appended through `Ledger.append` in batches of "
        f"{APPEND_BATCH:,} in {ledger_seconds:.1f} s. About 2 % of customers are also erased by the "
        "2-year inactivity rule. Times are wall-clock, one run each.",
        "",
        "| measurement | " + " | ".join(r.name for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]

    def row(name: str, fn: Callable[[DbResult], str]) -> None:
        lines.append(f"| {name} | " + " | ".join(fn(r) if r.apply else "-" for r in results) + " |")

    def t(run: ChildRun | None, key: str) -> float:
        return run.timings.get(key, 0.0) if run else 0.0

    def part(r: DbResult, key: str) -> str:
        return "-" if r.apply is None or r.apply.killed else f"{t(r.apply, key):.1f} s"

    row("snapshot rows (all tables) / build time", lambda r: f"{sum(r.rows.values()):,} / {r.build_seconds:.0f} s")
    row("(a) `reconciler apply`, CLI in a child process (start-up, ledger verify + decrypt, replay, "
        "residual scan, report)", lambda r: r.apply.shown())
    row("&nbsp;&nbsp;of which ledger verify + decrypt", lambda r: part(r, "ledger open_all (verify + decrypt)"))
    row("&nbsp;&nbsp;of which replay in the database (checks, staging, statements)", lambda r: part(r, "execute"))
    row("&nbsp;&nbsp;of which residual scan", lambda r: part(r, "residual scan (reflect + scan)"))
    row("(b) naive script: one request at a time, one transaction", lambda r: f"{r.naive:.1f} s")
    row("(c) floor: set-based SQL, identifiers pre-staged", lambda r: f"{r.floor:.1f} s")
    row("**(a) / (c)** (target <= 1.5)", lambda r: ratio(r.apply, r.floor))
    row("replay in the database only / (c)",
        lambda r: "-" if r.apply.killed else f"{t(r.apply, 'execute') / r.floor:.1f}x")
    row("**(b) / (a)** (target >= 10 on PostgreSQL)", lambda r: ratio(r.naive, r.apply))
    row("same end state (rows + content per table, no ledger e-mail left)",
        lambda r: ("yes" if r.same else "**NO, see below**") + ("" if r.apply.ok else " (b and c only)"))
    row("`reconciler verify`, CLI total", lambda r: r.verify.shown() if r.verify else "-")
    row(f"&nbsp;&nbsp;its residual scan ({default_workers()} processes, the default here)",
        lambda r: f"{t(r.verify, 'residual scan (reflect + scan)'):.1f} s")
    row("&nbsp;&nbsp;its residual scan in one process (`verify --workers 1`)",
        lambda r: f"{t(r.verify_one, 'residual scan (reflect + scan)'):.1f} s")
    row("plain SELECT of the scanned columns (one connection)", lambda r: f"{r.select:.1f} s")
    row("**scan / plain SELECT** (target <= 2): default; one process",
        lambda r: f"{t(r.verify, 'residual scan (reflect + scan)') / r.select:.1f}x; "
        f"{t(r.verify_one, 'residual scan (reflect + scan)') / r.select:.1f}x")
    row("peak RSS of apply at N/4 and N subjects (same ledger); of `reconciler --version`",
        lambda r: f"{r.apply_small.max_rss_mb:.0f} MB ({r.small_subjects:,}) / {r.apply.max_rss_mb:.0f} MB "
        f"({args.subjects:,}); {r.base_rss_mb:.0f} MB" if r.apply_small else "-")
    row("peak RSS of apply's largest scan worker at N/4 and N (an upper bound: a fork starts with its "
        "parent's pages, counted again)",
        lambda r: f"{r.apply_small.worker_rss_mb:.0f} MB / {r.apply.worker_rss_mb:.0f} MB" if r.apply_small else "-")
    row("time of apply at N/4 and N subjects", lambda r: f"{r.apply_small.shown()} / {r.apply.shown()}"
        if r.apply_small else "-")
    lines.append("")
    for r in results:
        if not r.apply or not r.verify or not r.apply_small:
            continue
        scan = t(r.verify_one, "residual scan (reflect + scan)")  # the stricter of the two
        above_n, above_small = r.apply.max_rss_mb - r.base_rss_mb, r.apply_small.max_rss_mb - r.base_rss_mb
        if r.apply.killed or r.apply_small.killed:
            memory = "**not measured** (apply did not finish)"
        elif above_n < 32:
            memory = (f"inconclusive at this N (apply peaks {max(above_n, 0):.0f} MB above the interpreter's "
                      f"{r.base_rss_mb:.0f} MB)")
        else:
            growth = above_n / max(above_small, 1)
            memory = (f"{verdict(growth < 1.25)} ({above_small:.0f} MB -> {above_n:.0f} MB above the interpreter "
                      f"for x{args.subjects / r.small_subjects:.1f} subjects)")
        fast = r.apply.ok and r.apply.seconds <= 1.5 * r.floor
        lines.append(f"Targets on {r.name}: (a) within 1.5x of (c): {verdict(fast)}"
                     + (f"; (a) at least 10x faster than (b): {verdict(r.apply.ok and r.naive >= 10 * r.apply.seconds)}"
                        if r.name == "PostgreSQL" else "")
                     + f"; verify's scan within 2x of the plain SELECT: {verdict(scan <= 2 * r.select)}"
                     + f"; memory bounded by K: {memory}.")
        if not r.same:
            lines.append(f"**END STATES DIFFER on {r.name}**: " + "; ".join(r.differences)
                         + f"; ledger e-mails left: {r.left}")
        lines.append("")
    for r in results:
        if not r.apply or r.apply.killed:
            continue
        lines.append(f"Where `apply` spends its time on {r.name} (timers around library functions in the child; "
                     "steps of 5 % or more):")
        lines.append("")
        lines.append("| step | seconds |")
        lines.append("|---|---|")
        for key, secs in sorted(r.apply.timings.items(), key=lambda kv: -kv[1]):
            if secs >= 0.05 * r.apply.seconds:
                lines.append(f"| {key} | {secs:.1f} |")
        lines.append("")
    return "\n".join(lines)


def server_version(args: argparse.Namespace) -> str:
    engine = sa.create_engine(args.pg_url, poolclass=NullPool)
    with engine.connect() as conn:
        version = str(conn.exec_driver_sql("SHOW server_version").scalar())
    engine.dispose()
    return version.split(maxsplit=1)[0]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=1_000_000, help="customers in the snapshot (N)")
    parser.add_argument("--requests", type=int, default=100_000, help="erasure requests in the ledger (K)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workdir", type=Path, default=None, help="SQLite files, ledger, reports (default: a temp dir)")
    parser.add_argument("--apply-timeout", type=float, default=None, metavar="SECONDS",
                        help="kill `reconciler apply` after this long and report it as '> SECONDS'")
    parser.add_argument("--pg-url", default=PG_DEFAULT,
                        help="PostgreSQL server (a superuser: the run creates and drops bench_rc_* databases)")
    args = parser.parse_args()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="bench-reconcile-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    command = "python scripts/bench_reconcile.py " + shlex.join(sys.argv[1:])
    (work / "datamap.yaml").write_text(florist_shop.DATAMAP_YAML, encoding="utf-8")

    load_start = os.getloadavg()[0]
    log(f"building the ledger ({args.requests:,} erasure requests + objections) in {work}")
    requests = make_requests(args.subjects, args.requests)
    ledger_seconds = build_ledger(work / "ledger.db", work / "ledger.key", requests)
    log(f"ledger: {len(requests.entries):,} entries appended in {ledger_seconds:.1f} s")

    targets: list[Target] = []
    if args.db in ("sqlite", "both"):
        targets.append(SqliteTarget(work))
    if args.db in ("postgresql", "both"):
        targets.append(PostgresTarget(args.pg_url))
    results = []
    for target in targets:
        try:
            results.append(bench_db(target, args, work, requests))
        finally:
            target.cleanup()
    print(report(results, args, requests, ledger_seconds, command, (load_start, os.getloadavg()[0])))
    if not all(r.same for r in results):
        print("\nWARNING: (a), (b) and (c) did not leave the same end state; see above.", file=sys.stderr)


if __name__ == "__main__":
    main()
