"""The bad-input audit table: its row types, the checks rows use, and :func:`rows`, which
gathers the rows of every package (``rows_bridge``, ``rows_torch_api``, ``rows_torch_utils``,
``rows_torch_models``, ``rows_jax_api``).

A :class:`Row` names a public callable (``target``), a bad (or edge) input (``case``), builds
the call, and expects one of:

- :class:`Raises`: a ``TypeError``/``ValueError`` (``ImportError`` for a missing optional
  dependency) whose message names the argument ``arg`` and matches ``match``;
- :class:`Result`: a correct result, checked against an independent (dense) reference; NaN may
  only appear where the dense reference has it (NaN propagation), never a silent wrong finite
  answer;
- :class:`Warns`: a documented warning (``ConvergenceWarning`` for a solver that does not
  converge on a singular, indefinite or non-finite problem).

Every call must leave its inputs unchanged (checked against clones by ``tests/audit/run.py``).
``isolate=True`` rows could crash or hang the process if the library regressed (out-of-range
indices, singular systems): they run in a subprocess with a timeout. ``gpu=True`` rows need CUDA
and run only in the ``gpu``-marked test. ``x64`` runs the call inside ``jax.enable_x64(x64)``.
The argument batteries shared by the frontends (wrong type, layout, dtype, rank, indices) live
in ``batteries.py`` and take a per-framework adapter.

jax_api names with no specific rows get a generic wrong-type row, so a new export is covered
(and the report regenerated).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


# ------------------------------------------------------------------------------ the row types
@dataclass
class Call:
    """A prepared call: ``fn(*args, **kwargs)``; ``watch`` holds more inputs that must not change
    (a distribution's parameters, a module's buffers)."""

    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    watch: tuple = ()


@dataclass(frozen=True)
class Raises:
    exc: type | tuple
    arg: str  # the argument the message must name ("a/b": either)
    match: str = ""
    what: str = ""  # a shorter description for the report

    def describe(self) -> str:
        names = self.exc if isinstance(self.exc, tuple) else (self.exc,)
        kinds = "/".join(e.__name__ for e in names)
        if self.what:
            return f"{kinds} {self.what}"
        extra = f" matching `{self.match}`" if self.match else ""
        return f"{kinds} naming `{self.arg}`{extra}"


@dataclass(frozen=True)
class Result:
    check: Callable[[Any, Call], None]
    what: str = "correct result (dense reference)"

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class Warns:
    category: type
    match: str = ""
    check: Callable[[Any, Call], None] | None = None
    what: str = ""

    def describe(self) -> str:
        return self.what or f"{self.category.__name__} matching `{self.match}`"


@dataclass(frozen=True)
class Row:
    target: str  # a public name: "torch_api.sparse_mm", "...SparseMultivariateNormal.log_prob"
    case: str
    make: Callable[[], Call]
    expect: Raises | Result | Warns
    isolate: bool = False
    gpu: bool = False
    x64: bool | None = None

    @property
    def id(self) -> str:
        return f"{self.target}: {self.case}"

    def context(self):
        if self.x64 is None:
            return contextlib.nullcontext()
        return importlib.import_module("jax").enable_x64(self.x64)


def _convergence_warning():
    from torch_api.utils import ConvergenceWarning

    return ConvergenceWarning


# ------------------------------------------------------------------------------- checks
def assert_same(got, want, rtol=1e-10, atol=1e-12) -> None:
    """``got`` equals ``want`` (tensors, arrays, numbers, tuples), NaN where ``want`` has NaN."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), (type(got), len(want))
        for g, w in zip(got, want, strict=True):
            assert_same(g, w, rtol, atol)
        return
    g, w = np.asarray(_host(got)), np.asarray(_host(want))
    assert g.shape == w.shape, f"shape {g.shape} != expected {w.shape}"
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def _host(x):
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return (x.to_dense() if x.layout != torch.strided else x).cpu().numpy()
    if hasattr(x, "todense"):
        return np.asarray(x.todense())
    if hasattr(x, "toarray"):
        return x.toarray()
    return x


def equals(reference: Callable[[Call], Any], what="correct result (dense reference)",
           **tol) -> Result:
    """A Result equal to ``reference(call)`` (computed densely, independently of the library)."""
    return Result(lambda out, call: assert_same(out, reference(call), **tol), what)


def propagates(reference: Callable[[Call], Any],
               what="NaN/inf propagate as in the dense reference", **tol) -> Result:
    return equals(reference, what, **tol)


def shaped(shape, dtype=None, what=None) -> Result:
    def check(out, call):
        assert tuple(out.shape) == tuple(shape), (tuple(out.shape), shape)
        if dtype is not None:
            assert out.dtype == dtype, (out.dtype, dtype)

    return Result(check, what or f"correct empty result of shape {tuple(shape)}")


