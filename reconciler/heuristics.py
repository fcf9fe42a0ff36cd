"""Guess from a column's name what personal data it holds (for discover and the scan).

Names are split into words (``klant_nummer``, ``KlantNummer``, ``klant nummer`` and
``klant-nummer`` are the words *klant* and *nummer*), and whole words are compared with
English, Dutch and German vocabularies; two or three neighbouring words are also tried joined
(*e* + *mail*, *date* + *of* + *birth*). A word never matches because it merely contains a
short one: ``hotel`` is not a phone (*tel*), ``page`` is not an age, ``bestandsnaam`` (file
name) is not a person's *naam*. Dutch and German glue words together, so the common compounds
are listed (``achternaam``, ``telefoonnummer``, ``geburtsdatum``), and a few long, unambiguous
parts count wherever they stand (``factuuradres``, ``geboorteplaats``).

Left out on purpose: no database access; names only. Guesses are for a person to review.
"""

from __future__ import annotations

import functools
import re

# identifier type -> whole words (after lower-casing; compounds written without separators)
IDENTIFIER_WORDS: dict[str, frozenset[str]] = {
    "email": frozenset({
        "email", "emails", "emailaddress", "emailaddr", "mailaddress", "emailadres", "mailadres",
        "emailadresse", "mailadresse"}),
    "phone": frozenset({
        "phone", "phonenumber", "phoneno", "telephone", "telephonenumber", "tel", "telno",
        "telnr", "mobile", "mobilephone", "mobilenumber", "mobileno", "mobilenr", "cellphone",
        "gsm", "fax", "telefoon", "telefoonnummer", "telefoonnr", "mobiel", "mobielnummer",
        "mobieltje", "faxnummer", "telefon", "telefonnummer", "handy", "handynummer", "mobilnummer"}),
    "iban": frozenset({
        "iban", "bankaccount", "accountnumber", "accountno", "rekeningnummer", "rekeningnr",
        "bankrekening", "bankrekeningnummer", "kontonummer", "bankkonto"}),
    "customer_number": frozenset({
        "customerno", "customernr", "customernum", "customernumber", "custno", "custnr",
        "custnum", "custnumber", "clientno", "clientnr", "clientnumber", "klantnummer",
        "klantnr", "klantno", "debiteurnummer", "kundennummer", "kundennr"}),
    "username": frozenset({
        "username", "login", "loginname", "gebruikersnaam", "inlognaam", "benutzername"}),
    "ip": frozenset({"ip", "ipaddr", "ipaddress", "ipadres", "ipadresse", "ipv", "ipv4", "ipv6"}),
    "cookie_id": frozenset({"cookie", "cookies", "cookieid"}),
    "kvk": frozenset({
        "kvk", "kvknummer", "kvknr", "cocno", "cocnumber", "chamberofcommerce",
        "handelsregister", "handelsregisternummer"}),
    "mac": frozenset({"mac", "macaddr", "macaddress", "macadres", "macadresse"}),
}
PERSONAL_WORDS = frozenset({
    # English
    "name", "names", "firstname", "lastname", "fullname", "surname", "forename", "nickname",
    "middlename", "maidenname", "displayname", "profilename", "birth", "birthdate", "birthday",
    "birthplace", "dob", "dateofbirth", "gender", "sex", "address", "street", "streetname",
    "city", "town", "zip", "zipcode", "postcode", "postal", "postalcode", "house",
    "housenumber", "jobtitle", "age", "profile", "password", "passwd", "comment", "comments",
    "message", "messages", "note", "notes", "complaint", "complaints", "body", "remark",
    "remarks", "nationality", "passport", "ssn", "fname", "lname", "houseno",
    # Dutch
    "naam", "voornaam", "voornamen", "achternaam", "tussenvoegsel", "roepnaam", "voorletters",
    "initialen", "meisjesnaam", "geboortenaam", "klantnaam", "contactnaam", "contactpersoon",
    "profielnaam", "volledigenaam", "straat", "straatnaam", "huisnummer", "huisnr",
    "toevoeging", "woonplaats", "plaats", "stad", "adres", "geslacht", "leeftijd",
    "functietitel", "beroep", "wachtwoord", "opmerking", "opmerkingen", "notitie", "notities",
    "bericht", "berichten", "klacht", "klachten", "toelichting", "bsn", "burgerservicenummer",
    "paspoort", "paspoortnummer", "identiteitsbewijs", "nationaliteit",
    # German
    "vorname", "nachname", "familienname", "strasse", "straße", "hausnummer", "plz",
    "postleitzahl", "ort", "wohnort", "stadt", "adresse", "geschlecht", "alter", "beruf",
    "passwort", "kennwort", "kommentar", "bemerkung", "nachricht", "notiz", "beschwerde",
})
# Long parts of compounds that mean the same wherever they stand in a word (no short ones:
# "naam" would make "bestandsnaam", a file name, personal).
PERSONAL_SUFFIXES = ("address", "adres", "adresse", "telefoon", "straße", "strasse")
PERSONAL_PREFIXES = ("birth", "geboorte", "geburts")
# Whose or which one, glued to an identifier word: useremail, homephone, sessioncookie,
# klantemail. Only these: "microphone" (micro + phone) or "productnaam" stay what they are.
QUALIFIERS = (
    "user", "customer", "client", "contact", "member", "account", "home", "work", "office",
    "private", "business", "mobile", "cell", "primary", "secondary", "alt", "other", "main",
    "billing", "shipping", "invoice", "session", "login", "klant", "gebruiker", "prive",
    "werk", "zakelijk", "kunde", "kunden", "privat")
