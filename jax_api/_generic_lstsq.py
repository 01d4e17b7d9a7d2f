"""``sparse_generic_lstsq``: ``X = A^+ B`` for a tall sparse ``A``, a gradient on A's pattern.

For ``A (m, n)``, ``m >= n``, of full column rank, ``X = (A^T A)^{-1} A^T B``. With upstream
``G (n, p)`` and ``r = B - A X`` (the derivation is in ``torch_api._generic_lstsq``):

    z = (A^+)^T G       minimum-norm solution of A^T z = G  (transpose_lstsq with A^T)
    Y = A^+ z            = (A^T A)^{-1} G                    (lstsq with A; z is in A's range)
    dB = z,   dA = r Y^T - z X^T at A's nonzeros

Here it is written as a ``custom_jvp``: ``dX = (A^T A)^{-1} (dA^T r + A^T (dB - dA X))``, the
normal-equations solve being ``A^+ (A^+)^T`` inside ``custom_linear_solve`` and the products the
transposable primitives of :mod:`jax_api._linear`, so reverse mode (its transpose gives the
formulas above), forward mode and every higher order follow. The solvers are never
differentiated through their iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bridge.internal.options import resolve_solvers

from ._checks import check_sparse_indices, checked_indices
from ._generic_solve import (
    call_solver,
    hashable,
    split_kwargs,
    static_function,
    transposed_matrix,
)
from ._linear import mm
from ._pattern import Pattern
from ._validate import check_rhs, check_sparse

__all__ = ["sparse_generic_lstsq"]


@partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2, 3))
def _lstsq(lstsq, transpose_lstsq, static, vector, pattern, values, B, arrays):
    kwargs = {**dict(static), **arrays}
    return call_solver("lstsq", lstsq, pattern.matrix(values), B, vector, pattern.shape[1], kwargs)


def _normal_solve(lstsq, transpose_lstsq, static, vector, pattern, values, R, arrays):
    """``(A^T A)^{-1} R`` as ``A^+ (A^+)^T R`` (two solver calls), differentiable to any order:
    ``custom_linear_solve`` with the symmetric operator ``x -> A^T (A x)`` of the primitives."""
    kwargs = {**dict(static), **arrays}
    m, n = pattern.shape

    def solve(_, b):
        z, _ = call_solver("transpose_lstsq", transpose_lstsq, transposed_matrix(pattern, values),
                           b, vector, m, kwargs)
        return call_solver("lstsq", lstsq, pattern.matrix(values), z, vector, n, kwargs)[0]

    matvec = lambda x: mm(pattern, values, mm(pattern, values, x), transpose=True)
    return jax.lax.custom_linear_solve(matvec, R, solve, symmetric=True)


@_lstsq.defjvp
def _lstsq_jvp(lstsq, transpose_lstsq, static, vector, primals, tangents):
    pattern, values, B, arrays = primals
    _, dv, dB, _ = tangents
    X, info = _lstsq(lstsq, transpose_lstsq, static, vector, pattern, values, B, arrays)
    r = B - mm(pattern, values, X)
    # dX = (A^T A)^{-1} (dA^T r + A^T (dB - dA X))
    R = mm(pattern, dv, r, transpose=True) + mm(pattern, values, dB - mm(pattern, dv, X),
                                                transpose=True)
    dX = _normal_solve(lstsq, transpose_lstsq, static, vector, pattern, values, R, arrays)
    return (X, info), (dX, jax.tree_util.tree_map(_zero_tangent, info))


def _zero_tangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)


def _lsmr_default(M, R, **kwargs):
    from ._solvers import lsmr

    return lsmr(M, R, **kwargs)


def sparse_generic_lstsq(
    A,
    B: jax.Array,
    lstsq: Callable | None = None,
    transpose_lstsq: Callable | None = None,
    *,
    return_info: bool = False,
    **kwargs,
):
    """Least-squares solution ``X = argmin ||A X - B||``; the gradient for ``A`` keeps A's pattern.

    Args:
        A: 2-D BCOO or BCSR ``(m, n)``, ``m >= n``, full column rank, float32/float64.
        B: dense ``(m,)`` or ``(m, k)``, same dtype.
        lstsq: ``lstsq(A, B, **kwargs) -> X`` or ``(X, info)`` (default :func:`jax_api.lsmr`).
        transpose_lstsq: ``transpose_lstsq(A^T, G, **kwargs)``, the *minimum-norm* solution of
            the underdetermined ``A^T Z = G``, called with the transpose of ``A``; defaults to
            ``lstsq`` (LSMR from zero gives the minimum-norm solution).
        return_info: also return the forward solver's ``info`` (``None`` if it gives none).
        **kwargs: passed to every solve, e.g. ``atol=1e-10, btol=1e-10, maxiter=500`` for LSMR.

    Returns:
        ``X (n,)`` or ``(n, k)`` (and ``info``). The gradient for ``A.data`` has its shape.

    Example:
        >>> A = BCOO.fromdense(jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]))
        >>> X = sparse_generic_lstsq(A, jnp.ones(3))
    """
    A = check_sparse("A", A, ndims=(2,))
    if A.shape[0] < A.shape[1]:
        raise ValueError(
            f"A: expected a tall matrix (m >= n, full column rank), got shape {tuple(A.shape)}."
        )
    B = check_rhs("B", B, A, rows=A.shape[0])
    lstsq, transpose_lstsq = map(static_function, resolve_solvers(
        lstsq, transpose_lstsq, _lsmr_default, args=("lstsq", "transpose_lstsq")
    ))
    static, arrays = split_kwargs(kwargs)
    validate = not check_sparse_indices("A", A)
    run = _solve_jit if hashable((lstsq, transpose_lstsq, static)) else _solve
    X, info = run(A, B, arrays, lstsq, transpose_lstsq, static, validate)
    return (X, info) if return_info else X


def _solve(A, B, arrays, lstsq, transpose_lstsq, static, validate):
    pattern, values = Pattern.of(checked_indices("A", A) if validate else A)
    Bf, vector = pattern.flat_rhs(B)
    Xf, info = _lstsq(lstsq, transpose_lstsq, static, vector, pattern, values, Bf, arrays)
    return pattern.unflat(Xf, vector, A.shape[1]), info


# compiled once per shapes, dtypes, solvers and static options (as sparse_generic_solve)
_solve_jit = jax.jit(_solve, static_argnums=(3, 4, 5, 6))
