"""``erasure-ledger``: the command line for the privacy officer and the auditor.

Every command parses its flags, calls one library function and renders the result. Errors
are caught once, in :func:`handle_errors`: one line on stderr, exit code from the exception
class (0 ok, 1 verification failed, 2 usage/config/input, 3 integrity). Nothing here prints an
identifier value except ``show``, which exists to do exactly that for the DPO.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from erasure_ledger import (
    Entry,
    Identifier,
    Keyring,
    Ledger,
    LedgerError,
    NoteVerifier,
    StoreConfig,
    UsageError,
    __version__,
    mirror,
    normalize,
    open_store,
    parse_timestamp,
    verify_since,
)
from erasure_ledger.export import export_public_log

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("erasure_ledger.cli")

# Typed identifier flags: flag name -> ledger identifier type.
ID_FLAGS = {
    "email": "email",
    "phone": "phone",
    "customer_number": "customer_number",
    "iban": "iban",
    "username": "username",
    "ip": "ip",
    "cookie_id": "cookie_id",
    "kvk": "kvk",
}
ID_HELP = {
    "email": "An e-mail address",
    "phone": "A phone number (E.164 or national, see --default-region at init)",
    "customer_number": "A customer number",
    "iban": "An IBAN (checksum-validated)",
    "username": "A username or profile name",
    "ip": "An IP address",
    "cookie_id": "A cookie identifier",
    "kvk": "A Chamber of Commerce (KvK) number",
}


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"erasure-ledger: error: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Map library errors to one stderr line and their exit code; ``--debug`` re-raises."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(click.get_current_context().find_root().params.get("debug"))
        try:
            return func(*args, **kwargs)
        except LedgerError as exc:
            if debug:
                traceback.print_exc()  # the cause chain too; the exit code stays the contract's
            fail(str(exc), exc.exit_code)
        except click.exceptions.Abort:
            fail("aborted; nothing was changed")
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as exc:
            if debug:
                traceback.print_exc()
            # The message of an unexpected exception could quote data; print only its type.
            fail(f"internal error ({type(exc).__name__}); rerun with --debug for details")

    return wrapper  # type: ignore[return-value]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 entry``, ``2 entries``: the count and the noun in the right number."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def ledger_files(location: str, keyring_path: str | None) -> list[tuple[Path, str]]:
    """The local files an output flag must never overwrite: the ledger's SQLite file (and its
    -wal and -shm), and the keyring, each with what to call it in a message."""
    files: list[tuple[Path, str]] = []
    path: str | None = location
    if "://" in location:  # any SQLite URL spelling: sqlite+pysqlite:///..., ?timeout=5 ...
        import sqlalchemy as sa  # here: most commands never need it to read their flags

        try:
            url = sa.engine.make_url(location)
        except sa.exc.ArgumentError:
            url = None
        path = url.database if url is not None and url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:":
        files += [(Path(path + suffix), "the ledger file")
                  for suffix in ("", "-wal", "-shm", "-journal")]
    if keyring_path:
        files.append((Path(keyring_path), "the keyring"))
    return files


def check_output_file(
    path: str, flag: str, *, protected: Iterable[tuple[Path, str]], force: bool = False
) -> None:
    """Refuse an output file that is the ledger or the keyring, or (without ``force``) any
    existing file; nothing is written.

    Raises:
        UsageError: the file is protected, or exists and ``force`` is not given.
    """
    target = Path(path)
    for other, what in protected:
        same = target.resolve() == other.resolve()
        with contextlib.suppress(OSError):
            same = same or os.path.samefile(target, other)
        if same:
            raise UsageError(f"{flag} {path}: that is {what}; refusing to overwrite it")
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a directory")
    kind = _what_file(target)
    if kind is not None:  # a ledger or keyring not named on this command line
        raise UsageError(f"{flag} {path}: that is {kind}; refusing to overwrite it")
    if target.exists() and not force:
        raise UsageError(f"{flag} {path}: already exists; refusing to overwrite it (--force overwrites)")


# the first bytes of SQLite's write-ahead log (either byte order) and rollback journal: a
# ledger's committed entries can live there until the next checkpoint of the log
_SQLITE_SIDE_FILES = {b"\x37\x7f\x06\x82": "write-ahead log", b"\x37\x7f\x06\x83": "write-ahead log",
                      b"\xd9\xd5\x05\xf9": "rollback journal"}


def _what_file(path: Path) -> str | None:
    """"a database" or "a keyring" when the existing file at ``path`` starts like one."""
    try:
        if path.exists() and not path.is_file():
            return "not a regular file"  # a FIFO or a terminal: reading it would block
        with open(path, "rb") as file:
            start = file.read(4096)
    except OSError:
        return None
    if start.startswith(b"SQLite format 3\x00"):
        return "a database (a ledger?)"
    if start[:4] in _SQLITE_SIDE_FILES:
        return "a database's " + _SQLITE_SIDE_FILES[start[:4]]
    if b'"format": "erasure-ledger-keyring/' in start:
        return "a keyring"
    return None


def write_text_file(path: str, text: str, *, overwrite: bool = False) -> None:
    """Write ``text`` to a new file (or, with ``overwrite``, replace one); a write that fails
    leaves no partial file behind."""
    try:
        with open(path, "w" if overwrite else "x", encoding="utf-8") as out:
            try:
                out.write(text)
            except OSError:
                out.close()
                os.unlink(path)
                raise
    except FileExistsError:
        raise UsageError(f"{path}: already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None


@contextlib.contextmanager
def bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector: a bulk import allocates millions of small acyclic
    objects that it would otherwise rescan again and again (a quarter of the run time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# -- shared options ------------------------------------------------------------------------------


def ledger_option(func: F) -> F:
    return click.option(
        "--ledger",
        "location",
        envvar="ERASURE_LEDGER",
        required=True,
        metavar="LOCATION",
        help="Ledger location: a file path (SQLite), a SQLAlchemy URL or s3://bucket/prefix. "
        "[env: ERASURE_LEDGER]",
    )(func)


def keyring_option(required: bool, *, creates: bool = False) -> Callable[[F], F]:
    return click.option(
        "--keyring",
        "keyring_path",
        envvar="ERASURE_KEYRING",
        required=required,
        type=click.Path(dir_okay=False),
        metavar="FILE",
        help=("Where to write the new ledger's key file (mode 0600; it must not exist)."
              if creates else "Key file created by init (mode 0600).") + " [env: ERASURE_KEYRING]",
    )


def endpoint_option(func: F) -> F:
    return click.option(
        "--endpoint-url",
        envvar="AWS_ENDPOINT_URL",
        default=None,
        metavar="URL",
        help="S3/KMS-compatible endpoint (MinIO, moto). [env: AWS_ENDPOINT_URL]",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def identifier_options(func: F) -> F:
    for flag in reversed(ID_FLAGS):
        func = click.option(
            f"--{flag.replace('_', '-')}",
            flag,
            multiple=True,
            metavar="VALUE",
            help=f"{ID_HELP[flag]} (repeatable).",
        )(func)
    return click.option(
        "--id",
        "custom_ids",
        multiple=True,
        metavar="TYPE=VALUE",
        help="Any identifier type, e.g. --id mac=00:1a:2b:3c:4d:5e.",
    )(func)


def collect_identifiers(kwargs: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = [(ID_FLAGS[flag], value) for flag in ID_FLAGS for value in kwargs.pop(flag, ())]
    for item in kwargs.pop("custom_ids", ()):
        id_type, sep, value = item.partition("=")
        if not sep:
            raise UsageError("--id takes TYPE=VALUE")
        pairs.append((id_type.strip(), value))
    return pairs


def load_keyring(path: str | None, *, endpoint_url: str | None = None) -> Keyring | None:
    return Keyring.load(path, endpoint_url=endpoint_url) if path else None


def open_ledger(location: str, keyring_path: str | None, endpoint_url: str | None = None) -> Ledger:
    store = open_store(location, config=StoreConfig(endpoint_url=endpoint_url))
    return Ledger.open(store, load_keyring(keyring_path, endpoint_url=endpoint_url))


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


# -- the group -----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="erasure-ledger")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs (may be verbose).")
def cli(debug: bool) -> None:
    """An append-only, encrypted, verifiable ledger of erasure requests and opt-outs."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@cli.command()
