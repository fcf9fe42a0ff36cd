"""Table and column names are taken as written: non-ASCII, hyphenated and spaced names
(``Straßen-Log``, ``e-mail``, ``straße``, ``klant nummer``) can be mapped, planned, applied
(delete and anonymize, in one transaction and in batches), verified and discovered, on SQLite,
PostgreSQL and MariaDB; a second apply changes nothing.

Every statement the reconciler writes quotes every name it puts into SQL, so a name that is
also SQL (a space, a hyphen, a keyword such as ``order``) means the column, never the syntax.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from erasure_ledger import Ledger
from reconciler.datamap import DataMap
from reconciler.dialects import quoter
from reconciler.discover import discover
from reconciler.replay import ReplayResult, replay, verify
from reconciler.schema import reflect
from tests.reconciler.conftest import AS_OF, HASH_KEY, dump, load, rows_of

MakeLedger = Callable[..., Ledger]
SUBJECT = "Klant-Gegevens"
LOG = "Straßen-Log"
ORDERS = "bestel regels"
LETTER = "nieuws-brief"
ERASE_ANNA = {"request_id": "DSR-1", "kind": "erasure",
              "identifiers": {"email": "anna@example.nl"}}
OPTOUT_BERT = {"request_id": "OPT-1", "kind": "objection", "purpose": "marketing",
               "identifiers": {"email": "bert@example.nl"}}


def odd_metadata() -> sa.MetaData:
    """A subject and related tables whose names need quoting, and one that is a keyword."""
    md = sa.MetaData()
    sa.Table(
        SUBJECT, md,
        sa.Column("klant nummer", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("e-mail", sa.String(120), unique=True),
        sa.Column("straße", sa.String(80)),
        sa.Column("Naam", sa.String(80), nullable=False),
        sa.Column("geboorte-datum", sa.Date),
        sa.Column("laatst actief", sa.DateTime),
        sa.Column("nieuws-brief ok", sa.Boolean, nullable=False),
    )
    sa.Table(
        LOG, md,
        sa.Column("log nr", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("klant nummer", sa.Integer, sa.ForeignKey(f"{SUBJECT}.klant nummer"),
                  nullable=False),
        sa.Column("straße", sa.String(80)),
        sa.Column("e-mail", sa.String(120)),
    )
    sa.Table(
        ORDERS, md,
        sa.Column("regel-nr", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("klant nummer", sa.Integer, sa.ForeignKey(f"{SUBJECT}.klant nummer"),
                  nullable=False),
        sa.Column("besteld op", sa.Date, nullable=False),
        sa.Column("order", sa.String(80)),  # an SQL keyword
    )
    sa.Table(
        LETTER, md,
        sa.Column("e-mail", sa.String(120)),
        sa.Column("sinds", sa.Date),
    )
    return md


ANNA = {"klant nummer": 1, "e-mail": "Anna@Example.NL", "straße": "Dorpsstraat 1",
        "Naam": "Anna de Vries", "geboorte-datum": dt.date(1980, 6, 15),
        "laatst actief": dt.datetime(2026, 10, 1), "nieuws-brief ok": True}
BERT = {"klant nummer": 2, "e-mail": "bert@example.nl", "straße": "Kerkweg 2",
        "Naam": "Bert Smit", "geboorte-datum": None,
        "laatst actief": dt.datetime(2026, 9, 1), "nieuws-brief ok": True}
OUD = {"klant nummer": 3, "e-mail": "oud@example.nl", "straße": "Laan 3",
       "Naam": "Oud Klant", "geboorte-datum": None,
       "laatst actief": dt.datetime(2022, 1, 1), "nieuws-brief ok": True}
ROWS: dict[str, list[dict[str, Any]]] = {
    SUBJECT: [ANNA, BERT, OUD],
    LOG: [{"log nr": 1, "klant nummer": 1, "straße": "Dorpsstraat 1", "e-mail": "anna@example.nl"},
          {"log nr": 2, "klant nummer": 2, "straße": "Kerkweg 2", "e-mail": "bert@example.nl"},
          {"log nr": 3, "klant nummer": 3, "straße": "Laan 3", "e-mail": "oud@example.nl"}],
    ORDERS: [{"regel-nr": 1, "klant nummer": 1, "besteld op": dt.date(2018, 1, 1),
              "order": "tulpen"},
             {"regel-nr": 2, "klant nummer": 1, "besteld op": dt.date(2025, 1, 1),
              "order": "rozen"},
             {"regel-nr": 3, "klant nummer": 2, "besteld op": dt.date(2025, 2, 1),
              "order": "lelies"}],
    LETTER: [{"e-mail": "ANNA@example.nl", "sinds": dt.date(2024, 1, 1)},
             {"e-mail": "bert@example.nl", "sinds": dt.date(2024, 1, 2)}],
}

ANONYMIZE_MAP = f"""\
version: 1
subject:
  table: {SUBJECT}
  key: klant nummer
  identifiers: {{email: e-mail}}
  action: anonymize
  columns:
    e-mail: redact
    straße: null
    Naam: hash
    geboorte-datum: year
