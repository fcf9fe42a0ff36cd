"""Cheap pre-tests: can this value hold a ledger identifier at all?

Normalising a value is the costly part of staging and of the residual scan (a phone number
costs about 30 us in ``phonenumbers``, an IBAN's checksum several), and almost every value of
a snapshot belongs to nobody in the ledger. So before a value is normalised, a cheap *key*
of it is looked up among the keys of the ledger's own identifiers; only a hit is normalised
(and then compared exactly, as before). A pre-test may let through values that turn out not
to match, never the reverse.

Why each key is safe (``key(raw) == key(normalize(raw))`` whenever the raw value normalises,
or the key is ``None`` and the value is normalised in full):

- ``email``: an ASCII address without an ACE label ("xn--") normalises to
  ``strip().lower()``; anything else is normalised in full.
- ``iban``: the normal form is the value's ASCII letters and digits, upper-cased, without a
  leading "IBAN"; non-ASCII values (a no-break space) are normalised in full.
- ``ip``: an IPv4 address is only valid in its canonical dotted form, so its normal form is
  the stripped value; IPv6 (a ":") is normalised in full.
- ``kvk``: the digits; ``mac``: the twelve hex digits (fewer: an octet without its leading
  zero, normalised in full).
- opaque types (``customer_number``, ``username``, ``cookie_id``, custom): the stripped
  value when ASCII (NFC changes nothing there).
- ``phone``: the last seven digits of the national number (all of it when shorter) appear,
  in order, in the digits of any spelling of the number, separators and prefixes aside: a
  value passes when one seven-digit window of its digits is such a tail. Values with
  letters (vanity numbers, "ext.") or non-ASCII characters are normalised in full.

Free text (:class:`TextFilter`): e-mail addresses need an "@"; IBANs a country code and check
digits equal to those of a ledger IBAN (tested in :mod:`reconciler.scan`); phone numbers and KvK numbers
a window of the text's digits equal to a ledger tail or number; exact tokens (opaque types,
IPv4) one of the text's alphanumeric runs equal to the longest run of a ledger value (tokens
are cut at non-alphanumeric characters only, so every run of a token is a run of the text).
Ledger IPv6 or MAC addresses make every text with a ":" (IPv6) or every text (MAC) go the
full way.

Left out on purpose: no I/O; ``erasure_ledger.normalize`` stays the only definition of a
normal form.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping

import phonenumbers

PHONE_TAIL = 7
_KVK_LENGTH = 8
_MAC_HEX_DIGITS = 12
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_NOT_ASCII_DIGIT = re.compile(r"[^0-9]+")
_UNICODE_DIGIT = re.compile(r"\d")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_NOT_HEX = re.compile(r"[^0-9A-Fa-f]+")
_ATOM = re.compile(r"[^\W_]+")
_OPAQUE_EXCEPT = frozenset({"email", "phone", "iban", "ip", "kvk", "mac"})


def national_digits(e164: str) -> str:
    """The national number of an E.164 number (country codes are prefix-free)."""
    digits = e164.lstrip("+")
    for length in (1, 2, 3):
        if digits[:length].isdigit() and int(digits[:length]) in _COUNTRY_CODES:
            return digits[length:]
    return digits


def digits_of(text: str) -> str:
    """The text's decimal digits in order, as ASCII (``phonenumbers`` reads "٠٦" as "06")."""
    if text.isascii():
        return _NOT_ASCII_DIGIT.sub("", text)
    return "".join(str(unicodedata.decimal(char)) for char in _UNICODE_DIGIT.findall(text))


class DigitWindows:
    """Digit strings (phone tails, KvK numbers) looked for as windows of a text's digits."""

    def __init__(self, needles: Iterable[str], width: int) -> None:
        self.width = width
        every = set(needles)
        self.full = {n for n in every if len(n) >= width}
        self.short = {n for n in every if 0 < len(n) < width}

    def __bool__(self) -> bool:
        return bool(self.full or self.short)

    def hit(self, digits: str) -> bool:
        """True when some needle appears in ``digits``."""
        width, full = self.width, self.full
        if full and any(digits[i : i + width] in full for i in range(len(digits) - width + 1)):
            return True
        return any(n in digits for n in self.short)


