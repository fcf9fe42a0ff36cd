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
- ``phone``: the last seven digits of the national number (all of it when shorter; five in
  the regions whose numbers phonenumbers rewrites, see :func:`phone_tail`) appear, in
  order, in the digits of any spelling of the number, separators and prefixes aside: a
  value passes when one window of its digits is such a tail. Values with letters (vanity
  numbers, "ext.") or non-ASCII characters are normalised in full.

Free text (:class:`TextFilter`), a page of texts at a time: the texts are joined by NUL and
searched with one Aho-Corasick automaton (``pyahocorasick``) per kind of needle, in C (a
needle is the last 16 characters of a ledger value, or of an address's local part with its
"@": any part of a value is in every text that holds it, and short needles keep the tries
small):

- e-mail addresses: the ledger's ASCII addresses in the lower-cased page (a page with
  non-ASCII text or an ACE label falls back to every text with an "@");
- phone numbers and KvK numbers: the ledger's tails and numbers in the page's digits;
- IBANs: the ledger's IBANs in the page's letters and digits, upper-cased;
- exact tokens (opaque types, IPv4): the ledger's values in the page (in NFC), since every
  token the scan compares is a substring of the text.

Ledger IPv6 or MAC addresses make every text with a ":" (IPv6) or every text (MAC) go the
full way; ledger IPv4 addresses every text with "ffff" (IPv4-mapped IPv6 in hex). A text let
through is then tested by :mod:`reconciler.scan` exactly as before.

Left out on purpose: no I/O; ``erasure_ledger.normalize`` stays the only definition of a
normal form.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate

import ahocorasick
import phonenumbers

PHONE_TAIL = 7
REWRITTEN_TAIL = 5
#: regions whose numbers phonenumbers may rewrite when they are dialled locally
REWRITING_REGIONS = frozenset(
    region for region in phonenumbers.SUPPORTED_REGIONS
    if getattr(phonenumbers.PhoneMetadata.metadata_for_region(region),
               "national_prefix_transform_rule", None))
_REWRITING_CODES = frozenset(phonenumbers.country_code_for_region(r) for r in REWRITING_REGIONS)
_MAC_HEX_DIGITS = 12
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_NOT_ASCII_DIGIT = re.compile(r"[^0-9]+")
_UNICODE_DIGIT = re.compile(r"\d")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_NOT_HEX = re.compile(r"[^0-9A-Fa-f]+")
_NOT_DIGIT_OR_SEPARATOR = re.compile(r"[^\d\x00]+")
_NOT_ALNUM_OR_SEPARATOR = re.compile(r"[^0-9A-Za-z\x00]+")
# str.translate tables for ASCII pages (C-level, much faster than re.sub)
_ASCII_KEEP_DIGITS = {c: None for c in range(1, 128) if not chr(c).isdigit()}
_ASCII_KEEP_ALNUM = {c: None for c in range(1, 128) if not chr(c).isalnum()}
_SEPARATOR = "\x00"
# Automaton needles are the last characters of a ledger value, at most this many: any part
# of a value is in every text that holds the value, and a trie of whole cookie ids and
# e-mail addresses took hundreds of megabytes for 100,000 requests.
_NEEDLE = 16
_OPAQUE_EXCEPT = frozenset({"email", "phone", "iban", "ip", "kvk", "mac"})


def split_e164(e164: str) -> tuple[int, str]:
    """The country code and national number of an E.164 number (country codes are
    prefix-free); ``(0, digits)`` when no country code is known."""
    digits = e164.lstrip("+")
    for length in (1, 2, 3):
        if digits[:length].isdigit() and int(digits[:length]) in _COUNTRY_CODES:
            return int(digits[:length]), digits[length:]
    return 0, digits


def national_digits(e164: str) -> str:
    """The national number of an E.164 number."""
    return split_e164(e164)[1]


