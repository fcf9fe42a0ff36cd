"""The cheap pre-tests (reconciler.prefilter) against paths without any pre-test.

The contract: a pre-test may let through values that do not match, never drop one that the
full path (normalise / extract, then compare with the ledger's normal forms) matches. The
property tests compare, on random pages built from tricky spellings, the pre-tested path
with a reference that normalises / extracts everything; the cases after them are false
negatives a review found, fixed since.
"""
# ruff: noqa: RUF001 - look-alike characters (fullwidth digits, Kelvin sign) are the point

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable, Mapping

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
from reconciler.prefilter import TextFilter, ValueFilter, digits_of

# -- reference paths (no pre-test at all) -------------------------------------------------------


def _normal(id_type: str, raw: object, region: str = "NL") -> str | None:
    try:
        return normalize(id_type, raw, default_region=region)  # type: ignore[arg-type]
    except InvalidIdentifierError:
        return None


def _value_reference(id_type: str, raws: Iterable[str], ledger: set[str],
                     region: str = "NL") -> set[int]:
    return {i for i, raw in enumerate(raws) if _normal(id_type, raw, region) in ledger}


_NORMALISED_TOKENS = ("ip", "kvk", "mac")


def _text_reference(text: str, ledger: Mapping[str, Iterable[str]],
                    region: str = "NL") -> set[tuple[str, str]]:
    """What the residual scan finds in one text without any pre-test."""
    sets = {t: set(v) for t, v in ledger.items()}
    found: set[tuple[str, str]] = set()
    found |= {("email", e) for e in find_emails(text) if e in sets.get("email", ())}
    found |= {("phone", p) for p in find_phones(text, default_region=region)
              if p in sets.get("phone", ())}
    found |= {("iban", i) for i in find_ibans(text) if i in sets.get("iban", ())}
    for token in candidate_tokens(text):
        for id_type, values in sets.items():
            if id_type in ("email", "phone", "iban"):
                continue
            if id_type in _NORMALISED_TOKENS:
                if _normal(id_type, token, region) in values:
                    found.add((id_type, _normal(id_type, token, region)))  # type: ignore[arg-type]
            elif token in values:
                found.add((id_type, token))
    return found


def _index(ledger: Mapping[str, Iterable[str]]):
    from reconciler.scan import _Index  # internal; this is its contract

    numbered = [(t, v) for t, values in ledger.items() for v in values]
    seq_of = {item: n for n, item in enumerate(numbered)}
    index = _Index({t: {v: [seq_of[(t, v)]] for v in values} for t, values in ledger.items()},
                   {n: f"DSR-{n}" for n in range(len(numbered))})
    return index, seq_of


# -- corpus --------------------------------------------------------------------------------------

LEDGER_RAW = {
    "email": ["jan@example.nl", "Ørsted@Example.dk", "jan@xn--bcher-kva.nl", "kees@x.nl",
              "a.b+c@sub.example.org"],
    "phone": ["+31416853988", "+31612345678", "+6834002", "+390612345678", "+441212345678",
              "+12015550123", "+4930123456"],
    "iban": ["NL91ABNA0417164300", "MT84MALT011000012345MTLCAST001S", "GB82WEST12345698765432"],
    "ip": ["192.168.1.10", "2001:db8::1"],
    "kvk": ["12345678"],
    "customer_number": ["C-10023", "K77"],
    "username": ["müller", "jdoe", "İsmail"],
    "cookie_id": ["GA1.2.3456789.1234567890"],
    "loyalty_card": ["LC0042"],
}
LEDGER = {t: sorted({normalize(t, v) for v in vs}) for t, vs in LEDGER_RAW.items()}

