"""``reconciler`` end to end through CliRunner: exit codes, the exact one-line stderr, reports,
and a canary identifier that must never appear in any output."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.pool import NullPool

from erasure_ledger import Entry, Keyring, Ledger, open_store
from reconciler.cli import main
from reconciler.datamap import DataMap
from tests.reconciler.conftest import ERASE_JAN, OPTOUT_KLAAS, SHOP_MAP, SHOP_ROWS, dump, load, shop_metadata

CANARY = "canary@example.invalid"
ERASE_CANARY = {"request_id": "DSR-C", "kind": "erasure", "identifiers": {"email": CANARY}}


def make_files(tmp_path: Path, records: Sequence[Mapping[str, Any]]) -> tuple[str, str, str]:
    """A ledger file, its keyring file and the shop map file."""
    ledger_path, key_path, map_path = (tmp_path / "ledger.db", tmp_path / "ledger.key",
                                       tmp_path / "shop.yaml")
    keyring = Keyring.generate("test.example/ledger")
    keyring.save(key_path)
    store = open_store(str(ledger_path), create=True)
    ledger = Ledger.create(store, keyring, now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    ledger.append([Entry.from_dict(dict(r)) for r in records],
                  now=dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    store.close()  # its last connection folds the write-ahead log into the file: now, not later
    map_path.write_text(SHOP_MAP, encoding="utf-8")
    return str(ledger_path), str(key_path), str(map_path)


def invoke(*args: str, env: Mapping[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=dict(env or {}), catch_exceptions=False)


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str, str]:
    return make_files(tmp_path, [ERASE_JAN, OPTOUT_KLAAS])


def common(db: str, files: tuple[str, str, str]) -> list[str]:
    ledger, key, map_path = files
    return ["--db", db, "--map", map_path, "--ledger", ledger, "--keyring", key,
            "--as-of", "2026-11-25"]


def test_plan_apply_verify_on_every_database(shop: str, files: tuple[str, str, str],
                                             tmp_path: Path) -> None:
    before = dump(shop)
    planned = invoke("plan", *common(shop, files), "--json")
    assert planned.exit_code == 0, planned.stderr
    assert json.loads(planned.stdout)["totals"]["rows_changed"] == 12
    assert dump(shop) == before

    report = tmp_path / "apply.json"
    applied = invoke("apply", *common(shop, files), "--report", str(report))
    assert applied.exit_code == 0, applied.stderr
    assert applied.stderr == ""
    data = json.loads(report.read_text())
    assert data["totals"] == {"entries": 2, "residual_findings": 0, "rows_changed": 12}
    assert data["ledger"]["tree_size"] == 2
    assert data["ledger"]["signature_verified"] is True
    assert data["data_map"]["sha256"] == DataMap.from_text(SHOP_MAP).sha256
    assert data["entries"][0]["status"] == "replayed"
    assert data["entries"][0]["rows"]["order_lines"] == {"deleted": 2}
    assert "## Residual scan" in (tmp_path / "apply.md").read_text()

    again = invoke("apply", *common(shop, files))
    assert again.exit_code == 0
    assert "nothing to change: the snapshot already reflects the ledger" in again.stdout

    verified = invoke("verify", *common(shop, files)[:8])
    assert verified.exit_code == 0
    assert "- clean: no ledger identifier found" in verified.stdout


def test_env_vars_name_the_ledger_and_keyring(tmp_path: Path, files: tuple[str, str, str]) -> None:
    db = tmp_path / "shop.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    ledger, key, map_path = files
    result = invoke("plan", "--db", str(db), "--map", map_path,
                    env={"ERASURE_LEDGER": ledger, "ERASURE_KEYRING": key})
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def sqlite_shop(tmp_path: Path) -> str:
    path = tmp_path / "shop.db"
    load(f"sqlite:///{path}", shop_metadata(), SHOP_ROWS)
    return str(path)


def test_residual_data_exits_1_with_one_line(sqlite_shop: str, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{sqlite_shop}", poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO complaints VALUES (2, 'from jan@example.nl')"))
    (tmp_path / "l").mkdir()
    files = make_files(tmp_path / "l", [ERASE_JAN])
    result = invoke("apply", *common(sqlite_shop, files))
    assert result.exit_code == 1
    assert result.stderr == ("reconciler: error: residual personal data found: 1 finding(s) "
                             "for 1 ledger entry; see the report\n")
    assert "entry 0 (DSR-1): complaints.body row 2 [free text]" in result.stdout


@pytest.mark.parametrize(
    ("change", "code", "stderr"),
    [
        pytest.param(lambda a, p: a.__setitem__(a.index("--map") + 1, str(p / "bad.yaml")), 2,
                     "reconciler: error: bad.yaml:9: subject.action: unknown action 'erase' "
                     "(expected delete, anonymize)", id="bad-map"),
        pytest.param(lambda a, p: a.__setitem__(a.index("--db") + 1, str(p / "none.db")), 2,
                     "reconciler: error: snapshot {tmp}/none.db: no such file", id="no-snapshot"),
        pytest.param(lambda a, p: a.__setitem__(a.index("--db") + 1, f"sqlite:///{p}/none.db"),
                     2, "reconciler: error: snapshot sqlite:///{tmp}/none.db: no such file",
                     id="no-snapshot-url"),
        pytest.param(lambda a, p: a.__setitem__(a.index("--db") + 1, str(p / "bad.yaml")), 2,
                     "reconciler: error: snapshot {tmp}/bad.yaml: not a SQLite database",
                     id="not-a-database"),
        pytest.param(lambda a, p: a.__setitem__(
            a.index("--db") + 1, "mysql+pymysql://root:s3cret@127.0.0.1:1/shop"), 2,
            "reconciler: error: snapshot mysql+pymysql://root:***@127.0.0.1:1/shop: cannot "
            "connect: (2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] "
            "Connection refused)\")", id="unreachable-db"),
        pytest.param(lambda a, p: a.__setitem__(a.index("--db") + 1, "nosuchdriver://x/y"), 2,
                     "reconciler: error: snapshot nosuchdriver://x/y: not a usable database URL "
                     "(expected sqlite:///PATH, postgresql+psycopg://... or mysql+pymysql://..., "
                     "or a SQLite file path)", id="bad-url"),
        pytest.param(lambda a, p: a.__setitem__(a.index("--db") + 1, "postgres://u:pw@h/shop"),
                     2, "reconciler: error: snapshot postgres://u:***@h/shop: not a usable "
                     "database URL (write postgresql+psycopg://...)", id="postgres-scheme"),
    ],
)
def test_bad_input_gives_its_exit_code_and_one_line(
        sqlite_shop: str, files: tuple[str, str, str], tmp_path: Path, change: Any, code: int,
        stderr: str) -> None:
    (tmp_path / "bad.yaml").write_text(SHOP_MAP.replace("action: anonymize", "action: erase", 1))
    before = dump(f"sqlite:///{sqlite_shop}")
    args = common(sqlite_shop, files)
    change(args, tmp_path)
    result = invoke("apply", *args)
    assert (result.exit_code, result.stderr) == (code, stderr.format(tmp=tmp_path) + "\n")
    assert result.stdout == ""
    assert dump(f"sqlite:///{sqlite_shop}") == before
    assert not (tmp_path / "none.db").exists()  # SQLite was not left to create it


def test_a_wrong_keyring_is_exit_3_and_changes_nothing(
        sqlite_shop: str, files: tuple[str, str, str], tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    Keyring.generate("test.example/ledger").save(other)
    before = dump(f"sqlite:///{sqlite_shop}")
    args = common(sqlite_shop, files)
    args[args.index("--keyring") + 1] = str(other)
    result = invoke("apply", *args)
    assert result.exit_code == 3
    assert result.stderr.startswith("reconciler: error: ")
    assert result.stderr.count("\n") == 1
    assert dump(f"sqlite:///{sqlite_shop}") == before


def test_a_canary_identifier_never_appears_in_any_output(
        sqlite_shop: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = sa.create_engine(f"sqlite:///{sqlite_shop}", poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE customers SET email = ' {CANARY.upper()} ' WHERE id = 2"))
        conn.execute(sa.text(f"INSERT INTO complaints VALUES (7, 'write to {CANARY} please')"))
        conn.execute(sa.text(f"INSERT INTO newsletter (address) VALUES ('{CANARY}')"))
    files = make_files(tmp_path, [ERASE_CANARY])
    caplog.set_level(logging.DEBUG)
    outputs = []
    for command in ("plan", "apply", "verify"):
        report = tmp_path / f"{command}.json"
        args = common(sqlite_shop, files) if command != "verify" else common(sqlite_shop, files)[:8]
        result = invoke(command, *args, "--report", str(report))
        outputs += [result.stdout, result.stderr, report.read_text(),
                    report.with_suffix(".md").read_text()]
    bad = (tmp_path / "bad.yaml")
    bad.write_text(SHOP_MAP + f"colour: {CANARY}\n")
    args = common(sqlite_shop, files)
    args[args.index("--map") + 1] = str(bad)
    failed = invoke("apply", *args)
    assert failed.exit_code == 2
    outputs += [failed.stdout, failed.stderr, caplog.text]
    for text in outputs:
        assert CANARY not in text.lower()
    assert result.exit_code == 1  # verify found the free-text copy the map does not cover


def test_discover_writes_a_draft_map_that_loads(sqlite_shop: str, tmp_path: Path) -> None:
    out = tmp_path / "draft.yaml"
    result = invoke("discover", "--db", sqlite_shop, "--subject-table", "customers",
                    "--out", str(out))
    assert result.exit_code == 0, result.stderr
    data_map = DataMap.load(out)
    assert data_map.subject.match == (("email", "email"), ("phone", "phone"),
                                      ("customer_number", "cust_no"))
    # newsletter.address holds e-mail addresses: its name does not say so, its values do
    assert {t.name for t in data_map.tables} == {"orders", "invoices", "order_lines",
                                                 "newsletter"}
    assert data_map.table("newsletter").match == (("email", "address"),)
    assert ("      email: address  # guess: 3 of 3 sampled values look like e-mail addresses\n"
            in out.read_text())
    assert data_map.table("order_lines").link is not None
    assert "# guess:" in out.read_text()


def test_discover_refuses_an_unknown_subject_table(sqlite_shop: str) -> None:
    result = invoke("discover", "--db", sqlite_shop, "--subject-table", "clients")
    assert (result.exit_code, result.stderr) == (
        2, "reconciler: error: --subject-table: table 'clients' is not in the database\n")


def test_a_tampered_ledger_is_exit_3_and_changes_nothing(
        sqlite_shop: str, files: tuple[str, str, str]) -> None:
    ledger_path = files[0]
    engine = sa.create_engine(f"sqlite:///{ledger_path}", poolclass=NullPool)
    with engine.begin() as conn:
        data = conn.execute(sa.text("SELECT data FROM erasure_ledger_leaves WHERE seq = 0")).scalar_one()
        flipped = bytes([data[0] ^ 1]) + data[1:]
        conn.execute(sa.text("UPDATE erasure_ledger_leaves SET data = :d WHERE seq = 0"), {"d": flipped})
    engine.dispose()
    before = dump(f"sqlite:///{sqlite_shop}")
    for command in ("plan", "apply"):
        result = invoke(command, *common(sqlite_shop, files))
        assert result.exit_code == 3
        assert result.stderr.startswith("reconciler: error: ")
        assert result.stderr.count("\n") == 1
    assert dump(f"sqlite:///{sqlite_shop}") == before


def test_a_custom_identifier_type_no_entry_uses_is_a_warning_in_the_plan(
        sqlite_shop: str, files: tuple[str, str, str], tmp_path: Path) -> None:
    # "loyalty_card" is no built-in type's misspelling, so it loads; but no ledger entry
    # carries one, so the newsletter matches nobody: the plan must say so.
    custom = tmp_path / "custom.yaml"
    custom.write_text(SHOP_MAP.replace("match: {email: address}",
                                       "match: {loyalty_card: address}"))
    args = common(sqlite_shop, files)
    args[args.index("--map") + 1] = str(custom)
    result = invoke("plan", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == [
        "identifier type 'loyalty_card' is used by no ledger entry"]


def test_a_ledger_identifier_type_no_column_matches_is_a_warning_in_the_plan(
        sqlite_shop: str, tmp_path: Path) -> None:
    # a custom type the map never matches (or a bulk import's misspelt key that became
    # one): that entry finds nobody by it
    files = make_files(tmp_path, [ERASE_JAN, {"request_id": "DSR-T", "kind": "erasure",
                                              "identifiers": {"loyalty_card": "LC-77"}}])
    result = invoke("plan", *common(sqlite_shop, files), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["warnings"] == [
        "identifier type 'loyalty_card' of 1 ledger entry is matched by no column of the map: "
        "nobody is found by it"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param("postgresql+psycopg://u:s3cret@127.0.0.1:1/shop",
                     'connection failed: connection to server at "127.0.0.1", port 1 failed: '
                     "Connection refused", id="refused-port"),
        pytest.param("postgresql+psycopg://u:s3cret@nosuchhost.invalid/shop",
                     "failed to resolve host 'nosuchhost.invalid': [Errno -2] Name or service "
                     "not known", id="unknown-host"),
        pytest.param("postgresql+psycopg://nobody:s3cret@127.0.0.1:5432/test",
                     'connection failed: connection to server at "127.0.0.1", port 5432 '
                     'failed: FATAL:  role "nobody" does not exist', id="wrong-user"),
        pytest.param("mysql+pymysql://root@127.0.0.1:3306/nosuchdb",
                     "(1049, \"Unknown database 'nosuchdb'\")", id="missing-database"),
    ],
)
def test_a_connection_failure_names_the_drivers_reason_not_the_password(
        url: str, reason: str) -> None:
    result = invoke("discover", "--db", url, "--subject-table", "customers")
    shown = url.replace(":s3cret@", ":***@")
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: snapshot {shown}: cannot connect: {reason}\n")
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        pytest.param(["plan", "--mapp", "x.yaml"],
                     "reconciler: error: no such option --mapp (did you mean --map?)",
                     id="misspelt-option"),
        pytest.param(["plan", "--jan@example.nl"], "reconciler: error: no such option",
                     id="value-as-option-not-echoed"),
        pytest.param(["plan", "--db", "x", "--map", "m", "--ledger", "l", "--keyring", "k",
                      "--as-of", "jan@example.nl"],
                     "reconciler: error: invalid value for --as-of: expected YYYY-MM-DD",
                     id="bad-date"),
        pytest.param(["verify", "--db", "x", "--map", "m", "--ledger", "l", "--keyring", "k",
                      "--snapshot-time", "jan@example.nl"],
                     "reconciler: error: invalid value for --snapshot-time: expected "
                     "YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD HH:MM:SS",
                     id="bad-time"),
        pytest.param(["plan", "--map", "m"], "reconciler: error: missing option --db",
                     id="missing-option"),
        pytest.param(["plan", "--db", "x", "--map", "m"],
                     "reconciler: error: missing option --ledger (or set ERASURE_LEDGER)",
                     id="missing-option-with-env"),
        pytest.param(["plan", "--db", "x", "--debug"],
                     "reconciler: error: --debug goes before the command: reconciler --debug "
                     "COMMAND ...", id="debug-after-the-command"),
        pytest.param(["discover", "--db", "x", "--subject-table", "c", "jan@example.nl"],
                     "reconciler: error: unexpected extra argument(s); quote values that "
                     "contain spaces", id="extra-argument"),
        pytest.param(["jan@example.nl"],
                     "reconciler: error: no such command (try: reconciler --help)",
                     id="no-such-command"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_never_echo_a_value(
        args: list[str], stderr: str) -> None:
    result = invoke(*args)
    assert (result.exit_code, result.stderr, result.stdout) == (2, stderr + "\n", "")


def test_dash_h_is_help() -> None:
    result = invoke("plan", "-h")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: reconciler plan [OPTIONS]")


def test_debug_adds_the_traceback_and_its_cause_but_keeps_the_exit_code(
        sqlite_shop: str, files: tuple[str, str, str], tmp_path: Path) -> None:
    args = common(sqlite_shop, files)
    args[args.index("--map") + 1] = str(tmp_path / "missing.yaml")
    result = invoke("--debug", "plan", *args)
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "FileNotFoundError" in result.stderr  # the cause, though raised "from None"
    assert result.stderr.endswith("reconciler: error: missing.yaml: cannot read the data map "
                                  "(No such file or directory)\n")


def test_a_closed_pipe_is_quiet(sqlite_shop: str, files: tuple[str, str, str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # `reconciler plan | head -2`: the reader went away, which is not an error of ours
    def closed(*_: object, **__: object) -> None:
        raise BrokenPipeError
    monkeypatch.setattr("reconciler.cli.click.echo", closed)
    result = invoke("plan", *common(sqlite_shop, files))
    assert (result.exit_code, result.stderr) == (0, "")


def test_debug_shows_where_a_statement_failed_but_never_the_row_it_quoted(
        sqlite_shop: str, tmp_path: Path) -> None:
    # a trigger refuses the change with a message that quotes the row, as real ones do
    engine = sa.create_engine(f"sqlite:///{sqlite_shop}", poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE customers SET email = '{CANARY}' WHERE id = 2"))
        conn.execute(sa.text(
            "CREATE TRIGGER legal_hold BEFORE UPDATE ON customers BEGIN "
            f"SELECT RAISE(ABORT, 'customer {CANARY} is on legal hold'); END"))
    engine.dispose()
    before = dump(f"sqlite:///{sqlite_shop}")
    files = make_files(tmp_path, [ERASE_CANARY])
    result = invoke("--debug", "apply", *common(sqlite_shop, files))
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "IntegrityError: (message not shown" in result.stderr  # the driver's error, by class
    assert result.stderr.endswith("rolled back, nothing was changed\n")
    assert CANARY not in result.stderr.lower()
    assert CANARY not in result.stdout.lower()
    assert dump(f"sqlite:///{sqlite_shop}") == before


def test_a_report_path_that_cannot_be_written_is_refused_before_anything_changes(
        sqlite_shop: str, files: tuple[str, str, str], tmp_path: Path) -> None:
    before = dump(f"sqlite:///{sqlite_shop}")
    report = tmp_path / "no-such-dir" / "r.json"
    result = invoke("apply", *common(sqlite_shop, files), "--report", str(report))
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: {report}: cannot write the report (no such directory); "
           "nothing was changed\n")
    directory = invoke("apply", *common(sqlite_shop, files), "--report", str(tmp_path))
    assert (directory.exit_code, directory.stderr) == (
        2, "reconciler: error: invalid value for --report: expected file\n")
    assert dump(f"sqlite:///{sqlite_shop}") == before


@pytest.mark.parametrize("which", ["ledger", "keyring", "map", "snapshot"])
def test_a_report_path_naming_an_input_is_refused_and_the_input_kept(
        sqlite_shop: str, files: tuple[str, str, str], which: str) -> None:
    ledger, key, map_path = files
    target = Path({"ledger": ledger, "keyring": key, "map": map_path,
                   "snapshot": sqlite_shop}[which])
    kept, before = target.read_bytes(), dump(f"sqlite:///{sqlite_shop}")
    for command in ("plan", "apply"):
        result = invoke(command, *common(sqlite_shop, files), "--report", str(target))
        assert (result.exit_code, result.stderr) == (
            2, f"reconciler: error: {target}: exists and is not a reconciler report; not "
               "overwriting it (choose another --report); nothing was changed\n")
    assert target.read_bytes() == kept
    assert dump(f"sqlite:///{sqlite_shop}") == before


def test_an_earlier_report_is_replaced_and_a_markdown_name_is_refused(
        sqlite_shop: str, files: tuple[str, str, str], tmp_path: Path) -> None:
    report = tmp_path / "weekly.json"
    first = invoke("plan", *common(sqlite_shop, files), "--report", str(report))
    assert first.exit_code == 0
    second = invoke("apply", *common(sqlite_shop, files), "--report", str(report))
    assert second.exit_code == 0, second.stderr
    assert json.loads(report.read_text())["command"] == "apply"
    assert report.with_suffix(".md").read_text().startswith("# Reconciler apply report\n")
    empty = tmp_path / "empty.json"
    empty.touch()  # as mktemp leaves it
    assert invoke("verify", *common(sqlite_shop, files)[:8], "--report", str(empty)
                  ).exit_code == 0
    md = invoke("plan", *common(sqlite_shop, files), "--report", str(tmp_path / "r.md"))
    assert (md.exit_code, md.stderr) == (
        2, f"reconciler: error: {tmp_path / 'r.md'}: --report names the JSON file and the "
           "Markdown goes beside it (.md): choose a name that does not end in .md; nothing "
           "was changed\n")


def test_discover_never_overwrites_a_map_without_force(sqlite_shop: str, tmp_path: Path) -> None:
    reviewed = tmp_path / "datamap.yaml"
    reviewed.write_text("# reviewed by the privacy officer\n", encoding="utf-8")
    refused = invoke("discover", "--db", sqlite_shop, "--subject-table", "customers",
                     "--out", str(reviewed))
    assert (refused.exit_code, refused.stderr) == (
        2, f"reconciler: error: {reviewed} exists (a map you reviewed?); choose another --out, "
           "or add --force to overwrite it\n")
    assert reviewed.read_text(encoding="utf-8") == "# reviewed by the privacy officer\n"
    forced = invoke("discover", "--db", sqlite_shop, "--subject-table", "customers",
                    "--out", str(reviewed), "--force")
    assert forced.exit_code == 0
    assert forced.stderr == (f"draft data map written to {reviewed}: review every guess "
                             "before using it\n")
    assert DataMap.load(reviewed).subject.name == "customers"


def test_a_locked_snapshot_says_it_is_locked_not_that_it_is_no_database(
        sqlite_shop: str, files: tuple[str, str, str]) -> None:
    locker = sqlite3.connect(sqlite_shop, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        args = common(f"sqlite:///{sqlite_shop}?timeout=0.1", files)
        result = invoke("plan", *args)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: snapshot sqlite:///{sqlite_shop}?timeout=0.1: cannot read it "
           "(SQLITE_BUSY: database is locked)\n")


def test_a_report_path_that_is_no_regular_file_is_refused_without_blocking(
        sqlite_shop: str, files: tuple[str, str, str], tmp_path: Path) -> None:
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)  # opening it to read would wait for a writer for ever
    result = invoke("apply", *common(sqlite_shop, files), "--report", str(fifo))
    assert (result.exit_code, result.stderr) == (
        2, f"reconciler: error: {fifo}: cannot write the report (not a regular file); nothing "
           "was changed\n")