def _email_key(text: str) -> str | None:
    lowered = text.lower()
    return None if "xn--" in lowered else lowered


def _iban_key(text: str) -> str:
    compact = _NOT_ALNUM.sub("", text).upper()
    return compact[4:] if compact.startswith("IBAN") else compact


def _mac_key(text: str) -> str | None:
    hexes = _NOT_HEX.sub("", text).lower()
    return hexes if len(hexes) == _MAC_HEX_DIGITS else None


_KEYS: dict[str, Callable[[str], str | None]] = {
    "email": _email_key,
    "iban": _iban_key,
    "ip": lambda text: None if ":" in text else text,
    "kvk": lambda text: _NOT_ASCII_DIGIT.sub("", text),
    "mac": _mac_key,
}


def key(id_type: str, raw: str) -> str | None:
    """The cheap key of a value (see the module docstring); ``None``: normalise in full."""
    if not raw.isascii():
        return None
    rule = _KEYS.get(id_type)
    text = raw.strip()
    return text if rule is None else rule(text)


class ValueFilter:
    """Per identifier type, the keys of the ledger's values: :meth:`may_match` a raw value."""

    def __init__(self, by_type: Mapping[str, Iterable[str]]) -> None:
        self.keys: dict[str, set[str]] = {}
        self.tails = DigitWindows((), PHONE_TAIL)
        for id_type, values in by_type.items():
            if id_type == "phone":
                self.tails = DigitWindows(
                    (national_digits(v)[-PHONE_TAIL:] for v in values), PHONE_TAIL)
            else:
                self.keys[id_type] = {k for v in values if (k := key(id_type, v)) is not None}

    def holds(self, id_type: str) -> bool:
        """True when the ledger has values of ``id_type`` at all."""
        return bool(self.tails) if id_type == "phone" else bool(self.keys.get(id_type))

    def may_match(self, id_type: str, raw: str) -> bool:
        """False only when ``raw`` cannot normalise to a ledger value of ``id_type``."""
        if id_type == "phone":
            if not raw.isascii() or _ASCII_LETTER.search(raw):
                return bool(self.tails)
            return self.tails.hit(_NOT_ASCII_DIGIT.sub("", raw))
        keys = self.keys.get(id_type)
        if keys is None:
            return False
        found = key(id_type, raw)
        return found is None or found in keys


class TextFilter:
    """Which extractions a free text needs, given the ledger's identifiers."""

    def __init__(self, by_type: Mapping[str, Iterable[str]]) -> None:
        values = {t: list(v) for t, v in by_type.items()}
        self.emails = bool(values.get("email"))
        self.iban_heads = frozenset(v[:4] for v in values.get("iban", ()))
        self.phones = DigitWindows(
            (national_digits(v)[-PHONE_TAIL:] for v in values.get("phone", ())), PHONE_TAIL)
        self.kvks = DigitWindows(values.get("kvk", ()), _KVK_LENGTH)
        self.any_token_text = bool(values.get("mac"))
        self.colon_texts = any(":" in v for v in values.get("ip", ()))
        anchors: set[str] = set()
        for id_type, items in values.items():
            if id_type in _OPAQUE_EXCEPT and id_type != "ip":
                continue
            for value in items:
                runs = _ATOM.findall(unicodedata.normalize("NFC", value))
                if runs:
                    anchors.add(max(runs, key=len))
        self.anchors = frozenset(anchors)

    def phone_candidate(self, digits: str) -> bool:
        """True when the text's digits hold the tail of a ledger phone number."""
        return bool(self.phones) and self.phones.hit(digits)

    def token_candidate(self, text: str, digits: str) -> bool:
        """True when the text may hold an exact token of the ledger (see the docstring)."""
        if self.any_token_text or (self.colon_texts and ":" in text):
            return True
        if self.kvks and self.kvks.hit(digits):
            return True
        if not self.anchors:
            return False
        runs = _ATOM.findall(text if text.isascii() else unicodedata.normalize("NFC", text))
        return not self.anchors.isdisjoint(runs)


__all__ = ["PHONE_TAIL", "DigitWindows", "TextFilter", "ValueFilter", "digits_of", "key",
           "national_digits"]
