"""``SparseMultivariateNormal``: a Gaussian with a sparse triangular covariance or precision factor.

The parameterisations and formulas are torch_api's (:mod:`torch_api._distributions`):

- ``scale_tril=L``: ``Sigma = L L^T``; sample ``loc + L eps``; ``log|Sigma| = 2 sum log L_ii``.
- ``scale_tril=L, diagonal=D``: ``Sigma = U D U^T``, ``U = I + L`` (``L`` strictly lower);
  sample ``loc + U (D^{1/2} eps)``; ``log|Sigma| = sum log D``.
- ``precision_tril=L``: ``P = L L^T``; sample ``loc + L^{-T} eps``;
  ``log|Sigma| = -2 sum log L_ii``.
- ``precision_tril=L, diagonal=D``: ``P = U D U^T``; sample ``loc + U^{-T} (D^{-1/2} eps)``;
  ``log|Sigma| = -sum log D``.

Mahalanobis terms use one triangular solve (covariance factors) or one transposed product
(precision factors); log-determinants read the factor's stored diagonal (O(nnz)); marginal
variances of a covariance factor are row sums of squares (O(nnz)). Products and solves are
jax_api's ``sparse_mm`` / ``sparse_triangular_solve`` (custom VJPs), so ``jax.grad`` and
``eqx.filter_grad`` reach ``loc``, ``diagonal`` and the factor's ``data`` (never densified).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

from bridge.internal.gaussian import (
    LOG_2PI,
    PRECISION_VARIANCE,
    batch_shape,
    check_event_size,
    parameterisation,
)

from . import _matrix_gaussian as _mg
from ._checks import check_sparse_indices, checked_indices
from ._sparse_factor import (
    apply_to_vectors,
    check_factor_values,
    checked_factor,
    lower_solve,
    sum_log_diagonal,
    transposed_mm,
    with_data,
)
from ._sparse_mm import sparse_mm
from ._validate import check_dense, check_match, check_sparse, is_concrete

__all__ = ["SparseMultivariateNormal"]


class SparseMultivariateNormal(eqx.Module):
    """Multivariate normal with a sparse triangular covariance or precision factor.

    Args:
        loc: mean, ``(n,)`` or ``(b, n)``, float32/float64.
        diagonal: ``D`` of an LDL^T parameterisation, ``(n,)`` or ``(b, n)``, positive; ``None``
            for LL^T.
        scale_tril: covariance factor, BCOO/BCSR ``(n, n)`` or ``(b, n, n)``: lower triangular
            with a positive diagonal (LL^T) or strictly lower (LDL^T).
        precision_tril: precision factor, same form; give exactly one of the two.
        validate_args: check triangularity and positive diagonals: at construction when the
            values are concrete (``ValueError``), else when the compiled program runs (an
            error with the same message, raised by JAX).

    ``batch_shape`` is the broadcast of the parameters' batch shapes, ``event_shape = (n,)``.

    Example:
        >>> L = BCSR.fromdense(jnp.array([[1.0, 0.0], [0.5, 2.0]]))
        >>> d = SparseMultivariateNormal(jnp.zeros(2), scale_tril=L)
        >>> x = d.sample(jax.random.key(0), (3,))  # (3, 2)
        >>> eqx.filter_grad(lambda d: d.log_prob(x).sum())(d).scale_tril.data  # (nse,)
    """

    loc: jax.Array
    diagonal: jax.Array | None
    scale_tril: BCOO | BCSR | None
    precision_tril: BCOO | BCSR | None
    precision_matrix: BCOO | BCSR | None
    covariance_matrix: BCOO | BCSR | None
    batch_shape: tuple[int, ...] = eqx.field(static=True)
    event_shape: tuple[int, ...] = eqx.field(static=True)
    _solve_checks: bool = eqx.field(static=True)

    def __init__(
        self, loc, diagonal=None, scale_tril=None, precision_tril=None, validate_args=None,
        precision_matrix=None, covariance_matrix=None,
    ):
        forms = (scale_tril, precision_tril, precision_matrix, covariance_matrix)
        name, given = parameterisation(forms, diagonal, "an array")
        matrix = name in _mg.MATRIX_NAMES
        loc = check_dense("loc", loc, ndims=(1, 2))
        n = loc.shape[-1]
        factor = check_sparse(name, given, square=True)
        check_match("loc", loc, name, factor)
        check_event_size(name, factor.shape, n)
        shapes = [loc.shape[:-1], factor.shape[:-2]]
        if diagonal is not None:
            diagonal = check_dense("diagonal", diagonal, ndims=(1, 2))
            check_match("loc", loc, "diagonal", diagonal)
            check_event_size("diagonal", diagonal.shape, n)
            shapes.append(diagonal.shape[:-1])
        batch = batch_shape(name, shapes)
        if matrix:
            if validate_args:  # symmetric positive definite: the factorisation's own check
                _mg.factor_check(name, factor)
        elif validate_args and is_concrete(factor, diagonal):
            check_sparse_indices(name, factor)
            check_factor_values(name, factor, diagonal is not None, diagonal)
        elif validate_args:  # traced: checked by the program at run time, same messages
            factor = checked_indices(name, factor)
            factor = checked_factor(name, factor, diagonal is not None, diagonal)
        # a validated factor needs no check in every solve (unvalidated ones get the solve's)
        self._solve_checks = not validate_args
        self.loc, self.diagonal = loc, diagonal
        self.scale_tril = factor if name == "scale_tril" else None
        self.precision_tril = factor if name == "precision_tril" else None
        self.precision_matrix = factor if name == "precision_matrix" else None
        self.covariance_matrix = factor if name == "covariance_matrix" else None
        self.batch_shape, self.event_shape = batch, (n,)

    # ------------------------------------------------------------------------- parameters
    @property
    def _matrix_name(self):
        if self.precision_matrix is not None:
            return "precision_matrix"
        return "covariance_matrix" if self.covariance_matrix is not None else None

    @property
    def _factor(self):
        for F in (self.scale_tril, self.precision_tril, self.precision_matrix):
            if F is not None:
                return F
        return self.covariance_matrix

    @property
    def _is_scale(self) -> bool:
        return self.scale_tril is not None or self.covariance_matrix is not None

    @property
    def is_ldlt_parameterization(self) -> bool:
        return self.diagonal is not None

    @property
    def mean(self) -> jax.Array:
        return jnp.broadcast_to(self.loc, self.batch_shape + self.event_shape)

    @property
    def mode(self) -> jax.Array:
        return self.mean

    # --------------------------------------------------------------------------- sampling
    def sample(self, key, sample_shape=()) -> jax.Array:
        """Reparameterised samples ``(*sample_shape, *batch_shape, n)`` from ``key``.

        Differentiable with respect to every parameter (``eps`` is the only randomness).
        """
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        eps = jax.random.normal(key, shape, self.loc.dtype)
        if self._matrix_name is not None:  # not differentiable in the matrix (raises)
            return self.loc + _mg.colour(self._matrix_name, self._factor, eps)
        L, D = self._factor, self.diagonal
        if self._is_scale:
            if D is None:
                x = apply_to_vectors(sparse_mm, L, eps)
            else:
                eta = jnp.sqrt(D) * eps
                x = eta + apply_to_vectors(sparse_mm, L, eta)
        elif D is None:
            x = apply_to_vectors(lower_solve(False, True, self._solve_checks), L, eps)
        else:
            solve = lower_solve(True, True, self._solve_checks)
            x = apply_to_vectors(solve, L, eps * jax.lax.rsqrt(D))
        return self.loc + x

    rsample = sample

    # ------------------------------------------------------------------------ densities
    def _half_logdet(self) -> jax.Array:
        """``log|Sigma| / 2`` per batch item, O(nnz) from the stored values."""
        sign = 1.0 if self._is_scale else -1.0
        if self._matrix_name is not None:
            return sign * 0.5 * _mg.logdet(self._matrix_name, self._factor)
        if self.diagonal is not None:
            return sign * 0.5 * jnp.sum(jnp.log(self.diagonal), -1)
        return sign * sum_log_diagonal(self._factor)

    def log_prob(self, value: jax.Array) -> jax.Array:
        """Log density of ``value (..., *batch_shape, n)``; shape ``(..., *batch_shape)``."""
        value = check_dense("value", value, ndims=tuple(range(1, 16)))
        d = value - self.loc
        d = jnp.broadcast_to(d, np.broadcast_shapes(d.shape, self.batch_shape + self.event_shape))
        n = self.event_shape[0]
        if self._matrix_name is not None:
            maha = _mg.quadratic(self._matrix_name, self._factor, d, apply_to_vectors)
            return -0.5 * (n * LOG_2PI + maha) - self._half_logdet()
        L, D = self._factor, self.diagonal
        if self._is_scale:
            z = apply_to_vectors(lower_solve(D is not None, False, self._solve_checks), L, d)
            if D is not None:
                z = z * jax.lax.rsqrt(D)
        else:
            z = apply_to_vectors(transposed_mm, L, d)
            if D is not None:
                z = (d + z) * jnp.sqrt(D)
        n = self.event_shape[0]
        return -0.5 * (n * LOG_2PI + jnp.sum(z * z, -1)) - self._half_logdet()

    def entropy(self) -> jax.Array:
        n = self.event_shape[0]
        h = 0.5 * n * (1.0 + LOG_2PI) + self._half_logdet()
        return jnp.broadcast_to(h, self.batch_shape)

    @property
    def variance(self) -> jax.Array:
        """Marginal variances, O(nnz), for covariance factors (precision factors: see below).

        ``covariance_matrix``: its diagonal. ``precision_matrix``: diag(Q^{-1}) from the selected
        inverse (differentiating it in Q's values raises NotImplementedError).
        """
        full = self.batch_shape + self.event_shape
        if self.covariance_matrix is not None:
            return jnp.broadcast_to(_mg.diagonal(self.covariance_matrix), full)
        if self.precision_matrix is not None:
            return jnp.broadcast_to(_mg.precision_variance(self.precision_matrix), full)
        if not self._is_scale:
            raise NotImplementedError(PRECISION_VARIANCE)
        L, D = self._factor, self.diagonal
        squares = with_data(L, L.data * L.data)
        full = self.batch_shape + self.event_shape
        if D is None:
            return apply_to_vectors(sparse_mm, squares, jnp.ones(full, self.loc.dtype))
        w = jnp.broadcast_to(D, full)
        return w + apply_to_vectors(sparse_mm, squares, w)
