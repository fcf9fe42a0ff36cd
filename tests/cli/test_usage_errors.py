"""Click's own usage errors go through run_cli: one line, exit 2, and never the typed value
(an identifier typed in the wrong place must not be echoed back)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CANARY = "canary@example.invalid"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "erasure_ledger", *args], capture_output=True, text=True,
                          check=False, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "--ledger", "x.db", "--keyring", "k", CANARY),
         "erasure-ledger: error: invalid value for seq: expected integer (try: erasure-ledger show --help)\n"),
        (("lookup", "--ledger", "x.db", "--keyring", "k", "--email", "a@b.nl", CANARY),
         "erasure-ledger: error: unexpected extra argument(s); quote values that contain spaces "
         "(try: erasure-ledger lookup --help)\n"),
        (("append", "--ledger", "x.db", "--keyring", "k", "--kind", CANARY),
         "erasure-ledger: error: invalid value for --kind: expected one of erasure, objection "
         "(try: erasure-ledger append --help)\n"),
        (("verify", "--ledger", "x.db", f"--{CANARY}"),
         "erasure-ledger: error: no such option (try: erasure-ledger verify --help)\n"),
    ],
)
def test_a_usage_error_is_one_line_exit_2_and_never_echoes_the_value(args, expected):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr == expected
    assert CANARY not in result.stdout + result.stderr


def test_a_misspelt_option_is_named_with_a_suggestion():
    result = run("append", "--ledger", "x.db", "--keyring", "k", "--e-mail", CANARY)
    assert result.returncode == 2
    assert result.stderr == (
        "erasure-ledger: error: no such option --e-mail (did you mean --email?) "
        "(try: erasure-ledger append --help)\n"
    )


def test_a_closed_pipe_is_not_an_error(tmp_path):
    proc = subprocess.run(
        f"{sys.executable} -m erasure_ledger --help | head -c 1", shell=True, capture_output=True, text=True,
        check=False,
    )
    assert "BrokenPipe" not in proc.stderr
    assert "internal error" not in proc.stderr


def test_a_missing_option_is_named_with_its_environment_variable():
    result = run("list")
    assert result.returncode == 2
    assert result.stderr == (
        "erasure-ledger: error: missing option --ledger (or set ERASURE_LEDGER) (try: erasure-ledger list --help)\n"
    )


def test_a_missing_keyring_names_erasure_keyring():
    result = run("show", "--ledger", "x.db", "0")
    assert result.returncode == 2
    assert result.stderr == (
        "erasure-ledger: error: missing option --keyring (or set ERASURE_KEYRING) "
        "(try: erasure-ledger show --help)\n"
    )


def test_a_missing_argument_is_named():
    result = run("complete", "--ledger", "x.db", "--keyring", "k", "--effective", "2026-11-09")
    assert result.returncode == 2
    assert result.stderr == (
        "erasure-ledger: error: Missing argument 'REQUEST_ID'. (try: erasure-ledger complete --help)\n"
    )


def test_help_still_exits_0():
    result = run("--help")
    assert result.returncode == 0
    assert "verify" in result.stdout
