"""``sparse_cholesky_solve`` and ``sparse_lu_solve``: ``X = A^{-1} B`` by a sparse direct
factorisation (SciPy's SuperLU on the host, :mod:`jax_api._direct`), differentiable to any
order in ``A.data`` and ``B`` by :func:`~jax_api._solve.implicit_solve` (the transposed solve
reuses the forward's factors). As torch_api's functions of the same names.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from . import _direct
from ._checks import check_sparse_indices, checked_indices
from ._pattern import Pattern
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse, is_concrete

__all__ = ["sparse_cholesky_solve", "sparse_lu_solve"]

_pattern_of = jax.jit(Pattern.of)


def eager_factors(kind: str, A, checked: bool) -> None:
    """Factor a concrete ``A`` now, raising its ValueError in Python (and filling the cache)."""
    if checked and is_concrete(A.data):
        pattern, values = _pattern_of(A)
        _direct.factors(kind, pattern.shape, np.asarray(pattern.crow), np.asarray(pattern.col),
                        np.asarray(values))


def _direct_solve(kind: str, A, B):
    A = check_sparse("A", A, square=True)
    B = check_rhs("B", B, A)
    checked = check_sparse_indices("A", A)
    eager_factors(kind, A, checked)
    return _solve(A, B, kind, validate=not checked)


@partial(jax.jit, static_argnums=(2,), static_argnames=("validate",))
def _solve(A, B, kind, *, validate: bool):
    pattern, values = Pattern.of(checked_indices("A", A) if validate else A)
    Bf, vector = pattern.flat_rhs(B)
    solve = partial(_direct.flat_solve, kind, False)
    transpose_solve = partial(_direct.flat_solve, kind, True)
    X, _ = implicit_solve(pattern, values, Bf, solve, transpose_solve)
    return pattern.unflat(X, vector, A.shape[-1])


def sparse_cholesky_solve(A, B: jax.Array) -> jax.Array:
    """Solve ``A X = B`` for a sparse symmetric positive definite ``A``; gradient on A's pattern.

    Args:
        A: BCOO or BCSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, symmetric positive
            definite (both triangles stored); otherwise a ValueError naming ``A`` (under
            ``jit``: an error at run time carrying the same message).
        B: dense ``(n,)``/``(n, k)`` (``(b, n)``/``(b, n, k)`` for a batched ``A``).

    Returns:
        ``X`` shaped like ``B``; the gradient for ``A.data`` has A.data's shape.

    Example:
        >>> A = BCSR.fromdense(jnp.array([[4.0, 1.0], [1.0, 3.0]]))
        >>> x = sparse_cholesky_solve(A, jnp.ones(2))
    """
    return _direct_solve("cholesky", A, B)


def sparse_lu_solve(A, B: jax.Array) -> jax.Array:
    """Solve ``A X = B`` for a sparse nonsingular square ``A`` (LU with partial pivoting);
    gradient on A's pattern.

    Args and returns: as :func:`sparse_cholesky_solve`, for a nonsingular ``A (n, n)`` or
    ``(b, n, n)``.

    Example:
        >>> A = BCSR.fromdense(jnp.array([[0.0, 2.0], [1.0, 3.0]]))
        >>> x = sparse_lu_solve(A, jnp.ones(2))
    """
    return _direct_solve("lu", A, B)
