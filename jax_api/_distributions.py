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

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

from bridge.internal.messages import exactly_one_parameterisation

from . import _matrix_gaussian as _mg
from ._checks import check_sparse_indices, checked_indices, runtime_check
from ._pattern import Pattern
from ._sparse_mm import flat_mm, sparse_mm
from ._triangular_solve import sparse_triangular_solve
from ._validate import check_dense, check_match, check_sparse, is_concrete

__all__ = ["SparseMultivariateNormal"]

_LOG_2PI = math.log(2 * math.pi)


def _with_data(A, data):
    """``A``'s pattern with new stored values (same type, indices and flags)."""
    if isinstance(A, BCSR):
        return BCSR(
            (data, A.indices, A.indptr),
            shape=A.shape,
            indices_sorted=A.indices_sorted,
            unique_indices=A.unique_indices,
        )
    return BCOO(
        (data, A.indices),
        shape=A.shape,
        indices_sorted=A.indices_sorted,
        unique_indices=A.unique_indices,
    )


def _transposed_mm(A, X):
    """``A^T @ X`` with gradients on A's pattern (the product on the transposed pattern)."""
    pattern, values = Pattern.of(A)
    pattern_t, perm = pattern.transposed()
    Xf, vector = pattern.flat_rhs(X)
    return pattern.unflat(flat_mm(pattern_t, values[perm], Xf), vector, A.shape[-1])


def _apply(op, A, v):
    """``op(A, V)`` on every vector of ``v (..., [b], n)``, gathered as the columns of ``V``."""
    n = v.shape[-1]
    if A.ndim == 2:
        lead = v.shape[:-1]
        return op(A, v.reshape(-1, n).T).T.reshape(*lead, n)
    b = A.shape[0]
    lead = v.shape[:-2]
    out = op(A, jnp.transpose(v.reshape(-1, b, n), (1, 2, 0)))
    return jnp.transpose(out, (2, 0, 1)).reshape(*lead, b, n)


def _lower_solve(unit: bool, transpose: bool, check: bool):
    return lambda A, B: sparse_triangular_solve(
        A, B, upper=False, unitriangular=unit, transpose=transpose, check=check
    )


def _diag_entries(A):
    """``(rows, cols, values, on_diagonal)`` of the factor's real stored entries (flat)."""
    pattern, values = Pattern.of(A)
    on = pattern.valid & (pattern.rows == pattern.col)
    return pattern, values, on


def _sum_log_diagonal(A):
    """``sum_i log A_ii`` per batch item from the stored values (``-inf`` if one is missing)."""
    pattern, values, on = _diag_entries(A)
    N = pattern.csr_shape[0]
    diag = jnp.zeros(N, values.dtype).at[jnp.where(on, pattern.rows, N)].add(values, mode="drop")
    return jnp.log(diag).reshape(*A.shape[:-2], -1).sum(-1)


_ABOVE = "{name}: expected a lower-triangular factor, got entries above the diagonal."
_STORED_DIAG = (
    "{name}: expected a strictly lower factor with diagonal= (LDL^T: the unit diagonal is "
    "implicit), got stored diagonal entries."
)
_BAD_DIAG = (
    "{name}: expected every diagonal entry stored and positive (LL^T), got a missing or "
    "non-positive one."
)
_BAD_D = "diagonal: expected positive values, got a non-positive one."


def _factor_failures(name, A, ldlt: bool, diagonal, xp):
    """``(bad, message)`` of each constraint on the factor, in NumPy (``xp=np``) or JAX."""
    pattern, values, on = _diag_entries(A)
    conv = np.asarray if xp is np else (lambda x: x)
    rows, cols, valid, on, values = map(conv, (pattern.rows, pattern.col, pattern.valid, on,
                                               values))
    out = [(xp.any(valid & (rows < cols)), _ABOVE.format(name=name))]
    if ldlt:
        out.append((xp.any(on), _STORED_DIAG.format(name=name)))
    else:
        N = pattern.csr_shape[0]
        if xp is np:
            n_diag = np.bincount(rows[on], minlength=N)
        else:
            n_diag = jnp.zeros(N, jnp.int32).at[jnp.where(on, rows, N)].add(1, mode="drop")
        bad = xp.any(n_diag == 0) | xp.any(on & (values <= 0))
        out.append((bad, _BAD_DIAG.format(name=name)))
    if diagonal is not None:
        out.append((xp.any(~(conv(diagonal) > 0)), _BAD_D))
    return out


def _check_factor_values(name, A, ldlt: bool, diagonal):
    """Eager constraint checks (triangularity, positive diagonals), on concrete values."""
    for bad, msg in _factor_failures(name, A, ldlt, diagonal, np):
        if bool(bad):
            raise ValueError(msg)


