"""What the jax_api iterative solvers share.

- :class:`SolveInfo`: the convergence information every solver returns beside its solution.
- :func:`as_operator`: a BCOO/BCSR (2-D), a dense matrix or a callable as ``x -> A x`` (and
  ``A^T x`` where available). Sparse operands use :class:`~jax_api._pattern.Pattern`'s products
  (torch's MKL kernels on CPU), so a ``vmap`` over right-hand sides becomes one product with
  many columns.
- :func:`linear_matmul`: the sparse product as the bilinear primitive of :mod:`jax_api._linear`,
  which JAX can *transpose* (JAX's BiCGSTAB and GMRES require it of their operator:
  ``lax.custom_linear_solve`` traces ``A^T`` up front) and differentiate in A's values.
- :func:`by_column`: run a one-vector solver on every column of a block (``vmap``), so the ``k``
  columns are ``k`` independent systems, each with its own stopping test.
- :func:`report`: a :class:`~bridge.internal.convergence.ConvergenceWarning` (through
  ``jax.debug.callback``, so it also works under ``jit``) when a column did not converge.

Every solver is differentiable when called directly, to any order, implicitly and never through
its iterations: ``cg``, ``bicgstab`` and ``gmres`` are JAX's own (``lax.custom_linear_solve``
inside), ``minres`` is a symmetric ``custom_linear_solve`` and ``lsmr`` differentiates its
normal equations (see its module).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bridge.internal.convergence import report_nonconvergence
from bridge.internal.options import check_maxiter

from .._linear import mm
from .._pattern import Pattern
from .._validate import FLOATS, SPARSE_TYPES, check_dense, check_match, type_error, value_error

MatVec = Callable[[jax.Array], jax.Array]


class SolveInfo(NamedTuple):
    """Convergence of an iterative solve, per right-hand-side column (scalars for a vector).

    Attributes:
        converged: bool, whether the stopping test was met.
        iterations: int32 iterations used; ``-1`` for JAX's own CG/BiCGSTAB/GMRES, which do not
            report them.
        residual: the true relative residual ``||b - A x|| / ||b||`` of the returned solution
            (for least squares: ``||A^T r|| / (||A|| ||r||)``, LSMR's normal-equation test).
        tolerance: the relative tolerance that was asked for.
    """

    converged: jax.Array
    iterations: jax.Array
    residual: jax.Array
    tolerance: jax.Array


def linear_matmul(pattern: Pattern, values: jax.Array, B: jax.Array) -> jax.Array:
    """``A @ B`` (``B (M, p)``): the bilinear primitive :func:`jax_api._linear.mm`, which JAX can
    transpose (JAX's BiCGSTAB and GMRES need that) and differentiate in ``values`` too."""
    return mm(pattern, values, B)


class Operator(NamedTuple):
    """``A`` as functions of one vector ``(cols,)`` -> ``(rows,)``."""

    matvec: MatVec
    rmatvec: MatVec | None
    shape: tuple[int, int] | None
    dtype: object | None


def as_operator(
    A: object, name: str = "A", *, rmatvec: MatVec | None = None, transpose: bool = False
) -> Operator:
    """``A`` (2-D BCOO/BCSR, dense 2-D array or callable ``x -> A x``) as an :class:`Operator`.

    ``transpose=True`` also prepares ``A^T`` products (a sparse ``A`` sorts its transposed
    pattern once, here, rather than in every iteration); a callable takes ``rmatvec`` as given.
    """
    if isinstance(A, SPARSE_TYPES):
        if len(A.shape) != 2 or A.n_batch or A.n_dense:
            raise value_error(name, A, "a 2-D sparse matrix (vmap over a batch)")
        if np.dtype(A.dtype) not in FLOATS:
            raise value_error(name, A, "float32 or float64 values")
        pattern, values = Pattern.of(A)
        mv = lambda x: linear_matmul(pattern, values, x[:, None])[:, 0]
        rmv = None
        if transpose:
            pattern_t, perm = pattern.transposed()
            values_t = values[perm]
            rmv = lambda x: linear_matmul(pattern_t, values_t, x[:, None])[:, 0]
        return Operator(mv, rmv, tuple(A.shape), A.dtype)
    if isinstance(A, jax.Array):
        D = check_dense(name, A, ndims=(2,))
        return Operator(lambda x: D @ x, lambda x: D.T @ x, tuple(D.shape), D.dtype)
    if callable(A):
        return Operator(A, rmatvec, None, None)
    raise type_error(name, A, "a 2-D BCOO/BCSR matrix, a dense 2-D jax.Array or a callable")


def check_rhs_for(op: Operator, B: object, rows_of: int, name: str = "B") -> jax.Array:
    """``B`` must be ``(r,)`` or ``(r, k)`` with ``r`` = the operator's ``rows_of`` size."""
    B = check_dense(name, B, ndims=(1, 2))
    if op.dtype is not None:
        check_match("A", op, name, B)
    if op.shape is not None and B.shape[0] != op.shape[rows_of]:
        raise ValueError(
            f"{name}: expected {op.shape[rows_of]} rows to match A's shape {op.shape}, "
            f"got shape {tuple(B.shape)}."
        )
    return B


def by_column(solve_one, B: jax.Array, x0: jax.Array | None):
    """``solve_one(b, x0) -> (x, info)`` on a vector, or on every column of a block."""
    if B.ndim == 1:
        return solve_one(B, x0)
    in_x0 = None if x0 is None else 1
    return jax.vmap(solve_one, in_axes=(1, in_x0), out_axes=(1, 0))(B, x0)


def check_x0(x0, B: jax.Array, cols: int | None = None):
    if x0 is None:
        return None
    x0 = check_dense("x0", x0, ndims=(B.ndim,))
    check_match("B", B, "x0", x0)
    want = (cols if cols is not None else B.shape[0], *B.shape[1:])
    if tuple(x0.shape) != want:
        raise ValueError(f"x0: expected shape {want}, got shape {tuple(x0.shape)}.")
    return x0


default_maxiter = check_maxiter  # a positive iteration limit, ``10 n`` for ``None``


def relative_residual(matvec: MatVec, b: jax.Array, x: jax.Array) -> jax.Array:
    """``||b - A x|| / ||b||`` (0 for ``b = 0`` solved exactly)."""
    r_norm = jnp.linalg.norm(b - matvec(x))
    b_norm = jnp.linalg.norm(b)
    return jnp.where(b_norm > 0, r_norm / jnp.where(b_norm > 0, b_norm, 1), r_norm)


def checked_info(matvec: MatVec, b, x, tol, atol, slack: float = 2.0) -> SolveInfo:
    """Info for a solver that reports nothing: judged by the true residual of ``x``.

    JAX's solvers stop on a recursively updated residual, which drifts a little from the true
    one; ``converged`` allows ``slack`` times the requested bound.
    """
    rel = relative_residual(matvec, b, x)
    b_norm = jnp.linalg.norm(b)
    bound = jnp.maximum(tol, atol / jnp.where(b_norm > 0, b_norm, 1))
    return SolveInfo(
        converged=rel <= slack * bound,
        iterations=jnp.asarray(-1, jnp.int32),
        residual=rel,
        tolerance=jnp.asarray(tol, rel.dtype),
    )


def _warn(solver, maxiter, converged, iterations, residual, tolerance):
    converged = np.asarray(converged)
    if converged.all():
        return
    bad = ~converged
    label = f"{solver} ({int(bad.sum())} of {converged.size} right-hand sides)"
    its = np.asarray(iterations)[bad]
    res, tol = float(np.max(np.asarray(residual)[bad])), float(np.max(tolerance))
    counted = int(its.max()) if np.all(its >= 0) else None  # JAX's own solvers do not count
    report_nonconvergence(label, counted, res, tol, limit=maxiter)


def report(solver: str, info: SolveInfo, maxiter: int | None = None) -> SolveInfo:
    """Warn (``ConvergenceWarning``, from the host, also under ``jit``) unless all converged.

    ``maxiter``: the limit of a solver that does not count its iterations (for the message).
    """
    its = jnp.broadcast_to(info.iterations, jnp.shape(info.converged))
    tol = jnp.broadcast_to(info.tolerance, jnp.shape(info.converged))
    jax.debug.callback(partial(_warn, solver, maxiter), info.converged, its, info.residual, tol)
    return info


def compiled(solver):
    """``solver(A, B, **options)`` compiled once per shapes, dtypes and option values (one
    ``jax.jit`` per set of option names), so that eager calls reuse the program instead of
    tracing a new ``while_loop`` each time. ``x0`` is an ordinary argument; the other options
    (tolerances, ``maxiter``, a preconditioner function) are static. A callable ``A``, a
    non-array ``B`` or an unhashable option runs as written, uncompiled.
    """
    programs: dict[tuple[str, ...], Callable] = {}

    @functools.wraps(solver)
    def call(A, B, **options):
        arrays = (A, B) if options.get("x0") is None else (A, B, options["x0"])
        static = tuple((k, v) for k, v in options.items() if k != "x0")
        if not all(isinstance(x, (jax.Array, *SPARSE_TYPES)) for x in arrays):
            return solver(A, B, **options)
        try:
            hash(static)
        except TypeError:
            return solver(A, B, **options)
        names = tuple(sorted(k for k, _ in static))
        if names not in programs:
            programs[names] = jax.jit(solver, static_argnames=names)
        return programs[names](A, B, **options)

    return call


def solve_with_jax(name: str, jax_solver, A, B, x0, tol, atol, maxiter, **options):
    """Run one of JAX's own solvers column by column with a residual-checked, reported info.

    ``jax_solver(matvec, b, x0=, tol=, atol=, maxiter=, **options)`` is e.g.
    ``jax.scipy.sparse.linalg.cg``; JAX returns no convergence information, so it is computed
    from the true residual of each column.
    """
    op = as_operator(A)
    B = check_rhs_for(op, B, 0)
    x0 = check_x0(x0, B)

    def one(b, x):
        sol, _ = jax_solver(op.matvec, b, x0=x, tol=tol, atol=atol, maxiter=maxiter, **options)
        return sol, checked_info(op.matvec, b, sol, tol, atol)

    X, info = by_column(one, B, x0)
    return X, report(name, info, default_maxiter(maxiter, B.shape[0]))
