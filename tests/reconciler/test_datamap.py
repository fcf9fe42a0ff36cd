"""The data map: every key is validated, and errors name file:line and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.datamap import DataMap, Link
from reconciler.errors import DataMapError
from reconciler.strategies import Fixed, Hash, Null, Redact, Year
from tests.reconciler.conftest import SHOP_MAP

MINIMAL = """\
version: 1
subject:
  table: customers
  key: id
  identifiers: {email: email}
  action: delete
"""


def test_the_shop_map_loads_into_frozen_models() -> None:
    data_map = DataMap.from_text(SHOP_MAP)
    assert data_map.subject.name == "customers"
    assert data_map.subject.key == ("id",)
    assert data_map.subject.match == (("email", "email"), ("phone", "phone"),
                                      ("customer_number", "cust_no"))
    assert dict(data_map.subject.columns) == {
        "email": Redact(), "phone": Null(), "cust_no": Hash(), "name": Fixed("Erased"),
        "birth_date": Year()}
    orders = data_map.table("orders")
    assert orders.link is not None
    assert orders.link.parent == "customers"
    assert orders.link.on == (("customer_id", "id"),)
    invoices = data_map.table("invoices")
    assert invoices.retain is not None
    assert (invoices.retain.years, invoices.retain.after) == (7, "invoice_date")
    assert data_map.table("newsletter").match == (("email", "address"),)
    assert [r.name for r in data_map.retention] == ["inactive-2y"]
    assert data_map.opt_outs[0].set == (("newsletter_opt_in", False),)
    assert data_map.opt_outs[1].delete
    assert len(data_map.sha256) == 64


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(MINIMAL.replace("action: delete", "action: erase"), encoding="utf-8")
    with pytest.raises(DataMapError) as excinfo:
        DataMap.load(path)
    assert str(excinfo.value) == (
        "shop.yaml:6: subject.action: unknown action 'erase' (expected delete, anonymize)")


def test_a_missing_file_is_a_data_map_error(tmp_path: Path) -> None:
    with pytest.raises(DataMapError, match=r"^nope.yaml: cannot read the data map"):
        DataMap.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(MINIMAL + "tables:\n  orders:\n    link: {parent: customers, on: {c: id}}\n"
                     "    action: erase\n",
                     "datamap.yaml:10: tables.orders.action: unknown action 'erase' "
                     "(expected delete, anonymize, retain)", id="unknown-action"),
        pytest.param("version: 1\nsubject: [\n", "datamap.yaml:3: invalid YAML", id="bad-yaml"),
        pytest.param("", "datamap.yaml: the data map is empty", id="empty"),
        pytest.param(MINIMAL.replace("version: 1", "version: 2"),
                     "datamap.yaml:1: version: unsupported data map version (expected 1)",
                     id="version"),
        pytest.param(MINIMAL + "colour: blue\n",
                     "datamap.yaml:7: colour: unknown key (expected one of: objects, "
                     "opt_outs, retention, subject, tables, version)", id="unknown-top-key"),
        pytest.param(MINIMAL.replace("  key: id\n", ""),
                     "datamap.yaml:3: subject.key: required key is missing", id="no-key"),
        pytest.param(MINIMAL.replace("{email: email}", "{e-mail: email}"),
                     "datamap.yaml:5: subject.identifiers.e-mail: not an identifier type",
                     id="bad-type"),
        pytest.param(MINIMAL.replace("action: delete", "action: anonymize"),
                     "datamap.yaml:6: subject.columns: action 'anonymize' needs the columns "
                     "to mask", id="anonymize-without-columns"),
        pytest.param(MINIMAL.replace("action: delete",
                                     "action: anonymize\n  columns: {name: null}"),
                     "datamap.yaml:7: subject.columns: identifier column 'email' (email) "
                     "must be masked too", id="identifier-left-unmasked"),
        pytest.param(MINIMAL.replace("action: delete",
                                     "action: anonymize\n  columns: {email: scramble}"),
                     "datamap.yaml:7: subject.columns.email: unknown strategy 'scramble' "
                     "(expected null, redact, hash, year or {fixed: VALUE})",
                     id="unknown-strategy"),
        pytest.param(MINIMAL + "tables:\n  orders:\n    action: delete\n",
                     "datamap.yaml:9: tables.orders: needs exactly one of 'link' (to a parent "
                     "table) or 'match' (identifier columns)", id="no-link-or-match"),
        pytest.param(MINIMAL + "tables:\n  orders:\n    link: {parent: shops, on: {s: id}}\n"
                     "    action: delete\n",
                     "datamap.yaml:9: tables.orders.link.parent: 'shops' is not the subject or "
                     "a mapped table", id="unknown-parent"),
        pytest.param(MINIMAL + "tables:\n  invoices:\n    link: {parent: customers, on: {c: id}}"
                     "\n    action: retain\n    retain: {years: 7, after: d}\n"
                     "    columns: {name: redact}\n",
                     "datamap.yaml:10: tables.invoices.action: rows are kept (retain) but "
                     "their parent 'customers' is deleted; anonymize 'customers' instead",
                     id="kept-child-of-deleted-parent"),
        pytest.param(MINIMAL + "tables:\n  invoices:\n    link: {parent: customers, on: {c: id}}"
                     "\n    action: retain\n    columns: {name: redact}\n",
                     "datamap.yaml:10: tables.invoices.retain: action 'retain' needs retain: "
                     "{years: N, after: COLUMN}", id="retain-without-period"),
        pytest.param(MINIMAL + "tables:\n  a:\n    link: {parent: b, on: {x: y}}\n"
                     "    action: delete\n  b:\n    link: {parent: a, on: {x: y}}\n"
                     "    action: delete\n",
                     "datamap.yaml:9: tables.a.link.parent: links form a cycle", id="cycle"),
        pytest.param(MINIMAL + "retention:\n  - name: old\n    column: last_seen\n    years: -2\n",
                     "datamap.yaml:10: retention[0].years: expected a positive whole number",
                     id="negative-years"),
        pytest.param(MINIMAL + "opt_outs:\n  - purpose: marketing\n    table: newsletter\n"
                     "    delete: true\n",
                     "datamap.yaml:9: opt_outs[0].table: 'newsletter' is not the subject or a "
                     "mapped table", id="opt-out-unmapped-table"),
        pytest.param(MINIMAL + "opt_outs:\n  - purpose: marketing\n    table: customers\n",
                     "datamap.yaml:8: opt_outs[0]: needs exactly one of 'set' or 'delete'",
                     id="opt-out-without-effect"),
    ],
)
def test_invalid_maps_name_line_and_key_path(text: str, message: str) -> None:
    with pytest.raises(DataMapError) as excinfo:
        DataMap.from_text(text)
    assert str(excinfo.value).startswith(message), str(excinfo.value)


def test_yaml_booleans_are_not_keys() -> None:
    # YAML 1.1 reads "on" as true; the link's "on:" key must still be "on".
    data_map = DataMap.from_text(MINIMAL + "tables:\n  orders:\n"
                                 "    link: {parent: customers, on: {customer_id: id}}\n"
                                 "    action: delete\n")
    link = data_map.table("orders").link
    assert link is not None
    assert link.on == (("customer_id", "id"),)


def test_where_names_the_line_of_the_closest_key() -> None:
    data_map = DataMap.from_text(SHOP_MAP)
    assert data_map.where("tables.orders.columns.shipping_address") == (
        "datamap.yaml:21: tables.orders.columns.shipping_address")
    assert data_map.where("tables.orders.columns.nope") == (
        "datamap.yaml:20: tables.orders.columns.nope")


REFERENCES = MINIMAL + """\
tables:
  rentals:
    link: {parent: customers, on: {customer_id: id}}
    action: delete
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(REFERENCES + "    on_reference: {payments: cascade}\n",
                     "datamap.yaml:11: tables.rentals.on_reference.payments: unknown choice "
                     "'cascade' (expected refuse, nullify, anonymize)", id="unknown-choice"),
        pytest.param(REFERENCES + "    on_reference: {payments: nullify, notes: anonymize}\n",
                     "datamap.yaml:11: tables.rentals.on_reference.notes: 'anonymize' keeps "
                     "referenced rows: it needs columns: (the strategies that mask them)",
                     id="anonymize-without-columns"),
        pytest.param(REFERENCES + "    on_reference: {payments: nullify}\n"
                     "    columns: {film: redact}\n",
                     "datamap.yaml:12: tables.rentals.columns: columns are only used with "
                     "anonymize or retain (or on_reference: anonymize)", id="columns-on-delete"),
        pytest.param(REFERENCES + '    on_reference: {"pay\\tments": nullify}\n',
                     "datamap.yaml:11: tables.rentals.on_reference.'pay\\u0009ments': a table "
                     "name cannot contain a control or invisible character (U+0009 at "
                     "character 4)", id="not-a-table-name"),
        pytest.param(MINIMAL + "tables:\n  addresses:\n    link: {parent: customers, "
                     "referenced_by: customers, on: {address_id: id}}\n    action: delete\n",
                     "datamap.yaml:9: tables.addresses.link: needs exactly one of 'parent' (a "
                     "table these rows reference) or 'referenced_by' (a table whose rows "
                     "reference these)", id="parent-and-referenced-by"),
        pytest.param(MINIMAL + "tables:\n  addresses:\n    link: {referenced_by: shops, "
                     "on: {address_id: id}}\n    action: delete\n",
                     "datamap.yaml:9: tables.addresses.link.referenced_by: 'shops' is not the "
                     "subject or a mapped table", id="referenced-by-unknown"),
    ],
)
def test_invalid_reference_choices_name_line_and_key_path(text: str, message: str) -> None:
    with pytest.raises(DataMapError) as excinfo:
        DataMap.from_text(text)
    assert str(excinfo.value) == message