tables:
  {LOG}:
    link: {{parent: {SUBJECT}, on: {{klant nummer: klant nummer}}}}
    action: anonymize
    columns: {{straße: {{fixed: "-"}}, e-mail: redact}}
  {ORDERS}:
    link: {{parent: {SUBJECT}, on: {{klant nummer: klant nummer}}}}
    action: retain
    retain: {{years: 7, after: besteld op}}
    columns: {{order: redact}}
  {LETTER}:
    match: {{email: e-mail}}
    action: delete
retention:
  - {{name: inactive-2y, column: laatst actief, years: 2}}
opt_outs:
  - {{purpose: marketing, table: {SUBJECT}, set: {{nieuws-brief ok: false}}}}
  - {{purpose: marketing, table: {LETTER}, delete: true}}
"""

DELETE_MAP = f"""\
version: 1
subject:
  table: {SUBJECT}
  key: [klant nummer]
  identifiers: {{email: e-mail}}
  action: delete
tables:
  {LOG}:
    link: {{parent: {SUBJECT}, on: {{klant nummer: klant nummer}}}}
    action: delete
  {ORDERS}:
    link: {{parent: {SUBJECT}, on: {{klant nummer: klant nummer}}}}
    action: delete
  {LETTER}:
    match: {{email: e-mail}}
    action: delete
retention:
  - {{name: inactive-2y, column: laatst actief, years: 2}}
"""


def run(url: str, ledger: Ledger, text: str, *, dry_run: bool = False,
        batch_rows: int | None = None) -> ReplayResult:
    return replay(url, DataMap.from_text(text), ledger, as_of=AS_OF, dry_run=dry_run,
                  hash_key=HASH_KEY, batch_rows=batch_rows)


def table_rows(url: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    quote = quoter(sa.create_engine(url).dialect, "text")  # rows_of() runs text()
    names = ", ".join(quote(c) for c in columns.split(","))
    return sorted(rows_of(url, f"SELECT {names} FROM {quote(table)}"), key=repr)


def data(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the shop's own tables (a batched run's journal records each run)."""
    return {name: rows for name, rows in dump(url).items() if name in ROWS}


@pytest.fixture
def odd(db_url: str) -> str:
    load(db_url, odd_metadata(), ROWS)
    return db_url


def test_the_map_keeps_odd_names_as_written() -> None:
    data_map = DataMap.from_text(ANONYMIZE_MAP)
    assert data_map.subject.name == "Klant-Gegevens"
    assert data_map.subject.key == ("klant nummer",)
    assert data_map.subject.match == (("email", "e-mail"),)
    assert [c for c, _ in data_map.subject.columns] == ["e-mail", "straße", "Naam",
                                                        "geboorte-datum"]
    log = data_map.table("Straßen-Log")
    assert log.link is not None
    assert log.link.on == (("klant nummer", "klant nummer"),)
    assert data_map.where("tables.Straßen-Log.columns.e-mail") == (
        "datamap.yaml:16: tables.Straßen-Log.columns.e-mail")