@ledger_option
@keyring_option(required=True, creates=True)
@endpoint_option
@click.option(
    "--origin",
    default=None,
    metavar="NAME",
    help="The ledger's name in checkpoints, e.g. shop.example/erasure-ledger.",
)
@click.option(
    "--default-region",
    default="NL",
    show_default=True,
    help="Region for phone numbers written without a country code.",
)
@click.option(
    "--public-key-out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the public verification key to this new file.",
)
@click.option(
    "--kms-key-id", default=None, metavar="KEY", help="Wrap the key-encryption key with this AWS KMS key."
)
@click.option(
    "--object-lock-mode",
    type=click.Choice(["GOVERNANCE", "COMPLIANCE"]),
    default=None,
    help="s3:// ledgers: Object Lock mode for entries and checkpoints.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(1, 36500),
    default=None,
    help="s3:// ledgers: how long entries and checkpoints stay write-once.",
)
@handle_errors
def init(
    location: str,
    keyring_path: str,
    endpoint_url: str | None,
    origin: str | None,
    default_region: str,
    public_key_out: str | None,
    kms_key_id: str | None,
    object_lock_mode: str | None,
    retention_days: int | None,
) -> None:
    """Create a new ledger and its keyring; print the public verification key."""
    if Path(keyring_path).exists():
        raise UsageError(f"keyring {keyring_path}: already exists; refusing to overwrite")
    if public_key_out:
        check_output_file(public_key_out, "--public-key-out", protected=ledger_files(location, keyring_path))
    import secrets

    name = origin or f"erasure-ledger/{secrets.token_hex(6)}"
    keyring = Keyring.generate(name, kms_key_id=kms_key_id)
    config = StoreConfig(
        endpoint_url=endpoint_url, object_lock_mode=object_lock_mode, object_lock_days=retention_days
    )
    store = open_store(location, create=True, config=config)
    if store.exists():
        store.read_meta()  # a ledger already there: refuse before writing a keyring
        raise UsageError(f"a ledger already exists at {store.location}")
    kms_encrypt = None
    if kms_key_id:
        from erasure_ledger.kms import kms_functions

        kms_encrypt, _ = kms_functions(kms_key_id, endpoint_url=endpoint_url)
    made: list[Path] = []
    try:
        if public_key_out:
            write_text_file(public_key_out, keyring.signer.verifier.vkey + "\n")
            made.append(Path(public_key_out))
        keyring.save(keyring_path, kms_encrypt=kms_encrypt)
        made.append(Path(keyring_path))
        ledger = Ledger.create(store, keyring, default_region=default_region, now=now_utc())
    except LedgerError:
        for path in made:  # nothing half-made: a retry must find a clean slate
            path.unlink(missing_ok=True)
        raise
    click.echo(ledger.verifier.vkey)
    for notice in getattr(store, "notices", ()):
        click.echo(f"note: {notice}", err=True)
    click.echo(
        f"created ledger {ledger.origin} at {store.location}; keyring {keyring_path} "
        "(keep it secret, keep a copy off this machine)",
        err=True,
    )


