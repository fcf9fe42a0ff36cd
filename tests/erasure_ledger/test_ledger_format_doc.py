"""docs/ledger-format.md promises an auditor can verify an export without this tool: run its code."""

from __future__ import annotations

import re
from pathlib import Path

from erasure_ledger.export import export_public_log
from tests.conftest import FIXED_NOW, make_entry

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger-format.md"


def test_the_independent_check_in_the_format_doc_verifies_a_real_export(memory_ledger, tmp_path):
    ledger = memory_ledger([make_entry(f"R{i}") for i in range(5)])
    ledger.append([make_entry(f"S{i}") for i in range(6)], now=FIXED_NOW)
    export_public_log(ledger, tmp_path / "out")
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert code is not None
    exec(code.group(1).replace("DIR/", f"{tmp_path / 'out'}/"), {})  # raises if the check fails


def test_the_independent_check_fails_on_a_tampered_export(memory_ledger, tmp_path):
    ledger = memory_ledger([make_entry(f"R{i}") for i in range(3)])
    export_public_log(ledger, tmp_path / "out")
    leaves = tmp_path / "out" / "leaves.jsonl"
    leaves.write_bytes(leaves.read_bytes().replace(b'"R1"', b'"R9"'))
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert code is not None
    try:
        exec(code.group(1).replace("DIR/", f"{tmp_path / 'out'}/"), {})
    except AssertionError:
        return
    raise AssertionError("the documented check accepted a tampered export")
