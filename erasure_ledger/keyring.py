"""The keyring: the secrets of one ledger, kept apart from the ledger itself.

A keyring holds four secrets (docs/ledger-format.md §6):

* one or more key-encryption keys (KEKs), one of them active; each KEK is either stored in
  the file (``{"key": base64}``) or wrapped by AWS KMS (``{"kms_key_id": ..., "ciphertext":
  base64}``), in which case the caller passes a ``kms_decrypt`` function (the boto3 call
  lives in :mod:`erasure_ledger.kms`, never here);
* the blind-index key and the key-row MAC key;
* the Ed25519 checkpoint signing key (C2SP note signer key format).

The file is JSON, created with mode 0600 and never overwritten by ``init``; a file that group
or others can read is refused. Keys are never printed or put in messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from erasure_ledger.errors import DecryptionError, IntegrityError, LedgerError, StorageError, UsageError
from erasure_ledger.notes import NoteSigner, NoteVerifier, key_name_problem
from erasure_ledger.sealing import KEY_BYTES, new_key

KEYRING_FORMAT = "erasure-ledger-keyring/1"

KmsDecrypt = Callable[[str, bytes], bytes]
KmsEncrypt = Callable[[str, bytes], bytes]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object, what: str, source: str = "keyring") -> bytes:
    try:
        raw = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{source}: {what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise UsageError(f"{source}: {what} must be {KEY_BYTES} bytes")
    return raw


@dataclass(frozen=True)
class Keyring:
    """All secrets of one ledger. Construct with :meth:`generate` or :meth:`from_file`."""

    origin: str
    active_kek_id: str
    keks: Mapping[str, bytes] = field(repr=False)
    index_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)
    signer: NoteSigner = field(repr=False)
    # kek id -> KMS key id for KEKs that are stored wrapped by KMS (absent: stored in the file)
    kms_key_ids: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def generate(cls, origin: str, *, kms_key_id: str | None = None) -> Keyring:
        """Fresh random keys for a new ledger named ``origin``.

        Raises:
            UsageError: ``origin`` cannot name a ledger (it is the signing key's name in every
                checkpoint: not empty, no spaces, no '+').
        """
        problem = key_name_problem(origin)
        if problem is not None:
            raise UsageError(
                f"invalid --origin: {problem.removeprefix('key name ')} (give a name such as "
                "shop.example/erasure-ledger, without spaces or '+')"
            )
        kek_id = "kek-1"
        return cls(
            origin=origin,
            active_kek_id=kek_id,
            keks={kek_id: new_key()},
            index_key=new_key(),
            mac_key=new_key(),
            signer=NoteSigner.generate(origin),
            kms_key_ids={kek_id: kms_key_id} if kms_key_id else {},
        )

    def kek(self, kek_id: str) -> bytes:
        """The KEK with this id.

        Raises:
            DecryptionError: this keyring does not hold it (wrong keyring, or rotated away).
        """
        try:
            return self.keks[kek_id]
        except KeyError:
            raise DecryptionError(
                "the keyring does not hold the key these entries were sealed with (the key was "
                "rotated since this copy was made? use the current keyring file)"
            ) from None

    def rotated(self, *, kms_key_id: str | None = None) -> Keyring:
        """A copy with a new active KEK; the old KEKs stay until :meth:`without_old_keks`."""
        number = 1 + max(int(k.rsplit("-", 1)[-1]) for k in self.keks if k.startswith("kek-"))
        kek_id = f"kek-{number}"
        kms = dict(self.kms_key_ids)
        if kms_key_id:
            kms[kek_id] = kms_key_id
        return replace(self, active_kek_id=kek_id, keks={**self.keks, kek_id: new_key()}, kms_key_ids=kms)

    def without_old_keks(self) -> Keyring:
        """A copy that holds only the active KEK (the old ones are destroyed on save)."""
        kms = {k: v for k, v in self.kms_key_ids.items() if k == self.active_kek_id}
        return replace(self, keks={self.active_kek_id: self.keks[self.active_kek_id]}, kms_key_ids=kms)

    # -- file format -------------------------------------------------------------------------

    def to_json(self, *, kms_encrypt: KmsEncrypt | None = None) -> str:
        keks: dict[str, Any] = {}
        for kek_id, key in self.keks.items():
            kms_key_id = self.kms_key_ids.get(kek_id)
            if kms_key_id:
                if kms_encrypt is None:
                    raise UsageError("keyring: a KMS-wrapped key needs a KMS client to be saved")
                keks[kek_id] = {"kms_key_id": kms_key_id, "ciphertext": _b64(kms_encrypt(kms_key_id, key))}
            else:
                keks[kek_id] = {"key": _b64(key)}
        doc = {
            "format": KEYRING_FORMAT,
            "origin": self.origin,
            "active_kek": self.active_kek_id,
            "keks": keks,
            "index_key": _b64(self.index_key),
            "mac_key": _b64(self.mac_key),
            "signing_key": self.signer.skey,
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(
        cls, text: str, *, kms_decrypt: KmsDecrypt | None = None, source: str = "keyring"
    ) -> Keyring:
        """Parse a keyring file's content; ``source`` starts every error message
        (``keyring FILE`` when read from a file).

        Raises:
            UsageError: not a keyring file, or a field is malformed.
            DecryptionError: a KMS-wrapped key does not decrypt.
        """
        try:
            doc = json.loads(text)
        except ValueError:
            raise UsageError(f"{source}: not a JSON keyring file") from None
        if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT:
            raise UsageError(f"{source}: not an {KEYRING_FORMAT} file")
        try:
            keks: dict[str, bytes] = {}
            kms_ids: dict[str, str] = {}
            for kek_id, spec in dict(doc["keks"]).items():
                if "kms_key_id" in spec:
                    if kms_decrypt is None:
                        raise UsageError(
                            f"{source}: its key is wrapped by AWS KMS; pass --kms or set AWS "
                            "credentials and --endpoint-url"
                        )
                    kms_ids[kek_id] = str(spec["kms_key_id"])
                    ciphertext = base64.b64decode(spec["ciphertext"], validate=True)
                    keks[kek_id] = kms_decrypt(kms_ids[kek_id], ciphertext)
                else:
                    keks[kek_id] = _unb64(spec["key"], f"keks.{kek_id}", source)
            keyring = cls(
                origin=str(doc["origin"]),
                active_kek_id=str(doc["active_kek"]),
                keks=keks,
                index_key=_unb64(doc["index_key"], "index_key", source),
                mac_key=_unb64(doc["mac_key"], "mac_key", source),
                signer=NoteSigner.parse(str(doc["signing_key"])),
                kms_key_ids=kms_ids,
            )
        except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise UsageError(f"{source}: missing or malformed field ({type(exc).__name__})") from None
        if keyring.active_kek_id not in keyring.keks:
            raise UsageError(f"{source}: the active key is missing")
        return keyring

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, kms_decrypt: KmsDecrypt | None = None) -> Keyring:
        """Read a keyring file, refusing one that group or others can read.

        Raises:
            UsageError: missing, unreadable, too open, or not a keyring.
            DecryptionError: a KMS-wrapped key does not decrypt.
        """
        p = Path(path)
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise UsageError(f"keyring {p}: no such file") from None
        except OSError as exc:
            raise UsageError(f"keyring {p}: cannot read ({exc.strerror})") from None
        if _is_verifier_key(p):
            raise UsageError(
                f"{p} is a public verifier key, not a keyring (give the keyring file that "
                "init wrote with --keyring)"
            )
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(
                f"keyring {p}: readable by group or others (mode {stat.S_IMODE(mode):04o}); "
                f"run: chmod 600 {p}"
            )
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise UsageError(f"keyring {p}: cannot read") from None
        return cls.from_json(text, kms_decrypt=kms_decrypt, source=f"keyring {p}")

    def save(
        self, path: str | os.PathLike[str], *, overwrite: bool = False, kms_encrypt: KmsEncrypt | None = None
    ) -> None:
        """Write the keyring with mode 0600, atomically.

        ``overwrite=False`` refuses an existing file (``init``); ``overwrite=True`` replaces
        it through a rename, so a crash leaves either the old or the new file, never half.

        Raises:
            UsageError: the file exists and ``overwrite`` is false.
            StorageError: the file cannot be written.
        """
        p = Path(path)
        text = self.to_json(kms_encrypt=kms_encrypt).encode()
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            if overwrite:
                os.replace(tmp, p)
            else:
                try:
                    os.link(tmp, p)  # fails if p exists: never clobber a keyring on init
                except FileExistsError:
                    raise UsageError(f"keyring {p}: already exists; refusing to overwrite") from None
                finally:
                    tmp.unlink(missing_ok=True)
            _fsync_directory(p.parent)  # make the rename itself durable (rotate-key relies on it)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"keyring {p}: cannot write ({exc.strerror})") from None

    def derive_key(self, label: str) -> bytes:
        """A 256-bit key for another purpose (e.g. the reconciler's ``hash`` strategy),
        derived from the index key under a label: stable across runs, independent of the
        blind index and of every other label."""
        return hmac.new(
            self.index_key, b"erasure-ledger/derive/v1\x00" + label.encode(), hashlib.sha256
        ).digest()

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, endpoint_url: str | None = None, region: str | None = None
    ) -> Keyring:
        """Read a keyring file, unwrapping KMS-wrapped keys through AWS KMS when it has any.

        Args:
            path: the keyring file.
            endpoint_url: a KMS-compatible endpoint; None means AWS.
            region: the AWS region; None lets boto3 decide.

        Raises:
            UsageError: missing, unreadable, too open, or not a keyring.
            DecryptionError: KMS refuses to unwrap a key (wrong key, wrong account).
            StorageError: KMS cannot be reached.
        """
        kms_decrypt: KmsDecrypt | None = None
        if _mentions_kms(path):
            from erasure_ledger.kms import kms_functions  # boto3 only when the keyring needs it

            _, kms_decrypt = kms_functions(None, endpoint_url=endpoint_url, region=region)
        return cls.from_file(path, kms_decrypt=kms_decrypt)

    def check_belongs_to(self, *, origin: str, verifier_key: str) -> None:
        """Refuse a keyring made for another ledger.

        Raises:
            IntegrityError: the origin or the signing key does not match the ledger's.
        """
        if self.origin != origin or self.signer.verifier.vkey != verifier_key:
            raise IntegrityError("the keyring does not belong to this ledger (wrong key file)")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory if str(directory) else ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_verifier_key(path: Path) -> bool:
    """Whether the file holds a note verifier key (``init --public-key-out``, an export's
    ``verifier-key.txt``): the public half, given where the keyring belongs."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
        NoteVerifier.parse(head.decode("utf-8").strip())
    except (OSError, UnicodeDecodeError, LedgerError):
        return False
    return True


def _mentions_kms(path: str | os.PathLike[str]) -> bool:
    try:
        return '"kms_key_id"' in Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False  # from_file reports the problem properly


__all__ = ["KEYRING_FORMAT", "Keyring", "KmsDecrypt", "KmsEncrypt"]