@cli.command()
@ledger_option
@keyring_option(required=True)
@endpoint_option
@click.option("--request-id", default=None, help="Your ticket number for the request (unique).")
@click.option("--kind", type=click.Choice(["erasure", "objection"]), default=None)
@identifier_options
@click.option("--received", default=None, help="When the request came in (ISO 8601).")
@click.option("--verified", default=None, help="When the requester's identity was verified.")
@click.option("--effective", default=None, help="When the erasure was carried out in production.")
@click.option("--purpose", default=None, help="Objections: the purpose, e.g. marketing.")
@click.option("--note", default=None, help="Free text, sealed with the entry.")
@click.option(
    "--from",
    "from_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append many entries from a JSONL file (all or nothing).",
)
@json_option
@handle_errors
def append(
    location: str,
    keyring_path: str,
    endpoint_url: str | None,
    request_id: str | None,
    kind: str | None,
    received: str | None,
    verified: str | None,
    effective: str | None,
    purpose: str | None,
    note: str | None,
    from_file: str | None,
    as_json: bool,
    **id_flags: Any,
) -> None:
    """Append one entry from flags, or many from --from FILE.jsonl; print the sequence numbers."""
    ledger = open_ledger(location, keyring_path, endpoint_url)
    pairs = collect_identifiers(id_flags)
    if from_file:
        if request_id or kind or pairs or received or verified or effective or purpose or note:
            raise UsageError("--from cannot be combined with entry flags")
        with bulk_allocation():
            result = ledger.append_jsonl(from_file, now=now_utc())
    else:
        if not request_id or not kind:
            raise UsageError("--request-id and --kind are required (or use --from FILE.jsonl)")
        identifiers = tuple(Identifier.parse(t, v, default_region=ledger.default_region) for t, v in pairs)
        entries = [
            Entry(
                request_id=request_id,
                kind=kind,  # type: ignore[arg-type]
                identifiers=identifiers,
                received=_ts(received, "received"),
                verified=_ts(verified, "verified"),
                effective=_ts(effective, "effective"),
                purpose=purpose,
                note=note,
            )
        ]
        result = ledger.append(entries, now=now_utc())
    if as_json:
        emit_json({"seqs": list(result.seqs), "tree_size": result.tree_size})
    elif len(result.seqs) == 1:
        click.echo(result.seqs[0])
    else:
        click.echo(f"{result.seqs[0]}..{result.seqs[-1]}")
        click.echo(f"appended {len(result.seqs)} entries; tree size {result.tree_size}", err=True)


