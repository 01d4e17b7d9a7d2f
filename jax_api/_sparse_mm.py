"""``sparse_mm``: sparse @ dense with a gradient on A's pattern.

For ``Y = A @ B`` with upstream gradient ``G``: ``dA = (G @ B^T)`` sampled at A's nonzeros
(:meth:`~jax_api._pattern.Pattern.sddmm`) and ``dB = A^T @ G`` (a CSR product with the
transposed pattern). Indices are checked as :mod:`jax_api._checks` describes.
"""

from __future__ import annotations

from functools import partial

import jax

from ._checks import check_sparse_indices, checked_indices
from ._pattern import Pattern
from ._validate import check_rhs, check_sparse

__all__ = ["sparse_mm"]


@jax.custom_vjp
def flat_mm(pattern: Pattern, values: jax.Array, B: jax.Array) -> jax.Array:
    """``A @ B`` on the flat form: ``values (nnz,)``, ``B (M, p)`` -> ``(N, p)``."""
    return pattern.matmul(values, B)


def _fwd(pattern, values, B):
    return pattern.matmul(values, B), (pattern, values, B)


def _bwd(res, G):
    pattern, values, B = res
    return None, pattern.sddmm(G, B), pattern.rmatmul(values, G)


flat_mm.defvjp(_fwd, _bwd)


def sparse_mm(A, B: jax.Array) -> jax.Array:
    """Sparse-dense product ``A @ B`` whose gradient for ``A`` keeps A's pattern.

    Args:
        A: BCOO or BCSR, ``(n, m)`` or batched ``(b, n, m)``, float32/float64.
        B: dense ``(m, p)`` or ``(m,)``; ``(b, m, p)`` or ``(b, m)`` when ``A`` is batched;
            same dtype as ``A``.

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
    return _sparse_mm(A, B, validate=not check_sparse_indices("A", A))


@partial(jax.jit, static_argnames="validate")
def _sparse_mm(A, B, validate: bool):
    # compiled once per shapes, dtypes and flags: eager calls reuse the program
    pattern, values = Pattern.of(checked_indices("A", A) if validate else A)
    Bf, vector = pattern.flat_rhs(B)
    return pattern.unflat(flat_mm(pattern, values, Bf), vector, A.shape[-2])
