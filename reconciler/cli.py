"""The ``reconciler`` command line: parse -> call one library function -> render -> exit.

Exit codes: 0 success / clean; 1 residual personal data found; 2 usage, configuration or
input error (nothing changed); 3 ledger integrity failure. Errors are one line on stderr,
never a traceback (unless ``--debug``), never an identifier value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from erasure_ledger import Keyring, Ledger, LedgerError, StoreConfig, open_store
from reconciler import __version__
from reconciler.console import progress_for
from reconciler.datamap import DataMap
from reconciler.discover import discover
from reconciler.drill import drill
from reconciler.errors import (
    ReconcileError,
    ResidualDataFound,
    ResidualScanFailed,
    SnapshotError,
    redact_url,
)
from reconciler.objects import ObjectStore
from reconciler.progress import Progress
from reconciler.replay import replay, verify
from reconciler.report import Report, build_report
from reconciler.tracebacks import SafeFormatter, safe_traceback
from reconciler.watermark import stamp

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"reconciler: error: {message}", err=True)
    sys.exit(code)


def _print_traceback(exc: BaseException) -> None:
    # ``raise ... from None`` keeps messages short; with --debug the cause is the point: its
    # frames and class, not its message (a driver's message can quote a row).
    sys.stderr.write(safe_traceback(exc))


def handle_errors(func: F) -> F:
    """Map library errors to one stderr line and their exit code; ``--debug`` adds a traceback.

    The exit code never depends on ``--debug``: 1 means residual data, whatever else is shown.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(click.get_current_context().find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except (LedgerError, ReconcileError) as exc:
            if debug:
                _print_traceback(exc)
            fail(str(exc), exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, SystemExit, BrokenPipeError):
            raise
        except Exception as exc:
            if debug:
                _print_traceback(exc)
                fail(f"internal error ({type(exc).__name__}); see the traceback above")
            # An unexpected exception's message could quote data; print only its type.
            fail(f"internal error ({type(exc).__name__}); rerun with --debug for details")

    return wrapper  # type: ignore[return-value]


_OPTION_NAME = re.compile(r"--?[a-z][a-z-]{0,40}")
_DATE_PARTS = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "HH", "%M": "MM", "%S": "SS"}


def _expected_date(formats: Any) -> str:
    forms = []
    for written in formats:
        form = str(written)
        for code, shown in _DATE_PARTS.items():
            form = form.replace(code, shown)
        forms.append(form)
    return ", ".join(forms[:-1]) + " or " + forms[-1] if len(forms) > 1 else "".join(forms)


def usage_message(exc: click.ClickException) -> str:  # noqa: PLR0911 - one return per kind
    """One line for a usage error that names the parameter and the problem, never the value.

    A value typed in the wrong place may be an identifier (``plan jan@example.nl``); an option
    name is repeated only if it looks like one.

    Returns:
        The message, without the ``reconciler: error:`` prefix.
    """
    if isinstance(exc, click.MissingParameter):
        param = exc.param
        name = param.opts[0] if param is not None and param.opts else "a parameter"
        envvar = param.envvar if param is not None and isinstance(param.envvar, str) else None
        return f"missing option {name}" + (f" (or set {envvar})" if envvar else "")
    if isinstance(exc, click.BadParameter):
        param = exc.param
        name = param.opts[0] if param is not None and param.opts else "a parameter"
        kind = param.type if param is not None else None
        if isinstance(kind, click.DateTime):
            return f"invalid value for {name}: expected {_expected_date(kind.formats)}"
        if isinstance(kind, click.Choice):
            return f"invalid value for {name}: expected one of {', '.join(map(str, kind.choices))}"
        if kind is not None and kind.name:
            return f"invalid value for {name}: expected {kind.name}"
        return f"invalid value for {name}"
    if isinstance(exc, click.NoSuchOption):
        if exc.option_name == "--debug":
            return "--debug goes before the command: reconciler --debug COMMAND ..."
        if _OPTION_NAME.fullmatch(exc.option_name or ""):
            hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
            return f"no such option {exc.option_name}{hint}"
        return "no such option"
    message = exc.format_message()
    if message.startswith("Got unexpected extra argument"):
        return "unexpected extra argument(s); quote values that contain spaces"
    if message.startswith("No such command"):
        return "no such command (try: reconciler --help)"
    if isinstance(exc, click.UsageError):
        return "invalid usage (try: reconciler --help)"
    return "invalid input"