@cli.command()
@ledger_option
@keyring_option(required=True)
@endpoint_option
@click.argument("request_id", metavar="REQUEST_ID")
@click.option("--effective", required=True, help="When it was carried out in production (ISO 8601).")
@click.option("--note", default=None, help="Free text, sealed with the entry.")
@handle_errors
def complete(
    location: str,
    keyring_path: str,
    endpoint_url: str | None,
    request_id: str,
    effective: str,
    note: str | None,
) -> None:
    """Record that REQUEST_ID was carried out in production (for requests appended before
    they were done; the ledger is append-only, so this appends a completion entry)."""
    ledger = open_ledger(location, keyring_path, endpoint_url)
    entry = Entry.completion(
        request_id, effective=parse_timestamp(effective, field_name="--effective"), note=note
    )
    result = ledger.append([entry], now=now_utc())
    click.echo(result.seqs[0])


def _ts(value: str | None, name: str) -> datetime | None:
    return parse_timestamp(value, field_name=name) if value else None


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "-"


@cli.command("list")
@ledger_option
@endpoint_option
@click.option(
    "--overdue",
    is_flag=True,
    help="Only requests past their one-month deadline (GDPR Art. 12(3)) and not yet carried "
    "out. Requests carried out after it are marked [LATE: ...] in the full list.",
)
@json_option
@handle_errors
def list_cmd(location: str, endpoint_url: str | None, overdue: bool, as_json: bool) -> None:
    """List entries: metadata only, never identifiers. No key needed."""
    ledger = open_ledger(location, None, endpoint_url)
    ledger.verify()  # never show dates or ids from a ledger that was altered
    now = now_utc()
    metas = [m for m in ledger.list_entries() if not overdue or m.is_overdue(now)]
    if as_json:
        emit_json([{**m.to_dict(), "overdue": m.is_overdue(now), "late": m.completed_late} for m in metas])
        return
    header = ("SEQ", "APPENDED", "KIND", "REQUEST", "RECEIVED", "DUE", "EFFECTIVE", "TYPES")
    rows = [header]
    for m in metas:
        flags = " [shredded]" if m.shredded else ""
        if m.is_overdue(now):
            flags += " [OVERDUE]"
        elif m.completed_late:
            flags += f" [LATE: effective {_date(m.effective)}, due {_date(m.due)}]"
        purpose = f"({m.purpose})" if m.purpose else ""
        rows.append(
            (
                str(m.seq),
                _date(m.appended_at),
                m.kind,
                m.request_id,
                _date(m.received),
                _date(m.due),
                _date(m.effective),
                f"{','.join(m.identifier_types)}{purpose}{flags}",
            )
        )
    # Columns as wide as their widest cell (request ids and "completion" vary), at least as
    # wide as before so that short listings look as they always did.
    minimums = (6, 10, 9, 20, 10, 10, 10)
    widths = [max(minimum, *(len(row[i]) for row in rows)) for i, minimum in enumerate(minimums)]
    for row in rows:
        cells = [row[0].rjust(widths[0])]
        cells += [cell.ljust(width) for cell, width in zip(row[1:-1], widths[1:], strict=True)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


@cli.command()
@ledger_option
@keyring_option(required=True)
@endpoint_option
@click.argument("seq", type=int)
@json_option
@handle_errors
def show(location: str, keyring_path: str, endpoint_url: str | None, seq: int, as_json: bool) -> None:
    """Decrypt and show one entry (for the DPO; this prints personal data)."""
    opened = open_ledger(location, keyring_path, endpoint_url).show(seq)
    doc = opened.meta.to_dict()
    if opened.entry is not None:
        doc["identifiers"] = [{"type": i.type, "value": i.value} for i in opened.entry.identifiers]
        doc["note"] = opened.entry.note
    if as_json:
        emit_json(doc)
        return
    for key, value in doc.items():
        if key == "identifiers":
            for ident in value:
                click.echo(f"identifier: {ident['type']}={ident['value']}")
        elif value is not None:
            click.echo(f"{key}: {value}")
    if opened.entry is None:
        click.echo("(crypto-shredded: its data key was destroyed; the identifiers cannot be recovered)")


@cli.command()
@ledger_option
@keyring_option(required=True)
@endpoint_option
@identifier_options
@json_option
@handle_errors
def lookup(
    location: str, keyring_path: str, endpoint_url: str | None, as_json: bool, **id_flags: Any
) -> None:
    """Is this person in the ledger? Matches blind-index tokens; decrypts nothing."""
    ledger = open_ledger(location, keyring_path, endpoint_url)
    pairs = collect_identifiers(id_flags)
    if not pairs:
        raise UsageError("give at least one identifier, e.g. --email")
    # Not Identifier.parse: a lookup reads, and must still find entries stored under a custom
    # type that new input now refuses as a near miss of a known one ("emial").
    ids = [Identifier(t, normalize(t, v, default_region=ledger.default_region)) for t, v in pairs]
    found = ledger.lookup(ids)
    if as_json:
        emit_json([m.to_dict() for m in found])
    elif not found:
        click.echo("not in the ledger")
    else:
        for m in found:
            click.echo(f"{m.seq}  {m.kind}  {m.request_id}" + ("  [shredded]" if m.shredded else ""))
    sys.exit(0)


@cli.command()
@ledger_option
@keyring_option(required=False)
@endpoint_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the signed checkpoint to this new file (give it to your auditor).",
)
@click.option("--force", is_flag=True, help="Overwrite the --out file if it exists.")
@handle_errors
def checkpoint(
    location: str, keyring_path: str | None, endpoint_url: str | None, out: str | None, force: bool
) -> None:
    """Print the signed checkpoint of the current tree head (signing it if needed), after
    checking the stored entries are what it signs."""
    if out:  # before anything is signed
        check_output_file(out, "--out", protected=ledger_files(location, keyring_path), force=force)
    signed = open_ledger(location, keyring_path, endpoint_url).checkpoint()
    if out:
        write_text_file(out, signed.note, overwrite=force)
    click.echo(signed.note, nl=False)