_PARTS = re.compile(r"[^\W\d_]+|\d+")  # runs of letters, runs of digits


def words(column: str) -> list[str]:
    """The words of a column name, lower-case: ``KlantNummer`` and ``klant-nummer`` alike.

    Returns:
        The words, in order.
    """
    out: list[str] = []
    for part in _PARTS.findall(column):
        start = 0
        for i in range(1, len(part)):
            # a new word: "klantNummer" (lower, Upper) and "IPAdres" (Upper, Upper lower)
            if part[i].isupper() and (part[i - 1].islower() or (
                    i + 1 < len(part) and part[i + 1].islower() and part[i - 1].isupper())):
                out.append(part[start:i].lower())
                start = i
        out.append(part[start:].lower())
    return out


def _candidates(column: str) -> list[str]:
    """The words, then each run of two and three neighbours joined (e+mail, date+of+birth),
    then each of those without a leading qualifier (useremail: email)."""
    parts = words(column)
    out = list(parts)
    for size in (2, 3):
        out += ["".join(parts[i:i + size]) for i in range(len(parts) - size + 1)]
    out += [word[len(q):] for word in list(out) for q in QUALIFIERS
            if word.startswith(q) and len(word) > len(q) + 2]
    return out


@functools.lru_cache(maxsize=4096)  # a snapshot has few column names; the scan asks per finding
def identifier_type(column: str) -> str | None:
    """The ledger identifier type a column name suggests, if any.

    Returns:
        A type name or None.
    """
    candidates = _candidates(column)
    for id_type, vocabulary in IDENTIFIER_WORDS.items():
        if any(word in vocabulary for word in candidates):
            return id_type
    return None


@functools.lru_cache(maxsize=4096)
def looks_personal(column: str) -> bool:
    """True when the name suggests personal data (an identifier or name, address, birth ...).

    Returns:
        Whether to flag the column.
    """
    if identifier_type(column) is not None:
        return True
    return any(word in PERSONAL_WORDS or word.endswith(PERSONAL_SUFFIXES)
               or word.startswith(PERSONAL_PREFIXES) for word in _candidates(column))


__all__ = ["IDENTIFIER_WORDS", "PERSONAL_WORDS", "identifier_type", "looks_personal", "words"]
