"""The data map's ``objects:`` section: object-storage locations keyed by subject columns,
validated like every other key (errors name file:line and the key path)."""

from __future__ import annotations

import pytest

from reconciler.datamap import DataMap
from reconciler.errors import DataMapError
from reconciler.objectmap import ObjectLocation

MINIMAL = """\
version: 1
subject:
  table: customers
  key: id
  identifiers: {email: email, customer_number: cust_no}
  action: delete
"""


def test_objects_load_as_key_and_prefix_templates() -> None:
    data_map = DataMap.from_text(MINIMAL + """\
objects:
  - {bucket: id-documents, key: "customers/{cust_no}/id.pdf"}
  - {bucket: uploads.example, prefix: "u/{id}/{cust_no}/"}
""")
    assert data_map.objects == (
        ObjectLocation(index=0, bucket="id-documents", template="customers/{cust_no}/id.pdf",
                       exact=True, columns=("cust_no",)),
        ObjectLocation(index=1, bucket="uploads.example", template="u/{id}/{cust_no}/",
                       exact=False, columns=("id", "cust_no")),
    )
    assert DataMap.from_text(MINIMAL).objects == ()


def test_placeholders_take_any_column_name_the_map_takes() -> None:
    data_map = DataMap.from_text(MINIMAL + """\
objects:
  - {bucket: id-documents, key: "klanten/{klant nummer}/{Straße-Nr}/{e.mail}.pdf"}
""")
    assert data_map.objects[0].columns == ("klant nummer", "Straße-Nr", "e.mail")
    assert data_map.objects[0].render({"klant nummer": 7, "Straße-Nr": "3a", "e.mail": "x"}) == (
        "klanten/7/3a/x.pdf")


def test_a_template_renders_per_subject_and_skips_missing_values() -> None:
    location = ObjectLocation(index=0, bucket="b", template="c/{id}/{{raw}}/{cust_no}.pdf",
                              exact=True, columns=("id", "cust_no"))
    assert location.render({"id": 7, "cust_no": "C-1"}) == "c/7/{raw}/C-1.pdf"
    assert location.render({"id": 7, "cust_no": None}) is None
    assert location.render({"id": 7, "cust_no": "  "}) is None
    assert (location.path, location.kind) == ("objects[0]", "key")


@pytest.mark.parametrize(("objects", "message"), [
    pytest.param('  - {bucket: Id_Docs, key: "c/{id}"}',
                 "datamap.yaml:8: objects[0].bucket: not a valid S3 bucket name", id="bucket"),
    pytest.param('  - {bucket: docs, key: "c/{id}", prefix: "c/{id}/"}',
                 "datamap.yaml:8: objects[0]: needs exactly one of 'key' (one object per "
                 "subject) or 'prefix' (every object under it)", id="key-and-prefix"),
    pytest.param("  - {bucket: docs}",
                 "datamap.yaml:8: objects[0]: needs exactly one of 'key' (one object per "
                 "subject) or 'prefix' (every object under it)", id="neither"),
    pytest.param('  - {bucket: docs, key: "all/id.pdf"}',
                 "datamap.yaml:8: objects[0].key: needs at least one {column} placeholder of "
                 "the subject table", id="no-placeholder"),
    pytest.param('  - {bucket: docs, prefix: "customers/{id}"}',
                 "datamap.yaml:8: objects[0].prefix: a prefix must not end with a placeholder "
                 "(end it with '/', e.g. \"customers/{id}/\")", id="open-prefix"),
    pytest.param('  - {bucket: docs, key: "c/{ cust_no}.pdf"}',
                 "datamap.yaml:8: objects[0].key: placeholders are subject column names: a "
                 "column name cannot start or end with a space", id="bad-placeholder"),
    pytest.param('  - {bucket: docs, key: "c/{}.pdf"}',
                 "datamap.yaml:8: objects[0].key: placeholders are subject column names: a "
                 "column name cannot be empty", id="empty-placeholder"),
    pytest.param('  - {bucket: docs, key: "c/{id!r}.pdf"}',
                 "datamap.yaml:8: objects[0].key: placeholders are subject column names, like "
                 "{cust_no}", id="conversion"),
    pytest.param('  - {bucket: docs, key: "c/{id.pdf"}',
                 "datamap.yaml:8: objects[0].key: unbalanced '{' or '}' (write '{{' for a "
                 "literal brace)", id="unbalanced"),
    pytest.param('  - {bucket: docs, key: "c/{id}", region: eu}',
                 "datamap.yaml:8: objects[0].region: unknown key (expected one of: bucket, key, "
                 "prefix)", id="unknown-key"),
    pytest.param('  - {bucket: docs, key: "c/{id}"}\n  - {bucket: docs, key: "c/{id}"}',
                 "datamap.yaml:9: objects[1]: this location is listed twice", id="twice"),
    pytest.param("  bucket: docs",
                 "datamap.yaml:8: objects: expected a list", id="not-a-list"),
    pytest.param("  - {bucket: docs, key: [c, d]}",
                 "datamap.yaml:8: objects[0].key: expected a single value", id="key-list"),
])
def test_invalid_object_locations_name_line_and_key_path(objects: str, message: str) -> None:
    with pytest.raises(DataMapError) as excinfo:
        DataMap.from_text(MINIMAL + "objects:\n" + objects + "\n")
    assert str(excinfo.value) == message