def read_public_key(value: str) -> NoteVerifier:
    """The verifier key in file ``value``, or ``value`` itself when it is a key.

    Raises:
        UsageError: no such file (a key always contains '+'), it cannot be read, or the key
            is malformed.
    """
    path = Path(value)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"--public-key {value}: cannot read ({reason})") from None
        try:
            return NoteVerifier.parse(text.strip())
        except UsageError as exc:
            raise UsageError(f"--public-key {value}: {exc}") from None
    if "+" not in value:  # a verifier key is <name>+<key id>+<key>: this was meant as a file
        reason = "is a directory" if path.is_dir() else "no such file"
        raise UsageError(f"--public-key {value}: {reason} (and not a verifier key: <name>+<key id>+<key>)")
    return NoteVerifier.parse(value.strip())


@cli.command()
@ledger_option
@endpoint_option
@click.option(
    "--public-key",
    default=None,
    metavar="FILE|KEY",
    help="The verifier key printed by init (file or the key itself).",
)
@click.option(
    "--trusted-checkpoint",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A checkpoint saved earlier: prove the ledger extends it (no rollback).",
)
@click.option(
    "--only-new",
    is_flag=True,
    help="With --trusted-checkpoint: read only the entries added since (fast on S3).",
)
@keyring_option(required=False)
@json_option
@handle_errors
def verify(
    location: str,
    endpoint_url: str | None,
    public_key: str | None,
    trusted_checkpoint: str | None,
    only_new: bool,
    keyring_path: str | None,
    as_json: bool,
) -> None:
    """Recompute every hash and check the signed checkpoints; needs no secret key.

    With --keyring it also authenticates every key row and unwraps every data key.
    """
    ledger = open_ledger(location, keyring_path, endpoint_url)
    verifier = read_public_key(public_key) if public_key else None
    trusted = Path(trusted_checkpoint).read_text(encoding="utf-8") if trusted_checkpoint else None
    if only_new:
        if trusted is None:
            raise UsageError("--only-new needs --trusted-checkpoint")
        result = verify_since(ledger.store, trusted, public_key=verifier)
    else:
        result = ledger.verify(public_key=verifier, trusted_checkpoint=trusted)
    key_rows = ledger.check_key_rows() if keyring_path else None
    if as_json:
        emit_json(
            {
                **result.to_dict(),
                "public_key": "given" if verifier else "from ledger",
                "key_rows_checked": key_rows,
            }
        )
        return
    checked = result.checkpoints_checked
    click.echo(
        f"OK {result.origin}: {plural(result.tree_size, 'entry', 'entries')}, "
        f"{plural(checked, 'signed checkpoint')} {'matches' if checked == 1 else 'match'}"
    )
    if result.trusted_size is not None:
        click.echo(f"OK extends the trusted checkpoint of size {result.trusted_size}")
    if key_rows is not None:
        click.echo(f"OK {plural(key_rows, 'key row')} authenticated")
    if verifier is None:
        click.echo(
            "note: no --public-key given; the ledger's own key was used, which proves "
            "consistency but not who signed",
            err=True,
        )