def phone_tail(e164: str) -> str:
    """The digits of a ledger number that every spelling of it holds, in order.

    The last seven digits of the national number, except in regions whose metadata
    rewrites a locally dialled number (``national_prefix_transform_rule``): San Marino,
    Guernsey, Jersey and the Isle of Man insert digits before a six-digit local number,
    Norfolk Island before a five-digit one, Argentina drops the mobile "15" between area
    code and subscriber number. There only the last five digits are sure to be written.
    """
    code, national = split_e164(e164)
    width = PHONE_TAIL
    if code in _REWRITING_CODES or not code:
        try:
            region = phonenumbers.region_code_for_number(phonenumbers.parse(e164))
        except phonenumbers.NumberParseException:
            region = None
        if region is None or region in REWRITING_REGIONS:
            width = REWRITTEN_TAIL
    return national[-width:]


def digits_of(text: str) -> str:
    """The text's decimal digits in order, as ASCII (``phonenumbers`` reads "٠٦" as "06")."""
    if text.isascii():
        return _NOT_ASCII_DIGIT.sub("", text)
    return "".join(str(unicodedata.decimal(char)) for char in _UNICODE_DIGIT.findall(text))


class DigitWindows:
    """Digit strings (phone tails, KvK numbers) looked for as windows of a text's digits."""

    def __init__(self, needles: Iterable[str]) -> None:
        self.needles = {n for n in needles if n}
        self.by_width: dict[int, set[str]] = {}
        for needle in self.needles:
            self.by_width.setdefault(len(needle), set()).add(needle)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def hit(self, digits: str) -> bool:
        """True when some needle appears in ``digits``."""
        return any(digits[i : i + width] in needles
                   for width, needles in self.by_width.items()
                   for i in range(len(digits) - width + 1))


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
    """Per identifier type, the keys of the ledger's values: which raw values may match."""

    def __init__(self, by_type: Mapping[str, Iterable[str]]) -> None:
        self.keys: dict[str, set[str]] = {}
        self.tails = DigitWindows(())
        self.tail_automaton: ahocorasick.Automaton | None = None
        self.iban_automaton: ahocorasick.Automaton | None = None
        for id_type, items in by_type.items():
            values = list(items)
            if not values:
                continue
            if id_type == "phone":
                self.tails = DigitWindows(phone_tail(v) for v in values)
                self.tail_automaton = _automaton(self.tails.needles)
                continue
            # a value without a cheap key (non-ASCII) is only reached by raw values without
            # one, which are always normalised in full
            self.keys[id_type] = {k for v in values if (k := key(id_type, v)) is not None}
            if id_type == "iban":
                self.iban_automaton = _automaton(v[-_NEEDLE:] for v in self.keys[id_type])

    def holds(self, id_type: str) -> bool:
        """True when the ledger has values of ``id_type`` at all."""
        return bool(self.tails) if id_type == "phone" else id_type in self.keys

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

    def candidates(self, id_type: str, raws: Sequence[str]) -> Sequence[int]:
        """The positions of ``raws`` that :meth:`may_match`, found a page at a time.

        The common cases (ASCII pages) take a few C-level passes over the joined page
        instead of a Python call per value; anything unusual goes value by value.
        """
        if not self.holds(id_type) or not raws:
            return ()
        page = _SEPARATOR.join(raws)
        if page.count(_SEPARATOR) != len(raws) - 1 or not page.isascii():
            return [i for i, raw in enumerate(raws) if self.may_match(id_type, raw)]
        if id_type in ("phone", "iban"):
            return self._by_automaton(id_type, raws, page)
        keys = self.keys[id_type]
        if id_type == "email" and "xn--" not in page.lower():
            return _members([k.strip() for k in page.lower().split(_SEPARATOR)], keys)
        if id_type not in _OPAQUE_EXCEPT or (id_type == "ip" and ":" not in page):
            return _members([raw.strip() for raw in raws], keys)
        return [i for i, raw in enumerate(raws) if self.may_match(id_type, raw)]

    def _by_automaton(self, id_type: str, raws: Sequence[str], page: str) -> Sequence[int]:
        if id_type == "iban":
            if self.iban_automaton is None:
                return ()
            return sorted(_automaton_suspects(self.iban_automaton, _compact_page(page)))
        assert self.tail_automaton is not None
        hits = _automaton_suspects(self.tail_automaton, _digits_page(page))
        starts = _starts(raws)
        # letters (a vanity number, "ext.") are normalised in full
        hits.update(bisect_right(starts, m.start()) - 1 for m in _ASCII_LETTER.finditer(page))
        return sorted(hits)