def converge_warn(what="ConvergenceWarning (did not converge)", check=None) -> Warns:
    return Warns(_convergence_warning(), "did not converge", check, what)


def err(exc, arg: str, match: str = "") -> Raises:
    return Raises(exc, arg, match)


TE, VE = TypeError, ValueError


def c(fn, *args, **kwargs) -> Call:
    return Call(fn, args, kwargs)


# Public names that take no input worth auditing: exception and warning classes, and plain
# records whose fields are validated where they are used (rows under the solver that reads them).
_SHIM = ("torchsparsegradutils' autograd Function name; its apply() calls the public operation "
         "(rows there)")
# torchsparsegradutils-compatible names tried with the generic row
COMPAT_GENERIC = (
    *(f"torch_api.utils.generate_random_sparse_{k}_matrix" for k in (
        "coo", "csr", "strictly_triangular_coo", "strictly_triangular_csr", "triangular_coo",
        "triangular_csr")),
    "torch_api.encoders.calc_pairwise_coo_indices_nd",
)

EXEMPT = {
    "torch_api.utils.ConvergenceError": "exception class",
    "torch_api.utils.ConvergenceWarning": "warning class",
    "torch_api.utils.CGInfo": "result record returned by linear_cg (never an input)",
    "torch_api.utils.LinearCGSettings": "options NamedTuple; validated by linear_cg (rows there)",
    "torch_api.utils.MINRESSettings": "options NamedTuple; validated by minres (rows there)",
    "torch_api.utils.BICGSTABSettings": "options NamedTuple; validated by bicgstab (rows there)",
    "torch_api.clear_caches": "takes no arguments (tests/torch_api/test_pattern_cache.py)",
    "torch_api.SlogdetResult": "result record returned by sparse_slogdet (never an input)",
    "jax_api.SlogdetResult": "result record returned by sparse_slogdet (never an input)",
    "torch_api.SparseMatMul": _SHIM,
    "torch_api.SparseTriangularSolve": _SHIM,
    "torch_api.SparseGenericSolve": _SHIM,
    "torch_api.SparseGenericLstsq": _SHIM,
    "torch_api.SparseSolveJ4T": _SHIM,
    "torch_api.SparseSolveC4T": _SHIM,
    "torch_api.encoders.PairwiseVoxelEncoder": "deprecated alias of PairwiseEncoder (rows there)",
    "torch_api.encoders.calc_pairwise_coo_indices": (
        "deprecated alias of calc_pairwise_coo_indices_nd (rows there)"),
    "jax_api.SolveInfo": "result record returned by the jax_api solvers (never an input)",
    "jax_api.ConvergenceError": "exception class (bridge.internal's, as torch_api's)",
    "jax_api.ConvergenceWarning": "warning class (bridge.internal's, as torch_api's)",
}

PUBLIC_MODULES = (
    "bridge", "torch_api", "torch_api.utils", "torch_api.distributions", "torch_api.encoders",
    "jax_api",
)


def public_callables() -> list[str]:
    """``module.name`` of every public callable (``__all__``) of the audited modules."""
    names = []
    for mod_name in PUBLIC_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        for n in getattr(mod, "__all__", []):
            if callable(getattr(mod, n)):
                names.append(f"{mod_name}.{n}")
    return names


def generic_row(qualname: str) -> Row:
    """A list in place of every required argument: a TypeError/ValueError naming one of them."""
    mod_name, _, name = qualname.rpartition(".")
    fn = getattr(importlib.import_module(mod_name), name)
    sig = inspect.signature(fn).parameters.values()
    params = [p.name for p in sig if p.default is inspect.Parameter.empty
              and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in sig if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    pattern = "|".join(re.escape(n) for n in names) or "."  # naming any parameter will do
    arg = "/".join(names) or "(none)"
    return Row(qualname, "every required argument is a list (generic row)",
               lambda: Call(fn, tuple([[1.0, 2.0]] for _ in params)),
               Raises((TypeError, ValueError), arg, rf"\b({pattern})\b",
                      "naming one of its parameters"))





# -------------------------------------------------------------------------- the table
def rows() -> list[Row]:
    """Every row, in report order: torch_api, torch_api.utils, distributions and encoders,
    bridge, jax_api."""
    from . import (
        rows_bridge,
        rows_factor,
        rows_jax_api,
        rows_torch_api,
        rows_torch_models,
        rows_torch_utils,
    )

    out = (rows_torch_api.rows() + rows_torch_utils.rows() + rows_torch_models.rows()
           + rows_bridge.rows() + rows_jax_api.rows() + rows_factor.rows())
    covered = {r.target for r in out}
    out += [generic_row(q) for q in public_callables()
            if (q.startswith("jax_api.") or q in COMPAT_GENERIC) and q not in covered
            and q not in EXEMPT]
    ids = [r.id for r in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate row ids: {dup}"
    return out