@cli.command()
@ledger_option
@endpoint_option
@click.argument("seq", type=int)
@click.option("--tree-size", type=int, default=None, help="Prove against this checkpoint size.")
@handle_errors
def prove(location: str, endpoint_url: str | None, seq: int, tree_size: int | None) -> None:
    """Print an inclusion proof (JSON) for entry SEQ against a signed checkpoint."""
    proof = open_ledger(location, None, endpoint_url).prove(seq, tree_size=tree_size)
    emit_json(proof.to_dict())


@cli.command()
@ledger_option
@endpoint_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@handle_errors
def export(location: str, endpoint_url: str | None, out_dir: str) -> None:
    """Write the public log (leaves, checkpoints, verifier key) for an independent audit."""
    result = export_public_log(open_ledger(location, None, endpoint_url), out_dir)
    click.echo(
        f"exported {plural(result.tree_size, 'leaf', 'leaves')} and "
        f"{plural(result.checkpoints, 'checkpoint')} to {result.out_dir}"
    )


@cli.command()
@ledger_option
@keyring_option(required=True)
@endpoint_option
@click.option(
    "--before",
    default=None,
    metavar="DATE",
    help="Shred entries carried out before DATE: the date of the oldest backup kept.",
)
@click.option("--seq", "seqs", type=int, multiple=True, help="Shred these entries (repeatable).")
@click.option("--yes", is_flag=True, help="Do it without asking.")
@click.option(
    "--rotate/--no-rotate",
    default=True,
    show_default=True,
    help="Then rotate the key-encryption key, so any old copy of a destroyed key row "
    "(a ledger backup, a database's old row versions) can no longer be unwrapped either.",
)
@handle_errors
def shred(
    location: str,
    keyring_path: str,
    endpoint_url: str | None,
    before: str | None,
    seqs: Sequence[int],
    yes: bool,
    rotate: bool,
) -> None:
    """Crypto-shred entries once no backup older than them is kept."""
    if bool(before) == bool(seqs):
        raise UsageError("give exactly one of --before DATE or --seq N")
    ledger = open_ledger(location, keyring_path, endpoint_url)
    if before:
        chosen = [m.seq for m in ledger.shreddable(before=parse_timestamp(before, field_name="--before"))]
    else:
        chosen = ledger.existing_seqs(seqs)
    if not chosen:
        click.echo("nothing to shred")
        return
    ledger.require_current_keyring(sealing=False)  # an old keyring copy: refuse before asking
    if not yes and not sys.stdin.isatty():
        raise UsageError("refusing to shred without --yes when not on a terminal")
    click.echo(f"will shred {plural(len(chosen), 'entry', 'entries')}: {_ranges(chosen)}", err=True)
    if not yes:
        click.confirm("their identifiers will be unrecoverable; continue?", abort=True, err=True)
    done = ledger.shred(chosen)
    click.echo(f"shredded {plural(len(done), 'entry', 'entries')}" + (f": {_ranges(done)}" if done else ""))
    if rotate and done:
        final = rotate_keyring(ledger, keyring_path, endpoint_url, None)
        click.echo(
            f"rotated the key-encryption key to {final.active_kek_id}: old copies of the "
            "destroyed key rows can no longer be unwrapped"
        )
    for notice in getattr(ledger.store, "notices", ()):
        click.echo(f"note: {notice}", err=True)


