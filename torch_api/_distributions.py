"""Gaussians with sparse triangular covariance or precision factors.

Parameterisations (``L`` lower triangular and sparse, ``n`` the event size):

- ``scale_tril=L``: ``Sigma = L L^T``; sample ``loc + L eps``; ``log|Sigma| = 2 sum log L_ii``.
- ``scale_tril=L, diagonal=D``: ``Sigma = U D U^T``; sample ``loc + U (D^{1/2} eps)``;
  ``log|Sigma| = sum log D``.
- ``precision_tril=L``: ``P = L L^T``; sample ``loc + L^{-T} eps``;
  ``log|Sigma| = -2 sum log L_ii``.
- ``precision_tril=L, diagonal=D``: ``P = U D U^T``; sample ``loc + U^{-T} (D^{-1/2} eps)``;
  ``log|Sigma| = -sum log D``.

For LDL^T (``diagonal=D`` given) ``U = I + L`` with L's strictly lower part: the unit diagonal
is implicit and values the factor stores on its diagonal are ignored (as torchsparsegradutils'
unit-triangular solve ignores them); ``D`` is the diagonal matrix of the decomposition itself
(variances of the decorrelated coordinates, as in torchsparsegradutils), so samples scale by
``sqrt(D)``.

With ``Sigma = A A^T`` (``A = L`` or ``U D^{1/2}``) and ``d = x - loc``, the Mahalanobis term is
``|A^{-1} d|^2`` (a triangular solve); with ``P = B B^T`` it is ``|B^T d|^2`` (a product). The
log-determinant of a triangular factor is the sum of the logs of its diagonal, read from the
stored values in O(nnz). Marginal variances of a covariance factor are row sums of squares of
``A``: ``(L o L) 1`` or ``D + (L o L) D``, again O(nnz). Every product and solve is a torch_api
op, so gradients reach ``loc``, ``diagonal`` and the factor's values (as sparse gradients).

The two maps every density, sample and divergence is written with: ``color`` (``x = A eps``,
``Sigma = A A^T``: a product with a covariance factor, a transposed solve with a precision
factor) and ``whiten`` (``z`` with ``|z|^2 = d^T Sigma^{-1} d``: a solve with a covariance
factor, a transposed product with a precision factor).
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, constraints

from bridge.internal.gaussian import LOG_2PI, PRECISION_VARIANCE, parameterisation

from . import _matrix_gaussian as _mg
from ._mvn_parameters import FactorParameters, repeat_factor, strictly_lower
from ._pattern import sparse_with_values
from ._pattern_cache import operation
from ._sparse_factor import (
    NO_SAMPLE,
    GaussianBase,
    ValuesOf,
    apply_to_vectors,
    check_parameters,
    lower_solve,
    lower_solve_t,
    stored_diagonal,
    sum_log_diagonal,
)
from ._sparse_mm import sparse_mm, sparse_mm_t
from ._validate import describe


class SparseMultivariateNormal(FactorParameters, GaussianBase, Distribution):
    """Multivariate normal with a sparse triangular covariance or precision factor.

    Args:
        loc: mean, ``(n,)`` or ``(b, n)``.
        diagonal: ``D`` of an LDL^T parameterisation, ``(n,)`` or ``(b, n)``, positive; ``None``
            for LL^T.
        scale_tril: covariance factor, sparse COO/CSR ``(n, n)`` or ``(b, n, n)``: lower
            triangular with a positive diagonal (LL^T) or, for LDL^T, lower triangular with
            an implicit unit diagonal: entries it stores on the diagonal are ignored (taken as
            1, their gradient is zero), as torchsparsegradutils does. A CSR factor
            that requires grad must have sorted columns within each row (ValueError otherwise).
        precision_tril: precision factor, same form.
        precision_matrix: a sparse symmetric positive definite precision ``Q`` (COO/CSR,
            ``(n, n)`` or ``(b, n, n)``, both triangles stored): ``log_prob`` by a sparse
            product and ``sparse_logdet`` (gradients to ``loc`` and Q's values at its pattern);
            samples through Q's sparse ``L D L^T`` factorisation (``rsample`` refuses a Q that
            requires grad under grad mode); ``variance`` is diag(Q^{-1}) (not differentiable).
        covariance_matrix: a sparse SPD covariance ``Sigma``, same form (``sparse_cholesky_solve``
            for the Mahalanobis term). Give exactly one of the four; ``diagonal`` only with a
            factor. ``kl_divergence`` raises NotImplementedError for the matrix forms.
        validate_args: ``True``: check the constraints (triangularity, positive diagonals) at
            construction, and samples in :meth:`log_prob`; ``None`` (torch's default
            validation): the same, except that the factor's structure is checked at its first
            use (sampling, densities, moments), so that building never fails on it;
            ``False``: no checks.

    ``expand`` shares the factor (an unbatched factor serves every batch item; a ``(1, n, n)``
    factor is repeated). ``kl_divergence`` is registered against this class and
    ``torch.distributions.MultivariateNormal`` (see :mod:`torch_api._kl` for the costs).

    Example:
        >>> L = torch.tensor([[1.0, 0.0], [0.5, 2.0]]).to_sparse_csr()
        >>> d = SparseMultivariateNormal(torch.zeros(2), scale_tril=L)
        >>> d.rsample((3,)).shape
        torch.Size([3, 2])
    """

    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self, loc, diagonal=None, scale_tril=None, precision_tril=None, validate_args=None,
        precision_matrix=None, covariance_matrix=None,
    ):
        forms = (scale_tril, precision_tril, precision_matrix, covariance_matrix)
        name, given = parameterisation(forms, diagonal, describe(diagonal))
        self._matrix_name = name if name in _mg.MATRIX_NAMES else None
        if self._matrix_name is not None:
            self._init_matrix(loc, name, given, validate_args)
            return
        self._is_scale = name == "scale_tril"
        loc, factor, diagonal, batch_shape = check_parameters(loc, name, given, diagonal)
        self._loc, self._factor, self._diagonal = loc, factor, diagonal
        # _template: the pattern _values lives on (the factor's own, except for an LDL^T factor
        # storing diagonal entries: they are dropped, the unit diagonal being implicit)
        self._template, self._values = factor, ValuesOf.apply(factor)
        if diagonal is not None:
            self._template, self._values = strictly_lower(factor, self._values)
        # under torch's default validation (validate_args=None) the factor's structure is
        # checked when the distribution first uses it, not at construction
        self._factor_unchecked = validate_args is None and bool(Distribution._validate_args)
        super().__init__(batch_shape, loc.shape[-1:], validate_args=validate_args)

    def _init_matrix(self, loc, name, matrix, validate_args):
        """A sparse SPD precision or covariance matrix (see :mod:`torch_api._matrix_gaussian`)."""
        loc, matrix, _, batch_shape = check_parameters(loc, name, matrix, None)
        self._is_scale = name == "covariance_matrix"
        self._loc, self._factor, self._diagonal = loc, matrix, None
        self._template, self._values = matrix, ValuesOf.apply(matrix)
        self._factor_unchecked = False
        if validate_args:  # symmetric positive definite: the factorisation's own check
            _mg.factor_check(name, matrix, self._values)
        super().__init__(batch_shape, loc.shape[-1:], validate_args=validate_args)

    def _matrix_use(self) -> torch.Tensor:
        return sparse_with_values(self._template, self._values)

    def _no_factor_maps(self, what: str):
        raise NotImplementedError(
            f"{what}: not implemented for a {self._matrix_name} parameterisation (it has no "
            "sparse triangular factor); use scale_tril or precision_tril."
        )

    def expand(self, batch_shape, _instance=None):
        """This distribution over a larger batch shape; the factor is shared, not copied.

        An unbatched factor serves every batch item as it is; a ``(b, n, n)`` factor serves a
        ``batch_shape`` ending in ``b``; a ``(1, n, n)`` factor is repeated along the new last
        batch dimension (its values copied, its gradient summed back). ``loc`` and ``diagonal``
        are expanded views.
        """
        batch_shape = torch.Size(batch_shape)
        try:
            ok = torch.broadcast_shapes(self.batch_shape, batch_shape) == batch_shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"batch_shape: expected a shape that the batch shape {tuple(self.batch_shape)} "
                f"broadcasts to, got {tuple(batch_shape)}."
            )
        new = self._get_checked_instance(SparseMultivariateNormal, _instance)
        full = batch_shape + self.event_shape
        new._matrix_name = self._matrix_name
        if self._matrix_name is not None and self._template.dim() == 3 and (
            self._template.shape[0] != batch_shape[-1]
        ):
            raise NotImplementedError(
                f"expand: repeating a (1, n, n) {self._matrix_name} is not implemented; give "
                "an unbatched (n, n) matrix to share it across the batch."
            )
        new._is_scale = self._is_scale
        new._loc = self._loc.expand(full)
        new._diagonal = None if self._diagonal is None else self._diagonal.expand(full)
        new._factor, new._template, new._values = self._factor, self._template, self._values
        F = self._template
        if F.dim() == 3 and F.shape[0] != batch_shape[-1]:  # (1, n, n) -> (m, n, n)
            new._template, new._values = repeat_factor(F, self._values, batch_shape[-1])
            new._factor = new._template if self._factor is F else self._factor
        super(SparseMultivariateNormal, new).__init__(
            batch_shape, self.event_shape, validate_args=False
        )
        new._validate_args = self._validate_args
        self._check_factor()  # a deferred check, before the factor is shared
        new._factor_unchecked = False
        return new

    # ---------------------------------------------------------------------- the two maps
    def _use(self) -> torch.Tensor:
        """The factor for one sparse use: a fresh tensor on the shared values node, so that
        several uses add their gradients densely on the values (torch 2.13 adds two batched CSR
        gradients wrongly) and the factor receives one sparse gradient."""
        self._check_factor()
        return sparse_with_values(self._template, self._values)

    def _color(self, eps: torch.Tensor) -> torch.Tensor:
        """``A eps`` for ``eps (..., *batch, n)`` with ``Sigma = A A^T``."""
        if self._matrix_name is not None:
            self._no_factor_maps("colouring map")
        L, D = self._use(), self._diagonal
        if self._is_scale:
            if D is None:
                return apply_to_vectors(sparse_mm, L, eps)
            eta = D.sqrt() * eps
            return eta + apply_to_vectors(sparse_mm, L, eta)
        if D is None:
            return apply_to_vectors(lower_solve_t(False), L, eps)
        return apply_to_vectors(lower_solve_t(True), L, eps * D.rsqrt())

    def _whiten(self, d: torch.Tensor) -> torch.Tensor:
        """``z`` with ``|z|^2 = d^T Sigma^{-1} d`` for ``d (..., *batch, n)``."""
        if self._matrix_name is not None:
            self._no_factor_maps("whitening map")
        L, D = self._use(), self._diagonal
        if self._is_scale:
            z = apply_to_vectors(lower_solve(D is not None), L, d)
            return z if D is None else z * D.rsqrt()
        z = apply_to_vectors(sparse_mm_t, L, d)  # differentiable to any order
        return z if D is None else (d + z) * D.sqrt()

    def _half_logdet(self) -> torch.Tensor:
        """``log|Sigma| / 2`` per batch item, O(nnz) from the stored values."""
        if self._matrix_name is not None:  # a sparse factorisation
            half = 0.5 * _mg.logdet(self._matrix_name, self._matrix_use())
            return half if self._is_scale else -half
        self._check_factor()
        D = self._diagonal
        sign = 1.0 if self._is_scale else -1.0
        if D is not None:
            return sign * 0.5 * D.log().sum(-1)
        return sign * sum_log_diagonal(self._template, self._values)

    # ------------------------------------------------------------------ sampling, density
    @operation
    def rsample(self, sample_shape=NO_SAMPLE) -> torch.Tensor:
        """Reparameterised samples ``(*sample_shape, *batch_shape, n)``, ``eps = torch.randn``."""
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, dtype=self._loc.dtype, device=self._loc.device)
        if self._matrix_name is not None:
            if self._values.requires_grad and torch.is_grad_enabled():
                raise NotImplementedError(
                    f"rsample: reparameterised gradients in the values of {self._matrix_name} "
                    "need the derivative of its Cholesky factor (dense in general), which is "
                    "not implemented; use scale_tril or precision_tril for differentiable "
                    "samples, or sample() / detach the matrix (gradients then reach loc only)."
                )
            return self._loc + _mg.colour(self._matrix_name, self._template, self._values, eps)
        return self._loc + self._color(eps)

    @operation
    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        d = value - self._loc
        d = d.expand(torch.broadcast_shapes(d.shape, self.batch_shape + self.event_shape))
        n = self.event_shape[0]
        if self._matrix_name is not None:
            maha = _mg.quadratic(self._matrix_name, self._matrix_use(), d)
            return -0.5 * (n * LOG_2PI + maha) - self._half_logdet()
        z = self._whiten(d)
        return -0.5 * (n * LOG_2PI + z.pow(2).sum(-1)) - self._half_logdet()

    def entropy(self) -> torch.Tensor:
        n = self.event_shape[0]
        return (0.5 * n * (1.0 + LOG_2PI) + self._half_logdet()).expand(self.batch_shape)

    @property
    def variance(self) -> torch.Tensor:
        """Marginal variances, O(nnz), for covariance factors (precision factors: see below).

        ``covariance_matrix``: its diagonal (differentiable). ``precision_matrix``: diag(Q^{-1})
        from the factorisation's selected inverse, not differentiable in Q: NotImplementedError
        when Q requires grad under grad mode.
        """
        if self._matrix_name == "covariance_matrix":
            return stored_diagonal(self._template, self._values).expand(
                self.batch_shape + self.event_shape)
        if self._matrix_name == "precision_matrix":
            if self._values.requires_grad and torch.is_grad_enabled():
                raise NotImplementedError(
                    "variance: diag(precision_matrix^{-1}) is computed by a selected inverse "
                    "whose derivative is not implemented; call it under torch.no_grad() or "
                    "with a matrix that does not require grad, or use scale_tril."
                )
            return _mg.precision_variance(self._template, self._values).expand(
                self.batch_shape + self.event_shape)
        if not self._is_scale:
            raise NotImplementedError(PRECISION_VARIANCE)
        self._check_factor()
        D, values = self._diagonal, self._values
        squares = sparse_with_values(self._template, values * values)
        full = self.batch_shape + self.event_shape
        if D is None:
            w = torch.ones(full, dtype=values.dtype, device=values.device)
            return apply_to_vectors(sparse_mm, squares, w)
        w = D.expand(full)
        return w + apply_to_vectors(sparse_mm, squares, w)
