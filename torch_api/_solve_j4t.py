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
true residual ``||A x - b||`` of each column is computed in torch after the solve and judged by
the bound of :mod:`bridge.internal.convergence`; a column that misses it is reported (a
ConvergenceWarning, or a ConvergenceError with ``raise_on_failure=True``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable

import torch

from bridge.internal.options import resolve_solvers

from ._convergence import report_nonconvergence, residual_failures
from ._pattern import Pattern, csr_rows
from ._pattern_cache import cached, operation
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse

_JAX_DEFAULT_TOL = 1e-5  # jax.scipy.sparse.linalg's default relative tolerance


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
    return cached(kind, pattern.source, pattern.shape, build)


def _jax_flat_solve(
    solver: Callable, options: tuple, raise_on_failure: bool, transposed: bool
) -> Callable:
    """A :data:`~torch_api._solve.FlatSolve` ``(pattern, values, Bf (n, p)) -> X`` running the
    JAX ``solver`` on every column (on ``A^T`` when ``transposed``), residual-checked."""
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


@operation
def sparse_solve_j4t(
    A: torch.Tensor,
    B: torch.Tensor,
    solve: Callable | None = None,
    transpose_solve: Callable | None = None,
    **kwargs,
) -> torch.Tensor:
    """Solve ``A X = B`` with a JAX solver; ``A.grad`` keeps A's sparsity.

    Args:
        A, B: as :func:`~torch_api.sparse_solve_c4t`: ``A (n, n)`` or ``(b, n, n)`` sparse,
            ``B (n,)``/``(n, k)`` (``(b, n)``/``(b, n, k)``) dense.
        solve: a JAX solver ``f(A, b, **kwargs) -> (x, info)`` taking a JAX sparse matrix and a
            vector, e.g. ``jax.scipy.sparse.linalg.cg``/``gmres``; default: ``transpose_solve``
            if given, else ``bicgstab``.
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
    from bridge._optional import require

    default = require("jax.scipy.sparse.linalg").bicgstab
    solve, transpose_solve = resolve_solvers(
        solve, transpose_solve, default, what="a JAX solver function"
    )
    options = _freeze(kwargs)
    return implicit_solve(
        A,
        B,
        _jax_flat_solve(solve, options, raise_on_failure, transposed=False),
        _jax_flat_solve(transpose_solve, options, raise_on_failure, transposed=True),
    )
