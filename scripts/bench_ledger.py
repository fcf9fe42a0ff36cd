"""Benchmark the erasure ledger: bulk append, verify, decrypt, and memory.

Usage:
    python scripts/bench_ledger.py [--append 100000] [--verify 1000000] [--workdir DIR]

Every figure is compared with a floor measured in the same run, because the machines this
runs on are shared and noisy: verify is set beside plain ``hashlib.sha256`` over the very same
leaf bytes (held in memory, and read from the same SQLite file). Results go to stdout as a
Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from erasure_ledger import Keyring, Ledger, open_store

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def jsonl_records(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        ids: dict[str, object] = {"email": f"person{i}@example{rnd.randint(1, 50)}.nl"}
        if i % 3 == 0:
            ids["customer_number"] = f"C{i:08d}"
        if i % 5 == 0:
            ids["phone"] = f"061{rnd.randint(1000000, 9999999)}"
        lines.append(json.dumps({
            "request_id": f"DSR-{i:08d}", "kind": "erasure", "identifiers": ids,
            "received": "2026-10-01T09:00:00Z", "effective": "2026-10-08T09:00:00Z",
        }))
    return lines


def cli_append(path: Path, keyring_path: Path, lines: list[str], work: Path) -> float:
    """Run ``erasure-ledger append --from FILE`` as a user would; returns seconds (incl. start-up)."""
    jsonl = work / "import.jsonl"
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "erasure_ledger", "append", "--ledger", str(path),
         "--keyring", str(keyring_path), "--from", str(jsonl)],
        check=True, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def make_ledger(path: Path, n: int, work: Path, batch: int = 100_000) -> tuple[Keyring, float]:
    """A ledger of n entries appended in batches through the CLI; returns (keyring, seconds)."""
    keyring = Keyring.generate("bench.example/ledger")
    keyring_path = work / f"{path.stem}.key"
    keyring_path.unlink(missing_ok=True)
    keyring.save(keyring_path)
    Ledger.create(open_store(str(path), create=True), keyring, now=NOW).store.close()
    lines = jsonl_records(n)
    seconds = sum(cli_append(path, keyring_path, lines[lo : lo + batch], work) for lo in range(0, n, batch))
    return keyring, seconds


def time_verify(path: Path) -> tuple[float, int]:
    ledger = Ledger.open(open_store(str(path)))
    gc.collect()
    start = time.perf_counter()
    result = ledger.verify()
    return time.perf_counter() - start, result.tree_size


def peak_verify_memory(path: Path) -> int:
    ledger = Ledger.open(open_store(str(path)))
    tracemalloc.start()
    ledger.verify()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def floors(path: Path) -> tuple[float, float]:
    """(hash leaves already in memory, read leaves from SQLite and hash them)."""
    con = sqlite3.connect(path)
    leaves = [bytes(r[0]) for r in con.execute("SELECT data FROM erasure_ledger_leaves ORDER BY seq")]
    sha = hashlib.sha256
    start = time.perf_counter()
    for data in leaves:
        sha(data).digest()
    in_memory = time.perf_counter() - start
    del leaves
    start = time.perf_counter()
    for (data,) in con.execute("SELECT data FROM erasure_ledger_leaves ORDER BY seq"):
        sha(data).digest()
    with_read = time.perf_counter() - start
    con.close()
    return in_memory, with_read


def time_decrypt(path: Path, keyring: Keyring) -> tuple[float, int]:
    ledger = Ledger.open(open_store(str(path)), keyring)
    start = time.perf_counter()
    _, entries = ledger.open_all()
    return time.perf_counter() - start, len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", type=int, default=100_000, help="entries for the bulk-append test")
    parser.add_argument("--verify", type=int, default=1_000_000, help="entries for the verify test")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.db*"):
        old.unlink()
    rows: list[tuple[str, str]] = []

    # 1. bulk append from JSONL, one transaction per file (what `append --from` does)
    small = work / "append.db"
    _, secs = make_ledger(small, args.append, work, batch=args.append)
    rows.append((f"`erasure-ledger append --from` {args.append:,} entries (SQLite, one file, incl. start-up)",
                 f"{args.append / secs:,.0f} entries/s ({secs:.2f} s)"))

    # 3. verify of the big ledger against the raw hashing floor
    big = work / "verify.db"
    big_keyring, build_secs = make_ledger(big, args.verify, work)
    rows.append((f"`append --from` {args.verify:,} entries in files of 100,000 (building the verify ledger)",
                 f"{args.verify / build_secs:,.0f} entries/s ({build_secs:.1f} s)"))
    verify_secs, size = time_verify(big)
    floor_mem, floor_read = floors(big)
    rows.append((f"verify {size:,} entries (public key only)", f"{size / verify_secs:,.0f} entries/s ({verify_secs:.2f} s)"))
    rows.append(("floor: sha256 over the same leaf bytes in memory",
                 f"{size / floor_mem:,.0f} leaves/s ({floor_mem:.2f} s); verify / floor = {verify_secs / floor_mem:.2f}x"))
    rows.append(("floor: read leaves from SQLite + sha256",
                 f"{size / floor_read:,.0f} leaves/s ({floor_read:.2f} s); verify / floor = {verify_secs / floor_read:.2f}x"))
    dec_secs, count = time_decrypt(big, big_keyring)
    rows.append((f"decrypt all {count:,} entries (verify + authenticate + open)", f"{count / dec_secs:,.0f} entries/s ({dec_secs:.1f} s)"))
    peak_small = peak_verify_memory(small)
    peak_big = peak_verify_memory(big)
    rows.append((f"peak traced memory of verify at {args.append:,} / {args.verify:,} entries",
                 f"{peak_small / 1e6:.1f} MB / {peak_big / 1e6:.1f} MB"))

    print("| measurement | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