def test_reference_choices_and_shared_rows_load() -> None:
    data_map = DataMap.from_text(REFERENCES + "    on_reference: {payments: nullify, notes: "
                                 "anonymize}\n    columns: {film: redact}\n  addresses:\n"
                                 "    link: {referenced_by: customers, on: {address_id: id}}\n"
                                 "    action: delete\n")
    rentals = data_map.table("rentals")
    assert rentals.on_reference == (("payments", "nullify"), ("notes", "anonymize"))
    assert [rentals.reference_policy(t) for t in ("payments", "notes", "reviews")] == [
        "nullify", "anonymize", "refuse"]
    # on: {child column: parent column}; kept as (this table's column, the other's)
    assert data_map.table("addresses").link == Link("customers", (("id", "address_id"),),
                                                    reverse=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(MINIMAL.replace("{email: email}", "{emial: email}"),
                     "datamap.yaml:5: subject.identifiers.emial: unknown identifier type "
                     "'emial' (did you mean 'email'?)", id="misspelt-email"),
        pytest.param(MINIMAL + "tables:\n  calls:\n    match: {telefoon: nummer}\n"
                     "    action: delete\n",
                     "datamap.yaml:9: tables.calls.match.telefoon: unknown identifier type "
                     "'telefoon' (did you mean 'phone'?)", id="dutch-phone"),
        pytest.param(MINIMAL.replace("{email: email}", "{klantnummer: nr}"),
                     "datamap.yaml:5: subject.identifiers.klantnummer: unknown identifier type "
                     "'klantnummer' (did you mean 'customer_number'?)", id="dutch-customer-number"),
    ],
)
def test_an_identifier_type_close_to_a_built_in_one_is_refused(text: str, message: str) -> None:
    # A misspelt type loads as a custom type that no ledger entry uses: it would match nobody.
    with pytest.raises(DataMapError) as excinfo:
        DataMap.from_text(text)
    assert str(excinfo.value) == message


