"""Typed personal identifiers and their one normal form.

An erasure request names a person by typed identifiers (``email``, ``phone``, ``iban`` ...).
The same value is written many ways ("0416-853988", "+31 416 853 988"), so every value is
brought to one normal form **before** it is sealed or blind-indexed, and the reconciler
brings values found in a restored database to the same form before comparing. Both sides call
:func:`normalize`, so a rule change here changes matching everywhere, and that is deliberate.

This module also holds the free-text extraction helpers of the residual scan
(:func:`find_emails`, :func:`find_phones`, :func:`find_ibans`, :func:`candidate_tokens`).

Left out on purpose: no I/O, no logging, no cryptography. Error messages name the identifier
type and the reason, **never** the value (it is personal data); exceptions are raised
``from None`` so a library message that quotes the value (``ipaddress`` does) cannot ride
along as ``__context__`` in a traceback.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

from erasure_ledger.errors import InvalidIdentifierError

KNOWN_TYPES: frozenset[str] = frozenset(
    {
        "email",
        "phone",
        "customer_number",
        "username",
        "iban",
        "ip",
        "cookie_id",
        "kvk",
        "mac",
    }
)

_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
# A rejected type name is echoed only when it looks like a mistyped name ("Email", "e-mail"),
# never when it could be a value passed in the wrong argument ("jan@example.nl", "0612345678").
_ECHOABLE_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")

# ISO 13616 IBAN lengths per country (SWIFT IBAN registry, 2024). French overseas
# territories, Åland and the Crown dependencies use the FR, FI and GB prefixes.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip

_IBAN_SEPARATORS = re.compile(r"[\s-]+")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+")
_ASCII_ALNUM = re.compile(r"[A-Z0-9]+")

_HEX = "[0-9A-Fa-f]"
# Six octets with one separator used throughout ("00:1a:..", "00-1A-..", "00.1a.."); with a
# separator an octet may drop its leading zero, as macOS `arp` prints it ("0:1a:2b:...").
_MAC_SEPARATED = re.compile(
    rf"({_HEX}{{1,2}})([:.-])" + rf"({_HEX}{{1,2}})\2" * 4 + rf"({_HEX}{{1,2}})"
)
_MAC_CISCO = re.compile(rf"({_HEX}{{4}})\.({_HEX}{{4}})\.({_HEX}{{4}})")
_MAC_BARE = re.compile(rf"{_HEX}{{12}}")

_KVK_SEPARATORS = re.compile(r"[\s.]+")
_KVK = re.compile(r"[0-9]{8}")

# Free-text extraction. Characters allowed in an unquoted e-mail local part (RFC 5322 atext
# plus "."); \w adds non-ASCII letters. The look-behind uses the same class so a scan never
# restarts inside a token, which keeps the search linear.
_LOCAL_CHARS = r"\w.!#$%&'*+/=?^`{|}~-"
_EMAIL_CANDIDATE = re.compile(rf"(?<![{_LOCAL_CHARS}])[{_LOCAL_CHARS}]+@[\w-]+(?:\.[\w-]+)+")
# Zero-width match at every possible IBAN start, capturing up to 34 characters with optional
# single separators, so that IBANs written next to each other are all found.
_IBAN_CANDIDATE = re.compile(
    r"(?<![A-Za-z0-9])(?=([A-Za-z]{2}[0-9]{2}(?:[ \u00a0-]?[A-Za-z0-9]){11,30}))", re.ASCII
)
# candidate_tokens: "hard" delimiters never occur inside an identifier we match exactly;
# "soft" punctuation does (".", ":" in IPs, "-" in customer numbers, "=" in cookie values),
# so it only splits a token into extra parts and is trimmed from token ends.
# Plain ASCII addresses whose normal form is just lower-casing: no white space, one "@", no
# empty domain label and no ACE ("xn--") label to decode.
_PLAIN_ASCII_EMAIL = re.compile(r"[!-?A-~]+@(?!(?i:xn--))[!-\-/-?A-~]+(?:\.(?!(?i:xn--))[!-\-/-?A-~]+)*")
_HARD_DELIMITERS = re.compile(r"""[\s,;'"`()\[\]{}<>|!?\u00ab\u00bb\u2018\u2019\u201c\u201d]+""")
_SOFT_SPLIT = re.compile(r"[=:/#&@]+")
_SOFT_TRIM = ".:-/=#&@*+_~^%$"


def validate_type(name: str) -> str:
    """Check an identifier type name and return it unchanged.

    Known types are listed in :data:`KNOWN_TYPES`; any other name matching
    ``^[a-z][a-z0-9_]{0,31}$`` is a custom type, normalised like ``customer_number``.

    Args:
        name: the type name, e.g. ``"email"`` or ``"loyalty_card"``.

    Returns:
        ``name``.

    Raises:
        InvalidIdentifierError: the name is not a valid type name.
    """
    if name in KNOWN_TYPES or (isinstance(name, str) and _TYPE_NAME.fullmatch(name)):
        return name
    rule = "expected lower-case letters, digits and '_', starting with a letter, at most 32"
    # Echo the name only when it is evidently a misspelt known type ("Email", "e-mail"): a
    # value typed into the type slot by mistake (an IBAN, a username) must not be printed.
    close = (
        difflib.get_close_matches(name.lower().replace("-", "_"), sorted(KNOWN_TYPES), n=1, cutoff=0.75)
        if isinstance(name, str) and _ECHOABLE_TYPE_NAME.fullmatch(name)
        else []
    )
    if close:
        raise InvalidIdentifierError(
            f"identifier type {name!r} is not a valid type name (did you mean {close[0]!r}? {rule})"
        )
    raise InvalidIdentifierError(f"identifier type is not a valid type name ({rule})")


# Custom type names that mean a known type: a new entry with one of these (or one spelling
# edit away from a known type) would be normalised as an opaque key and never match what the
# known type's rules produce, so it is refused on input (see :func:`near_miss`).
_TYPE_ALIASES: dict[str, str] = {
    "mail": "email", "emailaddress": "email", "mailaddress": "email",
    "phonenumber": "phone", "telephone": "phone", "telephonenumber": "phone", "tel": "phone",
    "mobile": "phone", "mobilenumber": "phone", "mobilephone": "phone",
    "ipaddress": "ip", "ipaddr": "ip", "macaddress": "mac", "macaddr": "mac",
    "kvknumber": "kvk", "kvknr": "kvk", "cookie": "cookie_id",
    "customer": "customer_number", "customerno": "customer_number", "customernr": "customer_number",
}  # fmt: skip
# Legitimate types one edit away from a known one (BBAN: the national part of an account number).
_NOT_NEAR_MISSES = frozenset({"bban"})


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether one insertion, deletion, substitution or swap of neighbours turns a into b."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        i, j = diff if len(diff) == 2 else (0, 0)
        return j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def near_miss(name: str) -> str | None:
    """The known type a custom type name looks like a misspelling of, if any.

    ``emial``, ``e_mail``, ``ibna``, ``phone_number``, ``emails`` -> ``email``, ``email``,
    ``iban``, ``phone``, ``email``; ``loyalty_card`` or ``ticket_no`` -> None. Applied to new
    input only (:meth:`Identifier.parse`); stored entries keep whatever type they were sealed
    with.
    """
    if name in KNOWN_TYPES or name in _NOT_NEAR_MISSES:
        return None
    compact = name.replace("_", "").replace("-", "")
    for known in sorted(KNOWN_TYPES):
        spelled = known.replace("_", "")
        if compact == spelled or (len(spelled) >= 4 and _one_edit_apart(compact, spelled)):
            return known
    if compact in _TYPE_ALIASES:
        return _TYPE_ALIASES[compact]
    close = difflib.get_close_matches(name, sorted(KNOWN_TYPES), n=1, cutoff=0.8)
    return close[0] if close else None


def validate_new_type(name: str) -> str:
    """Check the type name of a new identifier: valid (:func:`validate_type`) and not a
    near miss of a known type (:func:`near_miss`).

    Returns:
        ``name``.

    Raises:
        InvalidIdentifierError: an invalid name, or one that looks like a misspelt known type.
    """
    validate_type(name)
    meant = near_miss(name)
    if meant is not None:
        # Safe to echo: it passed validate_type and is one slip away from a type name.
        raise InvalidIdentifierError(
            f"identifier type {name!r} is not a known type (did you mean {meant!r}? a custom "
            "type must not look like a known one)"
        )
    return name


def normalize(id_type: str, value: str, *, default_region: str = "NL") -> str:
    """Bring an identifier value to its normal form.

    Args:
        id_type: a known or custom type name (see :func:`validate_type`).
        value: the raw value as typed or stored.
        default_region: ISO 3166 region for phone numbers written without a country code.

    Returns:
        The normal form; ``normalize(t, normalize(t, v)) == normalize(t, v)``.

    Raises:
        InvalidIdentifierError: bad type name, or a value that is not a valid identifier of
            that type. The message names the type and the reason, never the value.
    """
    validate_type(id_type)
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"{id_type}: value must be a string")
    # Surrounding whitespace (a trailing newline from a file, a pasted space) is never part
    # of an identifier; it is removed before any other rule looks at the value.
    text = value.strip()
    if not text:
        raise InvalidIdentifierError(f"{id_type}: empty value")
    _check_characters(id_type, text)
    if id_type == "phone":
        return _normalize_phone(text, default_region)
    rule = _RULES.get(id_type)
    # Everything without a rule of its own (customer_number, username, cookie_id, custom
    # types) is an opaque key.
    return rule(text) if rule is not None else _normalize_opaque(text)