class _Group(click.Group):
    """The ``reconciler`` group: usage errors as one line, exit 2; a closed pipe is quiet."""

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            status = super().main(args, prog_name or "reconciler", complete_var,
                                  standalone_mode=False, **extra)
        except BrokenPipeError:
            # The reader went away (`reconciler plan | head -2`): not an error of ours.
            # Python flushes stdout at exit: point it at /dev/null so that is quiet too.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except click.exceptions.Abort:
            fail("aborted; nothing was changed")
        except click.ClickException as exc:
            if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
                exc.show()  # no command at all: the help, on stderr with exit 2, as click does
                sys.exit(2)
            fail(usage_message(exc))
        sys.exit(status if isinstance(status, int) else 0)


@click.group(name="reconciler", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True,
              help="Show tracebacks and debug logging (exit codes stay the same).")
def main(debug: bool) -> None:
    """Replay the erasure ledger against a restored database snapshot."""
    # botocore's DEBUG records quote request parameters: object keys, which can hold personal
    # data (customers/<e-mail>/id.pdf). Not even --debug shows them.
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(name).setLevel(logging.INFO)
    # SQLAlchemy's INFO and DEBUG records are the statements' parameters and result rows.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(SafeFormatter("%(levelname)s:%(name)s:%(message)s"))
        logging.basicConfig(level=logging.DEBUG, handlers=[handler])


def snapshot_options(func: F) -> F:
    options = [
        click.option("--db", required=True, metavar="URL|PATH",
                     help="The snapshot: a SQLAlchemy URL or a SQLite file."),
        click.option("--map", "map_path", required=True, type=click.Path(dir_okay=False),
                     help="The data map (YAML)."),
        click.option("--ledger", "ledger_location", required=True, envvar="ERASURE_LEDGER",
                     help="Ledger location. [env: ERASURE_LEDGER]"),
        click.option("--keyring", "keyring_path", required=True, envvar="ERASURE_KEYRING",
                     type=click.Path(dir_okay=False), help="Keyring file. [env: ERASURE_KEYRING]"),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL",
                     help="S3/KMS-compatible endpoint. [env: AWS_ENDPOINT_URL]"),
        click.option("--report", "report_path", type=click.Path(dir_okay=False),
                     help="Write the JSON report here (and Markdown beside it, .md)."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def snapshot_time_option(func: F) -> F:
    return click.option("--snapshot-time", type=click.DateTime(),
                        help="When the backup was taken (UTC), if it has no watermark "
                             "(reconciler stamp); entries effective before it that still had "
                             "data are reported as production erasure incomplete.")(func)


def replay_options(func: F) -> F:
    func = snapshot_time_option(func)
    return click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]),
                        help="Measure retention periods to this day. [default: today]")(func)


def workers_option(func: F) -> F:
    return click.option("--workers", type=click.IntRange(min=1), metavar="N",
                        help="Processes for the residual scan, each with its own connection "
                             "(1: this process only, to spare a busy server). "
                             "[default: one per CPU, at most 8]")(func)


def _open_ledger(location: str, keyring_path: str, endpoint_url: str | None) -> Ledger:
    keyring = Keyring.load(keyring_path, endpoint_url=endpoint_url)
    store = open_store(location, config=StoreConfig(endpoint_url=endpoint_url))
    return Ledger.open(store, keyring)


