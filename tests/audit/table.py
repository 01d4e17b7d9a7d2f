"""The one table of the bad-input audit: every public callable of bridge, torch_api and jax_api,
the bad (or edge) inputs tried, and what each must give.

A :class:`Row` names a public callable (``target``), a bad input (``case``), builds the call, and
expects one of:

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

jax_api is audited for the names it exports when the table is built: names with no specific
rows get a generic wrong-type row, so a new export is covered (and the report regenerated).
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

F64 = torch.float64


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
               what="NaN/inf propagate as in the dense reference") -> Result:
    return equals(reference, what)


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


# ----------------------------------------------------------------------------- test inputs
def mat(kind: str = "general", dtype=F64) -> torch.Tensor:
    """Small dense test matrices (3 x 3, except ``tall``: 4 x 3)."""
    M = {
        "general": [[4.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0]],
        "spd": [[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 5.0]],
        "lower": [[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 1.0, 4.0]],
        "strict": [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        "singular": [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        "indefinite": [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, -1.0]],
            # b^T A b = 0 for rhs()[:, 0]
        "tall": [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 2.0]],
    }[kind]
    return torch.tensor(M, dtype=dtype)


def rhs(n: int = 3, k: int | None = 2, dtype=F64) -> torch.Tensor:
    full = torch.tensor([[1.0, 2.0], [0.0, 1.0], [-1.0, 0.5], [2.0, -1.0]], dtype=dtype)[:n]
    return full[:, 0].clone() if k is None else full[:, :k].clone()


def sp(D: torch.Tensor, layout: str = "csr") -> torch.Tensor:
    if layout == "coo":
        return D.to_sparse_coo().coalesce()
    return {"csr": D.to_sparse_csr, "csc": D.to_sparse_csc}[layout]()


def with_nan(D: torch.Tensor, where=(0, 0), value=float("nan")) -> torch.Tensor:
    D = D.clone()
    D[where] = value
    return D


def unsorted_csr(D: torch.Tensor) -> torch.Tensor:
    """CSR of ``D`` with the column indices of every row in descending order."""
    S = D.to_sparse_csr()
    crow, col, val = S.crow_indices(), S.col_indices().clone(), S.values().clone()
    for r in range(D.shape[0]):
        a, b = int(crow[r]), int(crow[r + 1])
        col[a:b], val[a:b] = col[a:b].flip(0), val[a:b].flip(0)
    return torch.sparse_csr_tensor(crow, col, val, D.shape)


def hybrid_coo(D: torch.Tensor) -> torch.Tensor:
    """``D`` as a COO tensor with one sparse and one dense dimension."""
    return torch.sparse_coo_tensor(torch.arange(D.shape[0])[None], D.clone(), D.shape)


def coo_out_of_range(D: torch.Tensor, dim: int = 1, value: int | None = None) -> torch.Tensor:
    S = D.to_sparse_coo().coalesce()
    idx = S.indices().clone()
    idx[dim, -1] = D.shape[dim] + 2 if value is None else value
    return torch.sparse_coo_tensor(idx, S.values().clone(), D.shape)


def csr_out_of_range(D: torch.Tensor, value: int | None = None) -> torch.Tensor:
    S = D.to_sparse_csr()
    col = S.col_indices().clone()
    col[-1] = D.shape[-1] + 4 if value is None else value
    return torch.sparse_csr_tensor(S.crow_indices().clone(), col, S.values().clone(), D.shape)


def csr_bad_crow(D: torch.Tensor) -> torch.Tensor:
    S = D.to_sparse_csr()
    crow = S.crow_indices().clone()
    crow[1] = crow[-1] + 3  # rises past nnz, then falls
    return torch.sparse_csr_tensor(crow, S.col_indices().clone(), S.values().clone(), D.shape)


def dense_of(x) -> torch.Tensor:
    return x.to_dense() if x.layout != torch.strided else x


# ---------------------------------------------------------------------- argument batteries
def sparse_battery(target: str, name: str, call: Callable[[object], Call], D: torch.Tensor, *,
                   csc_ok: bool = False, isolate_indices: bool = True) -> list[Row]:
    """Wrong type, layout, rank, dtype and invalid indices for the sparse argument ``name``.

    ``call(A)`` builds the call with ``A`` in place of the argument; ``D`` is a valid dense value.
    """
    csc = [] if csc_ok else [
        Row(target, f"{name} is CSC", lambda: call(sp(D, "csc")), err(TE, name, "CSC")),
    ]
    return csc + [
        Row(target, f"{name} is a list", lambda: call(D.tolist()), err(TE, name, "torch.Tensor")),
        Row(target, f"{name} is a NumPy array", lambda: call(D.numpy()),
            err(TE, name, "torch.Tensor")),
        Row(target, f"{name} is dense", lambda: call(D.clone()), err(TE, name, "sparse|strided")),
        Row(target, f"{name} is BSR", lambda: call(D.to_sparse_bsr((1, 1))), err(TE, name, "BSR")),
        Row(target, f"{name} is hybrid COO", lambda: call(hybrid_coo(D)), err(TE, name, "hybrid")),
        Row(target, f"{name} has int64 values", lambda: call(sp(D.long(), "coo")),
            err(VE, name, "float32 or float64")),
        Row(target, f"{name} has complex values", lambda: call(sp(D.to(torch.complex128))),
            err(VE, name, "float32 or float64")),
        Row(target, f"{name} is 1-D (wrong rank)", lambda: call(D[0].to_sparse()),
            err(VE, name, "-D")),
        Row(target, f"{name}: COO column index out of range", lambda: call(coo_out_of_range(D)),
            err(VE, name, r"indices of dimension 1 in \[0, \d+\)"), isolate=isolate_indices),
        Row(target, f"{name}: negative COO row index", lambda: call(coo_out_of_range(D, 0, -1)),
            err(VE, name, r"indices of dimension 0 in \[0, \d+\), got indices in \[-1"),
            isolate=isolate_indices),
        Row(target, f"{name}: CSR column index out of range", lambda: call(csr_out_of_range(D)),
            err(VE, name, r"column indices in \[0, \d+\)"), isolate=isolate_indices),
        Row(target, f"{name}: CSR row pointers not monotone", lambda: call(csr_bad_crow(D)),
            err(VE, name, "compressed indices"), isolate=isolate_indices),
    ]


def dense_battery(target: str, name: str, call: Callable[[object], Call], good: torch.Tensor, *,
                  rank_bad: torch.Tensor | None = None, rows_bad: torch.Tensor | None = None,
                  match_name: str | None = None) -> list[Row]:
    """Wrong type, dtype, device, rank and rows for the dense argument ``name`` (``good`` is a
    valid float64 value; ``match_name`` is the argument it must match in dtype/device)."""
    rows = [
        Row(target, f"{name} is a list", lambda: call(good.tolist()),
            err(TE, name, "torch.Tensor")),
        Row(target, f"{name} is a NumPy array", lambda: call(good.numpy()),
            err(TE, name, "torch.Tensor")),
        Row(target, f"{name} is sparse", lambda: call(good.to_sparse()), err(TE, name, "dense")),
        Row(target, f"{name} has int64 values", lambda: call(good.long()),
            err(VE, name, "float32 or float64|dtype")),
        Row(target, f"{name} has complex values", lambda: call(good.to(torch.complex128)),
            err(VE, name, "float32 or float64|dtype")),
    ]
    if match_name is not None:
        rows += [
            Row(target, f"{name} is float32 ({match_name} float64)", lambda: call(good.float()),
                err(VE, name, f"dtype torch.float64 to match {match_name}")),
            Row(target, f"{name} on the meta device", lambda: call(good.to("meta")),
                err(VE, name, f"device cpu to match {match_name}")),
        ]
    if rank_bad is not None:
        rows.append(Row(target, f"{name} of rank {rank_bad.dim()}", lambda: call(rank_bad),
                        err(VE, name, "-D")))
    if rows_bad is not None:
        rows.append(Row(target, f"{name} of shape {tuple(rows_bad.shape)} (rows mismatch)",
                        lambda: call(rows_bad), err(VE, name, "rows|size|shape")))
    return rows


def gpu_rows(target: str, call: Callable[[torch.device], Call], name: str) -> list[Row]:
    """``call(device)`` puts argument ``name`` on ``device`` and the rest on the CPU."""
    return [Row(target, f"{name} on CUDA, the rest on the CPU", lambda: call(torch.device("cuda")),
                err(VE, name, "device"), gpu=True)]


# Public names that take no input worth auditing: exception and warning classes, and plain
# records whose fields are validated where they are used (rows under the solver that reads them).
EXEMPT = {
    "torch_api.utils.ConvergenceError": "exception class",
    "torch_api.utils.ConvergenceWarning": "warning class",
    "torch_api.utils.CGInfo": "result record returned by linear_cg (never an input)",
    "torch_api.utils.LinearCGSettings": "options NamedTuple; validated by linear_cg (rows there)",
    "torch_api.utils.MINRESSettings": "options NamedTuple; validated by minres (rows there)",
    "torch_api.utils.BICGSTABSettings": "options NamedTuple; validated by bicgstab (rows there)",
    "jax_api.SolveInfo": "result record returned by the jax_api solvers (never an input)",
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


def c(fn, *args, **kwargs) -> Call:
    return Call(fn, args, kwargs)


def stored_product(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A @ B`` summing over A's stored entries only (implicit zeros are never multiplied, so an
    inf in B reaches only rows that store an entry in its row), entry by entry."""
    A = A.to_sparse_coo().coalesce()
    out = torch.zeros(A.shape[0], *B.shape[1:], dtype=B.dtype)
    for (i, k), v in zip(A.indices().T.tolist(), A.values().tolist(), strict=True):
        out[i] += v * B[k]
    return out


def pairwise_reference(values: torch.Tensor, volume_shape, offsets) -> torch.Tensor:
    """The PairwiseEncoder contract, entry by entry: for offset ``o`` (k-th) and every voxel ``p``
    with ``p - o`` inside the ``(C, *spatial)`` volume, ``M[p, p - o] = values[k][p]`` (voxels
    numbered in C order). Returns the dense ``(S, S)`` matrix."""
    S = int(np.prod(volume_shape))
    M = torch.zeros(S, S, dtype=values.dtype)
    for k, o in enumerate(offsets):
        for p in np.ndindex(*volume_shape):
            q = tuple(a - b for a, b in zip(p, o, strict=True))
            if all(0 <= x < n for x, n in zip(q, volume_shape, strict=True)):
                M[np.ravel_multi_index(p, volume_shape), np.ravel_multi_index(q, volume_shape)] = (
                    values[(k, *p)]
                )
    return M


def solved(kind="general", n_rhs=2):
    """Reference ``D^{-1} B`` of the test matrix ``mat(kind)`` and ``rhs()``."""
    return lambda call: torch.linalg.solve(mat(kind), rhs(3, n_rhs))


