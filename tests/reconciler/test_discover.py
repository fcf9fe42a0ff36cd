"""discover guesses identifier columns from their names and from a sample of their values,
and says in a YAML comment what each guess rests on (counts, never a value)."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from reconciler.datamap import DataMap
from reconciler.discover import discover, value_guess
from tests.reconciler.conftest import ERASE_JAN, load
from tests.reconciler.test_cli import common, invoke, make_files


def test_sampled_values_reveal_e_mail_phone_and_iban_columns() -> None:
    guesses = [value_guess(["jan@example.nl", " Piet@Example.NL ", "x@y.org"]),
               value_guess(["0416-853988", "+31 20 123 4567", "06 12345678"]),
               value_guess(["NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"])]
    assert [g.comment() if g else None for g in guesses] == [
        "guess: 3 of 3 sampled values look like e-mail addresses",
        "guess: 3 of 3 sampled values look like phone numbers",
        "guess: 2 of 2 sampled values look like IBANs"]


def test_free_text_and_other_values_are_not_identifier_columns() -> None:
    # a complaint that mentions an address is free text, not an e-mail column
    assert value_guess(["call me at jan@example.nl", "late delivery", "ok"]) is None
    assert value_guess(["Dorpsstraat 1, Oss", "2024-01-01", "12345678"]) is None
    assert value_guess(["a@b.nl", "c@d.nl", "e@f.nl", "no", "nope"]) is None  # 3 of 5 < 80 %
    assert value_guess([]) is None


def test_discover_adds_and_explains_columns_found_by_their_values(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    md = sa.MetaData()
    sa.Table("clients", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("contact", sa.String(120)), sa.Column("remark", sa.Text))
    sa.Table("bookings", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("client_id", sa.Integer, sa.ForeignKey("clients.id")),
             sa.Column("rekening", sa.String(34)), sa.Column("room", sa.String(10)))
    sa.Table("callbacks", md, sa.Column("nummer", sa.String(40)), sa.Column("at", sa.Date))
    load(url, md, {
        "clients": [{"id": 1, "contact": "jan@example.nl", "remark": "mail jan@example.nl"},
                    {"id": 2, "contact": "Piet@Example.nl", "remark": "prefers phone"}],
        "bookings": [{"id": 1, "client_id": 1, "rekening": "NL91ABNA0417164300", "room": "12"}],
        "callbacks": [{"nummer": "0416-853988"}, {"nummer": "+31 20 123 4567"}]})

    text = discover(url, "clients")
    assert "    email: contact  # guess: 2 of 2 sampled values look like e-mail addresses\n" in text
    assert "      rekening: redact  # guess: 1 of 1 sampled values look like IBANs\n" in text
    assert "      phone: nummer  # guess: 2 of 2 sampled values look like phone numbers\n" in text
    assert "room" not in text  # a room number is nothing personal
    assert "jan@example" not in text.lower()  # never a value
    assert "853988" not in text
    data_map = DataMap.from_text(text)
    assert data_map.subject.match == (("email", "contact"),)
    assert data_map.table("callbacks").match == (("phone", "nummer"),)


def test_sentences_that_contain_a_phone_number_are_free_text_not_a_phone_column(
        tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    md = sa.MetaData()
    sa.Table("clients", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("email", sa.String(120)))
    sa.Table("notes", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("client_id", sa.Integer, sa.ForeignKey("clients.id")),
             sa.Column("tekst", sa.Text))
    sa.Table("calls", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("tekst", sa.Text))
    sentences = [f"Bel me terug op 06 1234 56{n:02d} na vijven" for n in range(25)]
    load(url, md, {"clients": [{"id": 1, "email": "jan@example.nl"}],
                   "notes": [{"id": n, "client_id": 1, "tekst": t} for n, t in enumerate(sentences)],
                   "calls": [{"id": n, "tekst": t} for n, t in enumerate(sentences)]})

    guess = value_guess(sentences)
    assert guess is not None
    assert guess.comment() == ("guess: personal free text: 25 of 25 sampled values contain "
                               "phone numbers")
    text = discover(url, "clients")
    assert ("      tekst: redact  # guess: personal free text: 25 of 25 sampled values "
            "contain phone numbers\n") in text
    assert "phone: tekst" not in text  # not matched on as an identifier column
    assert "calls" not in text  # nothing to match its rows on
    assert "1234" not in text
    DataMap.from_text(text)


def test_every_spelling_of_an_e_mail_address_counts_as_one() -> None:
    # The ledger decodes an ACE domain (xn--...) and composes accents: the sampled value's
    # own normal form is what counts, not how it is spelt.
    values = ["jan@example.nl", "Piet@Example.NL", "KLAAS@XN--BCHER-KVA.EXAMPLE",
              "els@xn--bcher-kva.example", "Anne@Bücher.example", "Jo\u0308rg@example.de",
              "  wim@example.nl "]
    guess = value_guess(values)
    assert guess is not None
    assert guess.comment() == "guess: 7 of 7 sampled values look like e-mail addresses"
    # a value with more than the address in it is still only free text that contains one
    wrapped = value_guess(["<jan@example.nl>", "mailto:piet@example.nl", "Jan <k@example.nl>"])
    assert wrapped is not None
    assert wrapped.free_text


def test_dutch_column_names_are_recognised(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    md = sa.MetaData()
    sa.Table("klanten", md, sa.Column("klantnummer", sa.String(20), primary_key=True),
             sa.Column("emailadres", sa.String(120)), sa.Column("telefoonnummer", sa.String(40)),
             sa.Column("voornaam", sa.String(40)), sa.Column("achternaam", sa.String(40)),
             sa.Column("geboortedatum", sa.Date), sa.Column("bestandsnaam", sa.String(80)),
             sa.Column("klant_nr", sa.String(20)))
    load(url, md, {})

    text = discover(url, "klanten")
    data_map = DataMap.from_text(text)
    assert data_map.subject.match == (("email", "emailadres"), ("phone", "telefoonnummer"),
                                      ("customer_number", "klant_nr"))
    assert [c for c, _ in data_map.subject.columns] == [
        "emailadres", "telefoonnummer", "voornaam", "achternaam", "geboortedatum", "klant_nr"]


ODD = ["Straßen-Log", "e-mail", "straße", "klant nummer", "2fa", "a: b", "#nr", "- x",
       "{x}", "[y]", 'zeg "hoi"', "50% korting", "x :y", "yes", "null", "on", "é", "back\\slash",
       "comma, here", "order", "Ünïcödé naam"]


def test_the_draft_loads_whatever_the_names(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/odd.db"
    md = sa.MetaData()
    subject = sa.Table("klant: gegevens", md,
                       sa.Column("klant nummer", sa.Integer, primary_key=True),
                       sa.Column("e-mail", sa.String(120)),
                       *(sa.Column(name, sa.String(40)) for name in ODD
                         if name not in ("klant nummer", "e-mail")))
    for name in ODD:  # a child table per odd name, linked on an odd column
        sa.Table(name, md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column(f"{name} ref", sa.Integer, sa.ForeignKey(subject.c["klant nummer"])),
                 sa.Column("naam", sa.String(40)))
    sa.Table("nieuws brief", md, sa.Column("E-Mail", sa.String(120)))
    load(url, md, {"klant: gegevens": [{"klant nummer": 1, "e-mail": "jan@example.nl"}],
                   "nieuws brief": [{"E-Mail": "jan@example.nl"}]})

    text = discover(url, "klant: gegevens")

    data_map = DataMap.from_text(text)
    assert data_map.subject.name == "klant: gegevens"
    assert data_map.subject.key == ("klant nummer",)
    assert data_map.subject.match == (("email", "e-mail"),)
    assert {t.name for t in data_map.tables} == {*ODD, "nieuws brief"}
    for name in ODD:
        link = data_map.table(name).link
        assert link is not None
        assert link.on == ((f"{name} ref", "klant nummer"),)
    assert data_map.table("nieuws brief").match == (("email", "E-Mail"),)


def test_names_no_data_map_can_hold_are_left_out_and_listed(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/odd.db"
    md = sa.MetaData()
    sa.Table("klanten", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("email", sa.String(120)), sa.Column("naam\t", sa.String(40)))
    sa.Table("bestel\nregels", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("klant_id", sa.Integer, sa.ForeignKey("klanten.id")))
    sa.Table("notities", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("klant\u200bid", sa.Integer, sa.ForeignKey("klanten.id")))
    load(url, md, {})

    text = discover(url, "klanten")

    assert ("# Left out, a data map cannot name it: column klanten.'naam\\u0009': a column name "
            "cannot contain a control or invisible character (U+0009 at character 5)\n") in text
    assert ("# Left out, a data map cannot name it: table 'bestel\\u000aregels': a table name "
            "cannot contain a control or invisible character (U+000A at character 7)\n") in text
    data_map = DataMap.from_text(text)
    assert [t.name for t in data_map.tables] == []  # notities' only link is unnameable
    assert [c for c, _ in data_map.subject.columns] == ["email"]


def test_a_subject_without_identifier_columns_still_drafts_a_map_that_loads(
        tmp_path: Path) -> None:
    # no column is an identifier by name or by value: the key stands in under a type no
    # ledger entry has, so the map loads and a run finds nobody until a person names them
    url = f"sqlite:///{tmp_path}/shop.db"
    md = sa.MetaData()
    sa.Table("leden", md, sa.Column("nr", sa.Integer, primary_key=True),
             sa.Column("geboortedatum", sa.Date), sa.Column("score", sa.Integer))
    sa.Table("bezoeken", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("lid_nr", sa.Integer, sa.ForeignKey("leden.nr")),
             sa.Column("dag", sa.Date))
    load(url, md, {"leden": [{"nr": 1, "score": 3}], "bezoeken": [{"id": 1, "lid_nr": 1}]})

    text = discover(url, "leden")

    assert "  identifiers: {none_found: nr}\n" in text
    assert "  action: delete  # guess: or anonymize, with the columns below\n" in text
    assert "  #   geboortedatum: year  # guess: looks personal\n" in text
    data_map = DataMap.from_text(text)
    assert data_map.subject.match == (("none_found", "nr"),)
    assert data_map.subject.action == "delete"
    assert data_map.subject.columns == ()

    files = make_files(tmp_path, [ERASE_JAN])
    map_path = Path(files[2])
    map_path.write_text(text, encoding="utf-8")
    result = invoke("plan", *common(url, files), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert "identifier type 'none_found' is used by no ledger entry" in report["warnings"]
    assert report["totals"]["rows_changed"] == 0  # nobody is found by the stand-in


def test_a_subject_with_nothing_personal_still_drafts_a_map_that_loads(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    md = sa.MetaData()
    sa.Table("accounts", md, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("plan", sa.String(10)))
    load(url, md, {"accounts": [{"id": 1, "plan": "gold"}]})

    text = discover(url, "accounts")

    assert "  # columns:  # for anonymize: every identifier column (nothing else looked " \
           "personal)\n" in text
    data_map = DataMap.from_text(text)
    assert (data_map.subject.match, data_map.subject.columns) == ((("none_found", "id"),), ())