def test_a_custom_identifier_type_far_from_any_built_in_one_loads() -> None:
    data_map = DataMap.from_text(MINIMAL.replace("{email: email}", "{loyalty_card: card}"))
    assert data_map.subject.match == (("loyalty_card", "card"),)


# -- table and column names ---------------------------------------------------------------------

ODD_NAMES = """\
version: 1
subject:
  table: Straßen-Log
  key: [klant nummer, "2fa"]
  identifiers: {email: e-mail}
  action: anonymize
  columns: {e-mail: redact, straße: null, "50% korting": null, "a: b": null, order: null}
tables:
  "Bestel#Regels":
    link: {parent: Straßen-Log, on: {klant nummer: klant nummer, "2fa": "2fa"}}
    action: delete
"""


def test_any_name_a_database_can_hold_is_taken_as_written() -> None:
    data_map = DataMap.from_text(ODD_NAMES)
    assert data_map.subject.name == "Straßen-Log"
    assert data_map.subject.key == ("klant nummer", "2fa")
    assert [c for c, _ in data_map.subject.columns] == [
        "e-mail", "straße", "50% korting", "a: b", "order"]
    link = data_map.table("Bestel#Regels").link
    assert link == Link("Straßen-Log", (("klant nummer", "klant nummer"), ("2fa", "2fa")))