@pytest.mark.parametrize("batch_rows", [None, 1], ids=["one-transaction", "batched"])
def test_anonymize_finds_and_masks_rows_behind_odd_names(
        odd: str, make_ledger: MakeLedger, batch_rows: int | None) -> None:
    ledger = make_ledger(ERASE_ANNA, OPTOUT_BERT)
    before = dump(odd)
    planned = run(odd, ledger, ANONYMIZE_MAP, dry_run=True)
    assert dump(odd) == before  # plan changes nothing
    assert planned.execution.rows_changed > 0

    applied = run(odd, ledger, ANONYMIZE_MAP, batch_rows=batch_rows)

    assert applied.scan is not None
    assert applied.scan.clean, applied.scan.findings
    subject = table_rows(odd, SUBJECT, "klant nummer,e-mail,straße,Naam,geboorte-datum,"
                                       "nieuws-brief ok")
    anna, bert, oud = subject
    # Anna (requested) and Oud (inactive 2 years) are erased; Bert only opted out
    assert (anna[0], anna[1], anna[2], str(anna[4])) == (1, "erased-1@erased.invalid", None,
                                                        "1980-01-01")
    assert anna[3].startswith("h:")
    assert (oud[1], oud[2]) == ("erased-3@erased.invalid", None)
    assert bert[:3] == (2, "bert@example.nl", "Kerkweg 2")
    assert not bert[5]
    assert table_rows(odd, LOG, "log nr,straße,e-mail") == [
        (1, "-", "erased"), (2, "Kerkweg 2", "bert@example.nl"), (3, "-", "erased")]
    # retain 7 years after "besteld op": 2018 is deleted, 2025 kept and masked
    assert table_rows(odd, ORDERS, "regel-nr,order") == [(2, "erased"), (3, "lelies")]
    assert table_rows(odd, LETTER, "e-mail") == []  # Anna erased, Bert opted out

    after = data(odd)
    again = run(odd, ledger, ANONYMIZE_MAP, batch_rows=batch_rows)
    assert again.execution.rows_changed == 0
    assert data(odd) == after
    assert verify(odd, DataMap.from_text(ANONYMIZE_MAP), ledger).scan.clean


def test_delete_removes_rows_behind_odd_names(odd: str, make_ledger: MakeLedger) -> None:
    ledger = make_ledger(ERASE_ANNA)

    applied = run(odd, ledger, DELETE_MAP)

    assert applied.scan is not None
    assert applied.scan.clean, applied.scan.findings
    assert table_rows(odd, SUBJECT, "klant nummer") == [(2,)]
    assert table_rows(odd, LOG, "log nr") == [(2,)]
    assert table_rows(odd, ORDERS, "regel-nr") == [(3,)]
    assert table_rows(odd, LETTER, "e-mail") == [("bert@example.nl",)]
    after = data(odd)
    assert run(odd, ledger, DELETE_MAP).execution.rows_changed == 0
    assert data(odd) == after


def test_verify_finds_a_ledger_identifier_left_behind_odd_names(
        odd: str, make_ledger: MakeLedger) -> None:
    # nothing applied yet: the scan must see Anna in every odd column that holds her
    result = verify(odd, DataMap.from_text(ANONYMIZE_MAP), make_ledger(ERASE_ANNA))
    assert {(f.table, f.column) for f in result.scan.findings} == {
        (SUBJECT, "e-mail"), (LOG, "e-mail"), (LETTER, "e-mail")}


def test_discover_drafts_a_loadable_map_for_odd_names(odd: str) -> None:
    text = discover(odd, SUBJECT)

    data_map = DataMap.from_text(text)
    assert data_map.subject.name == SUBJECT
    assert data_map.subject.key == ("klant nummer",)
    assert data_map.subject.match == (("email", "e-mail"),)
    assert {t.name for t in data_map.tables} == {LOG, ORDERS, LETTER}
    log = data_map.table(LOG)
    assert log.link is not None
    assert log.link.on == (("klant nummer", "klant nummer"),)
    assert data_map.table(LETTER).match == (("email", "e-mail"),)
    assert "anna" not in text.lower()  # never a value


# -- names that are SQL syntax to a layer below the quoting -------------------------------------

SYNTAX_NAMES = {
    # text() reads ":b" as a bind parameter unless written "\:b"
    "colon": ("Klant :a", "e :mail"),
    # quote() doubles '%' for drivers that format parameters (psycopg, pymysql); text() and
    # a raw driver cursor then see a name with two
    "percent": ("Klant%", "e%mail"),
    # SQLAlchemy's MySQL reflection keeps a backtick doubled ("k``n")
    "backtick": ("Klant`a", "e`mail"),
}
KNOWN_FAILURES: set[tuple[str, str]] = set()


