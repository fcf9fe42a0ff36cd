"""Bulk import of entries from a JSONL file (one request per line), all or nothing.

The whole file is parsed and every identifier normalised before anything is appended; the
first bad line (in file order) is reported by number, and its content is never echoed.
Normalisation (phone numbers especially) dominates a large import, so files of more than
``PARALLEL_THRESHOLD`` lines are parsed in chunks by a small process pool, one worker per
core: on a 2-core machine that is the difference between ~15k and ~20k entries/s
(docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from erasure_ledger.errors import LedgerError, UsageError
from erasure_ledger.model import Entry

PARALLEL_THRESHOLD = 20_000
_CHUNK = 10_000


def _parse_chunk(
    lines: list[bytes], first_number: int, default_region: str, path: str
) -> tuple[list[Entry], str | None]:
    """Parse lines numbered from ``first_number``; returns the entries or the first error."""
    entries = []
    for number, raw in enumerate(lines, start=first_number):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise UsageError("each line must be a JSON object")
            entries.append(Entry.from_dict(record, default_region=default_region))
        except UnicodeDecodeError:
            return entries, f"{path}:{number}: not UTF-8; nothing was appended"
        except json.JSONDecodeError:
            return entries, f"{path}:{number}: not valid JSON; nothing was appended"
        except LedgerError as exc:
            return entries, f"{path}:{number}: {exc}; nothing was appended"
    return entries, None


def _refuse_repeated_request_ids(lines: list[bytes], entries: list[Entry], shown: str) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.request_id in seen:
            # Name the line of the second occurrence (found again by request id, blank lines
            # included in the count).
            needle = f'"{entry.request_id}"'.encode()
            numbers = [n for n, raw in enumerate(lines, start=1) if needle in raw]
            line = numbers[1] if len(numbers) > 1 else "?"
            raise UsageError(
                f"{shown}:{line}: request {entry.request_id} appears twice in the file; nothing was appended"
            )
        seen.add(entry.request_id)


def read_jsonl(
    path: str | os.PathLike[str], *, default_region: str = "NL", workers: int | None = None
) -> list[Entry]:
    """Parse a JSONL import file into validated entries.

    Args:
        path: the file; each non-blank line is one object as accepted by
            :meth:`Entry.from_dict`.
        default_region: region for phone numbers without a country code.
        workers: processes for large files (default: the number of CPUs; 1 disables).

    Raises:
        UsageError: the file cannot be read, is empty, or a line is bad (named by number).
    """
    shown = str(path)
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read ({exc.strerror})") from None
    chunks = [(lines[i : i + _CHUNK], i + 1) for i in range(0, len(lines), _CHUNK)]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if len(lines) < PARALLEL_THRESHOLD or workers < 2:
        results = [_parse_chunk(chunk, first, default_region, shown) for chunk, first in chunks]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_parse_chunk, chunk, first, default_region, shown) for chunk, first in chunks
            ]
            results = [f.result() for f in futures]
    entries: list[Entry] = []
    for chunk_entries, error in results:  # in file order, so the first bad line is named
        if error is not None:
            raise UsageError(error)
        entries.extend(chunk_entries)
    _refuse_repeated_request_ids(lines, entries, shown)
    if not entries:
        raise UsageError(f"{shown}: no entries")
    return entries


__all__ = ["PARALLEL_THRESHOLD", "read_jsonl"]
