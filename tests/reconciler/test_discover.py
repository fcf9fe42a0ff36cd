"""discover guesses identifier columns from their names and from a sample of their values,
and says in a YAML comment what each guess rests on (counts, never a value)."""

from __future__ import annotations

import sqlalchemy as sa

from reconciler.datamap import DataMap
from reconciler.discover import discover, value_guess
from tests.reconciler.conftest import load


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