@dataclass(frozen=True, order=True, repr=False)
class Identifier:
    """A typed identifier whose value is already in normal form.

    Build one from raw input with :meth:`parse`. The constructor itself only checks the type
    name: the ledger rebuilds stored identifiers with it, and an entry sealed years ago must
    still open after a rule change (or a ``phonenumbers`` metadata update) here.

    ``repr()`` and ``str()`` never show the value, so an identifier cannot leak into a log
    line or a traceback by accident; read ``.value`` explicitly where it is needed.
    """

    type: str
    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not isinstance(self.value, str):
            raise TypeError("Identifier type and value must be strings")
        validate_type(self.type)

    @classmethod
    def parse(cls, id_type: str, value: str, *, default_region: str = "NL") -> Identifier:
        """Validate the type and normalise the value of a NEW identifier (input: flags,
        import files, lookups); see :func:`normalize` and :func:`validate_new_type`.

        Raises:
            InvalidIdentifierError: bad type name, a custom type that looks like a misspelt
                known type (``emial``), or a value that does not normalise.
        """
        validate_new_type(id_type)
        return cls(type=id_type, value=normalize(id_type, value, default_region=default_region))

    def __repr__(self) -> str:
        return f"Identifier(type={self.type!r}, value=<redacted>)"

    def __str__(self) -> str:
        return f"{self.type}:<redacted>"


