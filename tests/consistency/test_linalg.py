"""torch_api and jax_api agree with each other and with dense torch on the matrix operations."""

from __future__ import annotations

import pytest
import torch

from .cases import SOLVER_TOL, cases, make_inputs, make_matrix, params
from .runner import compare, run_dense, run_jax, run_torch, set_weights

jax = pytest.importorskip("jax")
jax_api = pytest.importorskip("jax_api")
import torch_api  # noqa: E402

N, M = 8, 6


def _run(case, D, b_rows, torch_fn, jax_fn, dense_fn, bound=None):
    inp = make_inputs(case, D, b_rows)
    with torch.no_grad():
        out = dense_fn(inp.dense(), inp.B)
    set_weights(case, inp, out.shape)
    # torch COO indices are always int64, which JAX accepts only in 64-bit mode (scoped here)
    with jax.enable_x64(True):
        results = {
            "torch": run_torch(case, inp, torch_fn),
            "jax": run_jax(case, inp, jax_fn),
            "dense": run_dense(case, inp, dense_fn),
        }
    compare(case, results, bound)


def _vec(fn):
    """Apply a dense (n, k) operation to a vector or batched right-hand side."""

    def wrapped(D, B):
        vector = B.dim() == D.dim() - 1
        out = fn(D, B.unsqueeze(-1) if vector else B)
        return out.squeeze(-1) if vector else out

    return wrapped


@pytest.mark.parametrize("case", params(cases("sparse_mm", square=False, rhs=(4,))))
def test_sparse_mm(case):
    D = make_matrix(case, N, M, "rect")
    _run(case, D, M, torch_api.sparse_mm, jax_api.sparse_mm, torch.matmul)


TRI = [
    (upper, unit, transpose)
    for upper in (False, True)
    for unit in (False, True)
    for transpose in (False, True)
]
# Every flag combination on 2-D and batched matrices with a block right-hand side; the full case
# table (vector right-hand sides, every pattern) on the plain lower solve.
_TRI_CASES = [
    pytest.param(c, f, id=f"{c.id}-upper{f[0]:d}-unit{f[1]:d}-trans{f[2]:d}")
    for f in TRI
    for c in cases("triangular", square=True, patterns=("random", "single", "duplicates"))
    if f == (False, False, False) or (c.rhs == 4 and c.pattern in ("random", "duplicates"))
]


@pytest.mark.parametrize(("case", "flags"), _TRI_CASES)
def test_sparse_triangular_solve(case, flags):
    upper, unit, transpose = flags
    kind = ("strict-" if unit else "") + ("upper" if upper else "lower")
    D = make_matrix(case, N, N, kind)
    kw = dict(upper=upper, unitriangular=unit, transpose=transpose)

    def dense(Dd, B):
        return torch.linalg.solve_triangular(
            Dd.mT if transpose else Dd, B, upper=upper != transpose, unitriangular=unit
        )

    _run(case, D, N, lambda A, B: torch_api.sparse_triangular_solve(A, B, **kw),
         lambda A, B: jax_api.sparse_triangular_solve(A, B, **kw), _vec(dense))


# Iterative solvers present in both frontends, with their tolerance arguments. The bound on
# the relative error of outputs and gradients is 100 * tol * cond(A): the matrices here are
# diagonally dominant with cond(A) < 10, so 1e3 * tol.
SOLVERS = {
    "cg": ("spd", lambda t: dict(solve=torch_api.utils.linear_cg,
                                 settings=torch_api.utils.LinearCGSettings(cg_tolerance=t)),
           lambda t: dict(solve=jax_api.cg, tol=t)),
    "minres": ("spd", lambda t: dict(solve=torch_api.utils.minres,
                                     settings=torch_api.utils.MINRESSettings(minres_tolerance=t)),
               lambda t: dict(solve=jax_api.minres, tol=t)),
    "bicgstab": ("general",
                 lambda t: dict(solve=torch_api.utils.bicgstab,
                                settings=torch_api.utils.BICGSTABSettings(reltol=t, abstol=0.0)),
                 lambda t: dict(solve=jax_api.bicgstab, tol=t)),
}


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@pytest.mark.parametrize(
    "case",
    params(cases("generic_solve", square=True, batches=(None,), patterns=("random", "duplicates"))),
)
def test_sparse_generic_solve(case, solver):
    kind, torch_kw, jax_kw = SOLVERS[solver]
    t = SOLVER_TOL[case.dtype]
    D = make_matrix(case, N, N, kind)
    _run(case, D, N, lambda A, B: torch_api.sparse_generic_solve(A, B, **torch_kw(t)),
         lambda A, B: jax_api.sparse_generic_solve(A, B, **jax_kw(t)),
         _vec(torch.linalg.solve), bound=1e3 * t if case.dtype == "float64" else 1e-3)


