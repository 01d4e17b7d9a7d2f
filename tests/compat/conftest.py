"""Collects torchsparsegradutils 0.2.7's shipped test files and runs them against torch_api.

The files are read from the original's install location (found through its wheel's RECORD, see
:func:`tests.compat.shim.original_tests`) and appear under ``tests/compat/original/`` (one
node per file, so ``--dist loadfile`` spreads them over workers). They are imported, and each
of their tests runs, under :class:`tests.compat.shim.Shim`, which maps ``torchsparsegradutils``
to torch_api's public modules; the shim is off for every other test of the session.

Three rules apply to the original's tests only:

- tests of the original's private helpers are deselected (``deselected.py``, with reasons);
- the strict expected failures of ``expected_failures.py`` are marked
  ``xfail(strict=True)`` (``docs/compatibility.md`` is generated from that table);
- a check of an error message's *text* passes when the exception has the expected *type*:
  ``pytest.raises(..., match=...)`` checks the type only, and a failing final
  ``assert str(excinfo.value) == ...`` after a ``pytest.raises`` that matched the type counts as
  passed. Each message that differs is recorded in the report's ``user_properties``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import random
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from .deselected import DESELECTED
from .expected_failures import EXPECTED_FAILURES
from .shim import ORIGINAL, VERSION, Shim, original_tests

HERE = Path(__file__).resolve().parent
ORIGINAL_DIR = HERE / "original"
SEED = 42  # the seed of the original's conftest
GPU_FILES = ("test_cupy_bindings.py", "test_cupy_sparse_solve.py")

try:
    _TESTS_DIR, _FILES = original_tests()
    _VERSION = importlib.metadata.version(ORIGINAL)
except importlib.metadata.PackageNotFoundError:
    _TESTS_DIR, _FILES, _VERSION = None, [], None
SHIM = Shim(_TESTS_DIR) if _TESTS_DIR is not None else None


def is_original(item) -> bool:
    return item.path.parent == ORIGINAL_DIR


def key(item) -> tuple[str, str]:
    """``("test_file.py", "test_name")`` and ``(..., "test_name[params]")`` for the tables."""
    return item.path.name, item.name


# ------------------------------------------------------------------------------- collection
def pytest_collect_directory(path, parent):
    if path == ORIGINAL_DIR:
        return OriginalSuite.from_parent(parent, path=path)
    return None


class OriginalSuite(pytest.Directory):
    """``tests/compat/original``: one module per test file of the installed original."""

    def collect(self):
        if _VERSION != VERSION:
            raise self.CollectError(
                f"tests/compat needs {ORIGINAL}=={VERSION} (the `test` extra: pip install -e "
                f"'.[test]'), got {'no installation' if _VERSION is None else _VERSION}"
            )
        for file in _FILES:
            yield OriginalModule.from_parent(self, path=self.path / file.name)


class OriginalModule(pytest.Module):
    """An original test file, imported as ``torchsparsegradutils.tests.<name>`` under the shim
    (so pytest's assertion rewriting applies to it as to any test module)."""

    def _getobj(self):
        name = f"{ORIGINAL}.tests.{self.path.stem}"
        checks = torch.sparse.check_sparse_tensor_invariants
        before = checks.is_enabled()
        with SHIM.active(), _seeded():
            try:
                return importlib.import_module(name)
            except ImportError as exc:
                info = pytest.ExceptionInfo.from_exception(exc)
                raise self.CollectError(
                    f"ImportError while importing {name} under the shim:\n"
                    f"{info.getrepr(style='short')}"
                ) from exc
            finally:  # some files switch torch's invariant checks on for their tests only
                self.invariant_checks = checks.is_enabled()
                checks.enable() if before else checks.disable()

    def collect(self):
        with SHIM.active(), _seeded():
            try:
                return list(super().collect())
            except self.CollectError as exc:  # one failing test, not an aborted session
                return [ImportFailure.from_parent(self, name="import", error=exc)]


class ImportFailure(pytest.Item):
    """An original test file that cannot be imported under the shim (a public name torch_api
    lacks): it fails as one test, so that the rest of the session still runs."""

    def __init__(self, *, error, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self):
        raise self.error

    def repr_failure(self, excinfo):
        return str(self.error)

    def reportinfo(self):
        return self.path, None, f"import of {self.path.name}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    kept, dropped = [], []
    for item in items:
        if not is_original(item):
            kept.append(item)
            continue
        file, name = key(item)
        function = getattr(item, "originalname", item.name)
        if (file, function) in DESELECTED:
            dropped.append(item)
            continue
        reason = EXPECTED_FAILURES.get((file, name)) or EXPECTED_FAILURES.get((file, function))
        if reason is not None:
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
        if file in GPU_FILES:
            item.add_marker(pytest.mark.gpu)
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# ------------------------------------------------------------------------------- running
@pytest.fixture(autouse=True)
def _original_seed(request):
    """The original's ``seed_rng``: every test starts from seed 42; the RNGs are put back."""
    if not is_original(request.node):
        yield
        return
    with _seeded():
        yield


class _seeded:
    def __enter__(self):
        self.state = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(SEED)
        np.random.seed(SEED)
        torch.manual_seed(SEED)

    def __exit__(self, *exc):
        random.setstate(self.state[0])
        np.random.set_state(self.state[1])
        torch.set_rng_state(self.state[2])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """The shim and the type-only ``pytest.raises`` for a run of consecutive original tests."""
    if not is_original(item):
        return (yield)
    SHIM.activate()
    real = pytest.raises
    pytest.raises = _type_only_raises(real, item)
    checks = torch.sparse.check_sparse_tensor_invariants
    before = checks.is_enabled()
    if item.getparent(OriginalModule).invariant_checks:
        checks.enable()
    try:
        return (yield)
    finally:
        checks.enable() if before else checks.disable()
        pytest.raises = real
        if nextitem is None or not is_original(nextitem):
            SHIM.deactivate()


def _type_only_raises(real, item):
    def raises(expected_exception, *args, match=None, **kwargs):
        if match is None or args:
            return real(expected_exception, *args, match=match, **kwargs)
        return _TypeOnly(real(expected_exception, **kwargs), match, item)

    return raises


class _TypeOnly:
    """``pytest.raises(E, match=m)`` checking ``E`` only; a message not matching ``m`` is
    recorded on the test's report."""

    def __init__(self, context, match, item):
        self.context, self.match, self.item = context, match, item

    def __enter__(self):
        self.info = self.context.__enter__()
        return self.info

    def __exit__(self, *exc):
        suppressed = self.context.__exit__(*exc)
        if suppressed and not re.search(self.match, str(self.info.value)):
            _record(self.item, self.match, self.info.value)
        return suppressed


def _record(item, expected, got) -> None:
    item.user_properties.append(("message_differs", f"expected {expected!r}, got {got!r}"))


class _MessageOnly:
    """A plugin, not a conftest hook: items whose path is virtual do not reach this conftest's
    per-path hooks (``pytest_pyfunc_call`` is dispatched by path)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem):
        """A test whose last statement ``assert str(info.value) == ...`` fails, after the
        ``pytest.raises`` that made ``info`` matched the exception type, counts as passed."""
        if not is_original(pyfuncitem):
            return (yield)
        try:
            return (yield)
        except AssertionError as exc:
            info = _message_only_assert(pyfuncitem.obj, exc)
            if info is None:
                raise
            _record(pyfuncitem, str(exc).splitlines()[0], info.value)
            return True


def pytest_configure(config):
    config.pluginmanager.register(_MessageOnly(), "compat-message-only")


def _message_only_assert(fn, exc: AssertionError):
    """The ExceptionInfo whose message text the failing assertion compared, when that
    assertion is ``fn``'s last statement and only compares ``str(<info>.value)``."""
    tb, frame_tb = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code is fn.__code__:
            frame_tb = tb
        tb = tb.tb_next
    if frame_tb is None:
        return None
    lines, first = inspect.getsourcelines(fn)
    body = ast.parse(textwrap.dedent("".join(lines))).body[0].body
    last = body[-1]
    if not isinstance(last, ast.Assert) or frame_tb.tb_lineno != first + last.lineno - 1:
        return None
    for node in ast.walk(last.test):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "str" and len(node.args) == 1
                and isinstance(node.args[0], ast.Attribute) and node.args[0].attr == "value"
                and isinstance(node.args[0].value, ast.Name)):
            info = frame_tb.tb_frame.f_locals.get(node.args[0].value.id)
            if isinstance(info, pytest.ExceptionInfo) and info.value is not None:
                return info
    return None


def pytest_sessionfinish(session):
    if SHIM is not None:
        SHIM.deactivate()
