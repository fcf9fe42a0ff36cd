"""C2SP signed notes with Ed25519 keys, and the tlog-checkpoint body they carry.

A signed note (https://c2sp.org/signed-note) is UTF-8 text ending in a newline, a blank line,
and one or more lines ``— <key name> base64(key id || signature)``. A checkpoint
(https://c2sp.org/tlog-checkpoint) is a note whose text is ``origin``, ``tree size`` and
``base64 root hash`` on three lines, optionally followed by extension lines. This module:

* parses and encodes verifier keys (``<name>+<hex8 key id>+<base64(0x01 || public key)>``) and
  signer keys (``PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 || seed)>``), in the format of
  golang.org/x/mod/sumdb/note, so keys move freely between this package and Go tooling;
* signs a text and opens a signed note with the semantics of that package's ``Open``:
  signatures from unknown keys are ignored, a known key whose signature fails rejects the
  whole note, and a note with no verified signature is rejected;
* formats and strictly parses checkpoint bodies (decimal size without leading zeros, standard
  padded base64 root, non-empty lines), and signs and opens checkpoints.

It leaves out: any file or network I/O (keys and notes come in and go out as strings), other
signature types (only Ed25519, type byte 0x01; other types read as unknown keys), witness
cosignature semantics (tlog-cosignature timestamps), consistency between checkpoints (see the
Merkle proof code), and where keys are stored. Error messages name key names and key ids,
which are public, and never any part of a signer key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from erasure_ledger.errors import BadSignatureError, IntegrityError, UsageError

__all__ = [
    "NoteVerifier",
    "NoteSigner",
    "open_note",
    "note_signatures",
    "Checkpoint",
    "sign_checkpoint",
    "open_checkpoint",
    "key_name_problem",
]

ALG_ED25519 = 0x01
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_SIG_PREFIX = "\u2014 "  # em dash U+2014, then a space
_MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note; C2SP asks for at least 16
_MAX_TREE_SIZE = 2**64 - 1
_HEX8 = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# Unicode White_Space (what Go's unicode.IsSpace tests), not str.isspace(): the latter also
# counts U+001C..U+001F, which Go and C2SP do not.
_UNICODE_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


# -- helpers -------------------------------------------------------------------------------


def _name_problem(name: str) -> str | None:
    """Say why ``name`` is not a valid key name (signed-note: Format), or None if it is."""
    if not name:
        return "key name is empty"
    if "+" in name:
        return "key name contains '+'"
    if any(ch in _UNICODE_SPACES for ch in name):
        return "key name contains a space"
    if any(ord(ch) < 0x20 for ch in name):
        return "key name contains a control character"
    if not _is_utf8(name):
        return "key name is not valid UTF-8"
    return None


def key_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a key name (and so a log's origin), e.g. "key name contains a
    space"; None if it can."""
    return _name_problem(name)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _text_problem(text: str) -> str | None:
    """Say why ``text`` may not appear in a note (signed-note: Format), or None if it may."""
    if not _is_utf8(text):
        return "not valid UTF-8"
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            return f"control character U+{ord(ch):04X}"
    return None