def _hash_key(ledger: Ledger) -> bytes:
    # A key of its own for the hash strategy, derived from the ledger's index key, so equal
    # values hash equally across runs and tables but not like the ledger's blind index.
    return ledger.keyring.derive_key("reconciler/hash-strategy")


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _check_report_path(report_path: str | None) -> None:
    """Refuse a report path that cannot be written BEFORE anything changes: an apply whose
    report is lost cannot be reported again (a second apply finds nothing left to do).

    An existing file is only replaced when it is empty or an earlier report: ``--report``
    pointed at the keyring, the ledger, the map or the snapshot by a slip of the shell would
    otherwise destroy it."""
    if not report_path:
        return
    path = Path(report_path)
    if path.suffix == ".md":
        raise ReconcileError(f"{path}: --report names the JSON file and the Markdown goes "
                             "beside it (.md): choose a name that does not end in .md; "
                             "nothing was changed")
    for target in (path, path.with_suffix(".md")):
        if target.is_dir():
            problem = "it is a directory"
        elif not target.parent.is_dir():
            problem = "no such directory"
        elif target.exists() and not target.is_file():
            problem = "not a regular file"  # a FIFO or a terminal would block the check below
        elif not os.access(target if target.exists() else target.parent, os.W_OK):
            problem = "permission denied"
        elif not _replaceable(target):
            raise ReconcileError(f"{target}: exists and is not a reconciler report; not "
                                 "overwriting it (choose another --report); nothing was changed")
        else:
            continue
        raise ReconcileError(f"{path}: cannot write the report ({problem}); nothing was changed")


_EARLIER_REPORT = {".json": re.compile(rb'\{\s*"format": \d+,\s*"command": "'),
                   ".md": re.compile(rb"# Reconciler \w+ report\n")}


def _replaceable(target: Path) -> bool:
    """True when ``target`` is missing, empty, or begins like a report this tool writes."""
    try:
        with target.open("rb") as existing:
            head = existing.read(256)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    pattern = _EARLIER_REPORT.get(target.suffix, _EARLIER_REPORT[".json"])
    return not head or pattern.match(head) is not None


def _emit(report: Report, report_path: str | None, as_json: bool) -> None:
    # The Markdown is rendered once (a few MB for 100,000 entries); the JSON is streamed,
    # never held whole (Report.write_json). Printed first: if the file cannot be written
    # after all (a full disk), the report of changes already made is not lost.
    markdown = report.to_markdown()
    if as_json:
        report.write_json(sys.stdout)
    else:
        click.echo(markdown, nl=False)
    if report_path:
        path = Path(report_path)
        try:
            with path.open("w", encoding="utf-8") as out:
                report.write_json(out)
            path.with_suffix(".md").write_text(markdown, encoding="utf-8")
        except OSError as exc:
            raise SnapshotError(f"{path}: cannot write the report ({exc.strerror}); it was "
                                "printed above") from None


def _residuals(report: Report) -> None:
    if report.scan_failure:
        raise ResidualScanFailed(f"{report.scan_failure}; the changes were applied and "
                                 "committed, nothing is proven: run reconciler verify to scan "
                                 "again; see the report")
    if not report.clean:
        # object findings of a retention rule have no entry: they count by their rule
        entries = len({str(f["seq"]) for f in report.findings}
                      | {f["source"] for f in report.object_findings})
        count = len(report.findings) + len(report.object_findings)
        raise ResidualDataFound(
            f"residual personal data found: {count} finding(s) for {entries} "
            "ledger entr" + ("y" if entries == 1 else "ies") + "; see the report")


def _progress(enabled: bool) -> AbstractContextManager[Progress]:
    # Bars only on a terminal, never with --json: pipelines and logs get no progress noise.
    return progress_for(sys.stderr, quiet=not enabled)


def _run(command: str, *, db: str, map_path: str, ledger_location: str, keyring_path: str,
         endpoint_url: str | None, report_path: str | None, as_json: bool,
         as_of: dt.datetime | None, snapshot_time: dt.datetime | None,
         batch_rows: int | None = None, discard_journal: bool = False,
         workers: int | None = None) -> None:
    started = time.monotonic()
    _check_report_path(report_path)
    if discard_journal and batch_rows is None:
        raise ReconcileError("--discard-journal needs --batch-rows; nothing was changed")
    data_map = DataMap.load(map_path)
    ledger = _open_ledger(ledger_location, keyring_path, endpoint_url)
    day = as_of.date() if as_of else dt.datetime.now(dt.UTC).date()
    with _progress(not as_json) as progress:
        result = replay(db, data_map, ledger, as_of=day, dry_run=command == "plan",
                        hash_key=_hash_key(ledger), progress=progress,
                        snapshot_time=_utc(snapshot_time),
                        objects=ObjectStore(endpoint_url=endpoint_url),
                        batch_rows=batch_rows, discard_journal=discard_journal,
                        workers=workers)
    report = build_report(
        command=command, tool_version=__version__, now=dt.datetime.now(dt.UTC),
        snapshot=result.snapshot, ledger=result.ledger, data_map=data_map,
        entries=result.plan.entries, execution=result.execution, scan=result.scan, as_of=day,
        scan_failure=result.scan_failure,
        snapshot_time=_utc(snapshot_time), duration_seconds=time.monotonic() - started,
        dating=result.dating, objects=result.objects)
    _emit(report, report_path, as_json)
    _residuals(report)


