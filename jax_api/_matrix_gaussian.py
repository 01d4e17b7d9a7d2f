"""The matrix parameterisations of :class:`~jax_api._distributions.SparseMultivariateNormal`:
a sparse SPD ``precision_matrix`` or ``covariance_matrix`` (torch_api's
:mod:`torch_api._matrix_gaussian`, same formulas).

Densities use ``sparse_mm`` / ``sparse_cholesky_solve`` / ``sparse_logdet`` (gradients to ``loc``
and the matrix's ``data``). Samples and the marginal variances of a precision matrix come from
the host factorisation (:meth:`bridge.internal.factor.Factor.sample_colour`,
``Factor.inverse_at``); they are not differentiable in the matrix's values, and differentiating
them there raises NotImplementedError (a custom JVP that refuses a non-zero tangent).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from bridge.internal.messages import GAUSSIAN_MATRICES, renamed

from . import _direct
from ._checks import check_sparse_indices
from ._direct_solve import eager_factors, sparse_cholesky_solve
from ._logdet import sparse_logdet
from ._pattern import Pattern
from ._sparse_mm import sparse_mm

MATRIX_NAMES = GAUSSIAN_MATRICES


def factor_check(name: str, A) -> None:
    with renamed(name):
        eager_factors("cholesky", A, check_sparse_indices(name, A))


def quadratic(name: str, A, d, apply):
    with renamed(name):
        if name == "precision_matrix":
            return jnp.sum(d * apply(sparse_mm, A, d), -1)
        return jnp.sum(d * apply(sparse_cholesky_solve, A, d), -1)


def logdet(name: str, A):
    with renamed(name):
        return sparse_logdet(A)


def diagonal(A):
    """``diag(A)`` ``(*batch, n)`` from the stored data (differentiable)."""
    pattern, values = Pattern.of(A)
    on = pattern.valid & (pattern.rows == pattern.col)
    N = pattern.csr_shape[0]
    out = jnp.zeros(N, values.dtype).at[jnp.where(on, pattern.rows, N)].add(values, mode="drop")
    return out.reshape(*A.shape[:-2], -1)


def _refuse(what: str, tangent) -> None:
    if not isinstance(tangent, SymbolicZero):
        raise NotImplementedError(
            f"{what}: not differentiable in the matrix's values (the derivative of its sparse "
            "Cholesky factor / selected inverse is not implemented); use scale_tril or "
            "precision_tril, or jax.lax.stop_gradient on the matrix."
        )


@partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _colour_flat(precision: bool, shape: tuple, crow, col, values, E):
    n = shape[-1]

    def host(crow, col, v, e):
        fs = _direct.factors("cholesky", shape, crow, col, v)
        out = [F.sample_colour(e[i * n:(i + 1) * n], precision) for i, F in enumerate(fs)]
        return np.concatenate(out).astype(e.dtype)

    return _direct._call(host, jax.ShapeDtypeStruct(E.shape, E.dtype), crow, col, values, E)


@partial(_colour_flat.defjvp, symbolic_zeros=True)
def _colour_jvp(precision, shape, primals, tangents):
    crow, col, values, E = primals
    _refuse("sample / rsample with a matrix parameterisation", tangents[2])
    out = _colour_flat(precision, shape, crow, col, values, E)
    tE = tangents[3]
    if isinstance(tE, SymbolicZero):
        return out, jnp.zeros_like(out)
    return out, _colour_flat(precision, shape, crow, col, values, tE)


def colour(name: str, A, eps):
    """``C eps`` with ``C C^T = Sigma``, ``eps (..., *batch, n)``."""
    pattern, values = Pattern.of(A)
    n = eps.shape[-1]
    if A.ndim == 2:
        E = eps.reshape(-1, n).T
    else:
        b = A.shape[0]
        E = jnp.transpose(eps.reshape(-1, b, n), (1, 2, 0)).reshape(b * n, -1)
    with renamed(name):
        X = _colour_flat(name == "precision_matrix", tuple(pattern.shape), pattern.crow,
                         pattern.col, values, E)
    if A.ndim == 2:
        return X.T.reshape(eps.shape)
    return jnp.transpose(X.reshape(b, n, -1), (2, 0, 1)).reshape(eps.shape)


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _inverse_diagonal(shape: tuple, crow, col, values):
    n = shape[-1]
    nb = shape[0] if len(shape) == 3 else 1

    def host(crow, col, v):
        fs = _direct.factors("cholesky", shape, crow, col, v)
        idx = np.arange(n, dtype=np.int64)
        return np.concatenate([F.inverse_at(idx, idx) for F in fs]).astype(v.dtype)

    out = jax.ShapeDtypeStruct((nb * n,), values.dtype)
    return _direct._call(host, out, crow, col, values)


@partial(_inverse_diagonal.defjvp, symbolic_zeros=True)
def _inverse_diagonal_jvp(shape, primals, tangents):
    _refuse("variance with precision_matrix", tangents[2])
    out = _inverse_diagonal(shape, *primals)
    return out, jnp.zeros_like(out)


def precision_variance(A):
    pattern, values = Pattern.of(A)
    with renamed("precision_matrix"):
        out = _inverse_diagonal(tuple(pattern.shape), pattern.crow, pattern.col, values)
    return out.reshape(*A.shape[:-2], A.shape[-1])
