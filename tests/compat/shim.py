"""The import shim under which torchsparsegradutils' own tests run against ``torch_api``.

While :func:`active` is in force, a meta-path finder answers every ``torchsparsegradutils``
import: the package and its sub-modules become torch_api's *public* modules of the same path
(``torchsparsegradutils.utils.minres`` is ``torch_api.utils.minres``); a path that torch_api does
not have, or that names a private module, raises ``ModuleNotFoundError`` (never a fallback to the
real package or to a private module of torch_api). ``torchsparsegradutils.tests`` is the one
exception: it is the original's installed test package (and ``test_config``, which its tests
import as a top-level module), so the test files run from where pip put them. The real library
is never imported. Outside :func:`active`, ``sys.modules``, ``sys.meta_path`` and torch_api are
as they were: whatever an earlier import left under those names (the real package, imported by
the benchmarks) is put back.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
import types
from pathlib import Path

from .stand_ins import STAND_INS

ORIGINAL = "torchsparsegradutils"
TARGET = "torch_api"
VERSION = "0.2.7"
HELPERS = ("test_config",)  # a helper module of the original's tests: imported, not collected


def original_tests() -> tuple[Path, list[Path]]:
    """The original's installed test directory and its test files, from the wheel's RECORD
    (the package is not imported). Raises PackageNotFoundError when it is not installed."""
    dist = importlib.metadata.distribution(ORIGINAL)
    files = sorted(
        Path(dist.locate_file(f))
        for f in dist.files or ()
        if f.parts[:2] == (ORIGINAL, "tests") and len(f.parts) == 3
        and f.name.startswith("test_") and f.suffix == ".py" and f.stem not in HELPERS
    )
    return Path(dist.locate_file(f"{ORIGINAL}/tests")), files


def target_of(name: str) -> str | None:
    """torch_api's public module standing for ``name`` (``None`` if there is none)."""
    parts = name.split(".")[1:]
    if parts[:1] == ["tests"] or any(p.startswith("_") for p in parts):
        return None
    target = ".".join([TARGET, *parts])
    try:
        return target if importlib.util.find_spec(target) is not None else None
    except ModuleNotFoundError:
        return None


class _View(types.ModuleType):
    """A torch_api module under the original's name: attribute reads fall through to it; what
    is set on the view (sub-modules the import system attaches, stand-ins for the original's
    private names) stays on the view, so torch_api itself is never modified."""

    def __init__(self, name: str, target: types.ModuleType | None, extra: dict):
        super().__init__(name, getattr(target, "__doc__", None))
        self.__dict__["__wrapped__"] = target
        self.__dict__.update(extra)

    def __setattr__(self, name, value):
        target = self.__dict__["__wrapped__"]
        if isinstance(value, types.ModuleType) and hasattr(target, name):
            return  # a sub-module never hides the target's name (``utils.bicgstab``, the function)
        super().__setattr__(name, value)

    def __getattr__(self, name):
        target = self.__dict__["__wrapped__"]
        if target is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        return getattr(target, name)

    def __dir__(self):
        target = self.__dict__["__wrapped__"]
        return sorted(set(self.__dict__) | set(dir(target) if target is not None else ()))


class _ViewLoader(importlib.abc.Loader):
    def __init__(self, target: str | None):
        self.target = target

    def create_module(self, spec):
        target = importlib.import_module(self.target) if self.target else None
        return _View(spec.name, target, STAND_INS.get(spec.name, {}))

    def exec_module(self, module):
        pass


class _TestAlias(importlib.abc.Loader):
    """A test file imported by bare name (``from test_config import ...``): the same module
    object as ``torchsparsegradutils.tests.<name>``."""

    def create_module(self, spec):
        return importlib.import_module(f"{ORIGINAL}.tests.{spec.name}")

    def exec_module(self, module):
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, tests_dir: Path):
        self.tests_dir = tests_dir

    def find_spec(self, name, path=None, target=None):
        if name.startswith("test_") and "." not in name:
            if (self.tests_dir / f"{name}.py").is_file():
                return importlib.machinery.ModuleSpec(name, _TestAlias())
            return None
        if name != ORIGINAL and not name.startswith(ORIGINAL + "."):
            return None
        if name == f"{ORIGINAL}.tests":
            return importlib.util.spec_from_file_location(
                name, self.tests_dir / "__init__.py",
                submodule_search_locations=[str(self.tests_dir)],
            )
        if name.startswith(f"{ORIGINAL}.tests."):
            return None  # a test file: found by the usual finders in the package above
        mapped = target_of(name)
        if mapped is None and name not in STAND_INS:
            raise ModuleNotFoundError(
                f"{name}: torch_api has no public module at this path", name=name
            )
        package = mapped is None or importlib.util.find_spec(mapped).submodule_search_locations
        return importlib.machinery.ModuleSpec(
            name, _ViewLoader(mapped), is_package=package is not None  # sub-modules: here too
        )


def _ours(name: str) -> bool:
    return name == ORIGINAL or name.startswith(ORIGINAL + ".") or (
        name.startswith("test_") and "." not in name
    )


class Shim:
    """Switches the finder on and off, keeping each side's ``sys.modules`` entries apart."""

    def __init__(self, tests_dir: Path):
        self.finder = _Finder(tests_dir)
        self._mine: dict[str, object] = {}  # modules imported under the shim
        self._theirs: dict[str, object] = {}  # what was there before it
        self.is_active = False

    def activate(self) -> None:
        if self.is_active:
            return
        self._theirs = {k: sys.modules.pop(k) for k in [k for k in sys.modules if _ours(k)]}
        sys.modules.update(self._mine)
        sys.meta_path.insert(0, self.finder)
        self.is_active = True

    def deactivate(self) -> None:
        if not self.is_active:
            return
        sys.meta_path.remove(self.finder)
        self._mine = {k: sys.modules.pop(k) for k in [k for k in sys.modules if _ours(k)]}
        sys.modules.update(self._theirs)
        self.is_active = False

    @contextlib.contextmanager
    def active(self):
        """Run the block under the shim (re-entrant: an active shim stays active)."""
        was = self.is_active
        self.activate()
        try:
            yield
        finally:
            if not was:
                self.deactivate()