@main.command()
@snapshot_options
@replay_options
@handle_errors
def plan(**options: Any) -> None:
    """Dry run: what apply would change, per table and entry. Changes nothing."""
    _run("plan", **options)


@main.command()
@snapshot_options
@replay_options
@click.option("--batch-rows", type=click.IntRange(min=1), metavar="N",
              help="For tables too large for one transaction: change at most N rows per "
                   "statement, each batch committed on its own and journaled in the snapshot "
                   "(rc_journal); the same command resumes an interrupted apply.")
@click.option("--discard-journal", is_flag=True,
              help="With --batch-rows: abandon an unfinished batched apply (another map or "
                   "--as-of) and start a new one.")
@workers_option
@handle_errors
def apply(**options: Any) -> None:
    """Replay every ledger entry in one transaction (or in journaled batches), then run the
    residual scan."""
    _run("apply", **options)


@main.command(name="verify")
@snapshot_options
@snapshot_time_option
@workers_option
@handle_errors
def verify_command(db: str, map_path: str, ledger_location: str, keyring_path: str,
                   endpoint_url: str | None, report_path: str | None, as_json: bool,
                   snapshot_time: dt.datetime | None, workers: int | None) -> None:
    """Residual scan: exit 1 if any erased person's identifier is left in the snapshot."""
    started = time.monotonic()
    _check_report_path(report_path)
    data_map = DataMap.load(map_path)
    ledger = _open_ledger(ledger_location, keyring_path, endpoint_url)
    with _progress(not as_json) as progress:
        result = verify(db, data_map, ledger, snapshot_time=_utc(snapshot_time),
                        progress=progress, objects=ObjectStore(endpoint_url=endpoint_url),
                        workers=workers)
    report = build_report(
        command="verify", tool_version=__version__, now=dt.datetime.now(dt.UTC),
        snapshot=result.snapshot, ledger=result.ledger, data_map=data_map, scan=result.scan,
        schema_fingerprint=result.schema_fingerprint,
        duration_seconds=time.monotonic() - started, dating=result.dating,
        objects=result.objects, drift=result.drift)
    _emit(report, report_path, as_json)
    _residuals(report)


@main.command(name="drill")
@click.option("--snapshot", required=True, metavar="FILE|s3://BUCKET/KEY",
              help="The backup, a file or an object in S3: a SQLite snapshot, a pg_dump "
                   "(-Fc or plain SQL) or a mariadb-dump. Only read.")
@click.option("--map", "map_path", required=True, type=click.Path(dir_okay=False),
              help="The data map (YAML).")
@click.option("--ledger", "ledger_location", required=True, envvar="ERASURE_LEDGER",
              help="Ledger location. [env: ERASURE_LEDGER]")
@click.option("--keyring", "keyring_path", required=True, envvar="ERASURE_KEYRING",
              type=click.Path(dir_okay=False), help="Keyring file. [env: ERASURE_KEYRING]")
@click.option("--scratch-db", metavar="URL",
              help="An EMPTY database to copy or restore the snapshot into; a dump needs "
                   "one of its kind (PostgreSQL or MariaDB). [default for SQLite: a "
                   "temporary copy]")
@click.option("--restore-timeout", type=click.IntRange(min=1), default=3600, show_default=True,
              metavar="SECONDS", help="Stop a dump's restore tool after this long.")
@click.option("--trust-dump", is_flag=True,
              help="The dump comes from a source you trust: restore it even if the "
                   "--scratch-db user's rights reach beyond that database (a superuser, "
                   "CREATEDB, server files, other databases). Without it such a user is "
                   "refused.")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL",
              help="S3/KMS-compatible endpoint. [env: AWS_ENDPOINT_URL]")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the JSON report here (and Markdown beside it, .md).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@replay_options
