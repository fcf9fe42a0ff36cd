"""Bulk import of entries from a JSONL file (one request per line), all or nothing.

The whole file is parsed and every identifier normalised before anything is appended; the
first bad line (in file order) is reported by number, and its content is never echoed.

Per entry, a large import costs JSON parsing, identifier normalisation (phone numbers above
all), and sealing (AES-GCM under a fresh data key, key wrapping, two HMACs, the leaf hash).
So files of ``PARALLEL_THRESHOLD`` lines or more are parsed **and sealed** in chunks by a
pool of worker processes, one per core (:class:`ParallelImport`); the main process only
checks the results, signs the new tree head and writes. Sealing needs each entry's sequence
number, which is known from the head read before sealing; if another appender moved the
head meanwhile, the ledger seals again under the store's lock (docs/benchmarks.md).
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from erasure_ledger.errors import LedgerError, UsageError
from erasure_ledger.model import COMPLETION, Entry
from erasure_ledger.sealing import BlindIndex, EntrySealer, KeyRowAuthenticator, KeyWrapper
from erasure_ledger.stores.base import KeyRow, StoredLeaf

PARALLEL_THRESHOLD = 20_000
_CHUNK = 10_000


def read_lines(path: str | os.PathLike[str]) -> list[bytes]:
    """The lines of an import file, as bytes.

    Raises:
        UsageError: the file cannot be read.
    """
    try:
        return Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


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


def line_of(lines: list[bytes], request_id: str, *, occurrence: int = 1) -> int | str:
    """The number of the line (from 1, blank lines counted) holding ``request_id`` as a JSON
    string for the ``occurrence``-th time, or ``"?"``: found again by request id, because
    entries do not remember their line."""
    needle = f'"{request_id}"'.encode()
    numbers = [n for n, raw in enumerate(lines, start=1) if needle in raw]
    return numbers[occurrence - 1] if len(numbers) >= occurrence else "?"


def _refuse_repeated_request_ids(lines: list[bytes], request_ids: Iterable[str], shown: str) -> None:
    seen: set[str] = set()
    for request_id in request_ids:
        if request_id in seen:
            line = line_of(lines, request_id, occurrence=2)  # the second occurrence
            raise UsageError(
                f"{shown}:{line}: request {request_id} appears twice in the file; nothing was appended"
            )
        seen.add(request_id)


def parse_lines(
    lines: list[bytes], shown: str, *, default_region: str = "NL", workers: int = 1
) -> list[Entry]:
    """Parse the lines of an import file (see :func:`read_jsonl`); ``shown`` names the file.

    Raises:
        UsageError: the file is empty, or a line is bad (named by number).
    """
    chunks = [(lines[i : i + _CHUNK], i + 1) for i in range(0, len(lines), _CHUNK)]
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
    _refuse_repeated_request_ids(lines, (e.request_id for e in entries), shown)
    if not entries:
        raise UsageError(f"{shown}: no entries")
    return entries


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
    lines = read_lines(path)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    return parse_lines(lines, str(path), default_region=default_region, workers=workers)


# -- parsing and sealing on every core -----------------------------------------------------------


@dataclass(frozen=True)
class SealingJob:
    """Everything the workers need: the file's lines and the keys to seal with. It reaches
    them once, as the pool's start-up argument (inherited through fork on Linux, so neither
    the lines nor the keys are ever pickled there), never per task."""

    lines: list[bytes] = field(repr=False)
    shown: str  # the file as the user named it, for messages
    default_region: str
    origin: str
    appended_at: str
    kek_id: str
    kek: bytes = field(repr=False)
    index_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)


class _SealedChunk(NamedTuple):
    """One chunk's entries sealed for seqs ``first_seq`` onwards, by column (cheaper to pickle
    than one tuple per entry), or the chunk's first error."""

    request_ids: list[str]
    data: list[bytes]
    leaf_hashes: list[bytes]
    wrapped: list[bytes]
    tokens: list[bytes]
    macs: list[bytes]
    completions: list[Entry]
    error: str | None


_WORKER: dict[str, tuple[SealingJob, EntrySealer]] = {}  # "job" -> this worker's job and sealer


def _start_worker(job: SealingJob) -> None:
    # A worker lives for one import and allocates only acyclic objects: the cyclic
    # collector would rescan them again and again for nothing.
    gc.disable()
    sealer = EntrySealer(
        KeyWrapper(job.kek, kek_id=job.kek_id, origin=job.origin),
        BlindIndex(job.index_key, origin=job.origin),
        KeyRowAuthenticator(job.mac_key, origin=job.origin),
        origin=job.origin,
        appended_at=job.appended_at,
    )
    _WORKER["job"] = (job, sealer)


