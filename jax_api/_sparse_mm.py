"""``sparse_mm``: sparse @ dense with a gradient on A's pattern.

For ``Y = A @ B`` with upstream gradient ``G``: ``dA = (G @ B^T)`` sampled at A's nonzeros and
``dB = A^T @ G``; forward mode ``dY = dA @ B + A @ dB``. The product is the bilinear primitive
:func:`jax_api._linear.mm`, whose JVP and transpose rules give every order and mode. Indices
are checked as :mod:`jax_api._checks` describes (``check``).
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from ._checks import check_sparse_indices, checked_indices
from ._linear import mm
from ._pattern import Pattern
from ._validate import check_rhs, check_sparse, type_error

__all__ = ["sparse_mm"]


def flat_mm(pattern: Pattern, values: jax.Array, B: jax.Array) -> jax.Array:
    """``A @ B`` on the flat form: ``values (nnz,)``, ``B (M, p)`` -> ``(N, p)``;
    differentiable to any order, forward and reverse (:func:`jax_api._linear.mm`)."""
    return mm(pattern, values, B)


def sparse_mm(A, B: jax.Array, *, check: bool = True) -> jax.Array:
    """Sparse-dense product ``A @ B`` whose gradient for ``A`` keeps A's pattern.

    Args:
        A: BCOO or BCSR, ``(n, m)`` or batched ``(b, n, m)``, float32/float64.
        B: dense ``(m, p)`` or ``(m,)``; ``(b, m, p)`` or ``(b, m)`` when ``A`` is batched;
            same dtype as ``A``.
        check: check A's indices on every call (:mod:`jax_api._checks`): in Python when they
            are concrete, else when the compiled program runs, where the O(nnz) check costs up
            to a third of one product; ``False`` trusts them (malformed indices then give
            wrong numbers or a crash).

    Returns:
        Dense ``(n, p)`` (``(n,)`` for a vector ``B``) or ``(b, n, p)``. The gradient for
        ``A.data`` has A.data's shape (padding entries get zero).

    Example:
        >>> A = BCOO.fromdense(jnp.eye(3))
        >>> f = lambda d: sparse_mm(BCOO((d, A.indices), shape=A.shape), jnp.ones((3, 2))).sum()
        >>> jax.grad(f)(A.data)
    """
    A = check_sparse("A", A)
    B = check_rhs("B", B, A)
    if not isinstance(check, (bool, np.bool_)):
        raise type_error("check", check, "a bool")
    return _sparse_mm(A, B, validate=bool(check) and not check_sparse_indices("A", A))


@partial(jax.jit, static_argnames="validate")
def _sparse_mm(A, B, validate: bool):
    # compiled once per shapes, dtypes and flags: eager calls reuse the program
    pattern, values = Pattern.of(checked_indices("A", A) if validate else A)
    Bf, vector = pattern.flat_rhs(B)
    return pattern.unflat(flat_mm(pattern, values, Bf), vector, A.shape[-2])