# ------------------------------------------------------------------------------ torch_api
def torch_rows() -> list[Row]:
    import torch_api as T

    out: list[Row] = []

    # sparse_mm ----------------------------------------------------------------------------
    t = "torch_api.sparse_mm"
    out += sparse_battery(t, "A", lambda A: c(T.sparse_mm, A, rhs()), mat())
    out += dense_battery(t, "B", lambda B: c(T.sparse_mm, sp(mat()), B), rhs(),
                         rank_bad=rhs(3, None), rows_bad=rhs(4), match_name="A")

    def mm_grad(out_, call):
        A, B = call.args
        assert_same(out_, mat() @ rhs())
        out_.sum().backward()
        assert_same(A.grad.to_dense(), (torch.ones(3, 2, dtype=F64) @ B.T) * (mat() != 0))

    out += [
        Row(t, "A batch 3, B batch 2", lambda: c(T.sparse_mm, sp(mat().expand(3, 3, 3)),
                                                 rhs().expand(2, 3, 2).clone()),
            err(VE, "B", "batch size 3")),
        Row(t, "A: unsorted CSR column indices",
            lambda: c(T.sparse_mm, unsorted_csr(mat()).requires_grad_(), rhs()),
            Result(mm_grad, "correct result and sparse gradient")),
        Row(t, "A: uncoalesced COO with a duplicate entry",
            lambda: c(T.sparse_mm, torch.sparse_coo_tensor([[0, 0, 2], [1, 1, 0]],
                                                            [1.0, 2.0, 3.0], (3, 3), dtype=F64),
                                                                rhs()),
            equals(lambda call: call.args[0].to_dense() @ call.args[1],
                   "correct result (duplicates summed)")),
        Row(t, "A has a NaN entry", lambda: c(T.sparse_mm, sp(with_nan(mat())), rhs()),
            propagates(lambda call: stored_product(call.args[0], call.args[1]))),
        Row(t, "B has inf and NaN", lambda: c(T.sparse_mm, sp(mat()), with_nan(
            with_nan(rhs(), (0, 0), float("inf")), (2, 1))),
            propagates(lambda call: stored_product(call.args[0], call.args[1]),
                       "NaN/inf propagate through stored entries only (as torch.sparse.mm)")),
        Row(t, "empty: n = 0", lambda: c(T.sparse_mm, sp(torch.zeros(0, 0, dtype=F64)),
                                         torch.zeros(0, 2, dtype=F64)), shaped((0, 2), F64)),
        Row(t, "empty: nnz = 0", lambda: c(T.sparse_mm, sp(torch.zeros(3, 3, dtype=F64)), rhs()),
            equals(lambda call: torch.zeros(3, 2, dtype=F64))),
        Row(t, "A: int32 CSR indices", lambda: c(T.sparse_mm, torch.sparse_csr_tensor(
            sp(mat()).crow_indices().int(), sp(mat()).col_indices().int(), sp(mat()).values(),
            (3, 3)), rhs()), equals(lambda call: mat() @ rhs())),
        Row(t, "A: batched int32 CSR whose flat pattern exceeds int32 (b * m > 2^31)",
            lambda: c(T.sparse_mm, torch.sparse_csr_tensor(
                torch.tensor([[0, 1, 1]] * 3, dtype=torch.int32),
                torch.tensor([[2**30 - 1]] * 3, dtype=torch.int32),
                torch.ones(3, 1, dtype=F64), (3, 2, 2**30)), torch.zeros(3, 2**30, 0, dtype=F64)),
            shaped((3, 2, 0), F64, "correct (empty) result, indices widened to int64"),
            isolate=True),
    ]
    out += gpu_rows(t, lambda d: c(T.sparse_mm, sp(mat()), rhs().to(d)), "B")

    # sparse_triangular_solve ------------------------------------------------------------------
    t = "torch_api.sparse_triangular_solve"
    L = mat("lower")

    def tri(A, B=None, **kw):
        return c(T.sparse_triangular_solve, A, rhs() if B is None else B, **{"upper": False, **kw})

    def tri_ref(call):
        A, B = call.args
        return torch.linalg.solve_triangular(dense_of(A), B, upper=False)

    zero_diag = torch.sparse_csr_tensor(sp(L).crow_indices(), sp(L).col_indices(),
                                        torch.tensor([2.0, 1.0, 0.0, 1.0, 4.0], dtype=F64), (3, 3))
    out += sparse_battery(t, "A", lambda A: tri(A), L)
    out += dense_battery(t, "B", lambda B: tri(sp(L), B), rhs(),
                         rank_bad=rhs().expand(2, 3, 2).clone(), rows_bad=rhs(4), match_name="A")
    out += [
        Row(t, "A not triangular", lambda: tri(sp(mat())), err(VE, "A", "lower-triangular")),
        Row(t, "A lower, upper=True", lambda: tri(sp(L), upper=True),
            err(VE, "A", "upper-triangular")),
        Row(t, "diagonal stored with unitriangular=True", lambda: tri(sp(L), unitriangular=True),
            err(VE, "A", "unitriangular=True")),
        Row(t, "a diagonal entry missing", lambda: tri(sp(with_nan(L, (1, 1), 0.0))),
            err(VE, "A", "nonzero stored diagonal.*1 missing")),
        Row(t, "a stored zero on the diagonal", lambda: tri(zero_diag),
            err(VE, "A", "nonzero stored diagonal.*1 zero")),
        Row(t, "upper is a string", lambda: tri(sp(L), upper="yes"), err(TE, "upper", "bool")),
        Row(t, "A batch 3, B batch 2", lambda: tri(sp(L.expand(3, 3, 3)), rhs().expand(2, 3, 2)),
            err(VE, "B", "batch size 3")),
        Row(t, "A has a NaN entry", lambda: tri(sp(with_nan(L, (2, 1)))), propagates(tri_ref)),
        Row(t, "B has a NaN", lambda: tri(sp(L), with_nan(rhs(), (1, 0))), propagates(tri_ref)),
        Row(t, "A: unsorted CSR column indices", lambda: tri(unsorted_csr(L)),
            err(VE, "A", "sorted and distinct")),
        Row(t, "A: unsorted CSR, transpose=True", lambda: tri(unsorted_csr(L), transpose=True),
            err(VE, "A", "sorted and distinct")),
        Row(t, "empty: n = 0",
            lambda: tri(sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0 with unitriangular=True",
            lambda: tri(sp(torch.zeros(3, 3, dtype=F64)), unitriangular=True),
            equals(lambda call: rhs(), "correct result (the identity solve)")),
    ]
    out += gpu_rows(t, lambda d: tri(sp(L), rhs().to(d)), "B")

    # sparse_generic_solve -------------------------------------------------------------------
    t = "torch_api.sparse_generic_solve"
    gs = T.sparse_generic_solve
    out += sparse_battery(t, "A", lambda A: c(gs, A, rhs()), mat("spd"))
    out += dense_battery(t, "B", lambda B: c(gs, sp(mat("spd")), B), rhs(),
                         rank_bad=rhs().expand(2, 3, 2).clone(), rows_bad=rhs(4), match_name="A")
    out += [
        Row(t, "A batched (3-D)", lambda: c(gs, sp(mat("spd").expand(2, 3, 3)), rhs()),
            err(VE, "A", "2-D")),
        Row(t, "A not square", lambda: c(gs, sp(mat("tall")), rhs(4)), err(VE, "A", "square")),
        Row(t, "solve is not callable", lambda: c(gs, sp(mat("spd")), rhs(), solve="minres"),
            err(TE, "solve", "callable")),
        Row(t, "solve returns the wrong shape",
            lambda: c(gs, sp(mat("spd")), rhs(), solve=lambda A, B: B[:2]),
            err(VE, "solve", "expected the solver to return shape")),
        Row(t, "indefinite A (default MINRES)", lambda: c(gs, sp(mat("indefinite")), rhs(),
                                                        settings=_minres_settings()),
            equals(solved("indefinite"), rtol=1e-7, atol=1e-8)),
        Row(t, "indefinite A with linear_cg", lambda: c(gs, sp(mat("indefinite")), rhs(),
                                                      solve=_utils().linear_cg),
            converge_warn(), isolate=True),
        Row(t, "singular A, inconsistent B (max_iter=30)",
            lambda: c(gs, sp(mat("singular")), _inconsistent(), max_iter=30),
            converge_warn(), isolate=True),
        Row(t, "B has a NaN (max_iter=30)",
            lambda: c(gs, sp(mat("spd")), with_nan(rhs()), max_iter=30), converge_warn(),
            isolate=True),
        Row(t, "A has a NaN entry (max_iter=30)",
            lambda: c(gs, sp(with_nan(mat("spd"))), rhs(), max_iter=30),
            converge_warn(), isolate=True),
        Row(t, "empty: n = 0",
            lambda: c(gs, sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0 (zero matrix)",
            lambda: c(gs, sp(torch.zeros(3, 3, dtype=F64)), rhs()),
            converge_warn(), isolate=True),
    ]

    # sparse_generic_lstsq -------------------------------------------------------------------
    t = "torch_api.sparse_generic_lstsq"
    ls = T.sparse_generic_lstsq
    out += sparse_battery(t, "A", lambda A: c(ls, A, rhs(4)), mat("tall"))
    out += dense_battery(t, "B", lambda B: c(ls, sp(mat("tall")), B), rhs(4),
                         rank_bad=rhs(4).expand(2, 4, 2).clone(), rows_bad=rhs(3), match_name="A")
    out += [
        Row(t, "A wide (m < n)", lambda: c(ls, sp(mat("tall").T.contiguous()), rhs(3)),
            err(VE, "A", "tall")),
        Row(t, "lstsq is not callable", lambda: c(ls, sp(mat("tall")), rhs(4), lstsq=3),
            err(TE, "lstsq", "callable")),
        Row(t, "rank-deficient A, inconsistent B",
            lambda: c(ls, sp(mat("singular")), _inconsistent(), atol=1e-12, btol=1e-12),
            equals(lambda call: torch.linalg.pinv(mat("singular")) @ _inconsistent(),
                   "correct minimum-norm least-squares solution", rtol=1e-8, atol=1e-9)),
        Row(t, "B has a NaN", lambda: c(ls, sp(mat("tall")), with_nan(rhs(4))), converge_warn(),
            isolate=True),
        Row(t, "empty: n = 0",
            lambda: c(ls, sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0", lambda: c(ls, sp(torch.zeros(4, 3, dtype=F64)), rhs(4)),
            equals(lambda call: torch.zeros(3, 2, dtype=F64),
                   "correct minimum-norm least-squares solution (zero)")),
    ]

    # sparse_solve_j4t -----------------------------------------------------------------------
    t = "torch_api.sparse_solve_j4t"
    j4t = T.sparse_solve_j4t
    out += sparse_battery(t, "A", lambda A: c(j4t, A, rhs()), mat())
    out += dense_battery(t, "B", lambda B: c(j4t, sp(mat()), B), rhs(), rows_bad=rhs(4),
                         match_name="A")
    out += [
        Row(t, "solve is not callable", lambda: c(j4t, sp(mat()), rhs(), solve="cg"),
            err(TE, "solve", "JAX solver")),
        Row(t, "static option is a tensor (x0)", lambda: c(j4t, sp(mat()), rhs(), x0=rhs()),
            err(TE, "x0", "hashable")),
        Row(t, "float64 while JAX's x64 mode is disabled",
            lambda: c(j4t, sp(mat()), rhs(), tol=1e-12),
            equals(solved(), "correct result (x64 enabled in a scope for the call)",
                   rtol=1e-8, atol=1e-9), x64=False),
        Row(t, "singular A, inconsistent B", lambda: c(j4t, sp(mat("singular")), _inconsistent()),
            converge_warn(), x64=False),
        Row(t, "B has a NaN", lambda: c(j4t, sp(mat()), with_nan(rhs())), converge_warn(),
            x64=False),
    ]

    # sparse_solve_c4t -----------------------------------------------------------------------
    t = "torch_api.sparse_solve_c4t"
    c4t = T.sparse_solve_c4t
    out += sparse_battery(t, "A", lambda A: c(c4t, A, rhs()), mat())
    out += dense_battery(t, "B", lambda B: c(c4t, sp(mat()), B), rhs(), rows_bad=rhs(4),
                         match_name="A")
    out += [
        Row(t, "solve is an unknown name", lambda: c(c4t, sp(mat()), rhs(), "lu"),
            err(VE, "solve", "expected one of")),
        Row(t, "solve is not callable", lambda: c(c4t, sp(mat()), rhs(), 3),
            err(TE, "solve", "solver name or a callable")),
        Row(t, "lower= given with solve='cg'",
            lambda: c(c4t, sp(mat("spd")), rhs(), "cg", lower=True),
            err(VE, "lower", "spsolve_triangular")),
        Row(t, "spsolve_triangular with a non-triangular A",
            lambda: c(c4t, sp(mat()), rhs(), "spsolve_triangular"),
            err(VE, "A", "lower-triangular")),
        Row(t, "spsolve_triangular with a missing diagonal entry",
            lambda: c(c4t, sp(with_nan(L, (1, 1), 0.0)), rhs(), "spsolve_triangular"),
            err(VE, "A", "singular")),
        Row(t, "singular A (spsolve)", lambda: c(c4t, sp(mat("singular")), rhs()),
            converge_warn(), isolate=True),
        Row(t, "singular A, inconsistent B (minres)",
            lambda: c(c4t, sp(mat("singular")), _inconsistent(), "minres"),
            converge_warn(), isolate=True),
        Row(t, "singular A, inconsistent B (cg)",
            lambda: c(c4t, sp(mat("singular")), _inconsistent(), "cg"),
            converge_warn(), isolate=True),
        Row(t, "indefinite A (minres)",
            lambda: c(c4t, sp(mat("indefinite")), rhs(), "minres", rtol=1e-12),
            equals(solved("indefinite"), rtol=1e-8, atol=1e-9)),
        Row(t, "B has a NaN (spsolve)", lambda: c(c4t, sp(mat()), with_nan(rhs())),
            converge_warn()),
        Row(t, "empty: n = 0",
            lambda: c(c4t, sp(torch.zeros(0, 0, dtype=F64)), torch.zeros(0, dtype=F64)),
            shaped((0,), F64)),
    ]
    out += gpu_rows(t, lambda d: c(c4t, sp(mat()), rhs().to(d)), "B")

    # segment_mm / gather_mm ------------------------------------------------------------------
    a = torch.arange(6, dtype=F64).reshape(3, 2) - 2.0
    b = torch.arange(16, dtype=F64).reshape(2, 2, 4) / 4.0

    def seg_ref(call):
        a_, b_, lens = call.args
        parts, s = [], 0
        for r, n in enumerate(lens.tolist()):
            parts.append(a_[s : s + n] @ b_[r])
            s += n
        return torch.cat(parts)

    def gat_ref(call):
        a_, b_, idx = call.args
        return torch.stack([a_[i] @ b_[int(idx[i])] for i in range(a_.shape[0])])

    for t, fn, third, name, ref in (
        ("torch_api.segment_mm", T.segment_mm, torch.tensor([1, 2]), "seglen_a", seg_ref),
        ("torch_api.gather_mm", T.gather_mm, torch.tensor([1, 0, 1]), "idx_b", gat_ref),
    ):
        def call3(a_=None, b_=None, i_=None, fn=fn, third=third):
            return c(fn, a.clone() if a_ is None else a_, b.clone() if b_ is None else b_,
                     third.clone() if i_ is None else i_)

        out += [
            Row(t, "a is a list", lambda call3=call3: call3(a_=a.tolist()),
                err(TE, "a", "torch.Tensor")),
            Row(t, "a is a NumPy array", lambda call3=call3: call3(a_=a.numpy()),
                err(TE, "a", "torch.Tensor")),
            Row(t, "a is sparse", lambda call3=call3: call3(a_=a.to_sparse()),
                err(TE, "a", "dense")),
            Row(t, "a is 1-D", lambda call3=call3: call3(a_=a[0]), err(VE, "a", "2-D")),
            Row(t, "a has int64 values", lambda call3=call3: call3(a_=a.long()),
                err(VE, "a", "floating-point")),
            Row(t, "a has complex values", lambda call3=call3: call3(a_=a.to(torch.complex128)),
                err(VE, "a", "floating-point")),
            Row(t, "b is 2-D", lambda call3=call3: call3(b_=b[0]), err(VE, "b", "3-D")),
            Row(t, "b's D1 does not match a", lambda call3=call3: call3(b_=b[:, :1]),
                err(VE, "b", "columns")),
            Row(t, "b is float32 (a float64)", lambda call3=call3: call3(b_=b.float()),
                err(VE, "b", "dtype torch.float64 to match a")),
            Row(t, "b on the meta device", lambda call3=call3: call3(b_=b.to("meta")),
                err(VE, "b", "device cpu to match a")),
            Row(t, f"{name} is a list", lambda call3=call3, third=third: call3(i_=third.tolist()),
                err(TE, name, "torch.Tensor")),
            Row(t, f"{name} is float", lambda call3=call3, third=third: call3(i_=third.double()),
                err(VE, name, "integer")),
            Row(t, f"{name} has the wrong length", lambda call3=call3,
                third=third: call3(i_=third[:1]),
                err(VE, name, "shape")),
            Row(t, f"{name} on the meta device", lambda call3=call3,
                third=third: call3(i_=third.to("meta")),
                err(VE, name, "CPU or CUDA|device")),
            Row(t, "a has NaN and inf",
                lambda call3=call3: call3(a_=with_nan(with_nan(a), (2, 1), float("inf")))
                , propagates(ref)),
            Row(t, "empty: N = 0 rows", lambda call3=call3, third=third: call3(
                a_=torch.zeros(0, 2, dtype=F64), i_=third[:0] if third.numel() == 3 else third * 0),
                shaped((0, 4), F64)),
        ]
    out += [
        Row("torch_api.segment_mm", "seglen_a has a negative length",
            lambda: c(T.segment_mm, a.clone(), b.clone(), torch.tensor([4, -1])),
            err(VE, "seglen_a", "lengths >= 0")),
        Row("torch_api.segment_mm", "seglen_a does not sum to a's rows",
            lambda: c(T.segment_mm, a.clone(), b.clone(), torch.tensor([1, 1])),
            err(VE, "seglen_a", "summing to a's 3 rows")),
        Row("torch_api.segment_mm", "empty: R = 0 segments",
            lambda: c(T.segment_mm, torch.zeros(0, 2, dtype=F64), torch.zeros(0, 2, 4, dtype=F64),
                      torch.zeros(0, dtype=torch.long)), shaped((0, 4), F64)),
        Row("torch_api.gather_mm", "idx_b out of range",
            lambda: c(T.gather_mm, a.clone(), b.clone(),
                                                               torch.tensor([0, 2, 1])),
            err(VE, "idx_b", r"indices in \[0, 2\)")),
        Row("torch_api.gather_mm", "idx_b negative", lambda: c(T.gather_mm, a.clone(), b.clone(),
                                                           torch.tensor([0, -1, 1])),
            err(VE, "idx_b", r"indices in \[0, 2\)")),
    ]

    # sparse_logsumexp / sparse_bidir_logsumexp ----------------------------------------------
    t = "torch_api.sparse_logsumexp"
    lse = T.sparse_logsumexp

    def lse_ref(dim):
        return lambda call: torch.logsumexp(dense_of(call.args[0]), dim)

    inf_mat = torch.tensor([[1.0, float("inf"), 0.0], [0.0, -float("inf"), 0.0], [2.0, 0.0, 3.0]],
                           dtype=F64)
    out += sparse_battery(t, "input", lambda A: c(lse, A, 1), mat(), csc_ok=True)
    out += [
        Row(t, "dim out of range", lambda: c(lse, sp(mat()), 2), err(VE, "dim", r"\[-2, 1\]")),
        Row(t, "dim is a string", lambda: c(lse, sp(mat()), "1"), err(TE, "dim", "int")),
        Row(t, "dim repeated", lambda: c(lse, sp(mat()), (1, -1)), err(VE, "dim", "at most once")),
        Row(t, "dim empty", lambda: c(lse, sp(mat()), ()), err(TE, "dim", "non-empty")),
        Row(t, "input has a NaN entry", lambda: c(lse, sp(with_nan(mat())), 1),
            propagates(lse_ref(1))),
        Row(t, "input has +inf and -inf entries (rows)", lambda: c(lse, sp(inf_mat), 1),
            propagates(lse_ref(1))),
        Row(t, "input has +inf and -inf entries (columns)", lambda: c(lse, sp(inf_mat, "coo"), 0),
            propagates(lse_ref(0))),
        Row(t, "include_zeros=False with an empty row",
            lambda: c(lse, sp(with_nan(mat("lower"), (0, 0), 0.0)), 1, include_zeros=False),
            equals(lambda call: torch.tensor([-float("inf"), math_log_sum_exp([1.0, 3.0]),
                                              math_log_sum_exp([1.0, 4.0])], dtype=F64),
                   "correct result (-inf for a row without stored entries)")),
        Row(t, "input is CSC", lambda: c(lse, sp(mat(), "csc"), 0), equals(lse_ref(0))),
        Row(t, "input: unsorted CSR column indices", lambda: c(lse, unsorted_csr(mat()), 1),
            equals(lse_ref(1))),
        Row(t, "empty: n = 0", lambda: c(lse, sp(torch.zeros(0, 0, dtype=F64)), 1),
            shaped((0,), F64)),
        Row(t, "empty: nnz = 0", lambda: c(lse, sp(torch.zeros(3, 3, dtype=F64)), 1),
            equals(lse_ref(1))),
    ]
    t = "torch_api.sparse_bidir_logsumexp"
    bidir = T.sparse_bidir_logsumexp
    out += [
        Row(t, "input is a list", lambda: c(bidir, mat().tolist()),
            err(TE, "input", "torch.Tensor")),
        Row(t, "input is dense", lambda: c(bidir, mat()), err(TE, "input", "sparse")),
        Row(t, "input has int64 values", lambda: c(bidir, sp(mat().long(), "coo")),
            err(VE, "input", "float32 or float64")),
        Row(t, "input: CSR column index out of range", lambda: c(bidir, csr_out_of_range(mat())),
            err(VE, "input", "column indices"), isolate=True),
        Row(t, "output_layout unknown", lambda: c(bidir, sp(mat()), output_layout="list"),
            err(VE, "output_layout", "one of")),
        Row(t, "keepdim=True with output_layout='padded'",
            lambda: c(bidir, sp(mat()), keepdim=True, output_layout="padded"),
            err(VE, "keepdim", "output_layout='tuple'")),
        Row(t, "input has a NaN entry", lambda: c(bidir, sp(with_nan(mat()))),
            propagates(lambda call: (torch.logsumexp(with_nan(mat()), 0),
                                     torch.logsumexp(with_nan(mat()), 1)))),
        Row(t, "empty: n = 0", lambda: c(bidir, sp(torch.zeros(0, 0, dtype=F64))),
            equals(lambda call: (torch.zeros(0, dtype=F64), torch.zeros(0, dtype=F64)),
                   "correct empty results")),
    ]
    return out


def math_log_sum_exp(xs) -> float:
    return float(np.log(np.sum(np.exp(np.asarray(xs)))))


def _inconsistent() -> torch.Tensor:
    """A right-hand side outside the range of ``mat("singular")`` (no solution exists)."""
    return torch.tensor([1.0, 0.0, 1.0], dtype=F64)


def _utils():
    import torch_api.utils as U

    return U


def _few(fn) -> dict:
    """An iteration cap of 30 for a solver that cannot converge (a cheaper row)."""
    name = fn.__name__
    if name == "bicgstab":
        return {"settings": _utils().BICGSTABSettings(matvec_max=60)}
    return {"maxiter": 30} if name == "lsmr" else {"max_iter": 30}


def _minres_settings():
    return _utils().MINRESSettings(minres_tolerance=1e-12)


# ------------------------------------------------------------------------ torch_api.utils
def utils_rows() -> list[Row]:
    U = _utils()
    out: list[Row] = []
    cw = converge_warn

    for solver, opname, rname in (("linear_cg", "matmul_closure", "rhs"),
                                  ("minres", "matmul_closure", "rhs"),
                                  ("bicgstab", "matmul_closure", "rhs"),
                                  ("lsmr", "A", "b")):
        t = f"torch_api.utils.{solver}"
        fn = getattr(U, solver)
        D = mat("spd")

        def solve_ref(call, D=D):
            return torch.linalg.solve(D, call.args[1])

        out += [
            Row(t, f"{opname} is a list", lambda fn=fn, D=D: c(fn, D.tolist(), rhs()),
                err(TE, opname, "a callable")),
            Row(t, f"{opname} is CSC", lambda fn=fn, D=D: c(fn, sp(D, "csc"), rhs()),
                err(TE, opname, "CSC")),
            Row(t, f"{opname} is hybrid COO", lambda fn=fn, D=D: c(fn, hybrid_coo(D), rhs()),
                err(TE, opname, "hybrid")),
            Row(t, f"{opname} has int64 values", lambda fn=fn,
                D=D: c(fn, sp(D.long(), "coo"), rhs()),
                err(VE, opname, "float32 or float64|dtype")),
            Row(t, f"{opname}: CSR column index out of range",
                lambda fn=fn, D=D: c(fn, csr_out_of_range(D), rhs()),
                err(VE, opname, "column indices"), isolate=True),
            Row(t, f"{rname} is a list", lambda fn=fn, D=D: c(fn, sp(D), rhs().tolist()),
                err(TE, rname, "torch.Tensor")),
            Row(t, f"{rname} is sparse", lambda fn=fn, D=D: c(fn, sp(D), rhs().to_sparse()),
                err(TE, rname, "dense")),
            Row(t, f"{rname} has int64 values", lambda fn=fn, D=D: c(fn, sp(D), rhs().long()),
                err(VE, rname, "float32 or float64")),
            Row(t, f"{rname} is float32 ({opname} float64)", lambda fn=fn,
                D=D: c(fn, sp(D), rhs().float()),
                err(VE, rname, "dtype")),
            Row(t, f"{rname} on the meta device", lambda fn=fn, D=D: c(fn, sp(D), rhs().to("meta")),
                err(VE, rname, "device")),
            Row(t, f"{rname} has 4 rows ({opname} 3 x 3)", lambda fn=fn, D=D: c(fn, sp(D), rhs(4)),
                err(VE, rname, "rows")),
            Row(t, f"{rname} has a NaN (30 iterations)", lambda fn=fn,
                D=D: c(fn, sp(D), with_nan(rhs()), **_few(fn)), cw(),
                isolate=True),
            Row(t, "empty: n = 0", lambda fn=fn: c(fn, sp(torch.zeros(0, 0, dtype=F64)),
                                                   torch.zeros(0, dtype=F64)),
                equals(lambda call: (torch.zeros(0, dtype=F64), 0) if call.fn is U.lsmr
                       else torch.zeros(0, dtype=F64), "correct empty result")),
        ]
        if solver != "lsmr":
            out += [
                Row(t, f"{opname} not square", lambda fn=fn: c(fn, sp(mat("tall")), rhs(4)),
                    err(VE, opname, "square")),
                Row(t, "singular A, inconsistent rhs (30 iterations)",
                    lambda fn=fn: c(fn, sp(mat("singular")), _inconsistent(), **_few(fn)),
                    cw(), isolate=True),
            ]
    t = "torch_api.utils.linear_cg"
    cg = U.linear_cg
    out += [
        Row(t, "indefinite A (p^T A p = 0)", lambda: c(cg, sp(mat("indefinite")), rhs()),
            cw("ConvergenceWarning naming the breakdown (is A SPD?)"), isolate=True),
        Row(t, "tolerance negative", lambda: c(cg, sp(mat("spd")), rhs(), tolerance=-1.0),
            err(VE, "tolerance", "nonnegative")),
        Row(t, "settings.cg_tolerance is NaN",
            lambda: c(cg, sp(mat("spd")), rhs(),
                      settings=U.LinearCGSettings(cg_tolerance=float("nan"))),
            err(VE, "tolerance", "finite")),
        Row(t, "convergence_reduction unknown",
            lambda: c(cg, sp(mat("spd")), rhs(), convergence_reduction="max"),
            err(VE, "convergence_reduction", "'all' or 'mean'")),
        Row(t, "n_tridiag larger than the rhs columns",
            lambda: c(cg, sp(mat("spd")), rhs(), n_tridiag=3),
            err(VE, "n_tridiag", r"\[0, 2\]")),
    ]
    t = "torch_api.utils.minres"
    out += [
        Row(t, "indefinite A",
            lambda: c(U.minres, sp(mat("indefinite")), rhs(), settings=_minres_settings()),
            equals(solved("indefinite"), rtol=1e-7, atol=1e-8)),
        Row(t, "shifts is an empty tensor",
            lambda: c(U.minres, sp(mat("spd")), rhs(), shifts=torch.zeros(0, dtype=F64)),
            err(VE, "shifts", "at least one")),
    ]
    t = "torch_api.utils.bicgstab"
    out += [
        Row(t, "settings.matvec_max negative",
            lambda: c(U.bicgstab, sp(mat()), rhs(), settings=U.BICGSTABSettings(matvec_max=-1)),
            err(VE, "settings.matvec_max", "nonnegative")),
    ]
    t = "torch_api.utils.lsmr"
    out += [
        Row(t, "A is a callable without Armat and n", lambda: c(U.lsmr, lambda x: x, rhs()),
            err(VE, "Armat", "callable A needs")),
        Row(t, "rank-deficient A, inconsistent b",
            lambda: c(U.lsmr, sp(mat("singular")), _inconsistent(), atol=1e-12, btol=1e-12),
            equals(lambda call: (torch.linalg.pinv(mat("singular")) @ _inconsistent(), 2),
                   "correct minimum-norm least-squares solution", rtol=1e-8, atol=1e-9)),
    ]

    # random constructors --------------------------------------------------------------------
    def nnz_is(n, shape):
        def check(out_, call):
            assert tuple(out_.shape) == shape and out_._nnz() == n, (tuple(out_.shape), out_._nnz())
        return Result(check, f"correct result: shape {shape}, nnz {n}")

    t = "torch_api.utils.rand_sparse"
    rs = U.rand_sparse
    out += [
        Row(t, "size is a string", lambda: c(rs, "3x3", 2), err(TE, "size", "tuple of ints")),
        Row(t, "size of rank 1", lambda: c(rs, (3,), 2), err(VE, "size", r"\(n, m\)")),
        Row(t, "size negative", lambda: c(rs, (3, -1), 0), err(VE, "size", "non-negative")),
        Row(t, "nnz larger than the matrix", lambda: c(rs, (2, 2), 5), err(VE, "nnz", "nnz <= 4")),
        Row(t, "nnz is a float", lambda: c(rs, (2, 2), 2.0), err(TE, "nnz", "int")),
        Row(t, "layout CSC", lambda: c(rs, (2, 2), 2, torch.sparse_csc),
            err(TE, "layout", "sparse_coo")),
        Row(t, "indices_dtype float", lambda: c(rs, (2, 2), 2, indices_dtype=torch.float32),
            err(VE, "indices_dtype", "int32 or")),
        Row(t, "values_dtype int", lambda: c(rs, (2, 2), 2, values_dtype=torch.int64),
            err(VE, "values_dtype", "float32 or")),
        Row(t, "well_conditioned with nnz < n", lambda: c(rs, (3, 3), 2, well_conditioned=True),
            err(VE, "nnz", "3 <= nnz")),
        Row(t, "min_diag_value 0 with well_conditioned",
            lambda: c(rs, (3, 3), 3, well_conditioned=True,
                                                                   min_diag_value=0.0),
            err(VE, "min_diag_value", "positive")),
        Row(t, "empty: size (0, 0)", lambda: c(rs, (0, 0), 0), nnz_is(0, (0, 0))),
    ]
    t = "torch_api.utils.rand_sparse_tri"
    rt = U.rand_sparse_tri
    out += [
        Row(t, "size not square", lambda: c(rt, (3, 2), 3), err(VE, "size", "square")),
        Row(t, "nnz below n (diagonal not strict)", lambda: c(rt, (3, 3), 2),
            err(VE, "nnz", "3 <= nnz")),
        Row(t, "value_range reversed", lambda: c(rt, (3, 3), 3, value_range=(1, 0)),
            err(VE, "value_range", "low <= high")),
        Row(t, "value_range not numbers", lambda: c(rt, (3, 3), 3, value_range="ab"),
            err(TE, "value_range", "pair")),
        Row(t, "empty: size (0, 0)", lambda: c(rt, (0, 0), 0), nnz_is(0, (0, 0))),
    ]
    t = "torch_api.utils.make_spd_sparse"
    ms = U.make_spd_sparse
    out += [
        Row(t, "n = 0", lambda: c(ms, 0, torch.sparse_csr, F64, torch.int64, "cpu"),
            err(VE, "n", "positive")),
        Row(t, "layout CSC", lambda: c(ms, 3, torch.sparse_csc, F64, torch.int64, "cpu"),
            err(TE, "layout", "sparse_coo")),
        Row(t, "value_dtype int",
            lambda: c(ms, 3, torch.sparse_csr, torch.int64, torch.int64, "cpu"),
            err(VE, "value_dtype", "float32 or")),
        Row(t, "index_dtype float", lambda: c(ms, 3, torch.sparse_csr, F64, F64, "cpu"),
            err(VE, "index_dtype", "int32 or")),
        Row(t, "sparsity_ratio 2", lambda: c(ms, 3, torch.sparse_csr, F64, torch.int64, "cpu", 2.0),
            err(VE, "sparsity_ratio", r"\[0, 1\]")),
        Row(t, "nz too large", lambda: c(ms, 3, torch.sparse_csr, F64, torch.int64, "cpu", nz=9),
            err(VE, "nz", "in")),
    ]

    # block diagonals, identities, stacking, conversions ---------------------------------------
    t = "torch_api.utils.sparse_block_diag"
    bd = U.sparse_block_diag
    I2 = torch.eye(2, dtype=F64)

    def wide_int32(cols):
        return torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int32),
                                       torch.zeros(0, dtype=torch.int32),
                                       torch.zeros(0, dtype=F64), (1, cols))

    def widened(out_, call):
        assert tuple(out_.shape) == (2, 2**31) and out_.col_indices().dtype == torch.int64

    out += [
        Row(t, "no arguments", lambda: c(bd), err(VE, "sparse_tensors", "at least one")),
        Row(t, "a dense block", lambda: c(bd, sp(I2), I2),
            err(TE, "sparse_tensors[1]", "sparse COO or CSR")),
        Row(t, "mixed layouts", lambda: c(bd, sp(I2), sp(I2, "coo")),
            err(TE, "sparse_tensors[1]", "layout")),
        Row(t, "a 3-D block", lambda: c(bd, sp(I2), sp(I2.expand(2, 2, 2))),
            err(VE, "sparse_tensors[1]", "2-D")),
        Row(t, "mixed dtypes", lambda: c(bd, sp(I2), sp(I2.float())),
            err(VE, "sparse_tensors[1]", "dtype")),
        Row(t, "a block with an out-of-range index", lambda: c(bd, sp(I2), csr_out_of_range(I2)),
            err(VE, "sparse_tensors[1]", "column indices"), isolate=True),
        Row(t, "an empty (0 x 0) block", lambda: c(bd, sp(torch.zeros(0, 0, dtype=F64)), sp(I2)),
            equals(lambda call: I2)),
        Row(t, "int32 CSR blocks whose columns exceed int32",
            lambda: c(bd, wide_int32(2**30), wide_int32(2**30)),
            Result(widened, "correct result with int64 indices (never wrapped)")),
    ]
    t = "torch_api.utils.sparse_block_diag_split"
    bds = U.sparse_block_diag_split
    blk = torch.block_diag(I2, 2 * torch.eye(3, dtype=F64))
    out += [
        Row(t, "input is dense", lambda: c(bds, blk, (2, 2), (3, 3)),
            err(TE, "sparse_block_diag_tensor", "sparse COO or CSR")),
        Row(t, "no shapes", lambda: c(bds, sp(blk)), err(VE, "shapes", "at least one")),
        Row(t, "shapes do not sum to the shape", lambda: c(bds, sp(blk), (2, 2), (2, 2)),
            err(VE, "shapes", "summing to")),
        Row(t, "a negative block shape", lambda: c(bds, sp(blk), (6, 6), (-1, -1)),
            err(VE, "shapes", "non-negative")),
        Row(t, "an entry outside the diagonal blocks",
            lambda: c(bds, sp(blk + torch.diag(torch.ones(4, dtype=F64), 1)), (2, 2), (3, 3)),
            err(VE, "sparse_block_diag_tensor", "outside the diagonal blocks")),
    ]
    t = "torch_api.utils.sparse_eye"
    eye = U.sparse_eye
    out += [
        Row(t, "size not square", lambda: c(eye, (2, 3)), err(VE, "size", "square")),
        Row(t, "size negative", lambda: c(eye, (-1, -1)), err(VE, "size", "non-negative")),
        Row(t, "size is an int", lambda: c(eye, 3), err(TE, "size", "tuple of ints")),
        Row(t, "layout CSC", lambda: c(eye, (2, 2), layout=torch.sparse_csc),
            err(TE, "layout", "sparse_coo")),
        Row(t, "values_dtype int", lambda: c(eye, (2, 2), values_dtype=torch.int64),
            err(VE, "values_dtype", "float32 or")),
        Row(t, "empty: size (0, 0)", lambda: c(eye, (0, 0)), nnz_is(0, (0, 0))),
    ]
    t = "torch_api.utils.stack_csr"
    st = U.stack_csr
    out += [
        Row(t, "tensors is a tensor", lambda: c(st, sp(I2)), err(TE, "tensors", "list or tuple")),
        Row(t, "tensors empty", lambda: c(st, []), err(VE, "tensors", "at least one")),
        Row(t, "a COO member", lambda: c(st, [sp(I2, "coo")]), err(TE, "tensors[0]", "CSR")),
        Row(t, "different nnz", lambda: c(st, [sp(I2), sp(torch.ones(2, 2, dtype=F64))]),
            err(VE, "tensors[1]", "stored entries")),
        Row(t, "different shapes", lambda: c(st, [sp(I2), sp(torch.eye(3, dtype=F64))]),
            err(VE, "tensors[1]", "shape")),
        Row(t, "dim = 1", lambda: c(st, [sp(I2)], dim=1), err(VE, "dim", "0")),
    ]
    t = "torch_api.utils.convert_coo_to_csr_indices_values"
    cv = U.convert_coo_to_csr_indices_values
    ij = torch.tensor([[1, 0], [0, 1]])
    out += [
        Row(t, "coo_indices float", lambda: c(cv, ij.double(), 2),
            err(TE, "coo_indices", "int32 or int64")),
        Row(t, "coo_indices of shape (4, nnz)",
            lambda: c(cv, torch.zeros(4, 2, dtype=torch.long), 2),
            err(VE, "coo_indices", r"shape \(2, nnz\)")),
        Row(t, "a negative index", lambda: c(cv, -ij, 2), err(VE, "coo_indices", "non-negative")),
        Row(t, "a row index >= num_rows", lambda: c(cv, ij, 1),
            err(VE, "coo_indices", "below num_rows")),
        Row(t, "duplicate indices", lambda: c(cv, torch.tensor([[0, 0], [1, 1]]), 2),
            err(VE, "coo_indices", "unique")),
        Row(t, "values of the wrong length", lambda: c(cv, ij, 2, torch.ones(3)),
            err(VE, "values", "2 values")),
        Row(t, "num_rows is a float", lambda: c(cv, ij, 2.0), err(TE, "num_rows", "int")),
        Row(t, "empty: nnz = 0", lambda: c(cv, torch.zeros(2, 0, dtype=torch.long), 2),
            equals(lambda call: (torch.zeros(3, dtype=torch.long), torch.zeros(0), torch.zeros(0)),
                   "correct empty result")),
    ]
    t = "torch_api.utils.convert_coo_to_csr"
    cc = U.convert_coo_to_csr
    out += [
        Row(t, "input is CSR", lambda: c(cc, sp(I2)), err(TE, "sparse_coo_tensor", "COO")),
        Row(t, "input is dense", lambda: c(cc, I2), err(TE, "sparse_coo_tensor", "COO")),
        Row(t, "input is hybrid COO", lambda: c(cc, hybrid_coo(I2)),
            err(VE, "sparse_coo_tensor", "dense dimensions")),
        Row(t, "batched with unequal nnz per batch item",
            lambda: c(cc, torch.stack([I2, torch.ones(2, 2, dtype=F64)]).to_sparse()),
            err(VE, "sparse_coo_tensor", "same number of entries")),
        Row(t, "a COO index out of range", lambda: c(cc, coo_out_of_range(I2)),
            err(VE, "sparse_coo_tensor", "indices"), isolate=True),
        Row(t, "empty: n = 0", lambda: c(cc, sp(torch.zeros(0, 0, dtype=F64), "coo")),
            nnz_is(0, (0, 0))),
    ]

    # statistical tests ----------------------------------------------------------------------
    m2 = torch.zeros(1, 2, dtype=F64)
    S2 = torch.eye(2, dtype=F64)[None]
    t = "torch_api.utils.mean_hotelling_t2_test"
    ht = U.mean_hotelling_t2_test

    def nan_stat(out_, call):
        passed, stat, _ = out_
        assert bool(torch.isnan(stat).all()) and not bool(passed.any()), (passed, stat)

    out += [
        Row(t, "sample_mean is a list", lambda: c(ht, m2.tolist(), m2, S2, 10),
            err(TE, "sample_mean", "torch.Tensor")),
        Row(t, "true_mean of another shape",
            lambda: c(ht, m2, torch.zeros(1, 3, dtype=F64), S2, 10),
            err(VE, "true_mean", r"shape \(1, 2\)")),
        Row(t, "true_mean float32", lambda: c(ht, m2, m2.float(), S2, 10),
            err(VE, "true_mean", "dtype")),
        Row(t, "sample_cov not positive definite", lambda: c(ht, m2, m2, -S2, 10),
            err(VE, "sample_cov", "positive-definite")),
        Row(t, "n <= d", lambda: c(ht, m2, m2, S2, 2), err(VE, "n", ">= 3")),
        Row(t, "n is a float", lambda: c(ht, m2, m2, S2, 10.5), err(TE, "n", "int")),
        Row(t, "confidence_level 1.5", lambda: c(ht, m2, m2, S2, 10, 1.5),
            err(VE, "confidence_level", r"\(0, 1\)")),
        Row(t, "sample_mean has a NaN", lambda: c(ht, with_nan(m2), m2, S2, 10),
            Result(nan_stat, "NaN statistic and passed=False")),
    ]
    t = "torch_api.utils.cov_nagao_test"
    nt = U.cov_nagao_test
    out += [
        Row(t, "emp_cov 2-D", lambda: c(nt, S2[0], S2, 10), err(VE, "emp_cov", "3-D")),
        Row(t, "ref_cov of another shape", lambda: c(nt, S2, torch.eye(3, dtype=F64)[None], 10),
            err(VE, "ref_cov", r"shape \(1, 2, 2\)")),
        Row(t, "ref_cov not positive definite", lambda: c(nt, S2, -S2, 10),
            err(VE, "ref_cov", "positive-definite")),
        Row(t, "ref_cov float32", lambda: c(nt, S2, S2.float(), 10), err(VE, "ref_cov", "dtype")),
        Row(t, "n = 1", lambda: c(nt, S2, S2, 1), err(VE, "n", ">= 2")),
        Row(t, "confidence_level 0", lambda: c(nt, S2, S2, 10, 0.0),
            err(VE, "confidence_level", r"\(0, 1\)")),
        Row(t, "emp_cov has a NaN", lambda: c(nt, with_nan(S2, (0, 0, 0)), S2, 10),
            Result(nan_stat, "NaN statistic and passed=False")),
    ]
    return out


# ------------------------------------------------------------ distributions and encoders
def model_rows() -> list[Row]:
    from torch_api.distributions import SparseMultivariateNormal as MVN
    from torch_api.distributions import SparseMultivariateNormalNative as Native
    from torch_api.encoders import PairwiseEncoder, pairwise_indices, pairwise_offsets

    out: list[Row] = []
    L = mat("lower")
    loc = torch.zeros(3, dtype=F64)

    def mvn(loc_=None, **kw):
        return c(MVN, loc.clone() if loc_ is None else loc_, **kw)

    t = "torch_api.distributions.SparseMultivariateNormal"
    out += [
        Row(t, "neither scale_tril nor precision_tril", lambda: mvn(),
            err(VE, "scale_tril, precision_tril", "exactly one")),
        Row(t, "both factors", lambda: mvn(scale_tril=sp(L), precision_tril=sp(L)),
            err(VE, "scale_tril, precision_tril", "exactly one")),
        Row(t, "loc is a list", lambda: mvn(loc.tolist(), scale_tril=sp(L)),
            err(TE, "loc", "torch.Tensor")),
        Row(t, "loc has int64 values", lambda: mvn(loc.long(), scale_tril=sp(L)),
            err(VE, "loc", "float32 or")),
        Row(t, "loc float32, scale_tril float64", lambda: mvn(loc.float(), scale_tril=sp(L)),
            err(VE, "scale_tril", "dtype torch.float32 to match loc")),
        Row(t, "scale_tril is dense", lambda: mvn(scale_tril=L), err(TE, "scale_tril", "sparse")),
        Row(t, "scale_tril is CSC", lambda: mvn(scale_tril=sp(L, "csc")),
            err(TE, "scale_tril", "CSC")),
        Row(t, "scale_tril on the meta device", lambda: mvn(scale_tril=sp(L).to("meta")),
            err(VE, "scale_tril", "device")),
        Row(t, "scale_tril of another size", lambda: mvn(scale_tril=sp(torch.eye(2, dtype=F64))),
            err(VE, "scale_tril", "event size 3")),
        Row(t, "scale_tril not lower triangular", lambda: mvn(scale_tril=sp(mat("spd"))),
            err(VE, "scale_tril", "constraint")),
        Row(t, "scale_tril with a negative diagonal entry", lambda: mvn(scale_tril=sp(-L)),
            err(VE, "scale_tril", "constraint")),
        Row(t, "precision_tril with a missing diagonal entry",
            lambda: mvn(precision_tril=sp(with_nan(L, (1, 1), 0.0))),
                err(VE, "precision_tril", "constraint")),
        Row(t, "LDL^T: scale_tril stores its diagonal",
            lambda: mvn(diagonal=torch.ones(3, dtype=F64), scale_tril=sp(L)),
                err(VE, "scale_tril", "constraint")),
        Row(t, "LDL^T: diagonal negative",
            lambda: mvn(diagonal=-torch.ones(3, dtype=F64), scale_tril=sp(mat("strict"))),
            err(VE, "diagonal", "constraint")),
        Row(t, "LDL^T: diagonal of another size",
            lambda: mvn(diagonal=torch.ones(2, dtype=F64), scale_tril=sp(mat("strict"))),
            err(VE, "diagonal", "event size 3")),
        Row(t, "loc has a NaN", lambda: mvn(with_nan(loc, 0), scale_tril=sp(L)),
            err(VE, "loc", "constraint")),
        Row(t, "scale_tril: COO index out of range",
            lambda: mvn(scale_tril=coo_out_of_range(L, 0, 5)),
            err(VE, "scale_tril", "indices"), isolate=True),
    ]

    def log_prob(value):
        d = MVN(loc.clone(), scale_tril=sp(L))
        return Call(d.log_prob, (value,), watch=(d.loc, d.scale_tril))

    def mvn_ref(call):
        return torch.distributions.MultivariateNormal(loc,
                                                      scale_tril=L).log_prob(call.args[0].to(F64))

    t = "torch_api.distributions.SparseMultivariateNormal.log_prob"
    out += [
        Row(t, "value is a list", lambda: log_prob([0.0, 0.0, 0.0]), err(VE, "value", "Tensor")),
        Row(t, "value of another event size", lambda: log_prob(torch.zeros(4, dtype=F64)),
            err(VE, "value", "event_shape")),
        Row(t, "value has a NaN", lambda: log_prob(with_nan(torch.zeros(3, dtype=F64), 0)),
            err(VE, "value", "support")),
        Row(t, "value float32 (distribution float64)", lambda: log_prob(torch.ones(3)),
            equals(mvn_ref,
                   "correct result (value promoted to float64, as torch's MultivariateNormal)")),
    ]

    t = "torch_api.distributions.SparseMultivariateNormalNative"
    out += [
        Row(t, "loc 2-D", lambda: c(Native, loc[None].clone(), sp(L)), err(VE, "loc", "1-D")),
        Row(t, "scale_tril is COO", lambda: c(Native, loc.clone(), sp(L, "coo")),
            err(TE, "scale_tril", "CSR")),
        Row(t, "scale_tril of another size",
            lambda: c(Native, loc.clone(), sp(torch.eye(2, dtype=F64))),
            err(VE, "scale_tril", "match loc")),
        Row(t, "scale_tril not lower triangular", lambda: c(Native, loc.clone(), sp(mat("spd"))),
            err(VE, "scale_tril", "constraint")),
        Row(t, "scale_tril float32, loc float64", lambda: c(Native, loc.clone(), sp(L.float())),
            err(VE, "scale_tril", "dtype")),
    ]

    t = "torch_api.encoders.PairwiseEncoder"
    PE = PairwiseEncoder
    out += [
        Row(t, "radius 0", lambda: c(PE, 0, (1, 3)), err(VE, "radius", ">= 1")),
        Row(t, "radius is a string", lambda: c(PE, "1", (1, 3)), err(VE, "radius", ">= 1")),
        Row(t, "volume_shape without a spatial dimension", lambda: c(PE, 1, (3,)),
            err(VE, "volume_shape", "at least 2")),
        Row(t, "volume_shape with a zero", lambda: c(PE, 1, (1, 0)),
            err(VE, "volume_shape", "positive")),
        Row(t, "channel_voxel_relation unknown",
            lambda: c(PE, 1, (2, 3), channel_voxel_relation="all"),
            err(VE, "channel_voxel_relation", "one of")),
        Row(t, "channel_voxel_relation 'intra' with C = 1",
            lambda: c(PE, 1, (1, 3), channel_voxel_relation="intra"),
            err(VE, "channel_voxel_relation", "more than one channel")),
        Row(t, "layout CSC", lambda: c(PE, 1, (1, 3), layout=torch.sparse_csc),
            err(VE, "layout", "sparse_coo")),
        Row(t, "indices_dtype float", lambda: c(PE, 1, (1, 3), indices_dtype=torch.float32),
            err(VE, "indices_dtype", "int32 or")),
        Row(t, "upper is a string", lambda: c(PE, 1, (1, 3), upper="x"),
            err(VE, "upper", "True, False or None")),
        Row(t, "int32 indices for 2^32 voxels",
            lambda: c(PE, 1, (1, 2**16, 2**16), indices_dtype=torch.int32),
            err(VE, "indices_dtype", "int32 cannot index")),
    ]

    def forward(values, layout=torch.sparse_csr, shape=(2, 2, 3)):
        enc = PE(1, shape, diag=True, layout=layout, channel_voxel_relation="intra")
        return Call(enc, (values,), watch=tuple(enc.buffers()))

    K = len(pairwise_offsets(1, 2, 2, "intra", None, True))
    vals = torch.arange(K * 12, dtype=F64).reshape(K, 2, 2, 3) / 10

    def enc_ref(call):
        return pairwise_reference(call.args[0], (2, 2, 3), call.fn.offsets)

    t = "torch_api.encoders.PairwiseEncoder.forward"
    out += [
        Row(t, "values is a list", lambda: forward([1.0]), err(TE, "values", "torch.Tensor")),
        Row(t, "values of the wrong shape", lambda: forward(vals[:, :1].clone()),
            err(VE, "values", r"len\(offsets\)")),
        Row(t, "values has int64 entries", lambda: forward(vals.long()),
            err(VE, "values", "float32 or")),
        Row(t, "values on the meta device", lambda: forward(vals.to("meta")),
            err(VE, "values", "device")),
        Row(t, "values has NaN and inf",
            lambda: forward(with_nan(with_nan(vals, (0, 1, 1, 2)), (3, 0, 1, 0), float("inf"))),
            propagates(enc_ref,
                       "NaN/inf land in their own entries only (entry-by-entry reference)")),
        Row(t, "values has NaN (COO layout)",
            lambda: forward(with_nan(vals, (2, 0, 0, 1)), torch.sparse_coo),
            propagates(enc_ref, "NaN lands in its own entry only (entry-by-entry reference)")),
    ]

    t = "torch_api.encoders.pairwise_offsets"
    out += [
        Row(t, "radius 0.5", lambda: c(pairwise_offsets, 0.5, 1), err(VE, "radius", ">= 1")),
        Row(t, "spatial_dims 0", lambda: c(pairwise_offsets, 1, 0),
            err(VE, "spatial_dims", ">= 1")),
        Row(t, "relation unknown", lambda: c(pairwise_offsets, 1, 1, 2, "all"),
            err(VE, "channel_voxel_relation", "one of")),
        Row(t, "relation 'inter' with one channel", lambda: c(pairwise_offsets, 1, 1, 1, "inter"),
            err(VE, "channel_voxel_relation", "more than one channel")),
    ]
    t = "torch_api.encoders.pairwise_indices"
    out += [
        Row(t, "an offset of the wrong length", lambda: c(pairwise_indices, (1, 3), [(0, 1, 1)]),
            err(VE, "offsets", "length 2")),
        Row(t, "volume_shape is a string", lambda: c(pairwise_indices, "ab", [(0, 1)]),
            err(VE, "volume_shape", "positive integers")),
        Row(t, "no offsets", lambda: c(pairwise_indices, (1, 3), []),
            Result(lambda out_, call: assert_same(out_.crow, np.zeros(4, dtype=np.int64)),
                   "correct empty result (no entries)")),
    ]
    return out


# ------------------------------------------------------------------------------- bridge
def bridge_rows() -> list[Row]:
    import bridge

    out: list[Row] = []
    x32 = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    S32 = mat(dtype=torch.float32)
    for name in ("to_torch", "to_jax", "to_numpy", "to_scipy", "to_cupy"):
        t, fn = f"bridge.{name}", getattr(bridge, name)
        out += [
            Row(t, "x is a list", lambda fn=fn: c(fn, [1.0, 2.0]), err(TE, name, "array|sparse")),
            Row(t, "copy is a string", lambda fn=fn: c(fn, x32.clone(), copy="yes"),
                err(TE, "copy", "None, True or False")),
        ]
    x64off = {"x64": False}
    out += [
        Row("bridge.to_torch", "a strided NumPy view with copy=False",
            lambda: c(bridge.to_torch, np.arange(6.0)[::-2], copy=False),
                err(VE, "array", "without a copy")),
        Row("bridge.to_torch", "an empty array", lambda: c(bridge.to_torch, np.zeros((0, 3))),
            shaped((0, 3), F64)),
        Row("bridge.to_jax", "float64 while JAX's x64 mode is disabled",
            lambda: c(bridge.to_jax, x32.double()),
            err(TE, "array", "64-bit mode is disabled"), **x64off),
        Row("bridge.to_jax", "COO (int64 indices) while JAX's x64 mode is disabled",
            lambda: c(bridge.to_jax, sp(S32, "coo")),
                err(TE, "indices", "64-bit mode is disabled"), **x64off),
        Row("bridge.to_jax", "CSC", lambda: c(bridge.to_jax, sp(S32, "csc")),
            err(TE, "to_jax", "array|sparse")),
        Row("bridge.to_jax", "on the meta device", lambda: c(bridge.to_jax, x32.to("meta")),
            err(VE, "array", "meta tensor")),
        Row("bridge.to_jax", "COO index out of range",
            lambda: c(bridge.to_jax, coo_out_of_range(S32)),
            err(VE, "indices", "within the shape"), x64=True),
        Row("bridge.to_jax", "CSR column index out of range",
            lambda: c(bridge.to_jax, csr_out_of_range(S32)),
            err(VE, "indices", "CSR indices"), x64=True),
        Row("bridge.to_jax", "CSR with unsorted column indices",
            lambda: c(bridge.to_jax, unsorted_csr(S32)),
            Result(lambda out_, call: (assert_same(out_, S32), _assert(not out_.indices_sorted)),
                   "correct result, marked unsorted"), x64=True),
        Row("bridge.to_numpy", "sparse input", lambda: c(bridge.to_numpy, sp(S32)),
            err(TE, "to_numpy", "dense arrays only")),
        Row("bridge.to_numpy", "on the meta device", lambda: c(bridge.to_numpy, x32.to("meta")),
            err(VE, "array", "meta tensor")),
        Row("bridge.to_numpy", "a transposed view with copy=False",
            lambda: c(bridge.to_numpy, x32.t(), copy=False),
            equals(lambda call: x32.t().numpy(), "correct result (a strided view, no copy)")),
        Row("bridge.to_scipy", "dense input", lambda: c(bridge.to_scipy, x32.clone()),
            err(TE, "to_scipy", "sparse tensors only")),
        Row("bridge.to_scipy", "batched CSR", lambda: c(bridge.to_scipy, sp(S32.expand(2, 3, 3))),
            err(VE, "SciPy", "no batched CSR")),
        Row("bridge.to_scipy", "CSR column index out of range",
            lambda: c(bridge.to_scipy, csr_out_of_range(S32)),
            err(VE, "indices", "CSR indices"), isolate=True),
        Row("bridge.to_scipy", "CSR with unsorted column indices",
            lambda: c(bridge.to_scipy, unsorted_csr(S32)),
            Result(lambda out_,
                   call: (assert_same(out_, S32), _assert(not out_.has_sorted_indices)),
                   "correct result, marked unsorted")),
        Row("bridge.to_scipy", "empty: n = 0", lambda: c(bridge.to_scipy, sp(torch.zeros(0, 0))),
            Result(lambda out_, call: _assert(out_.shape == (0, 0) and out_.nnz == 0),
                   "correct empty result")),
    ]
    if importlib.util.find_spec("cupy") is None:
        out.append(Row("bridge.to_cupy", "CuPy is not installed",
                       lambda: c(bridge.to_cupy, x32.clone()),
                       err(ImportError, "cupy", "sparsegradutils\\[cupy\\]")))

    def kernel64(x):
        import jax

        k = bridge.jax_kernel(lambda a: a.double(), jax.ShapeDtypeStruct((3,), np.float64))
        return c(k, x)

    out += [
        Row("bridge.jax_kernel", "fn is not callable", lambda: c(bridge.jax_kernel, 3, None),
            err(TE, "fn", "callable")),
        Row("bridge.jax_kernel", "vmap_method unknown",
            lambda: c(bridge.jax_kernel, abs, None, vmap_method="loop"),
            err(VE, "vmap_method", "one of")),
        Row("bridge.jax_kernel", "float64 output while JAX's x64 mode is disabled",
            lambda: kernel64(importlib.import_module("jax.numpy").ones(3)),
            err(TE, "result_shape_dtypes", "x64 mode is off"), **x64off),
        Row("bridge.torch_kernel", "fn is not callable", lambda: c(bridge.torch_kernel, 3),
            err(TE, "fn", "callable")),
        Row("bridge.torch_kernel", "tensors on the CPU and the meta device",
            lambda: c(bridge.torch_kernel(lambda a, b: a + b), x32.clone(), x32.to("meta")),
            err(VE, "torch_kernel", "one device")),
        Row("bridge.torch_kernel", "float64 while JAX's x64 mode is disabled",
            lambda: c(bridge.torch_kernel(lambda a: 2 * a), x32.double()),
            equals(lambda call: 2 * x32.double(),
                   "correct float64 result (x64 enabled in a scope)"), **x64off),
    ]
    return out


def scipy_sparse():
    import scipy.sparse

    return scipy.sparse


def _assert(cond) -> None:
    assert cond


# ------------------------------------------------------------------------------ jax_api
def jax_rows() -> list[Row]:
    """Specific rows for the jax_api names that exist now; generic rows for the other exports."""
    try:
        import jax_api as J
    except ImportError:
        return []
    import jax.numpy as jnp
    from jax.experimental.sparse import BCOO, BCSR

    f32 = np.float32
    D = mat(dtype=torch.float32).numpy()
    Lw = mat("lower", torch.float32).numpy()
    Bn = rhs(dtype=torch.float32).numpy()

    def bcsr(M):  # built from NumPy parts: fromdense would compile a JAX program per shape
        S = scipy_sparse().csr_array(M)
        return BCSR((jnp.asarray(S.data), jnp.asarray(S.indices.astype(np.int32)),
                     jnp.asarray(S.indptr.astype(np.int32))), shape=M.shape)

    def bcoo(M, n_dense=0):
        if n_dense:
            return BCOO((jnp.asarray(M), jnp.arange(M.shape[0], dtype=jnp.int32)[:, None]),
                        shape=M.shape)
        S = scipy_sparse().coo_array(M)
        idx = np.stack([S.row, S.col], 1).astype(np.int32)
        return BCOO((jnp.asarray(S.data), jnp.asarray(idx)), shape=M.shape)

    def stored(A, B):  # A @ B over A's stored entries only (implicit zeros never multiply)
        rows_ = [sum((A[i, k] * B[k] for k in range(A.shape[1]) if A[i, k] != 0),
                     np.zeros(B.shape[1:], B.dtype)) for i in range(A.shape[0])]
        return np.stack(rows_)

    def jref(fn):
        return lambda call: fn(*[np.asarray(a.todense()) if hasattr(a, "todense") else np.asarray(a)
                                 for a in call.args])

    out: list[Row] = []
    specific = {
        "sparse_mm": (lambda A, B: c(J.sparse_mm, A, B), D, stored),
        "sparse_triangular_solve": (lambda A, B: c(J.sparse_triangular_solve, A, B, upper=False),
                                    Lw,
                                    lambda A, B: np.linalg.solve(A, B)),
        "sparse_generic_solve": (lambda A, B: c(J.sparse_generic_solve, A, B),
                                 mat("spd", torch.float32).numpy(),
                                 lambda A, B: np.linalg.solve(A, B)),
    }
    for name, (call, M, ref) in specific.items():
        if not hasattr(J, name):
            continue
        t = f"jax_api.{name}"
        out += [
            Row(t, "A is a list", lambda call=call, M=M: call(M.tolist(), jnp.asarray(Bn)),
                err(TE, "A", "BCOO or BCSR")),
            Row(t, "A is a torch tensor", lambda call=call,
                M=M: call(torch.from_numpy(M).to_sparse(), jnp.asarray(Bn)),
                err(TE, "A", "BCOO or BCSR")),
            Row(t, "A is dense", lambda call=call, M=M: call(jnp.asarray(M), jnp.asarray(Bn)),
                err(TE, "A", "BCOO or BCSR")),
            Row(t, "A has int32 values", lambda call=call,
                M=M: call(bcoo(M.astype(np.int32)), jnp.asarray(Bn)),
                err(VE, "A", "float32 or float64")),
            Row(t, "A has a dense dimension", lambda call=call, M=M: call(bcoo(M, n_dense=1),
                                                                          jnp.asarray(Bn)),
                err(TE, "A", "dense dimensions")),
            Row(t, "B is a list", lambda call=call, M=M: call(bcsr(M), Bn.tolist()),
                err(TE, "B", "dense jax.Array")),
            Row(t, "B is a torch tensor", lambda call=call,
                M=M: call(bcsr(M), torch.from_numpy(Bn)),
                err(TE, "B", "dense jax.Array")),
            Row(t, "B is sparse", lambda call=call, M=M: call(bcsr(M), bcoo(Bn)),
                err(TE, "B", "dense jax.Array")),
            Row(t, "B has 4 rows", lambda call=call, M=M: call(bcsr(M), jnp.ones((4, 2), f32)),
                err(VE, "B", "rows")),
            Row(t, "B has int32 values", lambda call=call,
                M=M: call(bcsr(M), jnp.ones((3, 2), jnp.int32)),
                err(VE, "B", "float32 or float64")),
            Row(t, "B float64 NumPy while JAX's x64 mode is disabled",
                lambda call=call, M=M: call(bcsr(M), Bn.astype(np.float64)),
                    err(VE, "B", "x64|downcast"), x64=False),
            Row(t, "B float64, A float32", lambda call=call,
                M=M: call(bcsr(M), jnp.asarray(Bn, jnp.float64)),
                err(VE, "B", "dtype float32 to match A"), x64=True),
            Row(t, "B has a NaN", lambda call=call,
                M=M: call(bcsr(M), jnp.asarray(with_nan(rhs(dtype=torch.float32)).numpy())),
                propagates(jref(ref)) if name != "sparse_generic_solve" else converge_warn()),
            Row(t, "correct on BCOO input", lambda call=call, M=M: call(bcoo(M), jnp.asarray(Bn)),
                equals(jref(ref), "correct result (dense reference)", rtol=1e-4, atol=1e-5)),
        ]
    if hasattr(J, "sparse_triangular_solve"):
        t = "jax_api.sparse_triangular_solve"
        out += [
            Row(t, "A not triangular",
                lambda: c(J.sparse_triangular_solve, bcsr(D), jnp.asarray(Bn), upper=False),
                err(VE, "A", "lower-triangular")),
            Row(t, "diagonal stored with unitriangular=True",
                lambda: c(J.sparse_triangular_solve, bcsr(Lw), jnp.asarray(Bn), upper=False,
                          unitriangular=True),
                err(VE, "A", "unitriangular=True")),
        ]
    if hasattr(J, "sparse_generic_solve"):
        t = "jax_api.sparse_generic_solve"
        sing = mat("singular", torch.float32).numpy()
        out += [
            Row(t, "singular A, inconsistent B", lambda: c(J.sparse_generic_solve, bcsr(sing),
                                                           jnp.asarray(_inconsistent().float().numpy())),
                converge_warn(), isolate=True),
        ]
    out += _jax_more_rows(J, bcsr, bcoo)
    covered = {r.target for r in out}
    for qualname in public_callables():
        if qualname.startswith("jax_api.") and qualname not in covered and qualname not in EXEMPT:
            out.append(generic_row(qualname))
    return out


def _jax_more_rows(J, bcsr, bcoo) -> list[Row]:
    """Rows for the other jax_api names, each only if jax_api exports it."""
    import jax
    import jax.numpy as jnp
    from jax.experimental.sparse import BCSR

    f32 = torch.float32
    spd, sing = mat("spd", f32).numpy(), mat("singular", f32).numpy()
    b3 = jnp.asarray(rhs(3, None, f32).numpy())
    inc = jnp.asarray(_inconsistent().float().numpy())
    out: list[Row] = []

    def has(name):
        return hasattr(J, name)

    for name in ("cg", "minres", "bicgstab", "gmres", "lsmr"):
        if not has(name):
            continue
        t, fn = f"jax_api.{name}", getattr(J, name)
        out += [
            Row(t, "A is a list", lambda fn=fn: c(fn, spd.tolist(), b3), err(TE, "A", "BCOO/BCSR")),
            Row(t, "B has 4 rows", lambda fn=fn: c(fn, bcsr(spd), jnp.ones(4, jnp.float32)),
                err(VE, "B", "rows")),
        ]
        if name != "lsmr":  # LSMR gives the least-squares solution instead
            out.append(Row(t, "singular A, inconsistent B (maxiter=30)",
                           lambda fn=fn: c(fn, bcsr(sing), inc, maxiter=30), converge_warn()))
    if has("cg"):
        out.append(Row("jax_api.cg", "B has a NaN (maxiter=30)",
                       lambda: c(J.cg, bcsr(spd), b3.at[0].set(jnp.nan), maxiter=30),
                           converge_warn()))
    if has("sparse_generic_lstsq"):
        out.append(Row("jax_api.sparse_generic_lstsq", "A wide (m < n)",
                       lambda: c(J.sparse_generic_lstsq, bcsr(spd[:2]), jnp.ones(2, jnp.float32)),
                       err(VE, "A", "tall")))
    a, b = jnp.ones((3, 2), jnp.float32), jnp.ones((2, 2, 4), jnp.float32)
    if has("segment_mm"):
        t = "jax_api.segment_mm"
        out += [
            Row(t, "a is a list", lambda: c(J.segment_mm, [[1.0, 2.0]] * 3, b, jnp.asarray([1, 2])),
                err(TE, "a", "dense jax.Array")),
            Row(t, "seglen_a has a negative length",
                lambda: c(J.segment_mm, a, b, jnp.asarray([4, -1])),
                err(VE, "seglen_a", "non-negative")),
            Row(t, "seglen_a does not sum to a's rows",
                lambda: c(J.segment_mm, a, b, jnp.asarray([1, 1])),
                err(VE, "seglen_a", "summing to a's 3 rows")),
            Row(t, "seglen_a is float", lambda: c(J.segment_mm, a, b, jnp.asarray([1.0, 2.0])),
                err(VE, "seglen_a", "integer")),
        ]
    if has("gather_mm"):
        t = "jax_api.gather_mm"
        out += [
            Row(t, "b is 2-D", lambda: c(J.gather_mm, a, b[0], jnp.asarray([0, 1, 1])),
                err(VE, "b", "3-D")),
            Row(t, "idx_b out of range", lambda: c(J.gather_mm, a, b, jnp.asarray([0, 2, 1])),
                err(VE, "idx_b", r"indices in \[0, 2\)")),
        ]
    if has("sparse_logsumexp"):
        t = "jax_api.sparse_logsumexp"
        nan = with_nan(mat(dtype=f32)).numpy()
        out += [
            Row(t, "input is a list", lambda: c(J.sparse_logsumexp, spd.tolist(), 1),
                err(TE, "input", "BCOO or BCSR")),
            Row(t, "dim out of range", lambda: c(J.sparse_logsumexp, bcsr(spd), 2),
                err(VE, "dim", r"\[-2, 1\]")),
            Row(t, "input has a NaN entry", lambda: c(J.sparse_logsumexp, bcsr(nan), 1),
                propagates(lambda call: torch.logsumexp(torch.from_numpy(nan), 1), ), ),
        ]
    if has("sparse_bidir_logsumexp"):
        out.append(Row("jax_api.sparse_bidir_logsumexp", "output_layout unknown",
                       lambda: c(J.sparse_bidir_logsumexp, bcsr(spd), output_layout="list"),
                       err(VE, "output_layout", "one of")))
    if has("PairwiseEncoder"):
        t = "jax_api.PairwiseEncoder"
        out += [
            Row(t, "radius 0", lambda: c(J.PairwiseEncoder, 0, (1, 3)), err(VE, "radius", ">= 1")),
            Row(t + ".__call__", "values of the wrong shape",
                lambda: c(J.PairwiseEncoder(1, (1, 3)), jnp.ones((5, 1, 3), jnp.float32)),
                err(VE, "values", "len")),
            Row(t + ".__call__", "values is a list", lambda: c(J.PairwiseEncoder(1, (1, 3)), [1.0]),
                err(TE, "values", "dense jax.Array")),
        ]
    if has("SparseMultivariateNormal"):
        t = "jax_api.SparseMultivariateNormal"
        out += [
            Row(t, "neither scale_tril nor precision_tril",
                lambda: c(J.SparseMultivariateNormal, jnp.zeros(3)),
                err(VE, "scale_tril, precision_tril", "exactly one")),
            Row(t, "loc is a list", lambda: c(J.SparseMultivariateNormal, [0.0] * 3,
                                              scale_tril=bcsr(np.tril(spd))),
                err(TE, "loc", "dense jax.Array")),
        ]
    def empty(n):  # (n, n) BCSR without stored entries
        return BCSR((jnp.zeros(0, jnp.float32), jnp.zeros(0, jnp.int32),
                     jnp.zeros(n + 1, jnp.int32)), shape=(n, n))

    def zeros(*shape):
        return jnp.zeros(shape, jnp.float32)

    for name, fn_call, want in (
        ("sparse_mm", lambda: c(J.sparse_mm, empty(0), zeros(0, 2)), (0, 2)),
        ("sparse_triangular_solve", lambda: c(J.sparse_triangular_solve, empty(0), zeros(0)), (0,)),
        ("sparse_generic_solve", lambda: c(J.sparse_generic_solve, empty(0), zeros(0)), (0,)),
    ):
        if has(name):
            out.append(Row(f"jax_api.{name}", "empty: n = 0", fn_call, shaped(want)))
    if has("sparse_mm"):
        out.append(Row("jax_api.sparse_mm", "empty: nnz = 0",
                       lambda: c(J.sparse_mm, empty(3), jnp.ones((3, 2), jnp.float32)),
                       equals(lambda call: np.zeros((3, 2), np.float32))))
    if has("sparse_triangular_solve"):
        out.append(Row("jax_api.sparse_triangular_solve", "empty: nnz = 0 with unitriangular=True",
                       lambda: c(J.sparse_triangular_solve, empty(3), b3, unitriangular=True),
                       equals(lambda call: np.asarray(b3), "correct result (the identity solve)")))
    if has("SparseMultivariateNormal"):
        out.append(Row("jax_api.SparseMultivariateNormal",
                       "scale_tril not lower triangular (validate_args=True)",
                       lambda: c(J.SparseMultivariateNormal, jnp.zeros(3, jnp.float32),
                                 scale_tril=bcsr(spd), validate_args=True),
                       err(VE, "scale_tril", "lower-triangular")))
    key = jax.random.PRNGKey(0)
    if has("rand_sparse"):
        out.append(Row("jax_api.rand_sparse", "nnz larger than the matrix",
                       lambda: c(J.rand_sparse, key, (2, 2), 5), err(VE, "nnz", "4")))
    if has("make_spd_sparse"):
        out.append(Row("jax_api.make_spd_sparse", "n = 0", lambda: c(J.make_spd_sparse, key, 0),
                       err(VE, "n", "positive")))
    if has("mean_hotelling_t2_test"):
        out.append(Row("jax_api.mean_hotelling_t2_test", "n <= d",
                       lambda: c(J.mean_hotelling_t2_test, jnp.zeros((1, 2)), jnp.zeros((1, 2)),
                                 jnp.eye(2)[None], 2), err(VE, "n", ">= 3")))
    if has("cov_nagao_test"):
        out.append(Row("jax_api.cov_nagao_test", "n = 1",
                       lambda: c(J.cov_nagao_test, jnp.eye(2)[None], jnp.eye(2)[None], 1),
                       err(VE, "n", ">= 2")))
    return out


# -------------------------------------------------------------------------- the table
def rows() -> list[Row]:
    """Every row, in report order: torch_api, torch_api.utils, distributions and encoders,
    bridge, jax_api."""
    out = torch_rows() + utils_rows() + model_rows() + bridge_rows() + jax_rows()
    ids = [r.id for r in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate row ids: {dup}"
    return out
