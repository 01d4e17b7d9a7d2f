"""``sparse_logdet`` and ``sparse_slogdet`` for JAX: log-determinants whose derivative
``d log|det A| = sum(A^{-T} * dA)`` uses ``A^{-T}`` at A's pattern only (the selected inverse of
the factorisation, :mod:`jax_api._direct`). A ``custom_jvp``: forward and reverse mode, ``vmap``
and ``jit``; a second derivative needs ``A^{-1}`` off the pattern and raises.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import _direct
from ._checks import check_sparse_indices, checked_indices
from ._direct_solve import eager_factors
from ._pattern import Pattern
from ._validate import check_sparse

__all__ = ["sparse_logdet", "sparse_slogdet", "SlogdetResult"]


class SlogdetResult(NamedTuple):
    """``(sign, logabsdet)``, as ``jnp.linalg.slogdet`` returns."""

    sign: jax.Array
    logabsdet: jax.Array


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _selected(kind, pattern, values):
    return _direct.inverse_transposed(kind, pattern, values)


@_selected.defjvp
def _selected_jvp(kind, primals, tangents):
    raise NotImplementedError(
        "sparse_logdet / sparse_slogdet: the second derivative of a log-determinant needs "
        "entries of A^{-1} off A's pattern, which the sparse factorisation does not give; "
        "differentiate it once, or use jnp.linalg.slogdet for Hessians of small matrices."
    )


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _slogdet(kind, pattern, values):
    return _direct.slogdet(kind, pattern, values)


@_slogdet.defjvp
def _slogdet_jvp(kind, primals, tangents):
    pattern, values = primals
    dv = tangents[1]
    sign, logabs = _slogdet(kind, pattern, values)  # itself: an outer jvp reaches _selected's
    Z = _selected(kind, pattern, values)
    block = pattern.rows // pattern.shape[-1]  # padding rows fall past the last block
    dlog = jax.ops.segment_sum(Z * dv, block, num_segments=logabs.shape[0])
    return (sign, logabs), (jnp.zeros_like(sign), dlog)


@partial(jax.jit, static_argnums=(1,), static_argnames=("validate",))
def _run(A, kind, *, validate: bool):
    pattern, values = Pattern.of(checked_indices("A", A) if validate else A)
    sign, logabs = _slogdet(kind, pattern, values)
    if pattern.batch is None:
        sign, logabs = sign[0], logabs[0]
    return SlogdetResult(jax.lax.stop_gradient(sign), logabs)


def _logabsdet(A, kind: str) -> SlogdetResult:
    A = check_sparse("A", A, square=True)
    checked = check_sparse_indices("A", A)
    eager_factors(kind, A, checked)
    return _run(A, kind, validate=not checked)


def sparse_logdet(A) -> jax.Array:
    """``log det A`` of a sparse symmetric positive definite ``A``; gradient on A's pattern.

    Args:
        A: BCOO or BCSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, symmetric
            positive definite (otherwise a ValueError naming ``A``).

    Returns:
        A scalar (``(b,)`` batched); its gradient for ``A.data`` is ``A^{-T}`` at the entries.

    Example:
        >>> A = BCSR.fromdense(jnp.array([[4.0, 1.0], [1.0, 3.0]]))
        >>> g = jax.grad(lambda d: sparse_logdet(BCSR((d, A.indices, A.indptr),
        ...                                            shape=A.shape)))(A.data)
    """
    return _logabsdet(A, "cholesky").logabsdet


def sparse_slogdet(A) -> SlogdetResult:
    """``(sign, log|det A|)`` of a sparse square ``A`` (LU with partial pivoting).

    Args:
        A: BCOO or BCSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, nonsingular.

    Returns:
        ``SlogdetResult(sign, logabsdet)``; ``logabsdet``'s gradient is ``A^{-T}`` at A's
        entries, ``sign`` has none.

    Example:
        >>> A = BCSR.fromdense(jnp.array([[0.0, 2.0], [1.0, 3.0]]))
        >>> sign, logabsdet = sparse_slogdet(A)
    """
    return _logabsdet(A, "lu")
