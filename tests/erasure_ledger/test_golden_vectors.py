"""Golden and adversarial ledger vectors (tests/vectors/, made by generate_ledger_vectors.py).

The golden ledger pins format 1: a ledger written by an earlier release must keep verifying
with its public key and opening with its keyring. Each adversarial file is named after its
attack and states the error it must raise.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from erasure_ledger import IntegrityError, Keyring, Ledger, MemoryStore, NoteVerifier
from erasure_ledger.stores import Head, KeyRow, StoredLeaf

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
ATTACKS = sorted(
    p.name for p in VECTORS.glob("*.json")
    if json.loads(p.read_text()).get("format") == "erasure-ledger-test-vector/1" and p.name != "ledger_golden.json"
)


def load(name: str) -> tuple[Ledger, dict]:
    doc = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    unb64 = base64.b64decode
    store = MemoryStore()
    store.meta = dict(doc["meta"])
    store.leaves = [StoredLeaf(i, rid, unb64(d)) for i, (d, rid) in enumerate(zip(doc["leaves"], doc["request_ids"], strict=True))]
    store.key_rows = {
        r["seq"]: KeyRow(r["seq"], r["kek_id"], unb64(r["wrapped_key"]) if r["wrapped_key"] else None,
                         unb64(r["tokens"]), unb64(r["mac"]))
        for r in doc["key_rows"]
    }
    store.checkpoints = {int(size): note for size, note in doc["checkpoints"].items()}
    head = doc["head"]
    store.head = Head(head["size"], tuple(unb64(n) for n in head["nodes"]), head["checkpoint"])
    keyring = Keyring.from_json(json.dumps(doc["keyring"]))
    return Ledger.open(store, keyring), doc


def verify_then_open(ledger: Ledger, doc: dict) -> None:
    """What the auditor does (public key), then what the reconciler does (keyring)."""
    ledger.verify(public_key=NoteVerifier.parse(doc["verifier_key"]), trusted_checkpoint=doc["trusted_checkpoint"])
    ledger.open_all()


def test_the_golden_ledger_verifies_with_its_public_key_and_the_trusted_checkpoint():
    ledger, doc = load("ledger_golden.json")
    result = ledger.verify(public_key=NoteVerifier.parse(doc["verifier_key"]),
                           trusted_checkpoint=doc["trusted_checkpoint"])
    assert result.tree_size == 6
    assert result.trusted_size == 3
    assert result.checkpoints_checked == 4


def test_the_golden_ledger_still_opens_to_the_same_normalised_identifiers():
    ledger, _ = load("ledger_golden.json")
    _, entries = ledger.open_all()
    assert [e.meta.request_id for e in entries] == ["DSR-1", "OPT-1", "DSR-2", "DSR-3", "DSR-4", "DSR-5"]
    first, second, third = (e.entry for e in entries[:3])
    assert first is not None
    assert second is not None
    assert third is not None
    assert [(i.type, i.value) for i in first.identifiers] == [("email", "jan@example.nl"), ("phone", "+31416853988")]
    assert [(i.type, i.value) for i in second.identifiers] == [("email", "müller@bücher.de")]
    assert second.note == "via e-mail"
    assert entries[1].meta.purpose == "marketing"
    assert [(i.type, i.value) for i in third.identifiers] == [("customer_number", "K-1"), ("iban", "NL91ABNA0417164300")]


@pytest.mark.parametrize("name", ATTACKS)
def test_every_adversarial_vector_is_refused_with_the_error_it_names(name):
    ledger, doc = load(name)
    error_name, _, message = doc["expect"].partition(": ")
    with pytest.raises(IntegrityError) as caught:
        verify_then_open(ledger, doc)
    assert type(caught.value).__name__ == error_name
    assert message in str(caught.value)


def test_there_is_an_adversarial_vector_for_each_attack_in_the_style_guide():
    assert {"ledger_entry_swapped.json", "ledger_tail_truncated.json", "checkpoint_rollback.json",
            "checkpoint_wrong_key.json", "entry_ciphertext_bitflip.json"} <= set(ATTACKS)