def find_emails(text: str) -> list[str]:
    """Find e-mail addresses in free text.

    Returns:
        Normalised addresses, each once, in order of first appearance. Candidates that do not
        normalise are skipped.
    """
    if "@" not in text:
        return []
    found: dict[str, None] = {}
    for match in _EMAIL_CANDIDATE.finditer(unicodedata.normalize("NFC", text)):
        # A quote or dot before the local part is punctuation around the address ('a@b.nl').
        candidate = match.group().lstrip(".'`")
        try:
            found.setdefault(_normalize_email(candidate), None)
        except InvalidIdentifierError:
            continue
    return list(found)


def find_phones(text: str, *, default_region: str = "NL") -> list[str]:
    """Find valid phone numbers in free text with ``phonenumbers.PhoneNumberMatcher``.

    Raises:
        InvalidIdentifierError: ``default_region`` is not a supported region.

    Returns:
        E.164 numbers, each once, in order of first appearance.
    """
    region = _phone_region(default_region)
    found: dict[str, None] = {}
    # The matcher gives up after max_tries candidates (65535 by default); a residual scan must
    # not stop silently, and there are never more candidates than characters.
    matcher = phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.VALID, max_tries=max(65535, len(text))
    )
    for match in matcher:
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        found.setdefault(number, None)
    return list(found)


def find_ibans(text: str) -> list[str]:
    """Find IBANs in free text, written compact or in groups ("NL91 ABNA 0417 1643 00").

    A candidate is two letters, two digits and 11-30 more letters or digits with optional
    single spaces or hyphens between them; it is cut at its country's IBAN length, must end
    there (no letter or digit directly after), and must pass the mod-97 checksum.

    Returns:
        Normalised IBANs, each once, in order of first appearance.
    """
    found: dict[str, None] = {}
    for match in _IBAN_CANDIDATE.finditer(text):
        compact = _cut_iban_candidate(text, match.start(1), match.group(1))
        if compact is None:
            continue
        try:
            found.setdefault(_normalize_iban(compact), None)
        except InvalidIdentifierError:
            continue
    return list(found)


