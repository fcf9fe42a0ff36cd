"""Fixtures for the end-to-end tests of the ``erasure-ledger`` command line.

Every command runs in-process through click's ``CliRunner`` (click >= 8.2 keeps stdout and
stderr apart), against a SQLite ledger and a keyring under ``tmp_path``. The environment the
CLI reads (``ERASURE_LEDGER``, ``ERASURE_KEYRING``, ``AWS_ENDPOINT_URL``) is always set
explicitly, so a developer's own shell settings can never leak into a test.

* ``cli(*args, env=..., input=...)`` runs one command and returns click's ``Result``.
* ``initialised_ledger(name=..., origin=...)`` runs ``init`` in a fresh directory and returns
  a :class:`CliLedger` that knows its files and can append entries through the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from click.testing import CliRunner, Result

from erasure_ledger.cli import cli as erasure_ledger_cli

# Variables the CLI reads; unset unless a test sets them.
CLI_ENVIRONMENT = ("ERASURE_LEDGER", "ERASURE_KEYRING", "AWS_ENDPOINT_URL")
DEFAULT_ORIGIN = "shop.example/erasure-ledger"


class RunCli(Protocol):
    def __call__(
        self, *args: str | int | Path, env: Mapping[str, str] | None = None, input: str | None = None
    ) -> Result: ...


@pytest.fixture
def cli() -> RunCli:
    """Run ``erasure-ledger ARGS...`` in-process and return the click ``Result``."""
    runner = CliRunner()

    def run(
        *args: str | int | Path, env: Mapping[str, str] | None = None, input: str | None = None
    ) -> Result:
        environment: dict[str, str | None] = dict.fromkeys(CLI_ENVIRONMENT)
        environment.update(env or {})
        return runner.invoke(erasure_ledger_cli, [str(a) for a in args], env=environment, input=input)

    return run


@dataclass(frozen=True)
class CliLedger:
    """A ledger made by ``erasure-ledger init`` in its own directory."""

    directory: Path
    path: Path
    keyring: Path
    public_key_file: Path
    verifier_key: str
    origin: str
    run: RunCli

    @property
    def env(self) -> dict[str, str]:
        """What the privacy officer has: the ledger and its keyring."""
        return {"ERASURE_LEDGER": str(self.path), "ERASURE_KEYRING": str(self.keyring)}

    @property
    def public_env(self) -> dict[str, str]:
        """What the auditor has: the ledger location only, no secret key."""
        return {"ERASURE_LEDGER": str(self.path)}

    def append(self, request_id: str, *flags: str, kind: str = "erasure") -> int:
        """Append one entry through the CLI and return its sequence number."""
        result = self.run("append", "--request-id", request_id, "--kind", kind, *flags, env=self.env)
        assert result.exit_code == 0, result.stderr
        return int(result.stdout)

    def listing(self) -> list[dict[str, Any]]:
        """``list --json``: the public state, to prove a failed command changed nothing."""
        result = self.run("list", "--json", env=self.public_env)
        assert result.exit_code == 0, result.stderr
        entries: list[dict[str, Any]] = json.loads(result.stdout)
        return entries


InitialisedLedger = Callable[..., CliLedger]


@pytest.fixture
def initialised_ledger(cli: RunCli, tmp_path: Path) -> InitialisedLedger:
    """Factory: ``initialised_ledger(name="ledger", origin=DEFAULT_ORIGIN)`` runs ``init``.

    Each name gets its own directory holding ``ledger.db``, ``ledger.key`` (the keyring) and
    ``verifier-key.txt`` (written by ``--public-key-out``).
    """

    def make(name: str = "ledger", *, origin: str = DEFAULT_ORIGIN) -> CliLedger:
        directory = tmp_path / name
        directory.mkdir()
        ledger_path, keyring = directory / "ledger.db", directory / "ledger.key"
        public_key_file = directory / "verifier-key.txt"
        result = cli(
            "init",
            "--origin",
            origin,
            "--public-key-out",
            public_key_file,
            env={"ERASURE_LEDGER": str(ledger_path), "ERASURE_KEYRING": str(keyring)},
        )
        assert result.exit_code == 0, result.stderr
        return CliLedger(
            directory=directory,
            path=ledger_path,
            keyring=keyring,
            public_key_file=public_key_file,
            verifier_key=result.stdout.strip(),
            origin=origin,
            run=cli,
        )

    return make
