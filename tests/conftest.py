"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from erasure_ledger import Entry, Keyring, Ledger, MemoryStore
from tests.support.databases import SERVER_KINDS, scratch_database

CANARY_EMAIL = "canary@example.invalid"
FIXED_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=SERVER_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of an empty private database on SQLite, PostgreSQL and MariaDB in turn."""
    with scratch_database(request.param, tmp_path_factory) as url:
        yield url


def make_entry(request_id: str, kind: str = "erasure", **fields: Any) -> Entry:
    """An entry from import-record fields, e.g. make_entry("R1", identifiers={"email": "a@b.nl"})."""
    record: dict[str, Any] = {"request_id": request_id, "kind": kind}
    record.setdefault("identifiers", {"email": f"{request_id.lower()}@example.nl"})
    record.update(fields)
    return Entry.from_dict(record)


@pytest.fixture
def memory_ledger() -> Callable[..., Ledger]:
    """Factory: a fresh ledger in memory, optionally with entries already appended."""

    def build(entries: list[Entry] | None = None, origin: str = "test.example/ledger") -> Ledger:
        ledger = Ledger.create(MemoryStore(), Keyring.generate(origin), now=FIXED_NOW)
        for entry in entries or []:
            ledger.append([entry], now=FIXED_NOW)
        return ledger

    return build
