"""Export the public log: every leaf, every checkpoint and the verifier key, as plain files.

Layout (docs/ledger-format.md §9)::

    DIR/verifier-key.txt        the note verifier key, one line
    DIR/leaves.jsonl            leaf N on line N+1: the exact leaf bytes, then "\\n"
    DIR/checkpoints/<size>.txt  every stored signed checkpoint
    DIR/checkpoint.txt          the newest signed checkpoint
    DIR/README.txt              how to verify without this tool

Leaves are canonical JSON, which never contains a raw newline, so one leaf per line is exact.
Nothing secret is written: leaves hold only sealed payloads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from erasure_ledger.errors import StorageError, UsageError
from erasure_ledger.ledger import Ledger

_README = """\
Public log of the erasure ledger {origin}
Verify without any tool from docs/ledger-format.md section 8:
  1. leaf hash of line N (without its newline) = SHA-256(0x00 || bytes)
  2. RFC 6962 Merkle tree hash over all {size} leaf hashes
  3. checkpoint.txt is a C2SP signed note by verifier-key.txt whose body is
     "{origin}\\n{size}\\n<base64 root>\\n": the root must equal step 2.
"""


@dataclass(frozen=True)
class ExportResult:
    out_dir: str
    tree_size: int
    checkpoints: int


def export_public_log(ledger: Ledger, out_dir: str | os.PathLike[str]) -> ExportResult:
    """Write the public log of ``ledger`` into ``out_dir`` (created; must be empty if it exists).

    Raises:
        UsageError: ``out_dir`` exists and is not empty.
        StorageError: a file cannot be written.
        IntegrityError: the ledger does not verify (nothing tampered is exported as good).
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out}: exists and is not empty")
    result = ledger.verify()
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "verifier-key.txt").write_text(ledger.verifier.vkey + "\n", encoding="utf-8")
        with (out / "leaves.jsonl").open("wb") as fh:
            for data in ledger.store.iter_leaf_data(0, result.tree_size):
                fh.write(data + b"\n")
        count = 0
        for size, note in ledger.store.iter_checkpoints():
            (out / "checkpoints" / f"{size}.txt").write_text(note, encoding="utf-8")
            count += 1
        (out / "checkpoint.txt").write_text(result.latest_checkpoint, encoding="utf-8")
        (out / "README.txt").write_text(
            _README.format(origin=ledger.origin, size=result.tree_size), encoding="utf-8"
        )
    except OSError as exc:
        raise StorageError(f"{out}: cannot write export ({exc.strerror})") from None
    return ExportResult(out_dir=str(out), tree_size=result.tree_size, checkpoints=count)


__all__ = ["ExportResult", "export_public_log"]