SPELLINGS = {
    "email": [" Jan@Example.NL ", "JAN@EXAMPLE.NL\n", "jan@XN--BCHER-KVA.nl", "Jan@Bücher.nl",
              "jan@bu\u0308cher.nl", "ØRSTED@example.DK", "O\u0308rsted@example.dk"[:0] + "ørsted@example.dk",
              "\u212aees@x.nl", "kees@x.nl.", "A.B+C@Sub.Example.ORG", "jan@example.nl\x00",
              "jan@@example.nl", "jan@example..nl", "jan @example.nl", "piet@example.nl",
              "jan@example.nl\u00a0", "\u00a0jan@example.nl", "jan@ｅxample.nl"],
    "phone": ["+31 416 853 988", "0416-853988", "0031 416 853988", "(0416) 85 39 88",
              "+31 (0)416 853988", "tel:+31-416-853988", "٠٤١٦٨٥٣٩٨٨", "０４１６８５３９８８",
              "06 12345678 ext. 12", "06-12345678#12", "+683 4002", "00683 4002", "4002",
              "+39 06 1234 5678", "06 1234 5678", "+44 121 234 5678", "0121 234 5678",
              "+1 (201) 555-0123", "1-201-555-0123", "201.555.0123", "+49 30 123456",
              "030 123456", "0800-FLOWERS", "06-12345679", "+31\u00a06\u00a012345678", "", " "],
    "iban": ["NL91 ABNA 0417 1643 00", "nl91abna0417164300", "IBAN NL91ABNA0417164300",
             "NL91-ABNA-0417-1643-00", "NL91\u00a0ABNA\u00a00417164300", "iban: NL91ABNA0417164300",
             "MT84 MALT 0110 0001 2345 MTLC AST0 01S", "gb82 west 1234 5698 7654 32",
             "NL91ABNA0417164301", "NL91ABNA04171643000"],
    "ip": ["192.168.1.10", " 192.168.1.10\t", "::ffff:192.168.1.10", "::FFFF:c0a8:010a",
           "::ffff:c0a8:10a", "0:0:0:0:0:ffff:c0a8:10a", "192.168.001.010", "2001:DB8::1",
           "2001:0db8:0000::0001", "2001:db8::1%eth0", "１９２.１６８.１.１０", "192.168.1.1"],
    "kvk": ["12345678", "1234 5678", "12.34.56.78", " 12 34 56 78 ", "1234-5678", "１２３４５６７８",
            "12345679", "123456789"],
    "customer_number": ["C-10023", " C-10023 ", "c-10023", "K77", "K\u200b77", "\u212a77",
                        "C-10023\u00a0"],
    "username": ["müller", "mu\u0308ller", "MÜLLER", "jdoe", "JDOE", "İsmail", "I\u0307smail",
                 "jdoe\u0301"],
    "cookie_id": ["GA1.2.3456789.1234567890", "GA1.2.3456789.1234567891"],
    "loyalty_card": ["LC0042", " LC0042", "LC0042 "],
}


def _mutations(raw: str, rng: random.Random) -> list[str]:
    out = [raw, raw.upper(), raw.lower(), f" {raw}\n", unicodedata.normalize("NFD", raw),
           unicodedata.normalize("NFKC", raw)]
    if rng.random() < 0.5:
        out.append(raw.replace(" ", "\u00a0"))
    return out


# -- ValueFilter ---------------------------------------------------------------------------------


@pytest.mark.parametrize("id_type", sorted(SPELLINGS))
def test_value_pages_never_drop_a_value_that_normalises_to_a_ledger_value(id_type: str) -> None:
    rng = random.Random(id_type)
    ledger = set(LEDGER[id_type])
    pretest = ValueFilter({id_type: ledger})
    corpus = sorted({m for raw in SPELLINGS[id_type] for m in _mutations(raw, rng)})
    noise = ["", " ", "x\x00y", "ascii noise", "ünïcode", "2001:db8::9", "xn--abc"]
    for _ in range(300):
        page = rng.sample(corpus, rng.randrange(1, min(12, len(corpus)))) + rng.sample(
            noise, rng.randrange(0, 3))
        if rng.random() < 0.5:  # the ASCII fast paths
            page = [p for p in page if p.isascii() and "\x00" not in p] or ["x"]
        rng.shuffle(page)
        expected = _value_reference(id_type, page, ledger)
        passed = set(pretest.candidates(id_type, page))
        assert expected <= passed, (page, expected - passed)
        assert expected <= {i for i, r in enumerate(page) if pretest.may_match(id_type, r)}