@pytest.mark.parametrize("kind", sorted(SYNTAX_NAMES))
def test_names_holding_sql_syntax_are_applied_as_names(
        db_url: str, make_ledger: MakeLedger, kind: str, request: pytest.FixtureRequest) -> None:
    backend = sa.make_url(db_url).get_backend_name()
    backend = "mariadb" if backend == "mysql" else backend
    if (kind, backend) in KNOWN_FAILURES:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=f"a {kind} in a name breaks statements on {backend}: see the "
                                "fixes listed in the report (staging/statements/columns/scan)"))
    table, column = SYNTAX_NAMES[kind]
    md = sa.MetaData()
    sa.Table(table, md, sa.Column("nr", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column(column, sa.String(120)))
    load(db_url, md, {table: [{"nr": 1, column: "anna@example.nl"},
                              {"nr": 2, column: "bert@example.nl"}]})
    text = (f'version: 1\nsubject:\n  table: "{table}"\n  key: nr\n'
            f'  identifiers: {{email: "{column}"}}\n  action: delete\n')
    ledger = make_ledger(ERASE_ANNA)

    applied = run(db_url, ledger, text)

    assert applied.scan is not None
    assert applied.scan.clean
    assert table_rows(db_url, table, "nr") == [(2,)]
    assert run(db_url, ledger, text).execution.rows_changed == 0


@pytest.mark.parametrize("kind", ["colon", "percent"])
def test_a_scan_split_across_workers_reads_names_holding_sql_syntax(
        db_url: str, make_ledger: MakeLedger, kind: str) -> None:
    # keys far apart: the scan reads the key range (exec_driver_sql) and then each part of it
    # (the driver's cursor), each with the name quoted its own way
    table, column = SYNTAX_NAMES[kind]
    md = sa.MetaData()
    sa.Table(table, md, sa.Column("nr", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column(column, sa.String(120)), sa.Column("notitie", sa.Text))
    load(db_url, md, {table: [{"nr": 1, column: "anna@example.nl", "notitie": None},
                              {"nr": 500_000, column: None, "notitie": "mail anna@example.nl"}]})
    text = (f'version: 1\nsubject:\n  table: "{table}"\n  key: nr\n'
            f'  identifiers: {{email: "{column}"}}\n  action: delete\n')

    result = verify(db_url, DataMap.from_text(text), make_ledger(ERASE_ANNA), workers=2)

    assert {(f.table, f.column, f.row_key) for f in result.scan.findings} == {
        (table, column, "1"), (table, "notitie", "500000")}


@pytest.mark.parametrize(("backend", "name", "text", "driver", "cursor"), [
    ("sqlite", "a%:b", '"a%\\:b"', '"a%:b"', '"a%:b"'),
    ("postgresql", "a%:b", '"a%\\:b"', '"a%%:b"', '"a%:b"'),
    ("mysql", "a%:b`c", "`a%\\:b``c`", "`a%%:b``c`", "`a%:b``c`"),
    ("postgresql", "plain", "plain", "plain", "plain"),
])
def test_a_name_is_quoted_for_the_way_its_sql_is_run(
        backend: str, name: str, text: str, driver: str, cursor: str) -> None:
    dialect = {"sqlite": sa.create_engine("sqlite://").dialect,
               "postgresql": sa.create_engine("postgresql+psycopg://h/d").dialect,
               "mysql": sa.create_engine("mysql+pymysql://h/d").dialect}[backend]
    assert quoter(dialect, "text")(name) == text
    assert quoter(dialect, "driver")(name) == driver
    assert quoter(dialect, "cursor")(name) == cursor


def test_names_with_a_backtick_are_reflected_as_the_database_spells_them(db_url: str) -> None:
    # SQLAlchemy's MySQL reflection reads SHOW CREATE TABLE, where a backtick is doubled
    md = sa.MetaData()
    sa.Table("Klant`a", md,
             sa.Column("k`n", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("e``mail", sa.String(120), unique=True))
    sa.Table("log", md, sa.Column("nr", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("klant`nr", sa.Integer, sa.ForeignKey("Klant`a.k`n")))
    load(db_url, md, {})
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            schema = reflect(conn)
    finally:
        engine.dispose()

    klant = schema.tables["Klant`a"]
    assert list(klant.columns) == ["k`n", "e``mail"]
    assert klant.primary_key == ("k`n",)
    assert klant.columns["e``mail"].unique
    keys = [(fk.columns, fk.referred_columns) for fk in schema.tables["log"].foreign_keys]
    if db_url.startswith("mysql"):
        # SQLAlchemy's MySQL pattern for a foreign key refuses a referenced table named with
        # a backtick: this key is not reflected there at all (a known gap)
        assert keys == []
    else:
        assert keys == [(("klant`nr",), ("k`n",))]
