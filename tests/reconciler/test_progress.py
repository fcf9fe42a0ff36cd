"""Progress: the library reports phases and per-table steps to an observer and never prints;
the CLI draws rich bars only on a terminal, and nothing at all in pipes, logs or with --json."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

from erasure_ledger import Ledger
from reconciler.console import RichProgress, progress_for
from reconciler.datamap import DataMap
from reconciler.progress import NullProgress
from reconciler.replay import replay, verify
from tests.reconciler.conftest import (
    AS_OF,
    ERASE_JAN,
    HASH_KEY,
    OPTOUT_KLAAS,
    SHOP_MAP,
    SHOP_ROWS,
    load,
    shop_metadata,
)
from tests.reconciler.test_cli import invoke, make_files

MakeLedger = Callable[..., Ledger]


class Recorder:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str | None, int | None]] = []

    def phase(self, name: str, total: int | None) -> None:
        self.events.append(("phase", name, total))

    def step(self, label: str) -> None:
        self.events.append(("step", label, None))

    def done(self) -> None:
        self.events.append(("done", None, None))


def phases(recorder: Recorder) -> list[tuple[str | None, int | None]]:
    return [(name, total) for kind, name, total in recorder.events if kind == "phase"]


def test_apply_reports_each_operation_then_each_scanned_table(
        shop: str, make_ledger: MakeLedger) -> None:
    recorder = Recorder()
    replay(shop, DataMap.from_text(SHOP_MAP), make_ledger(ERASE_JAN, OPTOUT_KLAAS), as_of=AS_OF,
           dry_run=False, hash_key=HASH_KEY, progress=recorder)

    # the scan: one step per pass (a table's identifier columns, its other text columns)
    steps = [label for kind, label, _ in recorder.events if kind == "step"]
    scanned = [label for label in steps if label.startswith("scan ")]
    assert phases(recorder) == [("apply", 8), ("scan", len(scanned))]
    assert steps[:2] == ["delete order_lines", "delete invoices"]
    assert scanned.count("scan customers") == 2  # identifier columns, then the others
    assert "scan complaints" in scanned
    assert [kind for kind, _, _ in recorder.events].count("done") == 2


def test_plan_and_verify_report_their_own_phases(shop: str, make_ledger: MakeLedger) -> None:
    planned, verified = Recorder(), Recorder()
    ledger = make_ledger(ERASE_JAN)
    replay(shop, DataMap.from_text(SHOP_MAP), ledger, as_of=AS_OF, dry_run=True,
           hash_key=HASH_KEY, progress=planned)
    verify(shop, DataMap.from_text(SHOP_MAP), ledger, progress=verified)
    assert phases(planned) == [("plan", 8)]
    scanned = [label for kind, label, _ in verified.events if kind == "step"]
    assert phases(verified) == [("scan", len(scanned))]
    assert {"scan customers", "scan newsletter", "scan complaints"} <= set(scanned)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_and_never_with_json() -> None:
    with progress_for(io.StringIO(), quiet=False) as piped:
        assert isinstance(piped, NullProgress)
    with progress_for(Terminal(), quiet=True) as as_json:
        assert isinstance(as_json, NullProgress)
    screen = Terminal()
    with progress_for(screen, quiet=False) as bars:
        assert isinstance(bars, RichProgress)
        bars.phase("apply", 2)
        bars.step("delete order_lines")
        bars.step("anonymize customers")
        bars.done()
    assert "apply" in screen.getvalue()
    assert "2/2" in screen.getvalue()


def test_the_cli_prints_no_progress_noise_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    load(f"sqlite:///{db}", shop_metadata(), SHOP_ROWS)
    ledger, key, map_path = make_files(tmp_path, [ERASE_JAN])
    args = ["--db", str(db), "--map", map_path, "--ledger", ledger, "--keyring", key]
    for command in ("plan", "apply", "verify"):
        result = invoke(command, *args)
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
        assert result.stdout.startswith(f"# Reconciler {command} report\n")
    as_json = invoke("apply", *args, "--json")
    assert as_json.stderr == ""
    assert json.loads(as_json.stdout)["command"] == "apply"