@pytest.mark.parametrize(
    "case",
    params(cases("generic_lstsq", square=False, batches=(None,),
                 patterns=("random", "duplicates"))),
)
def test_sparse_generic_lstsq(case):
    D = make_matrix(case, N + 4, N, "rect")
    D[:N] += 4 * torch.eye(N, dtype=D.dtype)  # full column rank, well conditioned
    _run(case, D, N + 4, torch_api.sparse_generic_lstsq, jax_api.sparse_generic_lstsq,
         _vec(lambda Dd, B: torch.linalg.lstsq(Dd, B).solution),
         bound=1e-8 if case.dtype == "float64" else 1e-3)


@pytest.mark.parametrize(
    "case", params(cases("j4t", square=True, batches=(None,), patterns=("random",)))
)
def test_sparse_solve_j4t_matches_jax_api(case):
    """torch_api.sparse_solve_j4t (JAX solver from torch) against jax_api.sparse_generic_solve."""
    t = SOLVER_TOL[case.dtype]
    D = make_matrix(case, N, N, "general")
    from jax.scipy.sparse.linalg import bicgstab

    _run(case, D, N, lambda A, B: torch_api.sparse_solve_j4t(A, B, solve=bicgstab, tol=t),
         lambda A, B: jax_api.sparse_generic_solve(A, B, solve=jax_api.bicgstab, tol=t),
         _vec(torch.linalg.solve), bound=1e3 * t if case.dtype == "float64" else 1e-3)


# Direct factorisations (issue 20): the solves on every pattern and batch, the log-determinants
# through ``logdet(A) * B`` (so that the case machinery's loss reaches both arguments).
DIRECT = {
    "cholesky": ("spd", torch_api.sparse_cholesky_solve, jax_api.sparse_cholesky_solve),
    "lu": ("general", torch_api.sparse_lu_solve, jax_api.sparse_lu_solve),
}


@pytest.mark.parametrize("which", sorted(DIRECT))
@pytest.mark.parametrize(
    "case", params(cases("direct_solve", square=True, patterns=("random", "single", "duplicates")))
)
def test_direct_solves(case, which):
    kind, torch_fn, jax_fn = DIRECT[which]
    D = make_matrix(case, N, N, kind)
    _run(case, D, N, torch_fn, jax_fn, _vec(torch.linalg.solve))


def _times(logdet):
    """``logdet(A)`` broadcast against ``B`` (one value per batch item), times ``B``."""

    def fn(A, B):
        d = logdet(A)
        extra = B.ndim - d.ndim - (1 if A.ndim == 3 else 0)
        return d.reshape(d.shape + (1,) * (B.ndim - d.ndim)) * B if extra >= 0 else d * B

    return fn


LOGDETS = {
    "logdet": ("spd", torch_api.sparse_logdet, jax_api.sparse_logdet, torch.logdet),
    "slogdet": ("general", lambda A: torch_api.sparse_slogdet(A).logabsdet,
                lambda A: jax_api.sparse_slogdet(A).logabsdet,
                lambda D: torch.linalg.slogdet(D).logabsdet),
}


@pytest.mark.parametrize("which", sorted(LOGDETS))
@pytest.mark.parametrize(
    "case", params(cases("logdet", square=True, rhs=(4,), patterns=("random", "duplicates")))
)
def test_log_determinants(case, which):
    kind, torch_fn, jax_fn, dense_fn = LOGDETS[which]
    D = make_matrix(case, N, N, kind)
    _run(case, D, N, _times(torch_fn), _times(jax_fn), _times(dense_fn))