def test_value_pages_of_every_type_at_once() -> None:
    """One filter holding every type (as the scan builds it)."""
    pretest = ValueFilter(LEDGER)
    for id_type, raws in SPELLINGS.items():
        for region in ("NL", "US", "GB", "IT"):
            expected = _value_reference(id_type, raws, set(LEDGER[id_type]), region)
            assert expected <= set(pretest.candidates(id_type, raws)), id_type


def test_empty_pages_and_types_the_ledger_lacks() -> None:
    pretest = ValueFilter(LEDGER)
    assert list(pretest.candidates("email", [])) == []
    assert list(ValueFilter({}).candidates("email", ["jan@example.nl"])) == []
    assert list(ValueFilter({"email": []}).candidates("email", ["jan@example.nl"])) == []


def _example_spellings() -> list[tuple[str, str]]:
    kinds = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in kinds:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            intl = phonenumbers.format_number(number,
                                              phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            out += [(region, national), (region, intl), (region, "00" + intl[1:]),
                    (region, national.replace(" ", "")), (region, intl + " ext. 7"),
                    (region, intl.replace(" ", "\u00a0"))]
    return out


def test_example_numbers_of_every_region_pass_as_pages_and_in_text() -> None:
    spellings = _example_spellings()
    checked = 0
    for region in sorted({r for r, _ in spellings}):
        raws = [s for r, s in spellings if r == region]
        normals = {n for raw in raws if (n := _normal("phone", raw, region))}
        if not normals:
            continue
        pretest = ValueFilter({"phone": normals})
        expected = _value_reference("phone", raws, normals, region)
        assert expected <= set(pretest.candidates("phone", raws)), region
        texts = [f"bel {raw} aub" for raw in raws] + ["", "niets"]
        text_filter = TextFilter({"phone": normals})
        wanted = {i for i, t in enumerate(texts) if _text_reference(t, {"phone": normals}, region)}
        assert wanted <= set(text_filter.suspects(texts)), region
        checked += len(expected)
    assert checked > 500


# -- TextFilter ----------------------------------------------------------------------------------

CONTEXTS = ["{}", "mail {} please", "({})", "x{}y", "{}.", "uid={}&x=1",
            "https://shop.example/u/{}/orders", "naïve {} café", "{}\u0301", "«{}»",
            "\U0001f600{}", "a\x01{}\x01b", "{}\t{}", "ＩＤ {}"]


def _texts(rng: random.Random) -> list[str]:
    pool = [s for values in SPELLINGS.values() for s in values]
    pool += ["nothing here", "", "order 1234567 shipped", "Straat 12, 5211 AB", "müde"]
    out = []
    for _ in range(rng.randrange(1, 9)):
        context = rng.choice(CONTEXTS)
        out.append(context.format(*(rng.choice(pool) for _ in range(context.count("{}")))))
    if rng.random() < 0.5:
        out = [t for t in out if t.isascii()] or [""]
    return out


def test_text_pages_never_drop_a_text_the_full_scan_matches() -> None:
    rng = random.Random(7)
    ledger = {t: v for t, v in LEDGER.items() if t != "mac"}
    pretest = TextFilter(ledger)
    index, seq_of = _index(ledger)
    bad = []
    for _ in range(1500):
        texts = _texts(rng)
        passed = set(pretest.suspects(texts))
        for i, text in enumerate(texts):
            expected = _text_reference(text, ledger)
            if not expected:
                continue
            if i not in passed:
                bad.append((texts, i, expected))
            got = index.in_text(text, "NL")
            if got != {seq_of[item] for item in expected}:
                bad.append((text, got, expected))
    assert not bad, bad[:5]


def test_text_pages_map_hits_back_to_the_right_text() -> None:
    """Automaton end positions -> text numbers: first, last, empty and neighbouring texts."""
    pretest = TextFilter({"customer_number": ["C-10023"], "phone": ["+31612345678"],
                          "iban": ["NL91ABNA0417164300"], "email": ["jan@example.nl"],
                          "kvk": ["12345678"]})
    hits = ["C-10023", "0612345678", "NL91ABNA0417164300", "jan@example.nl", "12345678"]
    for hit in hits:
        for blank in ("", "x", "é", "\U0001f600"):
            for n in range(1, 5):
                for at in range(n):
                    texts = [blank] * n
                    texts[at] = hit
                    assert set(pretest.suspects(texts)) == {at}, (texts, at)
                    texts[at] = blank + hit
                    assert at in set(pretest.suspects(texts)), (texts, at)


def test_texts_that_are_not_text_or_hold_nul_are_all_suspects() -> None:
    pretest = TextFilter(LEDGER)
    assert list(pretest.suspects(["a", None, "b"])) == [0, 1, 2]  # type: ignore[list-item]
    assert list(pretest.suspects(["a", "jdoe\x00", "b"])) == [0, 1, 2]
    assert list(pretest.suspects([])) == []


# -- false negatives a review found (fixed) -------------------------------------------------------

# phonenumbers rewrites (national_prefix_transform_rule) a locally dialled number: it inserts
# digits in front of a short local number (San Marino "0549", Guernsey/Jersey/Isle of Man
# "1481"/"1534"/"1624", Norfolk Island "3") or drops the mobile "15" between an Argentinian
# area code and the subscriber number ("02966 15-412345" -> +54 9 2966 412345); the last seven
# digits of the national number are then not in the written digits.
TRANSFORMED = [
    ("SM", "812345"), ("NL", "+378 812345"), ("NF", "12345"), ("NL", "+672 12345"),
    ("GG", "712345"), ("JE", "612345"), ("AR", "02966 15-412345"),
    ("NL", "+54 2966 15 412345"), ("AR", "02302 15 412345"),
]



@pytest.mark.parametrize(("region", "raw"), TRANSFORMED)
def test_phone_value_rewritten_by_a_transform_rule_passes(region: str, raw: str) -> None:
    normal = normalize("phone", raw, default_region=region)
    pretest = ValueFilter({"phone": [normal]})
    assert pretest.may_match("phone", raw)
    assert list(pretest.candidates("phone", [raw])) == [0]



@pytest.mark.parametrize(("region", "raw"), [t for t in TRANSFORMED if t[0] in ("NL", "SM", "NF", "AR")])
def test_phone_in_text_rewritten_by_a_transform_rule_is_found(region: str, raw: str) -> None:
    normal = normalize("phone", raw, default_region=region)
    text = f"bel {raw} aub"
    assert normal in find_phones(text, default_region=region)  # the full path finds it
    index, _ = _index({"phone": [normal]})
    assert list(TextFilter({"phone": [normal]}).suspects([text])) == [0]
    assert index.in_text(text, region)



@pytest.mark.parametrize("spelling", ["::ffff:c0a8:10a", "0:0:0:0:0:FFFF:C0A8:010A"])
def test_ipv4_mapped_hex_in_text_is_found(spelling: str) -> None:
    ledger = {"ip": ["192.168.1.10"]}
    text = f"login from {spelling} at 10:00"
    assert _text_reference(text, ledger) == {("ip", "192.168.1.10")}  # the full path finds it
    pretest = TextFilter(ledger)
    assert pretest.token_candidate(text, digits_of(text))
    assert list(pretest.suspects([text])) == [0]
    index, _ = _index(ledger)
    assert index.in_text(text, "NL") == {0}



def test_iban_ending_in_a_letter_before_a_combining_mark_is_found() -> None:
    iban = "MT84MALT011000012345MTLCAST001S"
    text = iban + "\u0301 betaald"
    assert find_ibans(text) == [iban]  # the full path finds it
    assert list(TextFilter({"iban": [iban]}).suspects([text])) == [0]
