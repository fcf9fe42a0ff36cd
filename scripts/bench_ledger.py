"""Benchmark the erasure ledger: bulk append, verify, decrypt, and memory.

Usage:
    python scripts/bench_ledger.py [--append 100000] [--verify 1000000] [--workdir DIR] [--reuse]
                                   [--runs N] [--skip-decrypt]
    python scripts/bench_ledger.py --s3 [--s3-entries 5000] [--s3-singles 10] [--s3-new 10]

Every figure is compared with a floor measured in the same run, because the machines this
runs on are shared and noisy: verify is set beside plain ``hashlib.sha256`` over the very same
leaf bytes (held in memory, and read from the same SQLite file). Results go to stdout as a
Markdown table for docs/benchmarks.md.

``--s3`` benchmarks a ledger on S3 instead: moto's ``ThreadedMotoServer`` on a free local
port, reached through ``--endpoint-url`` exactly as a user reaches MinIO. It times ``append
--from``, single appends, ``verify``, ``verify --only-new``, ``show`` and ``mirror`` S3 ->
SQLite, and counts the S3 requests of each at the server (the WSGI app is wrapped, so the
requests of the CLI subprocesses count too, retries included). moto is one Python process, so
the times say how the ledger scales with requests, not how fast AWS is.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import erasure_ledger.ledger as ledger_module
from erasure_ledger import Entry, Keyring, Ledger, StoreConfig, open_store

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


def ledger_size(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("SELECT size FROM erasure_ledger_head").fetchone()[0])
    except sqlite3.Error:
        return -1
    finally:
        con.close()


def runs_note(count: int, seconds: list[float]) -> str:
    if len(seconds) < 2:
        return ""
    return "; runs: " + ", ".join(f"{count / s:,.0f}/s" for s in seconds)


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


def time_verify(path: Path, *, parallel: bool = True) -> tuple[float, int]:
    """Seconds for ``Ledger.verify()``; ``parallel=False`` forces the one-core path."""
    ledger = Ledger.open(open_store(str(path)))
    gc.collect()
    saved = ledger_module.PARALLEL_VERIFY_THRESHOLD
    if not parallel:
        ledger_module.PARALLEL_VERIFY_THRESHOLD = 1 << 62
    try:
        start = time.perf_counter()
        result = ledger.verify()
        return time.perf_counter() - start, result.tree_size
    finally:
        ledger_module.PARALLEL_VERIFY_THRESHOLD = saved


def peak_verify_memory(path: Path) -> int:
    """Peak traced memory of the one-core verify (worker processes are not traced)."""
    ledger = Ledger.open(open_store(str(path)))
    saved = ledger_module.PARALLEL_VERIFY_THRESHOLD
    ledger_module.PARALLEL_VERIFY_THRESHOLD = 1 << 62
    tracemalloc.start()
    ledger.verify()
    ledger_module.PARALLEL_VERIFY_THRESHOLD = saved
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


# -- S3 (moto server) ---------------------------------------------------------------------------

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
          "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_EC2_METADATA_DISABLED": "true"}


def s3_operation(environ: dict[str, Any]) -> str:
    """The S3 operation of one path-style request, e.g. PutObject or ListObjectsV2."""
    method = environ["REQUEST_METHOD"]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    on_object = "/" in environ.get("PATH_INFO", "").strip("/")
    if on_object:
        return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject",
                "DELETE": "DeleteObject"}.get(method, f"{method} object")
    if method == "GET":
        if query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        for name, operation in (("versions", "ListObjectVersions"), ("versioning", "GetBucketVersioning"),
                                ("object-lock", "GetObjectLockConfiguration")):
            if name in query:
                return operation
        return "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"HEAD": "HeadBucket", "PUT": "CreateBucket"}.get(method, f"{method} bucket")


class RequestCounter:
    """Counts every request moto's server answers, by S3 operation (the WSGI app is wrapped)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        operation = s3_operation(environ)
        with self._lock:
            self.counts[operation] += 1
        return self._app(environ, start_response)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


def describe(requests: Counter[str]) -> str:
    return ", ".join(f"{op} {n:,}" for op, n in requests.most_common())


def _entry(request_id: str) -> Entry:
    return Entry.from_dict({"request_id": request_id, "kind": "erasure",
                            "identifiers": {"email": f"{request_id.lower()}@example.nl"}})


