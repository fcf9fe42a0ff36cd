"""Generate the golden and adversarial ledger vectors in this folder.

    python tests/vectors/generate_ledger_vectors.py

Run it only when the ledger format changes on purpose (docs/ledger-format.md): the committed
files pin format 1, so a ledger written by an older release must keep verifying and opening.
Each adversarial file is named after its attack and says which error it must raise.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from erasure_ledger import Entry, Keyring, Ledger, MemoryStore
from erasure_ledger.notes import Checkpoint, NoteSigner, sign_checkpoint

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def dump(store: MemoryStore, keyring: Keyring, **extra: object) -> dict[str, object]:
    return {
        "format": "erasure-ledger-test-vector/1",
        "origin": keyring.origin,
        "verifier_key": keyring.signer.verifier.vkey,
        "meta": store.read_meta(),
        "keyring": json.loads(keyring.to_json()),
        "leaves": [b64(leaf.data) for leaf in store.leaves],
        "request_ids": [leaf.request_id for leaf in store.leaves],
        "key_rows": [
            {"seq": r.seq, "kek_id": r.kek_id,
             "wrapped_key": b64(r.wrapped_key) if r.wrapped_key else None,
             "tokens": b64(r.tokens), "mac": b64(r.mac)}
            for r in store.iter_key_rows()
        ],
        "checkpoints": {str(size): note for size, note in store.iter_checkpoints()},
        "head": {"size": store.head.size, "nodes": [b64(n) for n in store.head.nodes],
                 "checkpoint": store.head.checkpoint},
        **extra,
    }


def main() -> None:
    keyring = Keyring.generate("vectors.example/ledger")
    store = MemoryStore()
    ledger = Ledger.create(store, keyring, now=NOW)
    ledger.append([Entry.from_dict({"request_id": "DSR-1", "kind": "erasure",
                                    "identifiers": {"email": "Jan@Example.NL", "phone": "0416-853988"},
                                    "received": "2026-10-01", "effective": "2026-10-05"})], now=NOW)
    ledger.append([Entry.from_dict({"request_id": "OPT-1", "kind": "objection", "purpose": "marketing",
                                    "identifiers": {"email": "müller@bücher.de"}, "note": "via e-mail"}),
                   Entry.from_dict({"request_id": "DSR-2", "kind": "erasure",
                                    "identifiers": {"iban": "NL91ABNA0417164300", "customer_number": "K-1"}})],
                  now=NOW)
    trusted = ledger.checkpoint().note
    ledger.append([Entry.from_dict({"request_id": f"DSR-{i}", "kind": "erasure",
                                    "identifiers": {"email": f"p{i}@example.nl"}}) for i in range(3, 6)], now=NOW)
    good = dump(store, keyring, trusted_checkpoint=trusted, expect="ok")
    (HERE / "ledger_golden.json").write_text(json.dumps(good, indent=1) + "\n")

    def variant(name: str, expect: str, **changes: object) -> None:
        doc = {**good, **changes, "expect": expect}
        (HERE / name).write_text(json.dumps(doc, indent=1) + "\n")

    leaves = list(good["leaves"])  # type: ignore[call-overload]
    flipped = bytearray(base64.b64decode(leaves[2]))
    flipped[-10] ^= 0x01
    variant("entry_ciphertext_bitflip.json", "TamperedEntryError: checkpoint at size 3",
            leaves=[*leaves[:2], b64(bytes(flipped)), *leaves[3:]])
    variant("ledger_entry_swapped.json", "TamperedEntryError: entries 1..2 altered",
            leaves=[leaves[0], leaves[2], leaves[1], *leaves[3:]])
    variant("ledger_tail_truncated.json", "TamperedEntryError: checkpoint at size 6 was signed but the ledger holds 5",
            leaves=leaves[:5], request_ids=good["request_ids"][:5], head={**good["head"], "size": 5})  # type: ignore[dict-item]
    # Rollback: an older but self-consistent ledger, checked against a newer trusted checkpoint.
    older = {k: v for k, v in good["checkpoints"].items() if int(k) <= 3}  # type: ignore[attr-defined]
    variant("checkpoint_rollback.json", "RollbackError: ledger has 3 entries but the trusted checkpoint has 6",
            leaves=leaves[:3], request_ids=good["request_ids"][:3], checkpoints=older, trusted_checkpoint=good["checkpoints"]["6"],  # type: ignore[index]
            head={**good["head"], "size": 3})  # type: ignore[dict-item]
    forger = NoteSigner.generate(keyring.origin)
    forged = sign_checkpoint(Checkpoint(origin=keyring.origin, size=6, root_hash=b"\x42" * 32), forger)
    variant("checkpoint_wrong_key.json", "BadSignatureError: checkpoint at size 6",
            checkpoints={**good["checkpoints"], "6": forged})  # type: ignore[dict-item]
    rows = [dict(r) for r in good["key_rows"]]  # type: ignore[attr-defined]
    rows[1]["tokens"], rows[2]["tokens"] = rows[2]["tokens"], rows[1]["tokens"]
    variant("key_row_tokens_swapped.json", "TamperedEntryError: entry 1: key row does not match", key_rows=rows)


if __name__ == "__main__":
    main()