@workers_option
@handle_errors
def drill_command(snapshot: str, map_path: str, ledger_location: str, keyring_path: str,
                  scratch_db: str | None, restore_timeout: int, trust_dump: bool,
                  endpoint_url: str | None,
                  report_path: str | None, as_json: bool, as_of: dt.datetime | None,
                  snapshot_time: dt.datetime | None, workers: int | None) -> None:
    """Copy a backup to a scratch database, apply and verify there, report, clean up."""
    started = time.monotonic()
    _check_report_path(report_path)
    data_map = DataMap.load(map_path)
    ledger = _open_ledger(ledger_location, keyring_path, endpoint_url)
    day = as_of.date() if as_of else dt.datetime.now(dt.UTC).date()
    with _progress(not as_json) as progress:
        result = drill(snapshot, data_map, ledger, as_of=day, hash_key=_hash_key(ledger),
                       scratch_db=scratch_db, objects=ObjectStore(endpoint_url=endpoint_url),
                       snapshot_time=_utc(snapshot_time), progress=progress,
                       restore_timeout=restore_timeout, trust_dump=trust_dump,
                       workers=workers)
    replayed = result.replay
    report = build_report(
        command="drill", tool_version=__version__, now=dt.datetime.now(dt.UTC),
        snapshot=result.source, ledger=replayed.ledger, data_map=data_map,
        entries=replayed.plan.entries, execution=replayed.execution, scan=replayed.scan,
        scan_failure=replayed.scan_failure,
        as_of=day, snapshot_time=_utc(snapshot_time),
        duration_seconds=time.monotonic() - started, dating=replayed.dating,
        drill=result.to_dict(), objects=replayed.objects)
    _emit(report, report_path, as_json)
    _residuals(report)


@main.command(name="stamp")
@click.option("--db", required=True, metavar="URL|PATH",
              help="The live database, just before its backup.")
@click.option("--ledger", "ledger_location", required=True, envvar="ERASURE_LEDGER",
              help="Ledger location. [env: ERASURE_LEDGER]")
@click.option("--keyring", "keyring_path", envvar="ERASURE_KEYRING",
              type=click.Path(dir_okay=False),
              help="Keyring file; needed only if the ledger head is not signed yet. "
                   "[env: ERASURE_KEYRING]")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL",
              help="S3/KMS-compatible endpoint. [env: AWS_ENDPOINT_URL]")
@click.option("--json", "as_json", is_flag=True, help="Print the watermark as JSON.")
@handle_errors
def stamp_command(db: str, ledger_location: str, keyring_path: str | None,
                  endpoint_url: str | None, as_json: bool) -> None:
    """Write the ledger's signed checkpoint into the database; run just before each backup."""
    keyring = Keyring.load(keyring_path, endpoint_url=endpoint_url) if keyring_path else None
    store = open_store(ledger_location, config=StoreConfig(endpoint_url=endpoint_url))
    mark = stamp(db, Ledger.open(store, keyring), now=dt.datetime.now(dt.UTC))
    if as_json:
        click.echo(json.dumps({"snapshot": redact_url(db), **mark.to_dict()}, indent=2))
    else:
        click.echo(f"stamped {redact_url(db)}: ledger {mark.origin} at tree size "
                   f"{mark.tree_size} (root {mark.root_hash[:16]}...), {mark.stamped_at.isoformat()}")


@main.command(name="discover")
@click.option("--db", required=True, metavar="URL|PATH", help="The database to reflect.")
@click.option("--subject-table", required=True, help="The table with one row per person.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the draft map here (a new file: a reviewed map is never overwritten).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@handle_errors
def discover_command(db: str, subject_table: str, out: str | None, force: bool) -> None:
    """Write a draft data map from the schema, for a person to review."""
    if out and Path(out).exists() and not force:
        raise ReconcileError(f"{out} exists (a map you reviewed?); choose another --out, or "
                             "add --force to overwrite it")
    text = discover(db, subject_table)
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise SnapshotError(f"{out}: cannot write ({exc.strerror})") from None
        click.echo(f"draft data map written to {out}: review every guess before using it",
                   err=True)
    else:
        click.echo(text, nl=False)


__all__ = ["handle_errors", "main", "usage_message"]