def _ranges(seqs: Iterable[int]) -> str:
    out: list[str] = []
    start = prev = None
    for s in sorted(seqs):
        if prev is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = s
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(out)


@cli.command("rotate-key")
@ledger_option
@keyring_option(required=True)
@endpoint_option
@click.option(
    "--kms-key-id", default=None, metavar="KEY", help="Wrap the new key-encryption key with this AWS KMS key."
)
@handle_errors
def rotate_key(location: str, keyring_path: str, endpoint_url: str | None, kms_key_id: str | None) -> None:
    """Re-wrap every data key under a new key-encryption key and destroy the old one."""
    ledger = open_ledger(location, keyring_path, endpoint_url)
    final = rotate_keyring(ledger, keyring_path, endpoint_url, kms_key_id)
    click.echo(
        f"rotated: every data key is now wrapped by {final.active_kek_id}; "
        "the old key-encryption key was destroyed"
    )


def rotate_keyring(
    ledger: Ledger, keyring_path: str, endpoint_url: str | None, kms_key_id: str | None
) -> Keyring:
    kms_encrypt = None
    if kms_key_id or ledger.keyring.kms_key_ids:
        from erasure_ledger.kms import kms_functions

        kms_encrypt, _ = kms_functions(kms_key_id, endpoint_url=endpoint_url)
    return ledger.rotate_key(
        lambda kr: kr.save(keyring_path, overwrite=True, kms_encrypt=kms_encrypt),
        kms_key_id=kms_key_id or next(iter(ledger.keyring.kms_key_ids.values()), None),
    )


