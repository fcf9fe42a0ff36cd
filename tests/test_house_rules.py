"""Meta-tests that keep the house style honest (shared/STYLE.md): public API, error codes,
and the rule that the pure core imports no I/O library."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import pytest

import erasure_ledger
import reconciler
from erasure_ledger import errors as ledger_errors
from reconciler import errors as reconcile_errors

ROOT = Path(__file__).resolve().parents[1]

# The pure core: hashing, proofs, notes, encoding, sealing, identifiers, model, verification,
# planning. None of these may touch a network, a database or the terminal.
PURE_MODULES = [
    "erasure_ledger/merkle.py",
    "erasure_ledger/notes.py",
    "erasure_ledger/canonical.py",
    "erasure_ledger/sealing.py",
    "erasure_ledger/identifiers.py",
    "erasure_ledger/model.py",
    "erasure_ledger/verify.py",
    "erasure_ledger/errors.py",
    "reconciler/planner.py",
    "reconciler/ops.py",
]
IO_LIBRARIES = {"boto3", "botocore", "sqlalchemy", "click", "rich", "requests", "socket", "subprocess"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE_MODULES)
def test_the_pure_core_imports_no_io_library(module):
    assert imported_roots(ROOT / module) & IO_LIBRARIES == set()


def test_only_the_s3_store_and_kms_module_import_boto3_in_the_ledger():
    importers = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "erasure_ledger").rglob("*.py")
        if imported_roots(p) & {"boto3", "botocore"}
    }
    assert importers <= {"erasure_ledger/stores/_s3_errors.py", "erasure_ledger/stores/_s3_io.py",
                         "erasure_ledger/kms.py"}


def test_only_objects_imports_boto3_in_the_reconciler():
    importers = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "reconciler").rglob("*.py")
        if imported_roots(p) & {"boto3", "botocore"}
    }
    assert importers <= {"reconciler/objects.py"}


def test_the_reconciler_uses_only_the_ledgers_public_api():
    for path in (ROOT / "reconciler").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("erasure_ledger"):
                assert node.module == "erasure_ledger", f"{path.name} imports {node.module}"
                for alias in node.names:
                    assert alias.name in erasure_ledger.__all__, f"{path.name} imports private {alias.name}"


@pytest.mark.parametrize("package", [erasure_ledger, reconciler])
def test_public_api_matches___all__(package):
    exported = set(package.__all__)
    for name in exported:
        assert hasattr(package, name), f"{package.__name__}.__all__ names missing {name}"
    public = {n for n, v in vars(package).items() if not n.startswith("_") and not inspect.ismodule(v)}
    public -= {"annotations", "logging"}
    assert public <= exported | {"__version__"}, f"public but not in __all__: {sorted(public - exported)}"


@pytest.mark.parametrize("module", [ledger_errors, reconcile_errors])
def test_every_error_class_carries_its_exit_code(module):
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, Exception)
               and c.__module__ == module.__name__]
    assert classes
    for cls in classes:
        assert cls.exit_code in (1, 2, 3), cls


def test_integrity_failures_exit_3_and_input_errors_exit_2():
    assert ledger_errors.IntegrityError.exit_code == 3
    for cls in (ledger_errors.TamperedEntryError, ledger_errors.RollbackError,
                ledger_errors.BadSignatureError, ledger_errors.DecryptionError):
        assert issubclass(cls, ledger_errors.IntegrityError)
    assert ledger_errors.UsageError.exit_code == 2
    assert reconcile_errors.ResidualDataFound.exit_code == 1


def test_every_module_imports_cleanly():
    for package in (erasure_ledger, reconciler):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            importlib.import_module(info.name)


def test_library_code_never_prints_or_exits():
    allowed = {"cli.py", "__main__.py"}
    for package in ("erasure_ledger", "reconciler"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name in allowed:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                    owner = getattr(getattr(func, "value", None), "id", "")
                    assert name != "print", f"{path} prints"
                    assert not (owner == "sys" and name == "exit"), f"{path} calls sys.exit"


def test_the_command_reference_matches_the_clis() -> None:
    # docs/cli-reference.md is generated from the commands' own help: an option added or
    # reworded without regenerating it (python scripts/cli_reference.py) fails here
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PAGE.read_text(encoding="utf-8") == module.page()
