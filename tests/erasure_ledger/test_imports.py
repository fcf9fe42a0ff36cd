"""JSONL bulk imports: all or nothing, the first bad line named, the same in parallel."""

from __future__ import annotations

import json

import pytest

from erasure_ledger import UsageError, imports
from erasure_ledger.imports import read_jsonl


def write_lines(path, n, bad_at=()):
    lines = []
    for i in range(1, n + 1):
        if i in bad_at:
            lines.append(json.dumps({"request_id": f"R{i}", "kind": "erasure", "identifiers": {"iban": "NL00BAD"}}))
        else:
            lines.append(json.dumps({"request_id": f"R{i}", "kind": "erasure",
                                     "identifiers": {"email": f"p{i}@example.nl", "phone": "0416-853988"}}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def small_chunks(monkeypatch):
    """Make the parallel path kick in for a few dozen lines."""
    monkeypatch.setattr(imports, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(imports, "_CHUNK", 7)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_line_becomes_an_entry_in_file_order(tmp_path, small_chunks, workers):
    path = tmp_path / "in.jsonl"
    write_lines(path, 40)
    entries = read_jsonl(path, workers=workers)
    assert [e.request_id for e in entries] == [f"R{i}" for i in range(1, 41)]
    assert entries[0].identifiers[1].value == "+31416853988"


@pytest.mark.parametrize("workers", [1, 2])
def test_the_first_bad_line_in_file_order_is_named_even_across_chunks(tmp_path, small_chunks, workers):
    path = tmp_path / "in.jsonl"
    write_lines(path, 40, bad_at=(23, 9))
    with pytest.raises(UsageError, match=r"in.jsonl:9: iban: .*; nothing was appended$"):
        read_jsonl(path, workers=workers)


def test_blank_lines_are_skipped_and_line_numbers_still_count_them(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('\n{"request_id": "A", "kind": "erasure", "identifiers": {"email": "a@b.nl"}}\n\n{oops\n')
    with pytest.raises(UsageError, match=r"in.jsonl:4: not valid JSON; nothing was appended"):
        read_jsonl(path)


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n\n")
    with pytest.raises(UsageError, match="no entries"):
        read_jsonl(path)


def test_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        read_jsonl(tmp_path / "nope.jsonl")