@cli.command("mirror")
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@endpoint_option
@click.option(
    "--public-key", default=None, metavar="FILE|KEY", help="The verifier key to trust (default: SRC's own)."
)
@json_option
@handle_errors
def mirror_cmd(src: str, dst: str, endpoint_url: str | None, public_key: str | None, as_json: bool) -> None:
    """Copy the ledger at SRC to DST (file, SQLAlchemy URL or s3://), proving DST is a faithful
    prefix of SRC before and after; run again, it copies only what is new."""
    config = StoreConfig(endpoint_url=endpoint_url)
    result = mirror(
        open_store(src, config=config),
        open_store(dst, create=True, config=config),
        public_key=read_public_key(public_key) if public_key else None,
    )
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(
        f"mirrored {plural(result.entries_copied, 'new entry', 'new entries')} "
        f"({plural(result.checkpoints_copied, 'checkpoint')}) "
        f"from {result.src} to {result.dst}; both hold {plural(result.size_after, 'entry', 'entries')}"
    )
    if result.shreds_propagated or result.key_rows_rewrapped:
        click.echo(
            f"updated key rows: {result.shreds_propagated} shredded, {result.key_rows_rewrapped} re-wrapped"
        )
    if result.kept_shredded:
        click.echo(
            f"note: {result.kept_shredded} entries are shredded on DST but not on SRC; they stay shredded",
            err=True,
        )


def safe_usage_message(exc: click.ClickException) -> str:  # noqa: PLR0911 - one return per kind
    """Click's usage errors quote what was typed, which may be an identifier given in the
    wrong place (``show jan@example.nl``, an unquoted IBAN with spaces). Name the parameter
    and the problem, never the value."""
    if isinstance(exc, click.MissingParameter):
        param = exc.param
        if isinstance(param, click.Option) and param.opts:
            # Name the environment variable too: most users set it once (docs) and then
            # run the command in a shell where it is not set.
            envvar = param.envvar if isinstance(param.envvar, str) else next(iter(param.envvar or ()), None)
            return f"missing option {param.opts[0]}" + (f" (or set {envvar})" if envvar else "")
        return exc.format_message()  # names the missing argument only
    if isinstance(exc, click.BadParameter):
        param = exc.param
        name = param.opts[0] if param is not None and param.opts else (param.name if param else "")
        if param is not None and isinstance(param.type, click.Choice):
            return f"invalid value for {name}: expected one of {', '.join(map(str, param.type.choices))}"
        if param is not None and isinstance(param.type, click.types.ParamType) and param.type.name:
            return f"invalid value for {name}: expected {param.type.name}"
        return f"invalid value for {name or 'a parameter'}"
    if isinstance(exc, click.NoSuchOption):
        # An option name is safe to repeat only if it looks like one (not like --jan@x.nl).
        if re.fullmatch(r"--?[a-z][a-z-]{0,40}", exc.option_name or ""):
            hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
            return f"no such option {exc.option_name}{hint}"
        return "no such option"
    message = exc.format_message()
    if message.startswith("Got unexpected extra argument"):
        return "unexpected extra argument(s); quote values that contain spaces"
    if message.startswith("No such command"):
        return "no such command"
    if isinstance(exc, click.UsageError):
        return "invalid usage"
    return "invalid input"


def run_cli(group: click.Group, prog_name: str) -> None:
    """Run a click group with usage errors printed as one line that never echoes a value."""
    try:
        status = group.main(prog_name=prog_name, standalone_mode=False)
    except BrokenPipeError:
        # The reader went away (`erasure-ledger list | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except click.exceptions.Abort:
        click.echo(f"{prog_name}: error: aborted; nothing was changed", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
            # No command at all: the help, on stderr with exit 2, as click does (>= 8.2).
            exc.show()
            sys.exit(2)
        context = getattr(exc, "ctx", None)
        usage = f" (try: {context.command_path} --help)" if context is not None else ""
        click.echo(f"{prog_name}: error: {safe_usage_message(exc)}{usage}", err=True)
        sys.exit(2)
    sys.exit(status if isinstance(status, int) else 0)


def main() -> None:
    run_cli(cli, "erasure-ledger")


__all__ = ["cli", "main", "run_cli"]
