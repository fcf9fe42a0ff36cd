"""discover (and the scan) guess personal columns from their names, in English, Dutch and
German, word by word: a short word inside an unrelated longer one is no hit."""

from __future__ import annotations

import pytest

from reconciler.heuristics import identifier_type, looks_personal, words


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("KlantNummer", ["klant", "nummer"]),
        ("klant nummer", ["klant", "nummer"]),
        ("klant-nummer", ["klant", "nummer"]),
        ("IPAdres", ["ip", "adres"]),
        ("Straßen-Log", ["straßen", "log"]),
        ("address2", ["address", "2"]),
    ],
)
def test_a_name_is_split_into_lower_case_words(column: str, expected: list[str]) -> None:
    assert words(column) == expected


@pytest.mark.parametrize(
    ("column", "id_type"),
    [
        # English
        ("email", "email"), ("E_MAIL", "email"), ("emailAddress", "email"),
        ("phone_number", "phone"), ("mobile", "phone"), ("bank_account", "iban"),
        ("cust_no", "customer_number"), ("user_name", "username"), ("ip_address", "ip"),
        ("cookie_id", "cookie_id"), ("mac_addr", "mac"), ("chamber_of_commerce", "kvk"),
        # Dutch
        ("e-mail", "email"), ("emailadres", "email"), ("telefoon", "phone"),
        ("telefoonnummer", "phone"), ("mobiel", "phone"), ("klantnummer", "customer_number"),
        ("klant nummer", "customer_number"), ("gebruikersnaam", "username"),
        ("rekeningnummer", "iban"), ("IBAN", "iban"), ("kvk", "kvk"), ("kvk_nummer", "kvk"),
        ("ip-adres", "ip"),
        # German
        ("Telefonnummer", "phone"), ("Kundennummer", "customer_number"),
        ("Benutzername", "username"),
        # run together, with whose or which one in front (a qualifier)
        ("useremail", "email"), ("customeremail", "email"), ("emailaddr", "email"),
        ("klantemail", "email"), ("homephone", "phone"), ("telephonenumber", "phone"),
        ("mobileno", "phone"), ("userlogin", "username"), ("sessioncookie", "cookie_id"),
    ],
)
def test_identifier_columns_are_recognised_by_name(column: str, id_type: str) -> None:
    assert identifier_type(column) == id_type
    assert looks_personal(column)


@pytest.mark.parametrize(
    "column",
    [
        # English
        "name", "first_name", "lastName", "date_of_birth", "birthdate", "gender", "street",
        "billing_address", "shippingaddress", "zip_code", "city", "job_title", "age",
        "complaint",
        # Dutch
        "naam", "voornaam", "achternaam", "straat", "straatnaam", "huisnummer", "postcode",
        "woonplaats", "adres", "factuuradres", "geboortedatum", "geboorteplaats", "geslacht",
        "opmerking",
        # German
        "straße", "Strasse", "Geburtsdatum", "Vorname", "Nachname", "Hausnummer", "PLZ",
        "Wohnort", "Rechnungsadresse",
        # abbreviations
        "fname", "lname", "houseno",
    ],
)
def test_other_personal_columns_are_recognised_by_name(column: str) -> None:
    assert looks_personal(column)


@pytest.mark.parametrize(
    "column",
    [
        "hotel",  # not "tel"
        "page", "storage", "usage",  # not "age"
        "capacity", "velocity",  # not "city"
        "warehouse_id",  # not "house"
        "microphone", "automobile",  # not "phone", "mobile"
        "telling",  # Dutch "count", not "tel"
        "bestandsnaam", "productnaam", "aangenaam",  # not a person's "naam"
        "ordernummer", "besteld_op", "bedrag", "status", "zipped", "Straßen-Log",
        "userid", "sessionid", "mainpage", "workflow",  # a qualifier before no identifier
    ],
)
def test_a_short_word_inside_an_unrelated_one_is_no_hit(column: str) -> None:
    assert identifier_type(column) is None
    assert not looks_personal(column)