def _members(keyed: list[str], keys: set[str]) -> Sequence[int]:
    if keys.isdisjoint(keyed):
        return ()
    return [i for i, k in enumerate(keyed) if k in keys]


class TextFilter:
    """Which extractions a free text needs, given the ledger's identifiers.

    It holds the :class:`ValueFilter` of the same identifiers (``values``), whose phone tails
    and IBAN automaton it shares: a scan needs both and builds them once.
    """

    def __init__(self, by_type: Mapping[str, Iterable[str]]) -> None:
        values = {t: list(v) for t, v in by_type.items()}
        self.values = ValueFilter(values)
        self.emails = bool(values.get("email"))
        # An address in an ASCII text without ACE labels ("xn--") is its lower-cased spelling,
        # so a lower-cased page holds it; any other page is tested at each "@"
        self.email_automaton = _automaton(_email_needle(e) for e in values.get("email", ())
                                          if e.isascii())
        self.iban_heads = frozenset(v[:4] for v in values.get("iban", ()))
        self.phones = self.values.tails
        self.kvks = DigitWindows(values.get("kvk", ()))
        self.any_token_text = bool(values.get("mac"))
        self.colon_texts = any(":" in v for v in values.get("ip", ()))
        # an IPv4 address can be written as IPv4-mapped IPv6 in hex ("::ffff:c0a8:10a")
        self.ipv4_mapped = any(":" not in v for v in values.get("ip", ()))
        # exact tokens (opaque types, IPv4): a token is a substring of the text (in NFC)
        self.tokens = _automaton(unicodedata.normalize("NFC", v)[-_NEEDLE:]
                                 for id_type, items in values.items()
                                 if id_type not in _OPAQUE_EXCEPT or id_type == "ip"
                                 for v in items)
        # every phone tail and KvK number, for one C-level pass over a page's digits
        self.numbers = _automaton(
            self.phones.needles | self.kvks.needles)
        # every IBAN, for one pass over a page's letters and digits (separators dropped); an
        # IBAN's normal form is its own key, so the value filter's automaton is this one
        self.iban_automaton = self.values.iban_automaton

    def suspects(self, texts: Sequence[str]) -> Iterable[int]:
        """The positions of ``texts`` that may hold a ledger identifier.

        The pre-tests of the module docstring (e-mail addresses, numbers, IBANs, tokens),
        run over a whole page at once (the texts joined by NUL) with C-level passes
        (``str.translate`` and one Aho-Corasick automaton per kind of needle), so the cost
        per text is a few characters' worth, not a few Python calls. Every text it returns
        must still go through the per-text tests of :mod:`reconciler.scan`; every text it
        leaves out holds no ledger identifier.
        """
        try:
            page = _SEPARATOR.join(texts)
        except TypeError:  # a value that is not text: test each one
            return range(len(texts))
        if page.count(_SEPARATOR) != len(texts) - 1:  # a text holds NUL itself
            return range(len(texts))
        if self.any_token_text:
            return range(len(texts))
        # Numbers and IBANs are read from the text as written (find_phones and find_ibans
        # do); only e-mail addresses and tokens are compared in NFC. NFC never composes
        # across the NUL separator, so the texts keep their numbers.
        written = page
        if not page.isascii():
            page = unicodedata.normalize("NFC", page)
            texts = page.split(_SEPARATOR)
        found: set[int] = set()
        if self.emails:
            found.update(self._email_positions(page, texts))
        if self.colon_texts:
            found.update(_positions(page, ":"))
        if self.ipv4_mapped:
            # "::ffff:c0a8:10a" is 192.168.1.10 written as IPv6
            found.update(_positions(page.lower(), "ffff"))
        hits: set[int] = set()
        if found:
            starts = _starts(texts)
            hits = {bisect_right(starts, at) - 1 for at in found}
        if self.tokens is not None:
            hits.update(_automaton_suspects(self.tokens, page))
        if self.numbers is not None:
            hits.update(_automaton_suspects(self.numbers, _digits_page(written)))
        if self.iban_automaton is not None:
            hits.update(_automaton_suspects(self.iban_automaton, _compact_page(written)))
        return sorted(hits)

    def _email_positions(self, page: str, texts: Sequence[str]) -> Iterable[int]:
        lowered = page.lower()
        if "xn--" in lowered or not page.isascii():
            return _positions(page, "@")
        if self.email_automaton is None:  # only non-ASCII ledger addresses
            return ()
        starts = _starts(texts)
        return [starts[i] for i in _automaton_suspects(self.email_automaton, lowered)]

    def phone_candidate(self, digits: str) -> bool:
        """True when the text's digits hold the tail of a ledger phone number."""
        return bool(self.phones) and self.phones.hit(digits)

    def token_candidate(self, text: str, digits: str) -> bool:
        """True when the text may hold an exact token of the ledger (see the docstring)."""
        if self.any_token_text or (self.colon_texts and ":" in text):
            return True
        if self.ipv4_mapped and "ffff" in text.lower():
            return True
        if self.kvks and self.kvks.hit(digits):
            return True
        if self.tokens is None:
            return False
        nfc = text if text.isascii() else unicodedata.normalize("NFC", text)
        return next(self.tokens.iter(nfc), None) is not None