LONG = "x" * 129


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(MINIMAL.replace("table: customers", 'table: ""'),
                     "datamap.yaml:3: subject.table: a table name cannot be empty", id="empty"),
        pytest.param(MINIMAL.replace("table: customers", 'table: "klanten\\n"'),
                     "datamap.yaml:3: subject.table: a table name cannot contain a control or "
                     "invisible character (U+000A at character 8)", id="newline"),
        pytest.param(MINIMAL.replace("key: id", 'key: [id, "nr\\u200b"]'),
                     "datamap.yaml:4: subject.key[1]: a column name cannot contain a control or "
                     "invisible character (U+200B at character 3)", id="zero-width-space"),
        pytest.param(MINIMAL.replace("{email: email}", '{email: "email "}'),
                     "datamap.yaml:5: subject.identifiers.email: a column name cannot start or "
                     "end with a space", id="trailing-space"),
        pytest.param(MINIMAL.replace("action: delete", f"action: anonymize\n  columns: "
                                     f"{{email: redact, {LONG}: null}}"),
                     f"datamap.yaml:7: subject.columns.'{'x' * 48}...': a column name is at "
                     "most 128 characters (this one has 129)", id="too-long"),
        pytest.param(MINIMAL.replace("action: delete", 'action: anonymize\n  columns: '
                                     '{email: redact, "e\\tmail": null}'),
                     "datamap.yaml:7: subject.columns.'e\\u0009mail': a column name cannot "
                     "contain a control or invisible character (U+0009 at character 2)",
                     id="tab-in-column-key"),
        pytest.param(MINIMAL + 'tables:\n  "orders\\u2028x":\n    match: {email: e}\n'
                     "    action: delete\n",
                     "datamap.yaml:8: tables.'orders\\u2028x': a table name cannot contain a "
                     "control or invisible character (U+2028 at character 7)",
                     id="line-separator-in-table-key"),
        pytest.param(MINIMAL + 'tables:\n  orders:\n    link: {parent: customers, '
                     'on: {"cust\\u0000id": id}}\n    action: delete\n',
                     "datamap.yaml:9: tables.orders.link.on.'cust\\u0000id': a column name "
                     "cannot contain a control or invisible character (U+0000 at character 5)",
                     id="nul-in-link-column"),
        pytest.param(MINIMAL + 'tables:\n  orders:\n    link: {parent: " customers", '
                     "on: {customer_id: id}}\n    action: delete\n",
                     "datamap.yaml:9: tables.orders.link.parent: a table name cannot start or "
                     "end with a space", id="spaced-parent"),
        pytest.param(MINIMAL + "retention:\n  - {name: old, column: [a, b], years: 2}\n",
                     "datamap.yaml:8: retention[0].column: expected a column name",
                     id="list-for-a-column"),
        pytest.param(MINIMAL + 'opt_outs:\n  - {purpose: marketing, table: customers, '
                     'set: {"": false}}\n',
                     "datamap.yaml:8: opt_outs[0].set.'': a column name cannot be empty",
                     id="empty-set-column"),
    ],
)
def test_a_name_no_database_can_hold_is_refused_naming_its_key(text: str, message: str) -> None:
    with pytest.raises(DataMapError) as excinfo:
        DataMap.from_text(text)
    assert str(excinfo.value) == message
