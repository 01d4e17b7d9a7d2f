"""The compat run's own machinery: the generated document, the tables and the import shim."""

from __future__ import annotations

import ast
import importlib
import sys

import pytest

import torch_api
import torch_api.utils

from .deselected import DESELECTED
from .expected_failures import EXPECTED_FAILURES
from .report import DOC, render
from .shim import ORIGINAL, Shim, original_tests

TESTS_DIR, FILES = original_tests()


def test_document_is_current():
    assert DOC.read_text() == render(), "run: python -m tests.compat.report"


def _test_functions() -> set[tuple[str, str]]:
    found = set()
    for path in FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                found.add((path.name, node.name))
    return found


@pytest.mark.parametrize("table", [DESELECTED, EXPECTED_FAILURES], ids=["deselected", "xfail"])
def test_every_table_entry_names_a_test_of_the_original(table):
    functions = _test_functions()
    stale = [k for k in table if (k[0], k[1].split("[")[0]) not in functions]
    assert not stale


def test_every_reason_is_given():
    assert all(len(reason) > 20 for reason in {**DESELECTED, **EXPECTED_FAILURES}.values())


@pytest.fixture
def shim():
    s = Shim(TESTS_DIR)
    before_modules, before_path = dict(sys.modules), list(sys.meta_path)
    yield s
    s.deactivate()
    assert sys.meta_path == before_path
    assert {k for k in sys.modules if k.startswith(ORIGINAL)} == {
        k for k in before_modules if k.startswith(ORIGINAL)
    }


def test_shim_maps_to_public_torch_api_objects(shim):
    with shim.active():
        tsgu = importlib.import_module(ORIGINAL)
        minres_module = importlib.import_module(f"{ORIGINAL}.utils.minres")
        assert tsgu.sparse_mm is torch_api.sparse_mm
        assert tsgu.utils.minres is torch_api.utils.minres  # the function, not the module
        assert minres_module.MINRESSettings is torch_api.utils.MINRESSettings
    assert callable(torch_api.utils.minres) and not hasattr(torch_api, "tests")


@pytest.mark.parametrize("name", [f"{ORIGINAL}._validate", f"{ORIGINAL}.utils._random",
                                  f"{ORIGINAL}.no_such_module"])
def test_shim_never_reaches_private_or_missing_modules(shim, name):
    with shim.active(), pytest.raises(ModuleNotFoundError, match="no public module"):
        importlib.import_module(name)


def test_shim_never_imports_the_real_package(shim):
    with shim.active():
        importlib.import_module(f"{ORIGINAL}.tests.test_config")
        importlib.import_module(f"{ORIGINAL}.utils.random_sparse")
        real = [m for k, m in sys.modules.items() if k.startswith(ORIGINAL)
                and str(TESTS_DIR.parent) in str(getattr(m, "__file__", None) or "")
                and not k.startswith(f"{ORIGINAL}.tests")]
    assert real == []