def _seal_chunk(lo: int, hi: int, first_seq: int) -> _SealedChunk:
    """Worker: parse lines ``lo..hi-1`` (0-based) and seal their entries from ``first_seq``."""
    job, sealer = _WORKER["job"]
    entries, error = _parse_chunk(job.lines[lo:hi], lo + 1, job.default_region, job.shown)
    if error is not None:
        return _SealedChunk([], [], [], [], [], [], [], error)
    keys = os.urandom(32 * len(entries))  # every data key of the chunk in one call
    out = _SealedChunk([], [], [], [], [], [], [e for e in entries if e.kind == COMPLETION], None)
    seal = sealer.seal
    for i, entry in enumerate(entries):
        sealed = seal(entry, seq=first_seq + i, data_key=keys[32 * i : 32 * i + 32])
        out.request_ids.append(entry.request_id)
        out.data.append(sealed.data)
        out.leaf_hashes.append(sealed.leaf_hash)
        out.wrapped.append(sealed.wrapped)
        out.tokens.append(sealed.tokens)
        out.macs.append(sealed.mac)
    return out


@dataclass(frozen=True)
class SealedImport:
    """A whole import file sealed for seqs ``start`` onwards, ready to append."""

    start: int
    leaves: list[StoredLeaf]
    key_rows: list[KeyRow]
    leaf_hashes: list[bytes]
    completions: list[Entry]


class ParallelImport:
    """Parses and seals an import file on a pool of worker processes; use as a context
    manager (the pool lives until the append is written, so it can seal again)."""

    def __init__(self, job: SealingJob, *, workers: int) -> None:
        self._job = job
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        lines = job.lines
        # (lo, hi, entries before lo): a chunk's first seq is the head plus the non-blank
        # lines before it, since every non-blank line becomes one entry or fails the import.
        self._chunks: list[tuple[int, int, int]] = []
        before = 0
        for lo in range(0, len(lines), _CHUNK):
            hi = min(lo + _CHUNK, len(lines))
            self._chunks.append((lo, hi, before))
            before += sum(1 for raw in lines[lo:hi] if raw.strip())

    def __enter__(self) -> ParallelImport:
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        self._pool = ProcessPoolExecutor(
            max_workers=self._workers, mp_context=context, initializer=_start_worker, initargs=(self._job,)
        )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def seal(self, start: int) -> SealedImport:
        """Parse every line and seal the entries for seqs ``start`` onwards.

        Raises:
            UsageError: the file is empty, a line is bad (the first in file order is named by
                number), or a request id appears twice in the file.
        """
        assert self._pool is not None, "use ParallelImport as a context manager"
        futures = [self._pool.submit(_seal_chunk, lo, hi, start + before) for lo, hi, before in self._chunks]
        job, kek_id = self._job, self._job.kek_id
        sealed = SealedImport(start=start, leaves=[], key_rows=[], leaf_hashes=[], completions=[])
        request_ids: list[str] = []
        seq = start
        for future in futures:  # in file order, so the first bad line is named
            chunk = future.result()
            if chunk.error is not None:
                raise UsageError(chunk.error)
            # Built chunk by chunk, while the workers still seal the later ones.
            seqs = range(seq, seq + len(chunk.request_ids))
            sealed.leaves.extend(map(StoredLeaf, seqs, chunk.request_ids, chunk.data))
            sealed.key_rows.extend(
                KeyRow(s, kek_id, wrapped, tokens, mac)
                for s, wrapped, tokens, mac in zip(seqs, chunk.wrapped, chunk.tokens, chunk.macs, strict=True)
            )
            sealed.leaf_hashes.extend(chunk.leaf_hashes)
            sealed.completions.extend(chunk.completions)
            request_ids.extend(chunk.request_ids)
            seq += len(chunk.request_ids)
        _refuse_repeated_request_ids(job.lines, request_ids, job.shown)
        if not request_ids:
            raise UsageError(f"{job.shown}: no entries")
        return sealed


__all__ = [
    "PARALLEL_THRESHOLD",
    "ParallelImport",
    "SealedImport",
    "SealingJob",
    "line_of",
    "parse_lines",
    "read_jsonl",
    "read_lines",
]