def bench_s3(entries: int, singles: int, new: int, work: Path) -> list[tuple[str, ...]]:
    """Time the ledger on moto's S3 server; every row also carries its S3 request counts."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    os.environ.update(S3_ENV)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "ERASURE_LEDGER", "ERASURE_KEYRING"):
        os.environ.pop(name, None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    assert server._server is not None
    counter = RequestCounter(server._server.app)
    server._server.app = counter  # type: ignore[assignment]
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    location = "s3://bench-ledger/ledger"
    config = StoreConfig(endpoint_url=endpoint)
    keyring = Keyring.generate("bench.example/s3")
    keyring_path, public_key = work / "s3.key", work / "s3.pub"
    keyring_path.unlink(missing_ok=True)
    keyring.save(keyring_path)
    public_key.write_text(keyring.signer.verifier.vkey + "\n", encoding="utf-8")
    Ledger.create(open_store(location, create=True, config=config), keyring, now=NOW).store.close()
    rows: list[tuple[str, ...]] = []

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "erasure_ledger", *args, "--endpoint-url", endpoint],
                       check=True, stdout=subprocess.DEVNULL)

    def measure(name: str, count: int, unit: str, run: Callable[[], object]) -> None:
        """One row: time, rate (per ``unit``), S3 requests in all, per ``unit``, by operation."""
        before = counter.snapshot()
        start = time.perf_counter()
        run()
        secs = time.perf_counter() - start
        used = counter.snapshot() - before
        total = sum(used.values())
        plural = unit.replace("entry", "entries") if "entry" in unit else unit + "s"
        rate = f"{count / secs:,.1f} {plural}/s" if count > 1 else "-"
        rows.append((name, f"{secs:.2f} s", rate, f"{total:,}", f"{total / count:,.2f} per {unit}",
                     describe(used)))

    # 1. bulk append from JSONL through the CLI, one reservation for the whole file
    jsonl = work / "s3-import.jsonl"
    jsonl.write_text("\n".join(jsonl_records(entries)) + "\n", encoding="utf-8")
    measure(f"`append --from` {entries:,} entries (CLI, incl. start-up)", entries, "entry",
            lambda: cli("append", "--ledger", location, "--keyring", str(keyring_path), "--from", str(jsonl)))

    # 2. single appends: through the CLI (a process each) and through the library
    measure(f"{singles} single appends (CLI, a process each)", singles, "append", lambda: [
        cli("append", "--ledger", location, "--keyring", str(keyring_path), "--request-id", f"CLI-{i}",
            "--kind", "erasure", "--email", f"cli{i}@example.nl") for i in range(singles)])
    ledger = Ledger.open(open_store(location, config=config), keyring)
    measure(f"{singles} single appends (library, one process)", singles, "append", lambda: [
        ledger.append([_entry(f"LIB-{i}")], now=NOW) for i in range(singles)])
    size = ledger.store.read_head().size

    # 3. verify everything, then only what is new since a trusted checkpoint
    measure(f"`verify` {size:,} entries (CLI, public key only)", size, "entry",
            lambda: cli("verify", "--ledger", location, "--public-key", str(public_key)))
    trusted = work / "s3-trusted.txt"
    trusted.write_text(ledger.checkpoint().note, encoding="utf-8")
    for i in range(new):
        ledger.append([_entry(f"NEW-{i}")], now=NOW)
    measure(f"`verify --only-new` after {new} new entries on {size:,} (CLI)", new, "new entry",
            lambda: cli("verify", "--ledger", location, "--public-key", str(public_key),
                        "--trusted-checkpoint", str(trusted), "--only-new"))
    size += new
    measure(f"`show` the last of {size:,} entries (CLI)", 1, "entry",
            lambda: cli("show", str(size - 1), "--ledger", location, "--keyring", str(keyring_path)))

    # 4. mirror S3 -> SQLite, then again with nothing new
    copy = work / "s3-mirror.db"
    for old in work.glob("s3-mirror.db*"):
        old.unlink()
    measure(f"`mirror` {size:,} entries S3 -> SQLite (CLI, first run)", size, "entry",
            lambda: cli("mirror", location, str(copy)))
    measure(f"`mirror` S3 -> SQLite again, nothing new ({size:,} entries re-verified)", size, "entry",
            lambda: cli("mirror", location, str(copy)))
    ledger.store.close()
    server.stop()
    return rows


def main_s3(args: argparse.Namespace, work: Path) -> None:
    rows = bench_s3(args.s3_entries, args.s3_singles, args.s3_new, work)
    print("| operation (moto server) | time | throughput | S3 requests | requests per entry | requests by operation |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--append", type=int, default=100_000, help="entries for the bulk-append test")
    parser.add_argument("--verify", type=int, default=1_000_000, help="entries for the verify test")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the verify ledger (verify.db, verify.key) of an earlier run in --workdir "
                             "if it has --verify entries, instead of building it again (about 70 s)")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the append and the verify/floor measurements; report the median")
    parser.add_argument("--skip-decrypt", action="store_true", help="leave out decrypting every entry")
    parser.add_argument("--s3", action="store_true", help="benchmark a ledger on moto's S3 server instead")
    parser.add_argument("--s3-entries", type=int, default=5_000, help="entries of the S3 bulk append")
    parser.add_argument("--s3-singles", type=int, default=10, help="single appends on S3 (CLI and library)")
    parser.add_argument("--s3-new", type=int, default=10, help="entries appended before verify --only-new")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.s3:
        main_s3(args, work)
        return
    big = work / "verify.db"
    big_key = work / "verify.key"
    reuse = args.reuse and big.exists() and big_key.exists() and ledger_size(big) == args.verify
    for old in work.glob("*.db*"):
        if not (reuse and old.name.startswith("verify.db")):
            old.unlink()
    rows: list[tuple[str, str]] = []
    load_before = os.getloadavg()

    # 1. bulk append from JSONL, one transaction per file (what `append --from` does)
    small = work / "append.db"
    append_secs = []
    for _ in range(args.runs):
        for old in work.glob("append.db*"):
            old.unlink()
        append_secs.append(make_ledger(small, args.append, work, batch=args.append)[1])
    secs = statistics.median(append_secs)
    rows.append((f"`erasure-ledger append --from` {args.append:,} entries (SQLite, one file, incl. start-up)",
                 f"{args.append / secs:,.0f} entries/s ({secs:.2f} s)" + runs_note(args.append, append_secs)))

    # 2. verify of the big ledger against the raw hashing floor
    if reuse:
        big_keyring = Keyring.from_file(big_key)
        rows.append((f"the {args.verify:,}-entry verify ledger", "reused from an earlier run (--reuse)"))
    else:
        big_keyring, build_secs = make_ledger(big, args.verify, work)
        rows.append((f"`append --from` {args.verify:,} entries in files of 100,000 (building the verify ledger)",
                     f"{args.verify / build_secs:,.0f} entries/s ({build_secs:.1f} s)"))
    runs = []
    for _ in range(args.runs):  # interleaved, so each ratio compares figures taken together
        verify_secs, size = time_verify(big)
        serial_secs, _ = time_verify(big, parallel=False)
        floor_mem, floor_read = floors(big)
        runs.append((verify_secs, serial_secs, floor_mem, floor_read))
    ratios = [v / f for v, _, f, _ in runs]
    # the run with the median verify/floor ratio, so every figure in the rows comes from one run
    verify_secs, serial_secs, floor_mem, floor_read = runs[ratios.index(statistics.median_low(ratios))]
    all_ratios = f" (all runs: {', '.join(f'{r:.2f}x' for r in ratios)})" if args.runs > 1 else ""
    rows.append((f"verify {size:,} entries (public key only; default: all cores from 200,000 entries)",
                 f"{size / verify_secs:,.0f} entries/s ({verify_secs:.2f} s)"))
    rows.append((f"verify {size:,} entries on one core",
                 f"{size / serial_secs:,.0f} entries/s ({serial_secs:.2f} s); one core / floor = {serial_secs / floor_mem:.2f}x"))
    rows.append(("floor: sha256 over the same leaf bytes in memory",
                 f"{size / floor_mem:,.0f} leaves/s ({floor_mem:.2f} s); verify / floor = {verify_secs / floor_mem:.2f}x"
                 + all_ratios))
    rows.append(("floor: read leaves from SQLite + sha256",
                 f"{size / floor_read:,.0f} leaves/s ({floor_read:.2f} s); verify / floor = {verify_secs / floor_read:.2f}x"))
    if not args.skip_decrypt:
        dec_secs, count = time_decrypt(big, big_keyring)
        rows.append((f"decrypt all {count:,} entries (verify + authenticate + open)",
                     f"{count / dec_secs:,.0f} entries/s ({dec_secs:.1f} s)"))
    peak_small = peak_verify_memory(small)
    peak_big = peak_verify_memory(big)
    rows.append((f"peak traced memory of the one-core verify at {args.append:,} / {args.verify:,} entries",
                 f"{peak_small / 1e6:.1f} MB / {peak_big / 1e6:.1f} MB"))
    load_after = os.getloadavg()
    rows.append(("load average (1, 5, 15 min) before / after",
                 " / ".join(", ".join(f"{x:.2f}" for x in load) for load in (load_before, load_after))))

    print("| measurement | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
