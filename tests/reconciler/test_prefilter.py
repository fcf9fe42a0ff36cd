"""The cheap pre-tests never hide a value that normalises to a ledger identifier, and they do
filter: most values that belong to nobody are turned away without being normalised."""

from __future__ import annotations

import random
from collections.abc import Iterable

import phonenumbers
import pytest

from erasure_ledger import (
    InvalidIdentifierError,
    candidate_tokens,
    find_emails,
    find_ibans,
    find_phones,
    normalize,
)
from reconciler.prefilter import TextFilter, ValueFilter, digits_of, national_digits

# (type, raw spellings that must all pass, a value of the same type that must not)
SPELLINGS = [
    ("email", [" Jan.Jansen@Example.NL ", "jan.jansen@example.nl", "JAN.JANSEN@EXAMPLE.NL\n"],
     "piet@example.nl"),
    ("email", ["jan@xn--bcher-kva.nl", "Jan@Bücher.nl", "jan@bücher.nl"], "jan@boeken.nl"),
    ("email", ["Ørsted@Example.dk", "ørsted@example.dk"], "orsted@example.dk"),
    ("iban", ["NL91ABNA0417164300", "nl91 abna 0417 1643 00", "IBAN NL91 ABNA 0417 1643 00",
              "NL91-ABNA-0417-1643-00", "NL91\u00a0ABNA\u00a00417\u00a01643\u00a000"],
     "NL02ABNA0123456789"),
    ("ip", ["192.168.1.10", " 192.168.1.10 "], "192.168.1.11"),
    ("ip", ["2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8:0::1"],
     "10.9.9.9"),  # IPv6 values are always normalised in full
    ("ip", ["::ffff:10.0.0.7", "10.0.0.7"], "10.0.0.8"),
    ("kvk", ["12345678", "1234 5678", "12.34.56.78", " 12345678"], "87654321"),
    ("mac", ["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e", "001A2B3C4D5E",
             "0:1a:2b:3c:4d:5e"], "00:1a:2b:3c:4d:5f"),
    ("customer_number", ["C-10023", " C-10023 "], "C-10024"),
    ("username", ["müller", "mu\u0308ller"], "muller"),
    ("cookie_id", ["GA1.2.3456789.1234567890"], "GA1.2.3456789.1234567891"),
    ("loyalty_card", ["LC 0042 7"], "LC 0042 8"),
    ("phone", ["+31 6 12345678", "06-12345678", "0031 6 1234 5678", "(06) 1234 5678",
               "+31 (0)6 1234-5678", "٠٦١٢٣٤٥٦٧٨", "06 12345678 ext. 12", "tel:+31-6-1234-5678"],
     "06-12345679"),
    ("phone", ["0416-853988", "+31416853988", "0416 85 39 88"], "0416-853989"),
]


def _normal_forms(id_type: str, raws: Iterable[str], region: str = "NL") -> set[str]:
    return {normalize(id_type, raw, default_region=region) for raw in raws}


@pytest.mark.parametrize(("id_type", "raws", "other"), SPELLINGS,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SPELLINGS)])
def test_every_spelling_of_a_ledger_value_passes_and_another_value_does_not(
        id_type: str, raws: list[str], other: str) -> None:
    ledger = _normal_forms(id_type, raws)
    assert len(ledger) == 1, "the spellings are of one identifier"
    pretest = ValueFilter({id_type: ledger})
    for raw in raws:
        assert pretest.may_match(id_type, raw)
    assert normalize(id_type, other) not in ledger
    assert not pretest.may_match(id_type, other)


def test_a_type_the_ledger_does_not_hold_matches_nothing() -> None:
    pretest = ValueFilter({"email": ["jan@example.nl"]})
    assert not pretest.may_match("iban", "NL91ABNA0417164300")
    assert not pretest.may_match("phone", "+31612345678")


def _example_numbers() -> list[tuple[str, str, str]]:
    """(region, spelling, E.164) for an example number of every type in every region."""
    out = []
    kinds = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
             phonenumbers.PhoneNumberType.TOLL_FREE]
    formats = [phonenumbers.PhoneNumberFormat.NATIONAL,
               phonenumbers.PhoneNumberFormat.INTERNATIONAL,
               phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.RFC3966]
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in kinds:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            for fmt in formats:
                out.append((region, phonenumbers.format_number(number, fmt), e164))
    return out


EXAMPLES = _example_numbers()


def test_phone_numbers_of_every_region_pass_in_every_format() -> None:
    checked = 0
    for region, spelling, e164 in EXAMPLES:
        try:
            normal = normalize("phone", spelling, default_region=region)
        except InvalidIdentifierError:
            continue  # an example that our stricter validation refuses is nobody's number
        pretest = ValueFilter({"phone": [normal]})
        assert pretest.may_match("phone", spelling), (region, e164)
        text = TextFilter({"phone": [normal]})
        assert text.phone_candidate(digits_of(f"bel {spelling} na vijven")), (region, e164)
        checked += 1
    assert checked > 1000


def test_short_national_numbers_are_looked_for_whole() -> None:
    # Niue: four-digit national numbers, shorter than the seven-digit tail
    normal = normalize("phone", "+683 4002")
    assert len(national_digits(normal)) < 7
    pretest = ValueFilter({"phone": [normal]})
    assert pretest.may_match("phone", "+683 4002")
    assert pretest.may_match("phone", "00683-4002")
    assert not pretest.may_match("phone", "+683 4003")