def _b64decode(text: str) -> bytes | None:
    """Decode standard, padded, canonical base64 (RFC 4648 §4), or return None."""
    if not _BASE64.fullmatch(text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    # Refuse non-zero pad bits, so every value has exactly one accepted spelling.
    if base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _key_id(name: str, public_key: bytes) -> int:
    """signed-note: key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


# -- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteVerifier:
    """An Ed25519 note verifier key: a name, its 32-bit key id and a 32-byte public key.

    Valid from construction: the key id must be the one the name and key imply.
    """

    name: str
    key_id: int
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = _name_problem(self.name)
        if problem is not None:
            raise UsageError(f"invalid verifier key: {problem}")
        if len(self.public_key) != _ED25519_KEY_SIZE:
            raise UsageError(
                f"invalid verifier key: Ed25519 public key must be {_ED25519_KEY_SIZE} bytes"
            )
        if self.key_id != _key_id(self.name, self.public_key):
            raise UsageError(
                f"invalid verifier key: key id {self.key_id:08x} does not match the key "
                f"for {self.name!r}"
            )
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.public_key))

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Parse a verifier key string ``<name>+<hex8 key id>+<base64(0x01 || key)>``.

        Args:
            vkey: the verifier key, as printed by :attr:`vkey` or Go's ``note`` package.

        Returns:
            The verifier.

        Raises:
            UsageError: the string is not a valid Ed25519 verifier key (bad name, key id that
                is not 8 lower-case hex digits or does not match the key, bad base64, unknown
                algorithm, wrong key length).
        """
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise UsageError("invalid verifier key: expected <name>+<key id>+<key>")
        name, hex_id, key64 = parts
        problem = _name_problem(name)
        if problem is not None:
            raise UsageError(f"invalid verifier key: {problem}")
        if not _HEX8.fullmatch(hex_id):
            raise UsageError("invalid verifier key: key id must be 8 lower-case hex digits")
        raw = _b64decode(key64)
        if not raw:
            raise UsageError("invalid verifier key: key is not standard padded base64")
        if raw[0] != ALG_ED25519:
            raise UsageError(f"invalid verifier key: unknown algorithm 0x{raw[0]:02x}")
        return cls(name=name, key_id=int(hex_id, 16), public_key=raw[1:])

    @property
    def vkey(self) -> str:
        """The verifier key string, ``<name>+<hex8 key id>+<base64(0x01 || key)>``."""
        key64 = _b64encode(bytes([ALG_ED25519]) + self.public_key)
        return f"{self.name}+{self.key_id:08x}+{key64}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Check an Ed25519 signature (without the 4-byte key id prefix) over ``msg``.

        Args:
            msg: the signed bytes (for a note, its UTF-8 text including the final newline).
            sig: the 64-byte signature.

        Returns:
            True if the signature verifies; False otherwise, including a wrong length.

        Raises:
            Nothing: a bad signature is reported by the return value.
        """
        if len(sig) != _ED25519_SIG_SIZE:
            return False
        try:
            self._key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 note signer: a key name and a 32-byte private seed.

    The seed is kept out of ``repr`` and out of every error message.
    """

    name: str
    seed: bytes = field(repr=False)
    _key: Ed25519PrivateKey = field(init=False, repr=False, compare=False)
    _verifier: NoteVerifier = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = _name_problem(self.name)
        if problem is not None:
            raise UsageError(f"invalid signer key: {problem}")
        if len(self.seed) != _ED25519_KEY_SIZE:
            raise UsageError(f"invalid signer key: seed must be {_ED25519_KEY_SIZE} bytes")
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        verifier = NoteVerifier(self.name, _key_id(self.name, public), public)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_verifier", verifier)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """Create a signer with a fresh random seed.

        Args:
            name: the key name (non-empty, no spaces, no '+'); for a log, its origin.

        Returns:
            The new signer.

        Raises:
            UsageError: the name is not a valid key name.
        """
        return cls(name, secrets.token_bytes(_ED25519_KEY_SIZE))

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> NoteSigner:
        """Build a signer from a known 32-byte Ed25519 seed (RFC 8032 private key).

        Args:
            name: the key name.
            seed: the 32-byte seed.

        Returns:
            The signer.

        Raises:
            UsageError: the name is not valid or the seed is not 32 bytes.
        """
        return cls(name, seed)

    @classmethod
    def parse(cls, skey: str) -> NoteSigner:
        """Parse a signer key ``PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 || seed)>``.

        Args:
            skey: the signer key, as printed by :attr:`skey` or Go's ``note.GenerateKey``.

        Returns:
            The signer.

        Raises:
            UsageError: the string is not a valid Ed25519 signer key, or its key id does not
                match the key. The message never repeats any part of the string.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise UsageError("invalid signer key: expected PRIVATE+KEY+<name>+<key id>+<key>")
        _, _, name, hex_id, key64 = parts
        if _name_problem(name) is not None:
            raise UsageError("invalid signer key: bad key name")
        if not _HEX8.fullmatch(hex_id):
            raise UsageError("invalid signer key: key id must be 8 lower-case hex digits")
        raw = _b64decode(key64)
        if not raw:
            raise UsageError("invalid signer key: key is not standard padded base64")
        if raw[0] != ALG_ED25519:
            raise UsageError("invalid signer key: unknown algorithm")
        if len(raw) != 1 + _ED25519_KEY_SIZE:
            raise UsageError(f"invalid signer key: seed must be {_ED25519_KEY_SIZE} bytes")
        signer = cls(name, raw[1:])
        if signer.key_id != int(hex_id, 16):
            raise UsageError("invalid signer key: key id does not match the key")
        return signer

    @property
    def key_id(self) -> int:
        """The 32-bit key id of this signer's public key."""
        return self._verifier.key_id

    @property
    def verifier(self) -> NoteVerifier:
        """The matching verifier (public) key."""
        return self._verifier

    @property
    def skey(self) -> str:
        """The signer key string; secret: it holds the seed."""
        key64 = _b64encode(bytes([ALG_ED25519]) + self.seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{key64}"

    def signature_line(self, text: str) -> str:
        """Sign ``text`` and return only the signature line ``— <name> <base64>\\n``.

        Args:
            text: the note text; must end in a newline.

        Returns:
            One signature line, to append to a note's signature block (cosigning).

        Raises:
            UsageError: the text does not end in a newline, is not valid UTF-8 or holds a
                control character other than newline.
        """
        if not text.endswith("\n"):
            raise UsageError("note text must end in a newline")
        problem = _text_problem(text)
        if problem is not None:
            raise UsageError(f"note text is not valid: {problem}")
        sig = self._key.sign(text.encode("utf-8"))
        blob = self.key_id.to_bytes(4, "big") + sig
        return f"{_SIG_PREFIX}{self.name} {_b64encode(blob)}\n"

    def sign(self, text: str) -> str:
        """Sign ``text`` and return the whole signed note.

        Args:
            text: the note text; must end in a newline.

        Returns:
            ``text``, a blank line, and this key's signature line.

        Raises:
            UsageError: the text does not end in a newline, is not valid UTF-8 or holds a
                control character other than newline.
        """
        return text + "\n" + self.signature_line(text)


# -- notes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SigLine:
    name: str
    key_id: int
    sig: bytes


def _malformed(reason: str) -> IntegrityError:
    return IntegrityError(f"malformed note: {reason}")


def _split_note(note: str | bytes) -> tuple[str, list[_SigLine]]:
    """Split a signed note into its text and parsed signature lines (signed-note: Format)."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not valid UTF-8") from None
    problem = _text_problem(note)
    if problem is not None:
        raise _malformed(problem)
    # The text is separated from the signatures by the LAST blank line.
    split = note.rfind("\n\n")
    if split < 0:
        raise _malformed("no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise _malformed("signature block missing or not ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise _malformed(f"more than {_MAX_SIGNATURES} signatures")
    sigs: list[_SigLine] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIG_PREFIX):
            raise _malformed(f"signature line {number} does not start with an em dash")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        raw = _b64decode(b64) if b64 else None
        if _name_problem(name) is not None or raw is None or len(raw) < 5:
            raise _malformed(f"signature line {number} is not '<name> <base64 signature>'")
        sigs.append(_SigLine(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, sigs


def note_signatures(note: str | bytes) -> list[tuple[str, int, bytes]]:
    """List a signed note's signatures without verifying any of them.

    Args:
        note: the signed note.

    Returns:
        ``(key name, key id, signature)`` for every signature line in note order,
        duplicates included; the signature excludes the 4-byte key id.

    Raises:
        IntegrityError: the note is malformed.
    """
    _, sigs = _split_note(note)
    return [(s.name, s.key_id, s.sig) for s in sigs]


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> str:
    """Verify a signed note against trusted keys and return its text.

    Follows golang.org/x/mod/sumdb/note ``Open``: a signature is matched to a verifier by
    (key name, key id); signatures from unknown keys are ignored; a repeated signature by the
    same known key is checked once.

    Args:
        note: the signed note, as text or UTF-8 bytes.
        verifiers: the trusted keys.

    Returns:
        The verified note text, including its final newline.

    Raises:
        IntegrityError: ``malformed note: ...``: not UTF-8, a control character, no blank line
            before the signatures, a bad signature line, or more than 100 signatures.
        BadSignatureError: a known key's signature does not verify, or no known key signed the
            note (``note is not signed by a known key``).
        UsageError: two of ``verifiers`` share the name and key id of a signature on the note
            (an ambiguous trust list, as Go's ``ambiguousVerifierError``).
    """
    text, sigs = _split_note(note)
    known: dict[tuple[str, int], list[NoteVerifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), []).append(verifier)
    msg = text.encode("utf-8")
    checked: set[tuple[str, int]] = set()
    unknown = 0
    for sig in sigs:
        ident = (sig.name, sig.key_id)
        candidates = known.get(ident)
        if candidates is None:
            unknown += 1  # signed-note: verifiers MUST ignore signatures from unknown keys
            continue
        if len(candidates) > 1:
            raise UsageError(
                f"ambiguous verifiers: {len(candidates)} keys named {sig.name!r} "
                f"with key id {sig.key_id:08x}"
            )
        if ident in checked:
            continue
        checked.add(ident)
        # signed-note: if the name and key id match a known key, it MUST verify
        if not candidates[0].verify(msg, sig.sig):
            raise BadSignatureError(
                f"invalid signature on note from known key {sig.name}+{sig.key_id:08x}"
            )
    if not checked:
        raise BadSignatureError(
            f"note is not signed by a known key ({unknown} signature(s) from unknown keys)"
        )
    return text


# -- checkpoints ---------------------------------------------------------------------------


def _line_problem(label: str, line: str) -> str | None:
    """Say why ``line`` cannot be one line of a checkpoint body, or None if it can."""
    if not line:
        return f"{label} is empty"
    if "\n" in line:
        return f"{label} contains a newline"
    problem = _text_problem(line)
    return None if problem is None else f"{label} is not valid: {problem}"


def _checkpoint_problem(
    origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...]
) -> str | None:
    """Say why these fields cannot form a C2SP checkpoint body, or None if they can."""
    if origin != origin.strip():
        return "origin has leading or trailing white space"
    for label, line in [("origin", origin), *(("extension line", e) for e in extensions)]:
        problem = _line_problem(label, line)
        if problem is not None:
            return problem
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_TREE_SIZE:
        return "tree size is not an integer in 0..2**64-1"
    if not root_hash:
        return "root hash is empty"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A transparency-log checkpoint body (c2sp.org/tlog-checkpoint): a signed tree head.

    Valid from construction: ``Checkpoint(...)`` with fields that cannot be written as a
    checkpoint body raises :class:`UsageError`.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "extensions", tuple(self.extensions))
        problem = _checkpoint_problem(self.origin, self.size, self.root_hash, self.extensions)
        if problem is not None:
            raise UsageError(f"invalid checkpoint: {problem}")

    def body(self) -> str:
        """The note text: origin, size, base64 root hash and extension lines, each + newline.

        Returns:
            The checkpoint body.

        Raises:
            Nothing: a constructed checkpoint always has a body.
        """
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse_body(cls, text: str, *, hash_size: int | None = 32) -> Checkpoint:
        """Parse a checkpoint body strictly by c2sp.org/tlog-checkpoint.

        Args:
            text: the note text (already verified, e.g. by :func:`open_note`).
            hash_size: the exact root hash length to require; None accepts any non-empty one.

        Returns:
            The checkpoint.

        Raises:
            IntegrityError: ``malformed checkpoint: ...``: fewer than three lines, an empty
                line, a line not ended by a newline, a control character, a size that is not
                ASCII decimal without leading zeros below 2**64, a root hash that is not
                standard padded base64 or has the wrong length, or a bad origin.
        """

        def bad(reason: str) -> IntegrityError:
            return IntegrityError(f"malformed checkpoint: {reason}")

        if not text.endswith("\n"):
            raise bad("text does not end in a newline")
        problem = _text_problem(text)
        if problem is not None:
            raise bad(problem)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise bad("fewer than three lines")
        origin, size_line, root_line, *extensions = lines
        if not _DECIMAL.fullmatch(size_line) or int(size_line) > _MAX_TREE_SIZE:
            raise bad("tree size is not a decimal number in 0..2**64-1 without leading zeros")
        root_hash = _b64decode(root_line)
        if not root_hash:
            raise bad("root hash is not standard padded base64")
        if hash_size is not None and len(root_hash) != hash_size:
            raise bad(f"root hash is {len(root_hash)} bytes, expected {hash_size}")
        problem = _checkpoint_problem(origin, int(size_line), root_hash, tuple(extensions))
        if problem is not None:
            raise bad(problem)
        return cls(origin, int(size_line), root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> str:
    """Sign a checkpoint and return the signed note.

    Args:
        cp: the checkpoint.
        signer: the log's key (its name SHOULD be the checkpoint's origin).

    Returns:
        The signed note text.

    Raises:
        UsageError: never in practice: a constructed :class:`Checkpoint` always has a body
            the signer accepts (the signer's own text checks raise it).
    """
    return signer.sign(cp.body())


def open_checkpoint(
    note_text: str | bytes,
    verifier: NoteVerifier,
    *,
    origin: str | None = None,
    hash_size: int | None = 32,
) -> Checkpoint:
    """Verify a signed checkpoint with the log's key and parse its body.

    Signatures by other keys (witnesses) are ignored, as the spec requires.

    Args:
        note_text: the signed note.
        verifier: the log's verifier key.
        origin: if given, the origin the checkpoint must carry.
        hash_size: the root hash length to require (None: any).

    Returns:
        The verified checkpoint.

    Raises:
        IntegrityError: the note or its body is malformed, or the origin does not match.
        BadSignatureError: the log's signature is missing or does not verify.
    """
    text = open_note(note_text, [verifier])
    cp = Checkpoint.parse_body(text, hash_size=hash_size)
    if origin is not None and cp.origin != origin:
        raise IntegrityError(
            f"checkpoint origin {cp.origin!r} does not match the expected {origin!r}"
        )
    return cp
