"""``sparse_solve_j4t``: solve ``A X = B`` for torch tensors with a JAX solver.

The forward solve and the transposed solve of the backward pass are the only parts supplied here;
:func:`torch_api._solve.implicit_solve` turns them into ``B.grad = A^{-T} G`` and ``A.grad`` on
A's pattern. A's CSR pattern (from :class:`~torch_api._pattern.Pattern`) enters JAX through
``bridge.torch_kernel`` without copying its values: they become a ``jax.experimental.sparse.BCOO``
(JAX's CSR product re-expands the rows at every matvec on CPU) whose ``(nnz, 2)`` indices are
built once per pattern and cached with it, flagged sorted and unique when they are (checked once
per pattern), inside one jitted program that calls the solver once per column of ``B`` under
``jax.vmap``. That program is compiled once per (shapes, dtypes, solver, static options). The
transposed solve uses the cached CSR pattern of ``A^T`` (its values are a gather).

JAX's ``cg``/``bicgstab``/``gmres`` return ``info=None``, so convergence is checked here: the
true residual ``||A x - b||`` of each column is computed in torch after the solve, and a column
whose residual exceeds ``10 * max(tol * ||b||, atol)`` plus a rounding allowance
``10 * eps * min(||A||_F ||x|| + ||b||, ||b|| / sqrt(eps))`` is reported by
:func:`~torch_api._convergence.report_nonconvergence` (a ConvergenceWarning, or a
ConvergenceError with ``raise_on_failure=True``). The factor 10 absorbs the gap between a
solver's recursively updated residual and the true one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable

import torch

from ._convergence import report_nonconvergence
from ._pattern import Pattern, _cached, csr_rows
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse

_JAX_DEFAULT_TOL = 1e-5  # jax.scipy.sparse.linalg's default relative tolerance


def residual_failures(
    matrix: torch.Tensor, X: torch.Tensor, B: torch.Tensor, tol: float, atol: float
) -> tuple[float, bool]:
    """Worst relative residual ``||A x - b|| / ||b||`` over the columns, and whether any column
    misses ``max(tol ||b||, atol)`` by more than the margin of the module docstring.

    ``matrix`` is the 2-D sparse ``A``, ``X``/``B`` are ``(n, p)``. NaN residuals fail.
    """
    res = torch.linalg.vector_norm(matrix @ X - B, dim=0)
    bn = torch.linalg.vector_norm(B, dim=0)
    xn = torch.linalg.vector_norm(X, dim=0)
    a_norm = torch.linalg.vector_norm(matrix.values())
    eps = torch.finfo(X.dtype).eps
    # rounding allowance of a backward-stable solve, capped at sqrt(eps) ||b||: a solution that
    # is huge because A is (numerically) singular must not pass as rounding
    rounding = torch.minimum(a_norm * xn + bn, bn / math.sqrt(eps))
    bound = 10 * torch.clamp(tol * bn, min=atol) + 10 * eps * rounding
    failed = bool((~(res <= bound)).any())
    rel = res / torch.where(bn > 0, bn, torch.ones_like(bn))
    worst = float(rel.max()) if rel.numel() else 0.0
    if torch.isnan(rel).any():
        worst = math.nan
    return worst, failed


def _solve_flat(data, indices, B, *, canonical, solver, options):
    """Jitted: solve the COO system (data, indices (nnz, 2)) for every column of ``B (n, p)``."""
    from jax import vmap
    from jax.experimental.sparse import BCOO

    n = B.shape[0]
    A = BCOO((data, indices), shape=(n, n), indices_sorted=canonical, unique_indices=canonical)
    kw = dict(options)
    if B.shape[1] == 1:
        return solver(A, B[:, 0], **kw)[0][:, None]
    return vmap(lambda b: solver(A, b, **kw)[0], in_axes=1, out_axes=1)(B)


@functools.cache
def _kernel():
    from bridge import torch_kernel

    return torch_kernel(_solve_flat, static_argnames=("canonical", "solver", "options"))


def _coo_indices(pattern: Pattern, crow, col, transposed: bool) -> tuple[torch.Tensor, bool]:
    """``(rows, cols)`` stacked as ``(nnz, 2)`` and whether they are sorted and distinct; cached
    per pattern (and per side), since they depend on the indices alone."""

    def build():
        idx = torch.stack([csr_rows(crow).to(col.dtype), col], 1)
        if col.numel() < 2:
            return idx, True
        r, c = idx[:, 0], idx[:, 1]
        step = (r[1:] > r[:-1]) | ((r[1:] == r[:-1]) & (c[1:] > c[:-1]))
        return idx, bool(step.all())

    kind = "coo indices" + (" transposed" if transposed else "")
    return _cached(kind, pattern.source, pattern.shape, build)


def _flat_solve(solver: Callable, options: tuple, raise_on_failure: bool, transposed: bool):
    kw = dict(options)
    tol, atol = kw.get("tol", _JAX_DEFAULT_TOL), kw.get("atol", 0.0)
    name = getattr(solver, "__name__", repr(solver)) + (" (transposed)" if transposed else "")

    def flat(pattern: Pattern, values: torch.Tensor, Bf: torch.Tensor) -> torch.Tensor:
        if Bf.shape[1] == 0:  # no right-hand side: nothing to solve
            return Bf.new_zeros(Bf.shape)
        if transposed:
            crow, col, perm = pattern.transpose()
            values = values[perm]
        else:
            crow, col = pattern.crow, pattern.col
        indices, canonical = _coo_indices(pattern, crow, col, transposed)
        X = _kernel()(values, indices, Bf, canonical=canonical, solver=solver, options=options)
        n = crow.numel() - 1
        matrix = torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)
        worst, failed = residual_failures(matrix, X, Bf, tol, atol)
        if failed:
            limit = kw.get("maxiter") or 10 * n
            report_nonconvergence(name, limit, worst, tol, raise_on_failure=raise_on_failure)
        return X

    return flat


def _freeze(kwargs: dict) -> tuple:
    for key, value in kwargs.items():
        if isinstance(value, torch.Tensor) or not isinstance(value, Hashable):
            raise TypeError(
                f"{key}: expected a hashable static solver option (compiled into the JAX "
                f"program), got {type(value).__qualname__}; array options such as x0 are "
                f"not supported."
            )
    return tuple(sorted(kwargs.items()))


def sparse_solve_j4t(
    A: torch.Tensor,
    B: torch.Tensor,
    solve: Callable | None = None,
    transpose_solve: Callable | None = None,
    **kwargs,
) -> torch.Tensor:
    """Solve ``A X = B`` with a JAX solver; ``A.grad`` keeps A's sparsity.

    Args:
        A: sparse COO or CSR, square ``(n, n)`` (or batched ``(b, n, n)``, solved as one
            block-diagonal system), float32/float64, on CPU or CUDA.
        B: dense ``(n,)`` or ``(n, k)`` (``(b, n)`` / ``(b, n, k)`` when batched), same dtype
            and device as ``A``.
        solve: a JAX solver ``f(A, b, **kwargs) -> (x, info)`` taking a JAX sparse matrix and a
            vector, e.g. ``jax.scipy.sparse.linalg.cg``/``gmres``; default ``bicgstab``.
            Columns of ``B`` are solved independently (``jax.vmap``).
        transpose_solve: the solver for ``A^T`` in the backward pass (default: ``solve``).
        **kwargs: static options for both solvers (``tol``, ``atol``, ``maxiter``, ``M``...),
            hashable and compiled in (reuse one ``M`` function object, or each new one
            recompiles); ``raise_on_failure=True`` raises ConvergenceError instead of warning.

    Returns:
        ``X`` shaped like ``B``. float64 works whether JAX's x64 mode is on or off (it is
        enabled only for the call, in a scope).

    Example:
        >>> A = (3 * torch.eye(4)).to_sparse_csr().requires_grad_()
        >>> sparse_solve_j4t(A, torch.ones(4)).sum().backward()
    """
    A = check_sparse("A", A, square=True)
    B = check_rhs("B", B, A)
    raise_on_failure = bool(kwargs.pop("raise_on_failure", False))
    if solve is None:
        from bridge._optional import require

        solve = require("jax.scipy.sparse.linalg").bicgstab
    transpose_solve = solve if transpose_solve is None else transpose_solve
    for name, f in (("solve", solve), ("transpose_solve", transpose_solve)):
        if not callable(f):
            raise TypeError(f"{name}: expected a JAX solver function, got {type(f).__qualname__}.")
    options = _freeze(kwargs)
    return implicit_solve(
        A,
        B,
        _flat_solve(solve, options, raise_on_failure, transposed=False),
        _flat_solve(transpose_solve, options, raise_on_failure, transposed=True),
    )