def test_most_phone_numbers_of_nobody_are_turned_away() -> None:
    rng = random.Random(5)
    mobiles = [f"061{rng.randrange(10**7):07d}" for _ in range(3000)]  # all valid in NL
    ledger = {normalize("phone", m) for m in mobiles[:1000]}
    pretest = ValueFilter({"phone": ledger})
    others = [f"06-{m[2:]}" for m in mobiles[1000:] if normalize("phone", m) not in ledger]
    assert len(others) > 1900
    passed = sum(pretest.may_match("phone", o) for o in others)
    assert passed < len(others) * 0.01


# -- free text: the pre-tests against a scan without them ------------------------------------

LEDGER = {
    "email": ["jan@example.nl", "jan@bücher.nl"],
    "phone": ["+31416853988", "+31612345678", "+6834002"],
    "iban": ["NL91ABNA0417164300"],
    "customer_number": ["C-10023", "K 77"],
    "username": ["müller", "jdoe"],
    "cookie_id": ["GA1.2.3456789.1234567890"],
    "ip": ["192.168.1.10"],
    "kvk": ["12345678"],
}

TEXTS = [
    "Please mail JAN@Example.nl!", "mail jan@xn--bcher-kva.nl", "Bel 0416 853 988 aub",
    "bel (06) 1234-5678 of 06 1234 5679", "call +683 4002", "٠٦١٢٣٤٥٦٧٨ is mijn nummer",
    "Refund to NL91 ABNA 0417 1643 00 please", "iban:nl91abna0417164300.",
    "Klantnummer C-10023.", "klant (C-10023)", "user=jdoe&x=1", "groeten, mu\u0308ller",
    "cookie GA1.2.3456789.1234567890;", "from 192.168.1.10:8080", "kvk: 12.34.56.78",
    "kvk 12345678", "customer K 77 called", "nothing personal here", "order 1234567 shipped",
    "ip 192.168.1.11", "C-100234", "jdoex", "NL02ABNA0123456789", "0416 853 989",
    "Straat 12, 5211 AB 's-Hertogenbosch", "", "   ", "GA1.2.3456789.1234567891",
]


def _reference(text: str, region: str = "NL") -> set[tuple[str, str]]:
    """What a scan without any pre-test finds: every extractor on every text."""
    found = set()
    ledger = {t: set(v) for t, v in LEDGER.items()}
    found |= {("email", e) for e in find_emails(text) if e in ledger["email"]}
    found |= {("phone", p) for p in find_phones(text, default_region=region)
              if p in ledger["phone"]}
    found |= {("iban", i) for i in find_ibans(text) if i in ledger["iban"]}
    for token in candidate_tokens(text):
        for id_type in ("customer_number", "username", "cookie_id", "ip", "kvk"):
            try:
                normal = normalize(id_type, token, default_region=region)
            except InvalidIdentifierError:
                continue
            if normal in ledger[id_type] and (id_type in ("ip", "kvk") or normal == token):
                found.add((id_type, normal))
    return found


@pytest.mark.parametrize("text", TEXTS)
def test_the_text_pretests_let_through_everything_a_full_scan_finds(text: str) -> None:
    pretest = TextFilter(LEDGER)
    kinds = {kind for kind, _ in _reference(text)}
    digits = digits_of(text)
    if "email" in kinds:
        assert "@" in text
    if "phone" in kinds:
        assert pretest.phone_candidate(digits)
    if kinds & {"customer_number", "username", "cookie_id", "ip", "kvk"}:
        assert pretest.token_candidate(text, digits)


def test_the_scan_finds_exactly_what_a_scan_without_pre_tests_finds() -> None:
    from reconciler.scan import _Index  # internal; this is its contract

    numbered = [(t, v) for t, values in LEDGER.items() for v in values]
    seq_of = {item: n for n, item in enumerate(numbered)}
    index = _Index({t: {v: [seq_of[(t, v)]] for v in values} for t, values in LEDGER.items()},
                   {n: f"DSR-{n}" for n in range(len(numbered))})
    found_anything = 0
    for text in TEXTS:
        expected = {seq_of[item] for item in _reference(text)}
        assert index.in_text(text, "NL") == expected, text
        found_anything += bool(expected)
    assert found_anything >= 15


def test_texts_without_any_ledger_value_are_mostly_turned_away() -> None:
    pretest = TextFilter(LEDGER)
    quiet = ["Straat 12, 5211 AB 's-Hertogenbosch", "order 1234567 shipped", "Mozilla/5.0",
             "bedankt voor de bloemen", "GA1.2.999.111", "10.0.0.1", "2026-11-25 10:00"]
    for text in quiet:
        digits = digits_of(text)
        assert not pretest.phone_candidate(digits), text
        assert not pretest.token_candidate(text, digits), text


NOISE = ["", " ", "piet@example.nl", "06-98765432", "NL02ABNA0123456789", "x\x00y", "müller",
         "jan@xn--bcher-kva.nl", "2001:db8::9", "call 0800-FLOWERS", "12.34.56.79", "C-10024"]


@pytest.mark.parametrize(("id_type", "raws", "other"), SPELLINGS,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SPELLINGS)])
def test_a_page_at_a_time_lets_through_every_value_that_may_match(
        id_type: str, raws: list[str], other: str) -> None:
    pretest = ValueFilter({id_type: _normal_forms(id_type, raws)})
    for page in ([*NOISE, *raws, other], [*raws, other],
                 [r for r in [*raws, other, *NOISE] if r.isascii() and "\x00" not in r]):
        wanted = {i for i, raw in enumerate(page) if pretest.may_match(id_type, raw)}
        assert wanted >= {page.index(raw) for raw in raws if raw in page}
        assert wanted <= set(pretest.candidates(id_type, page)), page
