"""Tests for erasure_ledger.notes: C2SP signed notes (Ed25519) and tlog-checkpoint bodies.

Golden and adversarial cases come from tests/vectors/signed_note.json and
tests/vectors/checkpoint.json (see tests/vectors/README.md for their sources); the rest are
round trips and tamperings built here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from erasure_ledger import notes
from erasure_ledger.errors import BadSignatureError, IntegrityError, UsageError
from erasure_ledger.notes import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    note_signatures,
    open_checkpoint,
    open_note,
    sign_checkpoint,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
NOTE_VECTORS: dict[str, Any] = json.loads((VECTORS / "signed_note.json").read_text("utf-8"))
CHECKPOINT_VECTORS: dict[str, Any] = json.loads((VECTORS / "checkpoint.json").read_text("utf-8"))

EM_DASH = "\u2014"


def _ids(cases: list[dict[str, Any]], key: str) -> list[str]:
    return [f"{i}-{case[key][:60]}" for i, case in enumerate(cases)]


def _sig_b64(key_id: int, sig: bytes) -> str:
    return base64.b64encode(key_id.to_bytes(4, "big") + sig).decode("ascii")


def _raises_exactly(exc_type: type[Exception], match: str, func: Any, *args: Any) -> None:
    """pytest.raises plus an exact type check (BadSignatureError is an IntegrityError)."""
    with pytest.raises(exc_type, match=match) as info:
        func(*args)
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"


def _manglings(base: str) -> list[str]:
    """Every proper substring and every single-character increment of ``base``."""
    out = {base[i:j] for i in range(len(base)) for j in range(i + 1, len(base) + 1)} - {base}
    out.add("")
    for i, ch in enumerate(base):
        out.add(base[:i] + chr(ord(ch) + 1) + base[i + 1 :])
    return sorted(out)


# -- verifier keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    NOTE_VECTORS["verifier_keys_valid"],
    ids=_ids(NOTE_VECTORS["verifier_keys_valid"], "vkey"),
)
def test_verifier_key_valid(case: dict[str, Any]) -> None:
    v = NoteVerifier.parse(case["vkey"])
    assert v.name == case["name"]
    assert v.key_id == int(case["key_id_hex"], 16)
    assert v.public_key == bytes.fromhex(case["public_key_hex"])
    assert v.vkey == case["vkey"]
    assert NoteVerifier(v.name, v.key_id, v.public_key) == v


@pytest.mark.parametrize(
    "case",
    NOTE_VECTORS["verifier_keys_invalid"],
    ids=_ids(NOTE_VECTORS["verifier_keys_invalid"], "why"),
)
def test_verifier_key_invalid(case: dict[str, Any]) -> None:
    _raises_exactly(UsageError, "invalid verifier key", NoteVerifier.parse, case["vkey"])


def test_verifier_key_manglings_all_rejected() -> None:
    rule = NOTE_VECTORS["verifier_key_manglings"]
    for vkey in _manglings(rule["base"]):
        with pytest.raises(UsageError, match=r"^invalid verifier key"):
            NoteVerifier.parse(vkey)
    assert NoteVerifier.parse(rule["base"]).vkey == rule["base"]


def test_verifier_key_id_must_be_lower_case_hex() -> None:
    # Go's ParseUint also takes upper case; we keep one spelling per key.
    base = NOTE_VECTORS["verifier_keys_valid"][0]["vkey"]
    upper = base.replace("c74f20a3", "C74F20A3")
    _raises_exactly(UsageError, "8 lower-case hex digits", NoteVerifier.parse, upper)


def test_verifier_constructor_checks_key_id() -> None:
    v = NoteVerifier.parse(NOTE_VECTORS["verifier_keys_valid"][0]["vkey"])
    _raises_exactly(UsageError, "does not match", NoteVerifier, v.name, v.key_id ^ 1, v.public_key)
    _raises_exactly(UsageError, "32 bytes", NoteVerifier, v.name, v.key_id, v.public_key[:31])
    _raises_exactly(UsageError, "space", NoteVerifier, "a\u00a0b", v.key_id, v.public_key)


def test_verifier_verify_rejects_wrong_length_signature() -> None:
    signer = NoteSigner.generate("example.com/log")
    sig = note_signatures(signer.sign("hello\n"))[0][2]
    assert signer.verifier.verify(b"hello\n", sig)
    assert not signer.verifier.verify(b"hello\n", sig[:63])
    assert not signer.verifier.verify(b"hello\n", sig + b"\x00")
    assert not signer.verifier.verify(b"hello!\n", sig)


# -- signer keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", NOTE_VECTORS["signer_keys"], ids=_ids(NOTE_VECTORS["signer_keys"], "vkey")
)
def test_signer_key_valid(case: dict[str, Any]) -> None:
    s = NoteSigner.parse(case["skey"])
    assert s.skey == case["skey"]
    assert s.verifier.vkey == case["vkey"]
    assert s.verifier == NoteVerifier.parse(case["vkey"])
    assert s.key_id == s.verifier.key_id
    assert NoteSigner.from_seed(s.name, s.seed) == s


def test_signer_key_manglings_all_rejected_without_leaking() -> None:
    rule = NOTE_VECTORS["signer_key_manglings"]
    secret = rule["base"].rsplit("+", 1)[1]
    for skey in _manglings(rule["base"]):
        with pytest.raises(UsageError, match=r"^invalid signer key") as info:
            NoteSigner.parse(skey)
        # no 6-character run of the secret key material appears in the message
        message = str(info.value)
        assert not any(secret[i : i + 6] in message for i in range(len(secret) - 5))


def test_signer_enoch_root_is_the_all_zero_seed() -> None:
    enoch = NoteSigner.from_seed("EnochRoot", bytes(32))
    assert enoch.skey == NOTE_VECTORS["signer_keys"][1]["skey"]
    assert enoch.verifier.vkey == NOTE_VECTORS["signer_keys"][1]["vkey"]


def test_signer_repr_and_errors_hold_no_secret() -> None:
    signer = NoteSigner.generate("example.com/log")
    seed_b64 = base64.b64encode(b"\x01" + signer.seed).decode()
    assert signer.seed.hex() not in repr(signer)
    assert seed_b64 not in repr(signer)
    assert repr(signer) == "NoteSigner(name='example.com/log')"
    bad = signer.skey.replace("+example.com/log+", "+other+")
    with pytest.raises(UsageError, match="does not match") as info:
        NoteSigner.parse(bad)
    assert seed_b64 not in str(info.value)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\u3000b", "a\tb", "a\x01b"])
def test_signer_rejects_bad_names(name: str) -> None:
    _raises_exactly(UsageError, "invalid signer key", NoteSigner.generate, name)


def test_signer_rejects_bad_seed_length() -> None:
    _raises_exactly(UsageError, "32 bytes", NoteSigner.from_seed, "log", bytes(31))


def test_generate_gives_distinct_parseable_keys() -> None:
    a, b = NoteSigner.generate("log"), NoteSigner.generate("log")
    assert a.seed != b.seed
    assert NoteSigner.parse(a.skey) == a
    assert NoteVerifier.parse(a.verifier.vkey) == a.verifier


# -- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", NOTE_VECTORS["sign"], ids=_ids(NOTE_VECTORS["sign"], "skey"))
def test_sign_is_byte_exact(case: dict[str, Any]) -> None:
    signer = NoteSigner.parse(case["skey"])
    signed = signer.sign(case["text"])
    assert signed == case["want"]
    assert f"\n\n{EM_DASH} PeterNeumann " in signed
    assert open_note(signed, [signer.verifier]) == case["text"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("no newline", "end in a newline"),
        ("", "end in a newline"),
        ("carriage\r\n", "control character U\\+000D"),
        ("nul\x00\n", "control character U\\+0000"),
        ("surrogate \ud800\n", "not valid UTF-8"),
    ],
)
def test_sign_rejects_bad_text(text: str, fragment: str) -> None:
    signer = NoteSigner.generate("log")
    _raises_exactly(UsageError, fragment, signer.sign, text)


# -- opening notes -------------------------------------------------------------------------


def _verified_and_unverified(
    msg: bytes, verifiers: list[NoteVerifier]
) -> tuple[list[str], list[str]]:
    """Signatures as golang.org/x/mod/sumdb/note Open would list them in Sigs/UnverifiedSigs."""
    known = {(v.name, v.key_id): v for v in verifiers}
    text = open_note(msg, verifiers)
    verified: list[str] = []
    unverified: list[str] = []
    seen: set[tuple[str, int]] = set()
    for name, key_id, sig in note_signatures(msg):
        entry = f"{name} {key_id:08x} {_sig_b64(key_id, sig)}"
        v = known.get((name, key_id))
        if v is None:
            if entry not in unverified:
                unverified.append(entry)
        elif (name, key_id) not in seen:
            seen.add((name, key_id))
            assert v.verify(text.encode(), sig)
            verified.append(entry)
    return verified, unverified


def _want(sigs: list[dict[str, str]]) -> list[str]:
    return [f"{s['name']} {s['key_id_hex']} {s['base64']}" for s in sigs]


OPEN_ERRORS: dict[str, tuple[type[Exception], str]] = {
    "malformed": (IntegrityError, "malformed note: "),
    "invalid_signature": (BadSignatureError, "invalid signature on note from known key"),
    "unverified": (BadSignatureError, "not signed by a known key"),
    "ambiguous": (UsageError, "ambiguous verifiers"),
}


@pytest.mark.parametrize("case", NOTE_VECTORS["open"], ids=_ids(NOTE_VECTORS["open"], "desc"))
def test_open_vector(case: dict[str, Any]) -> None:
    msg = base64.b64decode(case["msg_b64"])
    if "msg" in case:
        assert case["msg"].encode("utf-8") == msg
    verifiers = [NoteVerifier.parse(vkey) for vkey in case["verifiers"]]
    forms: list[str | bytes] = [msg] + ([case["msg"]] if "msg" in case else [])
    expect = case["expect"]
    for form in forms:
        if expect == "ok":
            assert open_note(form, verifiers) == case["want_text"]
        else:
            exc_type, fragment = OPEN_ERRORS[expect]
            _raises_exactly(exc_type, fragment, open_note, form, verifiers)
    if expect == "ok":
        verified, unverified = _verified_and_unverified(msg, verifiers)
        assert verified == _want(case["want_sigs"])
        assert unverified == _want(case["want_unverified"])
    elif expect == "malformed":
        _raises_exactly(IntegrityError, "malformed note: ", note_signatures, msg)
    elif "want_unverified" in case:
        listed = [f"{n} {k:08x} {_sig_b64(k, s)}" for n, k, s in note_signatures(msg)]
        assert listed == _want(case["want_unverified"])
        assert msg.decode().startswith(case["want_text"] + "\n" + EM_DASH)


def test_open_accepts_exactly_100_signatures() -> None:
    signer = NoteSigner.generate("log")
    line = signer.signature_line("text\n")
    assert open_note("text\n\n" + line * 100, [signer.verifier]) == "text\n"
    _raises_exactly(
        IntegrityError, "more than 100", open_note, "text\n\n" + line * 101, [signer.verifier]
    )


BAD_LINE = "not '<name> <base64 signature>'"


@pytest.mark.parametrize(
    ("tail", "exc_type", "fragment"),
    [
        (f"{EM_DASH} log\n", IntegrityError, BAD_LINE),  # no signature
        (f"{EM_DASH} log \n", IntegrityError, BAD_LINE),  # empty signature
        (f"{EM_DASH} log AAAA\n", IntegrityError, BAD_LINE),  # fewer than 5 bytes
        (f"{EM_DASH} log AAAAAAA\n", IntegrityError, BAD_LINE),  # no padding
        (f"{EM_DASH} log AAAAAAB=\n", IntegrityError, BAD_LINE),  # non-zero pad bits
        (f"{EM_DASH} log AAAA_AAA\n", IntegrityError, BAD_LINE),  # URL-safe alphabet
        (f"{EM_DASH} lo\u00a0g AAAAAAAA\n", IntegrityError, BAD_LINE),  # NBSP in the name
        (f"{EM_DASH} lo+g AAAAAAAA\n", IntegrityError, BAD_LINE),  # '+' in the name
        (f"{EM_DASH}log AAAAAAAA\n", IntegrityError, "does not start with an em dash"),
        (f"{EM_DASH} log AAAAAAAA\n", BadSignatureError, "not signed by a known key"),
    ],
)
def test_open_signature_line_syntax(tail: str, exc_type: type[Exception], fragment: str) -> None:
    _raises_exactly(exc_type, fragment, open_note, "text\n\n" + tail, [])


# -- round trips and tampering -------------------------------------------------------------


@pytest.fixture
def log_signer() -> NoteSigner:
    return NoteSigner.from_seed("example.com/erasure-log", bytes(range(32)))


def test_round_trip_generate_sign_open() -> None:
    signer = NoteSigner.generate("example.com/erasure-log")
    text = "line one\n\nline three after a blank line\n"
    signed = signer.sign(text)
    assert open_note(signed, [signer.verifier]) == text
    assert open_note(signed.encode("utf-8"), [signer.verifier]) == text
    restored = NoteVerifier.parse(signer.verifier.vkey)
    assert open_note(signed, [restored]) == text


def test_tamper_edit_text(log_signer: NoteSigner) -> None:
    signed = log_signer.sign("size 5\n")
    tampered = signed.replace("size 5", "size 6")
    _raises_exactly(
        BadSignatureError, "invalid signature", open_note, tampered, [log_signer.verifier]
    )


def test_tamper_swap_signature(log_signer: NoteSigner) -> None:
    a = log_signer.sign("checkpoint a\n")
    b = log_signer.sign("checkpoint b\n")
    swapped = a.split("\n\n")[0] + "\n\n" + b.split("\n\n")[1]
    _raises_exactly(
        BadSignatureError, "invalid signature", open_note, swapped, [log_signer.verifier]
    )


def test_tamper_wrong_verifier(log_signer: NoteSigner) -> None:
    signed = log_signer.sign("text\n")
    impostor = NoteSigner.generate(log_signer.name)  # same name, other key id
    _raises_exactly(
        BadSignatureError, "not signed by a known key", open_note, signed, [impostor.verifier]
    )


def test_tamper_forged_key_id(log_signer: NoteSigner) -> None:
    # An attacker signs with its own key but claims the log's name and key id.
    attacker = NoteSigner.generate(log_signer.name)
    _, _, sig = note_signatures(attacker.sign("text\n"))[0]
    forged = f"text\n\n{EM_DASH} {log_signer.name} {_sig_b64(log_signer.key_id, sig)}\n"
    _raises_exactly(
        BadSignatureError, "invalid signature", open_note, forged, [log_signer.verifier]
    )


def test_tamper_bad_known_signature_fails_even_with_another_good_one(
    log_signer: NoteSigner,
) -> None:
    witness = NoteSigner.generate("witness")
    good = log_signer.sign("text\n")
    bad_line = witness.signature_line("other\n")
    note = good + bad_line
    verifiers = [log_signer.verifier, witness.verifier]
    _raises_exactly(BadSignatureError, "witness", open_note, note, verifiers)
    # Without the witness key its line is simply ignored.
    assert open_note(note, [log_signer.verifier]) == "text\n"


def test_tamper_truncations(log_signer: NoteSigner) -> None:
    signed = log_signer.sign("text\n")
    for cut in (signed[:-1], signed[: signed.index(EM_DASH)], "text\n"):
        _raises_exactly(IntegrityError, "malformed note", open_note, cut, [log_signer.verifier])


# -- checkpoint bodies ---------------------------------------------------------------------


def _want_checkpoint(want: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        origin=want["origin"],
        size=want["size"],
        root_hash=base64.b64decode(want["root_hash_b64"]),
        extensions=tuple(want["extensions"]),
    )


@pytest.mark.parametrize(
    "case",
    CHECKPOINT_VECTORS["checkpoint_bodies"],
    ids=_ids(CHECKPOINT_VECTORS["checkpoint_bodies"], "desc"),
)
def test_checkpoint_body_vector(case: dict[str, Any]) -> None:
    text, hash_size = case["text"], case["hash_size"]
    signer = NoteSigner.generate("example.com/test-log")
    if case["c2sp_valid"]:
        cp = Checkpoint.parse_body(text, hash_size=hash_size)
        assert cp == _want_checkpoint(case["want"])
        assert cp.body() == text
        signed = sign_checkpoint(cp, signer)
        assert open_checkpoint(signed, signer.verifier, hash_size=hash_size) == cp
        assert open_checkpoint(signed, signer.verifier, origin=cp.origin, hash_size=hash_size) == cp
    else:
        with pytest.raises(IntegrityError, match="malformed checkpoint") as info:
            Checkpoint.parse_body(text, hash_size=hash_size)
        assert type(info.value) is IntegrityError
        # The same body signed by a trusted key is still refused when opened.
        try:
            signed = signer.sign(text)
        except UsageError:
            return  # not even a note text (no final newline, control character)
        with pytest.raises(IntegrityError, match="malformed checkpoint") as info:
            open_checkpoint(signed, signer.verifier, hash_size=hash_size)
        assert type(info.value) is IntegrityError
    if "expected_origin" in case:
        signed = signer.sign(text)
        expected = case["expected_origin"]
        if case["valid_with_expected_origin"]:
            assert open_checkpoint(signed, signer.verifier, origin=expected).origin == expected
        else:
            with pytest.raises(IntegrityError, match="does not match") as info:
                open_checkpoint(signed, signer.verifier, origin=expected)
            assert type(info.value) is IntegrityError


SIGNED_CHECKPOINT_ERRORS: dict[str, tuple[type[Exception], str]] = {
    "real sum.golang.org checkpoint, wrong expected origin": (IntegrityError, "does not match"),
    "no sigs": (IntegrityError, "malformed note"),
    "bad body good sigs": (IntegrityError, "malformed checkpoint"),
    "just known": (BadSignatureError, "not signed by a known key"),
    "all sigs but wrong logID": (IntegrityError, "does not match"),
}


def _count_verified(msg: str, verifiers: list[NoteVerifier]) -> int:
    try:
        note_signatures(msg)
    except IntegrityError:
        return 0  # not a signed note at all
    return len(_verified_and_unverified(msg.encode("utf-8"), verifiers)[0])


@pytest.mark.parametrize(
    "case",
    CHECKPOINT_VECTORS["signed_checkpoints"],
    ids=_ids(CHECKPOINT_VECTORS["signed_checkpoints"], "desc"),
)
def test_signed_checkpoint_vector(case: dict[str, Any]) -> None:
    log = NoteVerifier.parse(case["log_vkey"])
    others = [NoteVerifier.parse(v) for v in case["other_vkeys"]]
    if case["want_error"]:
        exc_type, fragment = SIGNED_CHECKPOINT_ERRORS[case["desc"]]
        with pytest.raises(exc_type, match=fragment) as info:
            open_checkpoint(case["msg"], log, origin=case["origin"], hash_size=case["hash_size"])
        assert type(info.value) is exc_type
    else:
        cp = open_checkpoint(case["msg"], log, origin=case["origin"], hash_size=case["hash_size"])
        assert cp.origin == case["origin"]
        if "want" in case:
            assert cp == _want_checkpoint(case["want"])
    if "want_sigs" in case:
        assert _count_verified(case["msg"], [log, *others]) == case["want_sigs"]


def test_signed_checkpoints_reproduce_with_published_keys() -> None:
    keys = CHECKPOINT_VECTORS["keys"]
    signers = {
        "log": NoteSigner.parse(keys["logSK"]),
        "known1": NoteSigner.parse(keys["known1SK"]),
        "known2": NoteSigner.parse(keys["known2SK"]),
        "unknown": NoteSigner.parse(keys["unknownSK"]),
    }
    assert signers["log"].verifier.vkey == keys["logVK"]
    for case in CHECKPOINT_VECTORS["signed_checkpoints"]:
        if not case.get("signers"):
            continue
        text = case["msg"].split("\n\n")[0] + "\n"
        lines = "".join(signers[s].signature_line(text) for s in case["signers"])
        assert text + "\n" + lines == case["msg"], case["desc"]


# -- checkpoints: round trips and tampering ------------------------------------------------


def test_checkpoint_round_trip_with_extensions(log_signer: NoteSigner) -> None:
    cp = Checkpoint(log_signer.name, 42, bytes(range(32)), ("ext one", "ext two"))
    signed = sign_checkpoint(cp, log_signer)
    assert signed.startswith(cp.body() + "\n" + EM_DASH + " " + log_signer.name + " ")
    assert open_checkpoint(signed, log_signer.verifier, origin=log_signer.name) == cp


def test_checkpoint_cosigned_by_witness(log_signer: NoteSigner) -> None:
    cp = Checkpoint(log_signer.name, 7, bytes(32))
    witness = NoteSigner.generate("witness.example")
    signed = sign_checkpoint(cp, log_signer) + witness.signature_line(cp.body())
    assert open_checkpoint(signed, log_signer.verifier) == cp
    # Only the log's key counts: a witness alone does not make a checkpoint.
    with pytest.raises(BadSignatureError, match="not signed by a known key"):
        open_checkpoint(witness.sign(cp.body()), log_signer.verifier)


def test_checkpoint_tampered_size(log_signer: NoteSigner) -> None:
    signed = sign_checkpoint(Checkpoint(log_signer.name, 5, bytes(32)), log_signer)
    tampered = signed.replace("\n5\n", "\n4\n", 1)
    with pytest.raises(BadSignatureError, match="invalid signature"):
        open_checkpoint(tampered, log_signer.verifier)


def test_checkpoint_wrong_verifier(log_signer: NoteSigner) -> None:
    signed = sign_checkpoint(Checkpoint(log_signer.name, 5, bytes(32)), log_signer)
    other = NoteSigner.generate("other.example/log")
    with pytest.raises(BadSignatureError, match="not signed by a known key"):
        open_checkpoint(signed, other.verifier)


def test_checkpoint_hash_size_default_is_32(log_signer: NoteSigner) -> None:
    signed = sign_checkpoint(Checkpoint(log_signer.name, 5, bytes(20)), log_signer)
    with pytest.raises(IntegrityError, match="20 bytes, expected 32"):
        open_checkpoint(signed, log_signer.verifier)
    assert open_checkpoint(signed, log_signer.verifier, hash_size=20).root_hash == bytes(20)
    assert open_checkpoint(signed, log_signer.verifier, hash_size=None).size == 5


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"origin": ""}, "origin is empty"),
        ({"origin": " log"}, "white space"),
        ({"origin": "log\nx"}, "origin contains a newline"),
        ({"size": -1}, "tree size"),
        ({"size": 2**64}, "tree size"),
        ({"size": True}, "tree size"),
        ({"root_hash": b""}, "root hash is empty"),
        ({"extensions": ("",)}, "extension line is empty"),
        ({"extensions": ("a\nb",)}, "extension line contains a newline"),
        ({"extensions": ("a\rb",)}, "control character"),
    ],
)
def test_checkpoint_constructor_rejects(kwargs: dict[str, Any], fragment: str) -> None:
    fields: dict[str, Any] = {"origin": "log", "size": 1, "root_hash": bytes(32)}
    fields.update(kwargs)
    with pytest.raises(UsageError, match=fragment):
        Checkpoint(**fields)


def test_checkpoint_extensions_become_a_tuple() -> None:
    cp = Checkpoint("log", 1, bytes(32), ["a", "b"])  # type: ignore[arg-type]
    assert cp.extensions == ("a", "b")
    assert hash(cp) == hash(Checkpoint("log", 1, bytes(32), ("a", "b")))


def test_parse_body_rejects_huge_size_without_int_conversion_error() -> None:
    text = "log\n" + "9" * 5000 + "\n" + base64.b64encode(bytes(32)).decode() + "\n"
    with pytest.raises(IntegrityError, match="tree size"):
        Checkpoint.parse_body(text)


def test_public_names() -> None:
    for name in notes.__all__:
        assert hasattr(notes, name)
    assert set(notes.__all__) >= {
        "NoteVerifier",
        "NoteSigner",
        "open_note",
        "note_signatures",
        "Checkpoint",
        "sign_checkpoint",
        "open_checkpoint",
    }
