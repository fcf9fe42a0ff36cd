"""Specification of identifier normalisation (erasure_ledger.identifiers).

Every value is brought to one normal form before it is sealed, and the reconciler brings values
found in a restored database to the same form, so these tests pin the accepted spellings, the
normal form and the refusals of each type. Refusals never quote the value: see the canary
tests at the end.
"""

from __future__ import annotations

import dataclasses
import traceback
import unicodedata
from collections.abc import Sequence

import pytest

from erasure_ledger.errors import InvalidIdentifierError, UsageError
from erasure_ledger.identifiers import (
    KNOWN_TYPES,
    Identifier,
    candidate_tokens,
    find_emails,
    find_ibans,
    find_phones,
    near_miss,
    normalize,
    validate_type,
)

CANARY = "canary@example.invalid"

# (type, raw value, normal form): every accepted spelling the product promises.
ACCEPTED = [
    # email: stripped, whole address lower-cased, NFC, ACE domain labels decoded
    ("email", "jan@example.nl", "jan@example.nl"),
    ("email", "  Jan.Jansen@Example.NL \n", "jan.jansen@example.nl"),
    ("email", "José@Bloemen.nl", "josé@bloemen.nl"),
    ("email", "Jose\u0301@Bloemen.nl", "josé@bloemen.nl"),  # decomposed é
    ("email", "müller@bücher.de", "müller@bücher.de"),
    ("email", "a@XN--BCHER-KVA.de", "a@bücher.de"),  # ACE form of bücher.de
    ("email", "o'brien+news@example.co.uk", "o'brien+news@example.co.uk"),
    ("email", "root@localhost", "root@localhost"),
    # phone: E.164, national forms read in the default region
    ("phone", "0416-853988", "+31416853988"),
    ("phone", "+31 416 853 988", "+31416853988"),
    ("phone", "0031416853988", "+31416853988"),  # 00 is the international prefix in NL
    ("phone", "(0416) 85 39 88", "+31416853988"),
    ("phone", "06 12345678", "+31612345678"),
    ("phone", "+44 20 7946 0958", "+442079460958"),
    ("phone", "+31416853988", "+31416853988"),
    # iban: compact, upper-case, checksum-validated
    ("iban", "NL91ABNA0417164300", "NL91ABNA0417164300"),
    ("iban", "NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
    ("iban", "nl91-abna-0417-1643-00", "NL91ABNA0417164300"),
    ("iban", "IBAN NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
    ("iban", "BE68 5390 0754 7034", "BE68539007547034"),
    ("iban", "DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
    ("iban", "GB29 NWBK 6016 1331 9268 19", "GB29NWBK60161331926819"),
    ("iban", "NO93 8601 1117 947", "NO9386011117947"),
    ("iban", "MT84 MALT 0110 0001 2345 MTLC AST0 01S", "MT84MALT011000012345MTLCAST001S"),
    # ip: canonical compressed form; IPv4-mapped IPv6 becomes IPv4
    ("ip", "192.168.0.1", "192.168.0.1"),
    ("ip", " 10.0.0.1 ", "10.0.0.1"),
    ("ip", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ("ip", "::ffff:192.0.2.7", "192.0.2.7"),
    ("ip", "::1", "::1"),
    # mac: lower-case, colon-separated
    ("mac", "00:1A:2B:3C:4D:5E", "00:1a:2b:3c:4d:5e"),
    ("mac", "00-1a-2b-3c-4d-5e", "00:1a:2b:3c:4d:5e"),
    ("mac", "00.1a.2b.3c.4d.5e", "00:1a:2b:3c:4d:5e"),
    ("mac", "001a.2b3c.4d5e", "00:1a:2b:3c:4d:5e"),  # Cisco notation
    ("mac", "001A2B3C4D5E", "00:1a:2b:3c:4d:5e"),
    ("mac", "0:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5e"),  # macOS arp drops leading zeros
    # kvk: exactly eight digits, spaces and dots removed
    ("kvk", "12345678", "12345678"),
    ("kvk", "1234 5678", "12345678"),
    ("kvk", "12.34.56.78", "12345678"),
    # opaque keys: stripped, NFC, case and inner whitespace kept
    ("customer_number", "  C-10023 ", "C-10023"),
    ("customer_number", "c-10023", "c-10023"),
    ("username", "müller", "müller"),
    ("username", "mu\u0308ller", "müller"),  # decomposed ü
    ("username", "JanJansen", "JanJansen"),
    ("cookie_id", "GA1.2.AbCdEf==", "GA1.2.AbCdEf=="),
    ("loyalty_card", "Gold 0042", "Gold 0042"),  # a custom type
]

# (type, raw value, message): every refusal, with the exact reason it names.
REFUSED = [
    ("email", "jan.example.nl", "email: must contain exactly one '@'"),
    ("email", "jan@@example.nl", "email: must contain exactly one '@'"),
    ("email", "jan@ex@ample.nl", "email: must contain exactly one '@'"),
    ("email", "@example.nl", "email: empty local part"),
    ("email", "jan@", "email: empty domain"),
    ("email", "jan janssen@example.nl", "email: contains whitespace"),
    ("email", "jan@example..nl", "email: domain has an empty label"),
    ("email", "jan@example.nl.", "email: domain has an empty label"),
    ("phone", "not a number", "phone: not a phone number"),
    ("phone", "+999 1234567", "phone: not a phone number"),
    ("phone", "123", "phone: not a possible number for region NL"),
    ("phone", "+31 99 123 4567", "phone: not a valid number for region NL"),
    ("phone", "+31 6 1234", "phone: not a valid number for region NL"),
    ("iban", "NL92ABNA0417164300", "iban: checksum does not match"),
    ("iban", "NL91ABNA0417164301", "iban: checksum does not match"),
    ("iban", "NL91ABNA041716430", "iban: wrong length for its country"),
    ("iban", "NL91ABNA04171643000", "iban: wrong length for its country"),
    ("iban", "BE68539007547034000", "iban: wrong length for its country"),
    ("iban", "XX91ABNA0417164300", "iban: country code is not in the IBAN registry"),
    ("iban", "9191ABNA0417164300", "iban: must start with a two-letter country code"),
    ("iban", "NLAAABNA0417164300", "iban: must start with a two-letter country code"),
    ("iban", "NL91ABNA0417_164300", "iban: may only contain letters A-Z and digits"),
    ("iban", "NL91ÄBNA0417164300", "iban: may only contain letters A-Z and digits"),
    # NL97ABNA0000000075 is valid; 00 == 97 (mod 97) would pass the remainder test alone.
    ("iban", "NL00ABNA0000000075", "iban: check digits out of range"),
    ("iban", "NL01ABNA0000000057", "iban: check digits out of range"),
    ("ip", "256.1.1.1", "ip: not a valid IPv4 or IPv6 address"),
    ("ip", "010.0.0.1", "ip: not a valid IPv4 or IPv6 address"),  # ambiguous octal
    ("ip", "1.2.3", "ip: not a valid IPv4 or IPv6 address"),
    ("ip", "2001:db8:::1", "ip: not a valid IPv4 or IPv6 address"),
    ("mac", "00:1a:2b:3c:4d", "mac: expected six hexadecimal octets"),
    ("mac", "00:1a:2b:3c:4d:5e:6f", "mac: expected six hexadecimal octets"),
    ("mac", "00:1a-2b:3c:4d:5e", "mac: expected six hexadecimal octets"),  # mixed separators
    ("mac", "00:1a:2b:3c:4d:5g", "mac: expected six hexadecimal octets"),
    ("mac", "001a2b3c4d5", "mac: expected six hexadecimal octets"),
    ("kvk", "1234567", "kvk: must be exactly 8 digits"),
    ("kvk", "123456789", "kvk: must be exactly 8 digits"),
    ("kvk", "1234-5678", "kvk: must be exactly 8 digits"),
    ("kvk", "KVK12345678", "kvk: must be exactly 8 digits"),
    ("kvk", "١٢٣٤٥٦٧٨", "kvk: must be exactly 8 digits"),  # Arabic-Indic digits
    ("customer_number", "C-100\x0023", "customer_number: contains a control character"),
    ("username", "jan\njansen", "username: contains a control character"),
    ("cookie_id", "abc\x1b[31m", "cookie_id: contains a control character"),
    ("cookie_id", "abc\x7fdef", "cookie_id: contains a control character"),
    ("email", "jan\t@example.nl", "email: contains a control character"),
    ("username", "jan\ud800", "username: not valid Unicode (lone surrogate)"),
]

# A canary pushed through a refusal of every type; none of these may appear in any output.
CANARY_REFUSALS = [
    ("email", "canary@@example.invalid"),
    ("email", "canary example.invalid"),
    ("phone", CANARY),
    ("iban", CANARY),
    ("iban", "NL92CANA0417164300"),
    ("ip", CANARY),
    ("mac", CANARY),
    ("kvk", CANARY),
    ("customer_number", "canary\x00example.invalid"),
    ("username", "canary\nexample.invalid"),
    ("cookie_id", "canary\x1bexample.invalid"),
    ("loyalty_card", "canary\x07example.invalid"),
]


def _ids(cases: Sequence[tuple[str, ...]]) -> list[str]:
    return [f"{case[0]}:{case[1]!r}" for case in cases]


class TestTypeNames:
    def test_known_types_are_the_documented_set(self) -> None:
        assert {
            "email",
            "phone",
            "customer_number",
            "username",
            "iban",
            "ip",
            "cookie_id",
            "kvk",
            "mac",
        } == KNOWN_TYPES

    @pytest.mark.parametrize("name", [*sorted(KNOWN_TYPES), "loyalty_card", "a", "x" * 32, "v2"])
    def test_known_and_custom_names_are_returned_unchanged(self, name: str) -> None:
        assert validate_type(name) == name

    @pytest.mark.parametrize(
        "name",
        ["", "Email", "e-mail", "1email", "_email", "x" * 33, "em ail", "émail", "email\n"],
    )
    def test_bad_names_are_refused(self, name: str) -> None:
        with pytest.raises(InvalidIdentifierError, match="is not a valid type name"):
            validate_type(name)

    def test_a_mistyped_name_is_named_in_the_message(self) -> None:
        with pytest.raises(InvalidIdentifierError, match=r"identifier type 'Email' is not"):
            validate_type("Email")

    def test_normalize_and_parse_refuse_bad_type_names(self) -> None:
        with pytest.raises(InvalidIdentifierError, match="not a valid type name"):
            normalize("E-Mail", "jan@example.nl")
        with pytest.raises(InvalidIdentifierError, match="not a valid type name"):
            Identifier.parse("E-Mail", "jan@example.nl")

    @pytest.mark.parametrize(
        ("name", "meant"),
        [
            ("emial", "email"),
            ("e_mail", "email"),
            ("emails", "email"),
            ("email2", "email"),
            ("mail", "email"),
            ("email_address", "email"),
            ("ibna", "iban"),
            ("phone_number", "phone"),
            ("phonenumber", "phone"),
            ("telephone", "phone"),
            ("user_name", "username"),
            ("cookie", "cookie_id"),
            ("cookieid", "cookie_id"),
            ("customer_nr", "customer_number"),
            ("ip_address", "ip"),
            ("mac_address", "mac"),
            ("kvk_number", "kvk"),
        ],
    )
    def test_a_new_identifier_whose_custom_type_looks_like_a_known_one_is_refused(
        self, name: str, meant: str
    ) -> None:
        """It would be normalised as an opaque key (no lower-casing, no E.164 ...) and so
        never match what the reconciler finds under the known type: refused on input."""
        assert near_miss(name) == meant
        with pytest.raises(
            InvalidIdentifierError,
            match=rf"^identifier type '{name}' is not a known type \(did you mean '{meant}'\? "
            r"a custom type must not look like a known one\)$",
        ):
            Identifier.parse(name, "jan@example.nl")

    @pytest.mark.parametrize(
        "name",
        ["loyalty_card", "ticket_no", "order_id", "customer_id", "bban", "bsn", "imei", "passport_no",
         "device_id", "ipv6"],
    )
    def test_legitimate_custom_types_are_no_near_miss(self, name: str) -> None:
        assert near_miss(name) is None
        assert Identifier.parse(name, " Gold 0042 ") == Identifier(name, "Gold 0042")

    @pytest.mark.parametrize("name", sorted(KNOWN_TYPES))
    def test_known_types_are_no_near_miss(self, name: str) -> None:
        assert near_miss(name) is None

    def test_stored_identifiers_with_a_near_miss_type_are_still_read(self) -> None:
        """Entries sealed before the check stay readable: the constructor (what the ledger
        uses to rebuild stored identifiers) and normalize (what the reconciler uses) accept
        the name; only Identifier.parse, the input path, refuses it."""
        assert Identifier("emial", "x@example.nl").type == "emial"
        assert normalize("emial", " X@example.nl ") == "X@example.nl"

    def test_invalid_identifier_error_is_a_usage_error_with_exit_code_2(self) -> None:
        assert issubclass(InvalidIdentifierError, UsageError)
        assert InvalidIdentifierError.exit_code == 2


class TestNormalize:
    @pytest.mark.parametrize(("id_type", "raw", "expected"), ACCEPTED, ids=_ids(ACCEPTED))
    def test_accepted_forms_reach_the_normal_form(
        self, id_type: str, raw: str, expected: str
    ) -> None:
        assert normalize(id_type, raw) == expected

    @pytest.mark.parametrize(("id_type", "raw", "expected"), ACCEPTED, ids=_ids(ACCEPTED))
    def test_normalisation_is_idempotent(self, id_type: str, raw: str, expected: str) -> None:
        once = normalize(id_type, raw)
        assert normalize(id_type, once) == once

    @pytest.mark.parametrize(("id_type", "raw", "message"), REFUSED, ids=_ids(REFUSED))
    def test_refusals_name_the_type_and_the_reason(
        self, id_type: str, raw: str, message: str
    ) -> None:
        with pytest.raises(InvalidIdentifierError) as excinfo:
            normalize(id_type, raw)
        assert str(excinfo.value).startswith(message)

    @pytest.mark.parametrize("id_type", [*sorted(KNOWN_TYPES), "loyalty_card"])
    @pytest.mark.parametrize("raw", ["", "   ", "\n\t "])
    def test_empty_values_are_refused_for_every_type(self, id_type: str, raw: str) -> None:
        with pytest.raises(InvalidIdentifierError, match=f"^{id_type}: empty value$"):
            normalize(id_type, raw)

    @pytest.mark.parametrize("id_type", ["customer_number", "phone"])
    def test_a_non_string_value_is_refused(self, id_type: str) -> None:
        with pytest.raises(InvalidIdentifierError, match=f"^{id_type}: value must be a string$"):
            normalize(id_type, 10023)  # type: ignore[arg-type]

    def test_every_known_type_has_an_accepted_case_and_a_refusal(self) -> None:
        assert {t for t, _, _ in ACCEPTED} >= KNOWN_TYPES
        assert {t for t, _, _ in REFUSED} >= KNOWN_TYPES


class TestEmail:
    def test_local_part_is_lower_cased_like_real_mail_systems_do(self) -> None:
        assert normalize("email", "Jan.Jansen@example.nl") == normalize(
            "email", "jan.jansen@EXAMPLE.nl"
        )

    def test_unicode_domain_and_its_ace_form_are_one_identifier(self) -> None:
        assert normalize("email", "info@xn--bcher-kva.de") == normalize("email", "info@Bücher.de")

    def test_idna2008_only_label_is_decoded_too(self) -> None:
        assert normalize("email", "info@xn--strae-oqa.de") == "info@straße.de"

    def test_undecodable_ace_label_is_kept_as_written(self) -> None:
        assert normalize("email", "info@xn--.de") == "info@xn--.de"

    def test_composed_and_decomposed_accents_are_one_identifier(self) -> None:
        composed = normalize("email", "José@Bloemen.nl")
        decomposed = normalize("email", "Jose\u0301@Bloemen.nl")
        assert composed == decomposed == "josé@bloemen.nl"
        assert unicodedata.is_normalized("NFC", composed)


class TestPhone:
    def test_default_region_reads_national_numbers(self) -> None:
        assert normalize("phone", "012 34 56 78", default_region="BE") == "+3212345678"
        assert normalize("phone", "020 7946 0958", default_region="GB") == "+442079460958"

    def test_default_region_is_case_insensitive(self) -> None:
        assert normalize("phone", "0416-853988", default_region="nl") == "+31416853988"

    def test_a_refusal_names_the_region_of_the_country_code_not_the_default(self) -> None:
        with pytest.raises(
            InvalidIdentifierError, match=r"^phone: not a valid number for region GB$"
        ):
            normalize("phone", "+44 99 1234 5678")

    def test_numbers_with_a_country_code_ignore_the_default_region(self) -> None:
        assert normalize("phone", "+31 416 853 988", default_region="DE") == "+31416853988"

    @pytest.mark.parametrize("region", ["XX", "", "Netherlands", "31"])
    def test_an_unsupported_default_region_is_refused(self, region: str) -> None:
        with pytest.raises(
            InvalidIdentifierError, match=r"^phone: default region is not a supported ISO 3166"
        ):
            normalize("phone", "0416-853988", default_region=region)


class TestIban:
    def test_check_digits_00_would_pass_mod_97_alone(self) -> None:
        # Documents why the range check exists: 00 and 97 are congruent modulo 97.
        valid = "NL97ABNA0000000075"
        assert normalize("iban", valid) == valid
        forged = "NL00ABNA0000000075"
        rearranged = forged[4:] + forged[:4]
        assert int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
        with pytest.raises(InvalidIdentifierError, match=r"^iban: check digits out of range$"):
            normalize("iban", forged)

    @pytest.mark.parametrize(
        "raw",
        ["NL91ABNA0417164300", "NL91 ABNA 0417 1643 00", "nl91abna0417164300", "NL91\u00a0ABNA"],
    )
    def test_separators_and_case_do_not_matter(self, raw: str) -> None:
        if raw.endswith("ABNA"):
            raw += "\u00a00417\u00a01643\u00a000"  # non-breaking spaces, as pasted from PDFs
        assert normalize("iban", raw) == "NL91ABNA0417164300"


class TestIp:
    def test_ipv4_mapped_ipv6_matches_the_ipv4_address(self) -> None:
        assert normalize("ip", "::FFFF:C000:0207") == normalize("ip", "192.0.2.7")

    def test_ipv6_is_compressed_and_lower_case(self) -> None:
        assert normalize("ip", "FE80:0:0:0:0:0:0:1") == "fe80::1"


class TestOpaqueKeys:
    def test_case_is_significant_for_customer_numbers_and_cookie_ids(self) -> None:
        assert normalize("customer_number", "AbC123") != normalize("customer_number", "abc123")
        assert normalize("cookie_id", "AbC123") != normalize("cookie_id", "abc123")

    def test_usernames_in_any_unicode_composition_are_one_key(self) -> None:
        assert normalize("username", "müller") == normalize("username", "mu\u0308ller")
        assert normalize("username", "Müller") != normalize("username", "müller")

    def test_inner_whitespace_is_kept(self) -> None:
        assert normalize("customer_number", " A 1 ") == "A 1"

    def test_custom_types_follow_the_opaque_rule(self) -> None:
        assert normalize("profile_name", "  Jose\u0301 Bloemen ") == "José Bloemen"


class TestIdentifier:
    def test_parse_validates_the_type_and_normalises_the_value(self) -> None:
        ident = Identifier.parse("phone", "0416-853988")
        assert ident == Identifier(type="phone", value="+31416853988")

    def test_parse_passes_the_default_region(self) -> None:
        ident = Identifier.parse("phone", "020 7946 0958", default_region="GB")
        assert ident.value == "+442079460958"

    def test_parse_refuses_what_normalize_refuses(self) -> None:
        with pytest.raises(InvalidIdentifierError, match=r"^iban: checksum does not match$"):
            Identifier.parse("iban", "NL92ABNA0417164300")

    def test_constructor_refuses_a_bad_type_name(self) -> None:
        with pytest.raises(InvalidIdentifierError, match="not a valid type name"):
            Identifier(type="E-mail", value="jan@example.nl")

    def test_constructor_refuses_non_strings(self) -> None:
        with pytest.raises(TypeError, match="must be strings"):
            Identifier(type="email", value=None)  # type: ignore[arg-type]

    def test_constructor_trusts_an_already_normalised_value(self) -> None:
        # The ledger rebuilds sealed identifiers with the constructor; a later rule change
        # (or a phonenumbers metadata update) must not make an old entry unreadable.
        assert Identifier(type="phone", value="+31990000000").value == "+31990000000"

    def test_is_frozen_hashable_and_ordered_by_type_then_value(self) -> None:
        a = Identifier.parse("email", "b@example.nl")
        b = Identifier.parse("email", "a@example.nl")
        c = Identifier.parse("customer_number", "Z9")
        assert sorted([a, b, c]) == [c, b, a]
        assert len({a, Identifier.parse("email", "B@Example.NL")}) == 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            a.value = "x@example.nl"  # type: ignore[misc]

    def test_repr_and_str_redact_the_value(self) -> None:
        ident = Identifier.parse("email", "jan@example.nl")
        assert repr(ident) == "Identifier(type='email', value=<redacted>)"
        assert str(ident) == "email:<redacted>"
        assert "jan" not in f"{ident} {ident!r} {[ident]!r} {(ident,)}"


class TestFindEmails:
    def test_finds_normalised_addresses_once_in_order(self) -> None:
        text = "Mail José@Bloemen.nl or <info@example.com>; again: jose\u0301@bloemen.NL."
        assert find_emails(text) == ["josé@bloemen.nl", "info@example.com"]

    def test_strips_surrounding_punctuation(self) -> None:
        text = "('o'brien@example.ie'), mailto:jan@example.nl. ...piet@example.nl"
        assert find_emails(text) == ["o'brien@example.ie", "jan@example.nl", "piet@example.nl"]

    def test_decodes_ace_domains_like_normalize(self) -> None:
        assert find_emails("info@xn--bcher-kva.de") == ["info@bücher.de"]

    def test_ignores_text_without_addresses(self) -> None:
        assert find_emails("no address here, just @mentions and a@b") == []
        assert find_emails("") == []

    def test_is_fast_on_long_pathological_input(self) -> None:
        assert find_emails("a!" * 50_000 + "@") == []


class TestFindPhones:
    def test_finds_e164_numbers_once_in_order(self) -> None:
        text = "Bel 0416-853988 of +31 6 12345678; fax (0416) 85 39 88."
        assert find_phones(text) == ["+31416853988", "+31612345678"]

    def test_uses_the_default_region_for_national_numbers(self) -> None:
        assert find_phones("call 020 7946 0958 today", default_region="GB") == ["+442079460958"]

    def test_skips_invalid_numbers(self) -> None:
        assert find_phones("order 123, +31 99 123 4567") == []

    def test_refuses_an_unsupported_default_region(self) -> None:
        with pytest.raises(InvalidIdentifierError, match=r"^phone: default region"):
            find_phones("0416-853988", default_region="XX")


class TestFindIbans:
    def test_finds_grouped_and_compact_ibans(self) -> None:
        text = "IBAN: NL91 ABNA 0417 1643 00, en BE68539007547034."
        assert find_ibans(text) == ["NL91ABNA0417164300", "BE68539007547034"]

    def test_finds_adjacent_ibans_and_stops_at_the_country_length(self) -> None:
        text = "NL91 ABNA 0417 1643 00 BE68 5390 0754 7034 DE89-3704-0044-0532-0130-00 AND MORE"
        assert find_ibans(text) == [
            "NL91ABNA0417164300",
            "BE68539007547034",
            "DE89370400440532013000",
        ]

    def test_lower_case_ibans_are_found_and_upper_cased(self) -> None:
        assert find_ibans("rekening nl91abna0417164300") == ["NL91ABNA0417164300"]

    def test_skips_bad_checksums_longer_tokens_and_unknown_countries(self) -> None:
        text = "NL92ABNA0417164300 NL91ABNA04171643001 XNL91ABNA0417164300 XX91ABNA0417164300"
        assert find_ibans(text) == []

    def test_each_iban_is_reported_once(self) -> None:
        assert find_ibans("NL91ABNA0417164300 / NL91 ABNA 0417 1643 00") == ["NL91ABNA0417164300"]


class TestCandidateTokens:
    def test_splits_on_whitespace_and_hard_delimiters(self) -> None:
        tokens = candidate_tokens('klant "C-10023", (jdoe); [GA1.2.AbC==] <x>|y!z?')
        assert {"klant", "C-10023", "jdoe", "GA1.2.AbC==", "x", "y", "z"} <= tokens

    def test_trims_sentence_punctuation_but_keeps_the_raw_token(self) -> None:
        tokens = candidate_tokens("Mijn klantnummer is C-10023.")
        assert {"C-10023", "C-10023."} <= tokens

    def test_keeps_ip_addresses_whole(self) -> None:
        tokens = candidate_tokens("from 2001:db8::1 and 192.168.0.1, mac 00:1a:2b:3c:4d:5e")
        assert {"2001:db8::1", "192.168.0.1", "00:1a:2b:3c:4d:5e"} <= tokens

    def test_splits_key_value_pairs_and_urls_into_parts_too(self) -> None:
        tokens = candidate_tokens("uid=jdoe kvk:12345678 https://shop.nl/account?id=K9&ref=mail")
        assert {"uid=jdoe", "jdoe", "kvk:12345678", "12345678", "K9", "shop.nl"} <= tokens

    def test_keeps_case_and_composes_unicode(self) -> None:
        tokens = candidate_tokens("gebruiker Mu\u0308ller")
        assert "Müller" in tokens
        assert "müller" not in tokens

    def test_drops_punctuation_only_tokens(self) -> None:
        assert candidate_tokens(" -- ... :: == ") == set()

    def test_tokens_match_the_normal_form_of_opaque_types(self) -> None:
        assert normalize("customer_number", " C-10023 ") in candidate_tokens("ref C-10023.")
        assert normalize("username", "mu\u0308ller") in candidate_tokens("user: müller")


class TestCanary:
    """No refusal, repr or traceback ever contains the identifier value."""

    @pytest.mark.parametrize(("id_type", "raw"), CANARY_REFUSALS, ids=_ids(CANARY_REFUSALS))
    def test_refusal_messages_and_tracebacks_never_contain_the_value(
        self, id_type: str, raw: str
    ) -> None:
        with pytest.raises(InvalidIdentifierError) as excinfo:
            normalize(id_type, raw)
        rendered = "".join(traceback.format_exception(excinfo.value))
        for text in (str(excinfo.value), repr(excinfo.value), rendered):
            assert "canary" not in text.lower()
            assert raw not in text
        # from None: a library message quoting the value (ipaddress does) is not chained.
        assert excinfo.value.__cause__ is None
        assert excinfo.value.__context__ is None or excinfo.value.__suppress_context__

    @pytest.mark.parametrize(("id_type", "raw", "message"), REFUSED, ids=_ids(REFUSED))
    def test_no_refusal_quotes_its_value(self, id_type: str, raw: str, message: str) -> None:
        with pytest.raises(InvalidIdentifierError) as excinfo:
            Identifier.parse(id_type, raw)
        rendered = "".join(traceback.format_exception(excinfo.value))
        assert raw.strip() not in rendered

    @pytest.mark.parametrize("name", [CANARY, "0612345678", "canary example", "canary\n"])
    def test_a_value_passed_as_type_name_is_not_echoed(self, name: str) -> None:
        with pytest.raises(InvalidIdentifierError) as excinfo:
            normalize(name, "email")
        assert "canary" not in str(excinfo.value)
        assert "0612345678" not in str(excinfo.value)

    @pytest.mark.parametrize(
        ("id_type", "raw"),
        [("email", CANARY), ("customer_number", CANARY), ("username", "canary")],
    )
    def test_repr_and_str_of_an_identifier_never_contain_the_value(
        self, id_type: str, raw: str
    ) -> None:
        ident = Identifier.parse(id_type, raw)
        assert ident.value == raw
        for text in (repr(ident), str(ident), f"{ident}", f"{ident!r}", repr([ident])):
            assert "canary" not in text