def _starts(texts: Iterable[str]) -> list[int]:
    """Where each text starts in their NUL-joined page."""
    return [0, *accumulate(map((1).__add__, map(len, texts)))]


def _automaton_suspects(automaton: ahocorasick.Automaton, page: str) -> set[int]:
    """The numbers of the NUL-separated texts of ``page`` that hold a needle."""
    ends = [end for end, _ in automaton.iter(page)]
    if not ends:
        return set()
    starts = _starts(page.split(_SEPARATOR))
    return {bisect_right(starts, end) - 1 for end in ends}


def _email_needle(address: str) -> str:
    """The end of the local part and the "@": what tells addresses apart (their domains are
    shared), in at most :data:`_NEEDLE` characters."""
    local = address.rpartition("@")[0]
    return local[-(_NEEDLE - 1):] + "@"


def _automaton(needles: Iterable[str]) -> ahocorasick.Automaton | None:
    automaton = None
    for needle in needles:
        if automaton is None:
            automaton = ahocorasick.Automaton()
        automaton.add_word(needle, None)
    if automaton is not None:
        automaton.make_automaton()
    return automaton


def _compact_page(page: str) -> str:
    """The page's letters and digits, upper-cased, its NUL separators kept."""
    if page.isascii():
        return page.translate(_ASCII_KEEP_ALNUM).upper()
    return _NOT_ALNUM_OR_SEPARATOR.sub("", page).upper()


def _digits_page(page: str) -> str:
    if page.isascii():
        return page.translate(_ASCII_KEEP_DIGITS)
    digits = _NOT_DIGIT_OR_SEPARATOR.sub("", page)
    if not digits.isascii():  # other scripts' digits, read as phonenumbers reads them
        digits = digits.translate({ord(c): str(unicodedata.decimal(c))
                                   for c in set(digits) if not c.isascii()})
    return digits


def _positions(text: str, needle: str) -> Iterable[int]:
    at = text.find(needle)
    while at >= 0:
        yield at
        at = text.find(needle, at + 1)


__all__ = ["PHONE_TAIL", "REWRITING_REGIONS", "REWRITTEN_TAIL", "DigitWindows", "TextFilter",
           "ValueFilter", "digits_of", "key", "national_digits", "phone_tail", "split_e164"]