def _cut_iban_candidate(text: str, start: int, candidate: str) -> str | None:
    """The candidate's first N letters and digits, N being its country's IBAN length."""
    length = _IBAN_LENGTHS.get(candidate[:2].upper())
    if length is None:
        return None
    compact: list[str] = []
    for index, char in enumerate(candidate):
        if char.isalnum():
            compact.append(char)
            if len(compact) == length:
                end = start + index + 1
                # "NL91ABNA04171643001" is a longer token, not an IBAN followed by a digit.
                if end < len(text) and text[end].isascii() and text[end].isalnum():
                    return None
                return "".join(compact)
    return None


def candidate_tokens(text: str) -> set[str]:
    """Split free text into tokens for exact matching of opaque identifiers.

    Used for ``customer_number``, ``username``, ``cookie_id``, ``kvk``, ``ip`` and custom
    types. The rule, applied to the NFC-normalised text:

    1. Cut at whitespace and at "hard" delimiters that never occur inside such identifiers:
       ``, ; ' " ` ( ) [ ] { } < > | ! ?`` and typographic quotes. Each piece is a token
       ("C-10023", "2001:db8::1", "GA1.2.3.4").
    2. Each piece also yields itself with "soft" punctuation (``. : - / = # & @ * + _ ~ ^ %
       $``) trimmed from both ends, so "C-10023." at the end of a sentence yields "C-10023".
    3. Each piece is also cut at ``= : / # & @`` and every part is added (trimmed as in 2):
       "uid=jdoe" yields "jdoe", "kvk:12345678" yields "12345678", and a URL yields its path
       and query parts. The whole piece stays too, so IPv6 addresses survive.

    Only tokens with at least one letter or digit are kept. Tokens are NOT type-normalised:
    compare them with :func:`normalize` applied where the normal form differs from the
    written one (``ip``, ``kvk``, ``mac``).

    Returns:
        The set of tokens.
    """
    tokens: set[str] = set()
    for piece in _HARD_DELIMITERS.split(unicodedata.normalize("NFC", text)):
        if not piece:
            continue
        tokens.add(piece)
        tokens.add(piece.strip(_SOFT_TRIM))
        if _SOFT_SPLIT.search(piece):
            tokens.update(part.strip(_SOFT_TRIM) for part in _SOFT_SPLIT.split(piece))
    return {token for token in tokens if any(char.isalnum() for char in token)}


# -- per-type rules ------------------------------------------------------------------------


def _check_characters(id_type: str, value: str) -> None:
    if value.isprintable():  # fast path: no control character and no lone surrogate
        return
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidIdentifierError(f"{id_type}: contains a control character")
        if category == "Cs":
            raise InvalidIdentifierError(f"{id_type}: not valid Unicode (lone surrogate)")


def _normalize_email(value: str) -> str:
    # The whole address is lower-cased. RFC 5321 lets the local part be case-sensitive, but
    # real mail systems (Gmail, Outlook, Exchange, Postfix defaults) treat it
    # case-insensitively, and people type "Jan.Jansen@" and "jan.jansen@" for the same
    # mailbox; missing an erased person matters more than merging two exotic mailboxes.
    if value.isascii() and _PLAIN_ASCII_EMAIL.fullmatch(value):
        # Fast path for the common case (bulk imports, residual scans): nothing to fold.
        return value.lower()
    address = unicodedata.normalize("NFC", value)
    if any(char.isspace() for char in address):
        raise InvalidIdentifierError("email: contains whitespace")
    if address.count("@") != 1:
        raise InvalidIdentifierError("email: must contain exactly one '@'")
    local, domain = address.split("@")
    if not local:
        raise InvalidIdentifierError("email: empty local part")
    if not domain:
        raise InvalidIdentifierError("email: empty domain")
    labels = domain.split(".")
    if any(not label for label in labels):
        raise InvalidIdentifierError("email: domain has an empty label")
    # IDN domains keep their Unicode form; an ACE label ("xn--bcher-kva") is decoded so the
    # same domain written both ways gets one normal form.
    domain = ".".join(_decode_ace_label(label.lower()) for label in labels)
    return unicodedata.normalize("NFC", f"{local.lower()}@{domain.lower()}")