def _checked_factor(name, A, ldlt: bool, diagonal):
    """``A`` whose values raise at run time (under ``jit``) when a constraint fails."""
    data = A.data
    for bad, msg in _factor_failures(name, A, ldlt, diagonal, jnp):
        data = runtime_check(data, bad, msg)
    return _with_data(A, data)


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
        given = {
            "scale_tril": scale_tril, "precision_tril": precision_tril,
            "precision_matrix": precision_matrix, "covariance_matrix": covariance_matrix,
        }
        named = [k for k, v in given.items() if v is not None]
        if len(named) != 1:
            raise ValueError(
                exactly_one_parameterisation(named)
            )
        name = named[0]
        factor = given[name]
        matrix = name in _mg.MATRIX_NAMES
        if matrix and diagonal is not None:
            raise ValueError(
                f"diagonal: expected None with {name} (diagonal is the D of an LDL^T factor, "
                "given with scale_tril or precision_tril only), got an array."
            )
        loc = check_dense("loc", loc, ndims=(1, 2))
        n = loc.shape[-1]
        factor = check_sparse(name, factor, square=True)
        check_match("loc", loc, name, factor)
        if factor.shape[-1] != n:
            raise ValueError(
                f"{name}: expected shape ({n}, {n}) or (b, {n}, {n}) to match loc's event size "
                f"{n}, got shape {tuple(factor.shape)}."
            )
        shapes = [loc.shape[:-1], factor.shape[:-2]]
        if diagonal is not None:
            diagonal = check_dense("diagonal", diagonal, ndims=(1, 2))
            check_match("loc", loc, "diagonal", diagonal)
            if diagonal.shape[-1] != n:
                raise ValueError(
                    f"diagonal: expected shape ({n},) or (b, {n}) to match loc's event size "
                    f"{n}, got shape {tuple(diagonal.shape)}."
                )
            shapes.append(diagonal.shape[:-1])
        try:
            batch_shape = tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            raise ValueError(
                f"loc, diagonal, {name}: batch shapes {[tuple(s) for s in shapes]} do not "
                f"broadcast."
            ) from None
        if matrix:
            if validate_args:  # symmetric positive definite: the factorisation's own check
                _mg.factor_check(name, factor)
        elif validate_args and is_concrete(factor, diagonal):
            check_sparse_indices(name, factor)
            _check_factor_values(name, factor, diagonal is not None, diagonal)
        elif validate_args:  # traced: checked by the program at run time, same messages
            factor = checked_indices(name, factor)
            factor = _checked_factor(name, factor, diagonal is not None, diagonal)
        # a validated factor needs no check in every solve (unvalidated ones get the solve's)
        self._solve_checks = not validate_args
        self.loc, self.diagonal = loc, diagonal
        self.scale_tril = factor if name == "scale_tril" else None
        self.precision_tril = factor if name == "precision_tril" else None
        self.precision_matrix = factor if name == "precision_matrix" else None
        self.covariance_matrix = factor if name == "covariance_matrix" else None
        self.batch_shape, self.event_shape = batch_shape, (n,)

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
                x = _apply(sparse_mm, L, eps)
            else:
                eta = jnp.sqrt(D) * eps
                x = eta + _apply(sparse_mm, L, eta)
        elif D is None:
            x = _apply(_lower_solve(False, True, self._solve_checks), L, eps)
        else:
            x = _apply(_lower_solve(True, True, self._solve_checks), L, eps * jax.lax.rsqrt(D))
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
        return sign * _sum_log_diagonal(self._factor)

    def log_prob(self, value: jax.Array) -> jax.Array:
        """Log density of ``value (..., *batch_shape, n)``; shape ``(..., *batch_shape)``."""
        value = check_dense("value", value, ndims=tuple(range(1, 16)))
        d = value - self.loc
        d = jnp.broadcast_to(d, np.broadcast_shapes(d.shape, self.batch_shape + self.event_shape))
        n = self.event_shape[0]
        if self._matrix_name is not None:
            maha = _mg.quadratic(self._matrix_name, self._factor, d, _apply)
            return -0.5 * (n * _LOG_2PI + maha) - self._half_logdet()
        L, D = self._factor, self.diagonal
        if self._is_scale:
            z = _apply(_lower_solve(D is not None, False, self._solve_checks), L, d)
            if D is not None:
                z = z * jax.lax.rsqrt(D)
        else:
            z = _apply(_transposed_mm, L, d)
            if D is not None:
                z = (d + z) * jnp.sqrt(D)
        n = self.event_shape[0]
        return -0.5 * (n * _LOG_2PI + jnp.sum(z * z, -1)) - self._half_logdet()

    def entropy(self) -> jax.Array:
        n = self.event_shape[0]
        h = 0.5 * n * (1.0 + _LOG_2PI) + self._half_logdet()
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
            raise NotImplementedError(
                "variance: with a precision factor the marginal variances are diag(P^{-1}), "
                "which needs a selected inversion of the factor (Takahashi recursion, with "
                "fill-in), not an O(nnz) operation; it is not implemented. Use a covariance "
                "factor (scale_tril), or estimate the variances from samples."
            )
        L, D = self._factor, self.diagonal
        squares = _with_data(L, L.data * L.data)
        full = self.batch_shape + self.event_shape
        if D is None:
            return _apply(sparse_mm, squares, jnp.ones(full, self.loc.dtype))
        w = jnp.broadcast_to(D, full)
        return w + _apply(sparse_mm, squares, w)
