"""The command-line fixtures of tests/cli (``cli``, ``initialised_ledger``), for the tests here
that pin a library behaviour down end to end as well."""

from __future__ import annotations

from tests.cli.conftest import cli, initialised_ledger

__all__ = ["cli", "initialised_ledger"]