def _decode_ace_label(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        decoded = label[4:].encode("ascii").decode("punycode")
    except UnicodeError:
        return label
    # Keep the ACE form when decoding produced something a domain label cannot hold.
    if not decoded or any(
        char in ".@" or char.isspace() or unicodedata.category(char) in ("Cc", "Cs")
        for char in decoded
    ):
        return label
    return decoded


def _phone_region(default_region: str) -> str:
    region = default_region.upper() if isinstance(default_region, str) else ""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidIdentifierError("phone: default region is not a supported ISO 3166 code")
    return region


def _normalize_phone(value: str, default_region: str) -> str:
    region = _phone_region(default_region)
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifierError("phone: not a phone number") from None
    # Name the region the number was read for: its country code's main region when it has
    # one ("+44 ..." -> GB), else the default region.
    number_region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    if number_region in phonenumbers.SUPPORTED_REGIONS:
        region = number_region
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifierError(f"phone: not a possible number for region {region}")
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifierError(f"phone: not a valid number for region {region}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _normalize_iban(value: str) -> str:
    iban = _IBAN_SEPARATORS.sub("", value).upper()
    if iban.startswith("IBAN"):
        # ISO 13616 paper format prefix "IBAN NL91 ..."; no country code starts with "IB".
        iban = iban[4:]
    if not _ASCII_ALNUM.fullmatch(iban):
        raise InvalidIdentifierError("iban: may only contain letters A-Z and digits")
    if not _IBAN_SHAPE.fullmatch(iban):
        raise InvalidIdentifierError(
            "iban: must start with a two-letter country code and two check digits"
        )
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is None:
        raise InvalidIdentifierError("iban: country code is not in the IBAN registry")
    if len(iban) != expected:
        raise InvalidIdentifierError("iban: wrong length for its country")
    # ISO 7064 MOD 97-10 only produces check digits 02..98; 00, 01 and 99 can pass the
    # remainder test by accident (00 == 97 mod 97), so refuse them first.
    if iban[2:4] in ("00", "01", "99"):
        raise InvalidIdentifierError("iban: check digits out of range")
    rearranged = iban[4:] + iban[:4]
    if int("".join(str(int(char, 36)) for char in rearranged)) % 97 != 1:
        raise InvalidIdentifierError("iban: checksum does not match")
    return iban


def _normalize_ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        # from None: ipaddress quotes the value in its own message.
        raise InvalidIdentifierError("ip: not a valid IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _normalize_mac(value: str) -> str:
    text = value
    if match := _MAC_SEPARATED.fullmatch(text):
        octets = [match.group(1), *(match.group(i) for i in range(3, 7)), match.group(7)]
    elif match := _MAC_CISCO.fullmatch(text):
        digits = "".join(match.groups())
        octets = [digits[i : i + 2] for i in range(0, 12, 2)]
    elif _MAC_BARE.fullmatch(text):
        octets = [text[i : i + 2] for i in range(0, 12, 2)]
    else:
        raise InvalidIdentifierError(
            "mac: expected six hexadecimal octets separated by ':', '-', '.' or nothing"
        )
    return ":".join(octet.lower().zfill(2) for octet in octets)


def _normalize_kvk(value: str) -> str:
    number = _KVK_SEPARATORS.sub("", value)
    if not _KVK.fullmatch(number):
        raise InvalidIdentifierError("kvk: must be exactly 8 digits")
    return number


def _normalize_opaque(value: str) -> str:
    # Case is kept: customer numbers, usernames in many systems, and cookie ids (often
    # base64) are case-sensitive keys, so "AbC123" and "abc123" may be different people.
    # NFC makes the same visible text ("müller" typed composed or decomposed) one key.
    # Inner whitespace is kept as written: it can be significant in a custom type's key.
    return unicodedata.normalize("NFC", value)


_RULES: dict[str, Callable[[str], str]] = {
    "email": _normalize_email,
    "iban": _normalize_iban,
    "ip": _normalize_ip,
    "mac": _normalize_mac,
    "kvk": _normalize_kvk,
}


__all__ = [
    "KNOWN_TYPES",
    "near_miss",
    "validate_new_type",
    "Identifier",
    "validate_type",
    "normalize",
    "find_emails",
    "find_phones",
    "find_ibans",
    "candidate_tokens",
]
