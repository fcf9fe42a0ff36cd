"""Behaviour of the Ledger over the in-memory store: the specification of the library API."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from erasure_ledger import (
    BadSignatureError,
    DecryptionError,
    DuplicateRequestError,
    Entry,
    Identifier,
    IntegrityError,
    Keyring,
    Ledger,
    MemoryStore,
    RollbackError,
    TamperedEntryError,
    UsageError,
)
from erasure_ledger.canonical import canonical_json
from erasure_ledger.merkle import root_hash, verify_inclusion
from erasure_ledger.notes import Checkpoint, NoteSigner, open_checkpoint, sign_checkpoint
from erasure_ledger.stores import StoredLeaf
from tests.conftest import FIXED_NOW, make_entry


def email(value: str) -> Identifier:
    return Identifier.parse("email", value)


def store_of(ledger: Ledger) -> MemoryStore:
    assert isinstance(ledger.store, MemoryStore)
    return ledger.store


# -- appending and reading ----------------------------------------------------------------------


def test_entries_get_consecutive_sequence_numbers_from_zero(memory_ledger):
    ledger = memory_ledger()
    first = ledger.append([make_entry("R1"), make_entry("R2")], now=FIXED_NOW)
    second = ledger.append([make_entry("R3")], now=FIXED_NOW)
    assert first.seqs == (0, 1)
    assert second.seqs == (2,)
    assert second.tree_size == 3


def test_an_entry_opens_to_its_normalised_identifiers(memory_ledger):
    ledger = memory_ledger([make_entry("R1", identifiers={"email": " Jan@Example.NL ", "phone": "0416-853988"})])
    opened = ledger.show(0)
    assert opened.entry is not None
    assert {(i.type, i.value) for i in opened.entry.identifiers} == {
        ("email", "jan@example.nl"),
        ("phone", "+31416853988"),
    }


def test_a_leaf_holds_no_identifier_value_in_clear(memory_ledger):
    ledger = memory_ledger([make_entry("R1", identifiers={"email": "secret.person@example.nl"}, note="hello")])
    leaf = store_of(ledger).leaves[0].data
    assert b"secret.person" not in leaf
    assert b"hello" not in leaf
    assert json.loads(leaf)["header"]["id_types"] == ["email"]


def test_a_request_id_already_in_the_ledger_is_refused_and_nothing_is_written(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    with pytest.raises(DuplicateRequestError, match="request R1 is already in the ledger"):
        ledger.append([make_entry("R2"), make_entry("R1")], now=FIXED_NOW)
    assert [m.request_id for m in ledger.list_entries()] == ["R1"]


def test_a_request_id_repeated_in_one_batch_is_refused(memory_ledger):
    ledger = memory_ledger()
    with pytest.raises(DuplicateRequestError, match="request R1 appears twice in the input"):
        ledger.append([make_entry("R1"), make_entry("R1")], now=FIXED_NOW)
    assert list(ledger.list_entries()) == []


def test_append_without_the_keyring_is_a_usage_error(memory_ledger):
    ledger = Ledger.open(memory_ledger().store)
    with pytest.raises(UsageError, match="needs the keyring"):
        ledger.append([make_entry("R1")], now=FIXED_NOW)


def test_list_shows_metadata_and_due_dates_without_any_key(memory_ledger):
    ledger = memory_ledger([make_entry("R1", received="2026-01-31T10:00:00Z")])
    meta = next(Ledger.open(ledger.store).list_entries())
    assert meta.request_id == "R1"
    assert meta.identifier_types == ("email",)
    assert meta.due == datetime(2026, 2, 28, 10, 0, tzinfo=UTC)  # one month, clamped to month end


def test_overdue_means_received_over_a_month_ago_and_not_yet_effective(memory_ledger):
    ledger = memory_ledger(
        [
            make_entry("LATE", received="2026-09-01"),
            make_entry("DONE", received="2026-09-01", effective="2026-09-20"),
            make_entry("DONE-LATE", received="2026-09-01", effective="2026-10-20"),
            make_entry("RECENT", received="2026-10-25"),
            make_entry("PLANNED", received="2026-09-01", effective="2026-11-20"),  # after FIXED_NOW
        ]
    )
    overdue = [m.request_id for m in ledger.list_entries() if m.is_overdue(FIXED_NOW)]
    assert overdue == ["LATE", "PLANNED"]


def test_a_request_carried_out_after_its_deadline_is_completed_late_not_overdue(memory_ledger):
    ledger = memory_ledger(
        [
            make_entry("DONE", received="2026-09-01", effective="2026-10-01"),  # on the due date
            make_entry("DONE-LATE", received="2026-09-01", effective="2026-10-20"),
            make_entry("OPEN", received="2026-09-01"),
            make_entry("UNDATED", effective="2026-10-20"),
        ]
    )
    ledger.append([Entry.completion("OPEN", effective="2026-10-09T14:00:00Z")], now=FIXED_NOW)
    late = [m.request_id for m in ledger.list_entries() if m.completed_late]
    assert late == ["DONE-LATE", "OPEN"]
    assert [m.request_id for m in ledger.list_entries() if m.is_overdue(FIXED_NOW)] == []


def test_lookup_finds_a_person_by_any_spelling_of_an_identifier(memory_ledger):
    ledger = memory_ledger([make_entry("R1", identifiers={"email": "jan@example.nl"}), make_entry("R2")])
    assert [m.request_id for m in ledger.lookup([email("  JAN@example.NL")])] == ["R1"]
    assert ledger.lookup([email("nobody@example.nl")]) == []


def test_objections_carry_their_purpose(memory_ledger):
    ledger = memory_ledger([make_entry("O1", kind="objection", purpose="marketing")])
    assert ledger.show(0).meta.purpose == "marketing"


# -- verification ------------------------------------------------------------------------------


def test_a_fresh_ledger_verifies_with_its_public_key_alone(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    result = Ledger.open(ledger.store).verify(public_key=ledger.verifier)
    assert result.tree_size == 2
    assert result.root_hash == root_hash([leaf.data for leaf in store_of(ledger).leaves])


def test_a_bit_flip_in_a_leaf_is_detected_and_named(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2"), make_entry("R3")])
    store = store_of(ledger)
    leaf = store.leaves[1]
    flipped = bytearray(leaf.data)
    flipped[-5] ^= 0x01
    store.leaves[1] = dataclasses.replace(leaf, data=bytes(flipped))
    with pytest.raises(TamperedEntryError, match="checkpoint at size 2 does not match the stored entries: entry 1"):
        ledger.verify()


def test_swapped_entries_are_detected(memory_ledger):
    ledger = memory_ledger()
    ledger.append([make_entry("R1"), make_entry("R2")], now=FIXED_NOW)
    store = store_of(ledger)
    store.leaves[0], store.leaves[1] = (
        StoredLeaf(0, "R2", store.leaves[1].data),
        StoredLeaf(1, "R1", store.leaves[0].data),
    )
    with pytest.raises(TamperedEntryError, match=r"entries 0\.\.1 altered, swapped or removed"):
        ledger.verify()
    with pytest.raises(TamperedEntryError, match=r"entries 0\.\.1 altered"):
        ledger.show(0)  # show verifies the tree before it opens anything


def test_a_truncated_tail_is_detected(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    store = store_of(ledger)
    store.leaves.pop()
    store.head = dataclasses.replace(store.head, size=1)
    with pytest.raises(TamperedEntryError, match="checkpoint at size 2 was signed but the ledger holds 1"):
        ledger.verify()


def test_a_rollback_hidden_by_deleting_checkpoints_is_caught_by_the_trusted_checkpoint(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    trusted = ledger.checkpoint().note
    store = store_of(ledger)
    # A restore of the ledger's own database to an older state: consistent, but older.
    store.leaves.pop()
    del store.checkpoints[2]
    store.head = dataclasses.replace(store.head, size=1, checkpoint=store.checkpoints[1])
    ledger.verify()  # on its own the older ledger is consistent ...
    with pytest.raises(RollbackError, match="ledger has 1 entries but the trusted checkpoint has 2"):
        ledger.verify(trusted_checkpoint=trusted)


def test_a_rewritten_history_does_not_extend_the_trusted_checkpoint(memory_ledger):
    keyring = Keyring.generate("test.example/ledger")
    honest = Ledger.create(MemoryStore(), keyring, now=FIXED_NOW)
    honest.append([make_entry("R1")], now=FIXED_NOW)
    trusted = honest.checkpoint().note
    # The same keyring (a stolen signing key) re-signs a different history of the same size.
    forked = Ledger.create(MemoryStore(), keyring, now=FIXED_NOW)
    forked.append([make_entry("OTHER")], now=FIXED_NOW)
    forked.append([make_entry("R2")], now=FIXED_NOW)
    with pytest.raises(RollbackError, match=r"does not extend the trusted checkpoint \(size 1\)"):
        forked.verify(trusted_checkpoint=trusted)


def test_a_checkpoint_forged_with_another_key_is_rejected(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    forger = NoteSigner.generate(ledger.origin)
    forged = sign_checkpoint(Checkpoint(origin=ledger.origin, size=1, root_hash=b"\x00" * 32), forger)
    with pytest.raises(BadSignatureError, match="trusted checkpoint: signature does not verify"):
        ledger.verify(trusted_checkpoint=forged)
    store_of(ledger).checkpoints[1] = forged
    with pytest.raises(BadSignatureError, match="checkpoint at size 1: signature does not verify"):
        ledger.verify()


def test_the_wrong_public_key_fails_verification(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    other = memory_ledger(origin=ledger.origin)
    with pytest.raises(BadSignatureError, match="forged checkpoint or wrong key"):
        ledger.verify(public_key=other.verifier)


def test_a_leaf_appended_outside_the_ledger_is_not_covered_by_a_checkpoint(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    store = store_of(ledger)
    store.leaves.append(StoredLeaf(1, "EVIL", store.leaves[0].data))
    store.head = dataclasses.replace(store.head, size=2)
    with pytest.raises(TamperedEntryError, match="entry 1: not covered by any signed checkpoint"):
        ledger.verify()


def test_an_inclusion_proof_verifies_against_the_signed_root(memory_ledger):
    ledger = memory_ledger([make_entry(f"R{i}") for i in range(7)])
    proof = ledger.prove(3)
    checkpoint = open_checkpoint(proof.checkpoint, ledger.verifier, origin=ledger.origin)
    verify_inclusion(proof.leaf_hash, proof.seq, proof.tree_size, list(proof.hashes), checkpoint.root_hash)


# -- the mutable key table -----------------------------------------------------------------------


def test_swapped_blind_index_tokens_are_detected_not_silently_missed(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    rows = store_of(ledger).key_rows
    rows[0], rows[1] = (
        dataclasses.replace(rows[0], tokens=rows[1].tokens),
        dataclasses.replace(rows[1], tokens=rows[0].tokens),
    )
    with pytest.raises(TamperedEntryError, match="entry 0: key row does not match its entry"):
        ledger.lookup([email("r1@example.nl")])


def test_a_dropped_key_row_is_detected(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    del store_of(ledger).key_rows[1]
    with pytest.raises(TamperedEntryError, match="entry 1: its key row is missing"):
        ledger.lookup([email("r2@example.nl")])


def test_a_wrapped_key_moved_to_another_entry_does_not_open(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    rows = store_of(ledger).key_rows
    rows[1] = dataclasses.replace(rows[1], wrapped_key=rows[0].wrapped_key)
    with pytest.raises(TamperedEntryError, match="entry 1: key row does not match"):
        ledger.show(1)


def test_a_keyring_of_another_ledger_is_refused():
    ledger = Ledger.create(MemoryStore(), Keyring.generate("a.example/l"), now=FIXED_NOW)
    with pytest.raises(IntegrityError, match="does not belong to this ledger"):
        Ledger.open(ledger.store, Keyring.generate("a.example/l"))


def test_a_ciphertext_bit_flip_does_not_open(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    store = store_of(ledger)
    obj = json.loads(store.leaves[0].data)
    sealed = bytearray(obj["sealed"].encode())
    sealed[20] = ord("A") if sealed[20] != ord("A") else ord("B")
    obj["sealed"] = sealed.decode()
    store.leaves[0] = dataclasses.replace(store.leaves[0], data=canonical_json(obj))
    # the MAC binds the key row to the leaf hash, so the altered leaf is caught there first
    with pytest.raises(IntegrityError):
        ledger.show(0)


# -- shredding and key rotation ------------------------------------------------------------------


def test_a_shredded_entry_no_longer_opens_or_matches_but_the_log_still_verifies(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    assert ledger.shred([0]) == [0]
    assert ledger.show(0).entry is None
    assert ledger.show(0).meta.shredded
    assert ledger.lookup([email("r1@example.nl")]) == []
    assert store_of(ledger).key_rows[0].wrapped_key is None
    assert store_of(ledger).key_rows[0].tokens == b""
    ledger.verify()
    assert ledger.shred([0]) == []  # idempotent


def test_shreddable_entries_are_those_carried_out_before_the_oldest_kept_backup(memory_ledger):
    ledger = memory_ledger(
        [
            make_entry("OLD", effective="2025-01-10"),
            make_entry("NEW", effective="2026-10-10"),
            make_entry("OPEN"),
        ]
    )
    chosen = ledger.shreddable(before=datetime(2026, 1, 1, tzinfo=UTC))
    assert [m.request_id for m in chosen] == ["OLD"]


def test_shredding_an_unknown_entry_is_a_usage_error(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    with pytest.raises(UsageError, match=r"no entry 5 \(the ledger holds entries 0..0\)"):
        ledger.shred([5])


def test_key_rotation_rewraps_every_key_and_destroys_the_old_one(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    ledger.shred([1])
    old = ledger.keyring
    saved: list[Keyring] = []
    final = ledger.rotate_key(saved.append)
    assert [sorted(k.keks) for k in saved] == [["kek-1", "kek-2"], ["kek-2"]]
    assert final.active_kek_id == "kek-2"
    assert ledger.show(0).entry is not None
    assert ledger.check_key_rows() == 2
    ledger.verify()
    stale = Ledger.open(ledger.store, old)
    with pytest.raises(DecryptionError):
        stale.show(0)


def test_open_all_verifies_then_returns_every_entry_in_order(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2"), make_entry("R3")])
    ledger.shred([1])
    result, entries = ledger.open_all()
    assert result.tree_size == 3
    assert [e.seq for e in entries] == [0, 1, 2]
    assert entries[1].entry is None
    assert entries[2].entry is not None


def test_open_all_refuses_a_tampered_ledger(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2")])
    store = store_of(ledger)
    store.leaves[0], store.leaves[1] = store.leaves[1], store.leaves[0]
    with pytest.raises(TamperedEntryError):
        ledger.open_all()


def test_checkpoint_is_stable_when_nothing_was_appended(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    assert ledger.checkpoint().note == ledger.checkpoint().note
    assert ledger.checkpoint().checkpoint.size == 1


def test_a_consistency_proof_links_old_and_new_checkpoints(memory_ledger):
    from erasure_ledger.merkle import verify_consistency

    ledger = memory_ledger([make_entry(f"R{i}") for i in range(3)])
    old = ledger.checkpoint().checkpoint
    ledger.append([make_entry(f"S{i}") for i in range(4)], now=FIXED_NOW)
    new = ledger.checkpoint().checkpoint
    proof = ledger.consistency_proof(old.size)
    verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)


def test_a_tampered_head_is_never_signed_over(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    store = store_of(ledger)
    store.head = dataclasses.replace(store.head, nodes=(b"\x11" * 32,))
    with pytest.raises(TamperedEntryError, match="does not match its signed checkpoint"):
        ledger.append([make_entry("R2")], now=FIXED_NOW)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"received": "2026-01-31T10:00:00Z", "verified": "2026-02-01", "effective": "2026-02-02T23:59:59+02:00"},
        {"kind": "objection", "purpose": "tracking-cookies"},
        {"identifiers": {"email": "a@b.nl", "phone": "0416-853988", "iban": "NL91ABNA0417164300", "kvk": "12345678"}},
    ],
)
@pytest.mark.parametrize("origin", ["test.example/ledger", 'quote"and\\backslash', "bloemist.nl/ledgér"])
def test_the_fast_leaf_header_is_exactly_the_canonical_encoding(fields, origin):
    from erasure_ledger.canonical import leaf_header, leaf_header_bytes

    entry = make_entry("REQ-1.a:b/c#d", **fields)
    fast = leaf_header_bytes(entry, origin_json=json.dumps(origin, ensure_ascii=False), seq=42,
                             appended_at="2026-11-01T12:00:00Z")
    slow = canonical_json(leaf_header(entry, origin=origin, seq=42, appended_at="2026-11-01T12:00:00Z"))
    assert fast == slow


# -- completions: carried out after the request was appended --------------------------------------


def test_a_request_can_be_marked_carried_out_later_and_is_then_no_longer_overdue(memory_ledger):
    ledger = memory_ledger([make_entry("LATE", received="2026-09-01"), make_entry("OTHER", received="2026-09-01")])
    assert [m.request_id for m in ledger.list_entries() if m.is_overdue(FIXED_NOW)] == ["LATE", "OTHER"]
    ledger.append([Entry.completion("LATE", effective="2026-09-20")], now=FIXED_NOW)
    metas = {m.request_id: m for m in ledger.list_entries()}
    assert metas["LATE"].effective == datetime(2026, 9, 20, tzinfo=UTC)
    assert metas["LATE#completed"].kind == "completion"
    assert metas["LATE#completed"].completes == "LATE"
    assert [m.request_id for m in ledger.list_entries() if m.is_overdue(FIXED_NOW)] == ["OTHER"]


def test_replay_sees_requests_only_with_the_date_they_were_carried_out(memory_ledger):
    ledger = memory_ledger([make_entry("R1", received="2026-09-01")])
    ledger.append([Entry.completion("R1", effective="2026-09-02T10:00:00Z")], now=FIXED_NOW)
    _, entries = ledger.open_all()
    assert [e.meta.request_id for e in entries] == ["R1"]
    assert entries[0].meta.effective == datetime(2026, 9, 2, 10, tzinfo=UTC)
    assert entries[0].entry is not None
    assert entries[0].entry.effective == entries[0].meta.effective


def test_a_completion_must_name_a_request_in_the_ledger(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    with pytest.raises(UsageError, match="request NOPE is not in the ledger"):
        ledger.append([Entry.completion("NOPE", effective="2026-10-01")], now=FIXED_NOW)


def test_a_request_is_marked_carried_out_once(memory_ledger):
    ledger = memory_ledger([make_entry("R1"), make_entry("R2", effective="2026-10-01")])
    ledger.append([Entry.completion("R1", effective="2026-10-01")], now=FIXED_NOW)
    with pytest.raises(DuplicateRequestError, match="request R1 is already marked carried out"):
        ledger.append([Entry.completion("R1", effective="2026-10-02")], now=FIXED_NOW)
    with pytest.raises(DuplicateRequestError, match="request R2 is already marked carried out"):
        ledger.append([Entry.completion("R2", effective="2026-10-02")], now=FIXED_NOW)


def test_a_completion_before_the_request_was_received_is_refused(memory_ledger):
    ledger = memory_ledger([make_entry("R1", received="2026-10-10")])
    with pytest.raises(UsageError, match="carried out before it was received"):
        ledger.append([Entry.completion("R1", effective="2026-10-01")], now=FIXED_NOW)


def test_a_completion_carries_no_identifiers_and_verifies_like_any_leaf(memory_ledger):
    ledger = memory_ledger([make_entry("R1")])
    ledger.append([Entry.completion("R1", effective="2026-10-01")], now=FIXED_NOW)
    leaf = json.loads(store_of(ledger).leaves[1].data)
    assert leaf["header"]["kind"] == "completion"
    assert leaf["header"]["completes"] == "R1"
    assert leaf["header"]["id_types"] == []
    assert ledger.verify().tree_size == 2
    assert ledger.show(1).entry is not None
