"""The demo: a florist's webshop restores an old backup and the reconciler keeps erased people erased.

Run from the repository root:  python scripts/demo.py  [--out DIR]

It builds the shop on SQLite, takes a backup, records erasure requests and opt-outs in the
erasure ledger while the shop keeps running (and erases them in production), then "loses" the
database, restores the backup, shows that the erased customers are back, reconciles, and shows
the report. Every step runs the real command-line tools, printed as you would type them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import florist_shop

WIDTH = 96


def banner(text: str) -> None:
    print()
    print(f"== {text} ".ljust(WIDTH, "="))


def say(text: str) -> None:
    print(textwrap.fill(text, WIDTH))


def run(tool: str, *args: str, expect: int = 0, show: int = 40, cwd: Path,
        only: tuple[str, ...] = ()) -> str:
    """Run one of the two CLIs as a user would, print the command and (some of) its output.

    ``only`` keeps just the output lines containing one of these strings (long reports)."""
    shown = " ".join(a if " " not in a else repr(a) for a in (tool, *args))
    print(f"\n$ {shown}")
    proc = subprocess.run([sys.executable, "-m", tool.replace("-", "_"), *args], cwd=cwd,
                          capture_output=True, text=True, env=os.environ.copy(), check=False)
    out = (proc.stdout + proc.stderr).rstrip("\n")
    lines = out.splitlines()
    if only:
        lines = [line for line in lines if any(key in line for key in only)]
    for line in lines[:show]:
        print(f"  {line}")
    if len(lines) > show:
        print(f"  ... ({len(lines) - show} more lines)")
    print(f"  [exit {proc.returncode}]")
    if proc.returncode != expect:
        raise SystemExit(f"demo: expected exit {expect} from {tool} {args[0]}, got {proc.returncode}")
    return proc.stdout


def backup(src: Path, dst: Path) -> None:
    """An online SQLite backup, as a nightly job would take it."""
    with sqlite3.connect(src) as s, sqlite3.connect(dst) as d:
        s.backup(d)


def count_present(db: Path, emails: list[str]) -> int:
    with sqlite3.connect(db) as con:
        return sum(
            con.execute("SELECT count(*) FROM customers WHERE lower(trim(email)) = ?", (e,)).fetchone()[0]
            for e in emails
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="working folder (recreated)")
    args = parser.parse_args()
    started = time.perf_counter()
    out: Path = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    (out / "privacy").mkdir(parents=True)
    (out / "backups").mkdir()
    live, restored = out / "shop.db", out / "restored.db"
    os.environ["ERASURE_LEDGER"] = str(out / "privacy" / "erasures.db")
    os.environ["ERASURE_KEYRING"] = str(out / "privacy" / "erasures.key")
    datamap = out / "datamap.yaml"
    datamap.write_text(florist_shop.DATAMAP_YAML, encoding="utf-8")

    banner("1. Monday: AmbianZe Bloem & Sfeer, a florist with a webshop")
    people = florist_shop.build_shop(f"sqlite:///{live}", customers_count=200)
    say(f"The live shop database {live.name} holds 200 customers with name and address, e-mail, "
        "phone, birth date, IBAN and KvK numbers, their orders, invoices (kept 7 years for the tax "
        "office), newsletter subscriptions, complaints and contact-form messages in free text, "
        "and web sessions. The privacy officer keeps the erasure ledger apart from it, in "
        "privacy/.")
    run("erasure-ledger", "init", "--origin", "ambianze.example/erasures",
        "--public-key-out", "privacy/erasures.pub", cwd=out)
    with sqlite3.connect(live) as con:  # someone on the newsletter list
        subscribed = {row[0] for row in con.execute("SELECT lower(address) FROM newsletter")}
    october = next(p for p in people[30:] if p.email.lower() in subscribed)
    say("One request from October is already in the ledger. Production handled it with a "
        "hand-written script that blanked the customer record but forgot the newsletter list:")
    run("erasure-ledger", "append", "--request-id", "DSR-2026-030", "--kind", "erasure",
        "--email", october.email, "--customer-number", october.cust_no,
        "--received", "2026-10-13", "--effective", "2026-10-20", cwd=out)
    with sqlite3.connect(live) as con:
        con.execute("UPDATE customers SET name='-', email='erased-31@shop.invalid', phone=NULL, "
                    "street=NULL, iban=NULL, cust_no='X-31', username=NULL WHERE id = ?", (october.id,))

    banner("2. Tuesday 02:00: the nightly backup")
    say("The pre-backup hook stamps the database with the ledger's signed checkpoint, so a "
        "restore knows exactly which requests it predates:")
    run("reconciler", "stamp", "--db", str(live), cwd=out)
    run("erasure-ledger", "checkpoint", "--out", "backups/ledger-at-backup.txt", show=0, cwd=out)
    backup(live, out / "backups" / "tuesday.db")
    say("The backup is a copy of the whole database; it cannot be edited afterwards.")

    banner("3. Tuesday-Thursday: requests come in and are carried out in production")
    erased = [people[i] for i in (3, 17, 42, 88, 120, 171)]
    requests = []
    for n, p in enumerate(erased, start=1):
        requests.append({
            "request_id": f"DSR-2026-{40 + n:03d}", "kind": "erasure",
            "identifiers": {"email": p.email, "phone": p.phone, "customer_number": p.cust_no},
            "received": "2026-11-17T09:00:00Z", "verified": "2026-11-17T15:00:00Z",
            "effective": "2026-11-18T10:00:00Z",
        })
    unsubscribed = [people[i] for i in (5, 60, 99)]
    for n, p in enumerate(unsubscribed, start=1):
        requests.append({"request_id": f"OPT-2026-{n:03d}", "kind": "objection", "purpose": "marketing",
                         "identifiers": {"email": p.email}, "received": "2026-11-18T12:00:00Z"})
    (out / "privacy" / "requests.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in requests), encoding="utf-8")
    say("Six customers asked to be erased and three unsubscribed from the newsletter. The privacy "
        "officer records them (identifiers are normalised and sealed; the list shows none):")
    run("erasure-ledger", "append", "--from", "privacy/requests.jsonl", cwd=out)
    run("erasure-ledger", "append", "--request-id", "DSR-2026-047", "--kind", "erasure",
        "--email", people[150].email.upper(), "--iban", people[150].iban,
        "--received", "2026-11-19", "--effective", "2026-11-19T16:00:00Z", cwd=out)
    erased.append(people[150])
    run("erasure-ledger", "list", cwd=out)
    say("Ops carry the requests out in the live database (here with the same tool):")
    run("reconciler", "apply", "--db", str(live), "--map", "datamap.yaml", "--as-of", "2026-11-19",
        cwd=out, only=("rows changed", "residual findings"))
    erased.append(october)
    emails = [p.email.lower() for p in erased]
    print(f"\n  erased customers still in the live database: {count_present(live, emails)} of {len(erased)}")

    banner("4. Friday: ransomware. The live database is gone; Tuesday's backup is restored")
    live.unlink()
    shutil.copy(out / "backups" / "tuesday.db", restored)
    print(f"\n  erased customers back in the restored database: {count_present(restored, emails)} of {len(erased)}")
    say("The seven people erased after the backup are back in full: e-mail, address, IBAN, "
        "orders, newsletter subscription. Before anyone uses the restored database, ops check "
        "it against the ledger:")
    run("reconciler", "verify", "--db", str(restored), "--map", "datamap.yaml", expect=1, show=14,
        cwd=out, only=("dated by", "entry 1 ", "production erasure incomplete", "residual findings"))
    say("Entry 0 was carried out in production before the backup, yet the backup still holds "
        "the person's newsletter subscription: the report flags it as 'production erasure "
        "incomplete' (the live erasure missed something), not just as restored data.")

    banner("5. Reconcile: plan, apply, verify")
    say("The plan is a dry run: what apply would change, per request and table. Invoices stay "
        "(fiscal retention) with the personal columns masked; retention rules are re-applied "
        "as of today, not as of the backup.")
    run("reconciler", "plan", "--db", str(restored), "--map", "datamap.yaml", cwd=out,
        only=("ledger:", "| ", "inactive", "rows to change"))
    run("reconciler", "apply", "--db", str(restored), "--map", "datamap.yaml",
        "--report", "report.json", cwd=out, only=("rows changed", "residual", "clean"))
    say("Applying again changes nothing (idempotent), and the residual scan of every text "
        "column, free text included, finds no identifier from the ledger:")
    run("reconciler", "apply", "--db", str(restored), "--map", "datamap.yaml", cwd=out,
        only=("rows changed", "nothing to change"))
    run("reconciler", "verify", "--db", str(restored), "--map", "datamap.yaml", cwd=out,
        only=("clean", "residual findings"))
    print(f"\n  erased customers left in the restored database: {count_present(restored, emails)} of {len(erased)}")

    banner("6. The auditor: is the ledger itself intact? (public key only, no secrets)")
    run("erasure-ledger", "verify", "--public-key", "privacy/erasures.pub",
        "--trusted-checkpoint", "backups/ledger-at-backup.txt", cwd=out)

    banner("Done")
    say(f"Report for the privacy officer: {out / 'report.json'} (and report.md beside it). It names "
        "the ledger checkpoint that was replayed, counts per request and table, and contains no "
        "personal identifier.")
    print(f"\nfinished in {time.perf_counter() - started:.1f} s; everything is in {out}")


if __name__ == "__main__":
    main()
