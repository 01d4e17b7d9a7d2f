"""Gaussians with sparse triangular covariance or precision factors.

Parameterisations (``L`` lower triangular and sparse, ``n`` the event size):

- ``scale_tril=L``: ``Sigma = L L^T``; sample ``loc + L eps``; ``log|Sigma| = 2 sum log L_ii``.
- ``scale_tril=L, diagonal=D``: ``Sigma = U D U^T``; sample ``loc + U (D^{1/2} eps)``;
  ``log|Sigma| = sum log D``.
- ``precision_tril=L``: ``P = L L^T``; sample ``loc + L^{-T} eps``;
  ``log|Sigma| = -2 sum log L_ii``.
- ``precision_tril=L, diagonal=D``: ``P = U D U^T``; sample ``loc + U^{-T} (D^{-1/2} eps)``;
  ``log|Sigma| = -sum log D``.

For LDL^T (``diagonal=D`` given) the factor is stored STRICTLY lower and ``U = I + L`` has an
implicit unit diagonal; ``D`` is the diagonal matrix of the decomposition itself (variances of
the decorrelated coordinates, as in torchsparsegradutils), so samples scale by ``sqrt(D)``.

With ``Sigma = A A^T`` (``A = L`` or ``U D^{1/2}``) and ``d = x - loc``, the Mahalanobis term is
``|A^{-1} d|^2`` (a triangular solve); with ``P = B B^T`` it is ``|B^T d|^2`` (a product). The
log-determinant of a triangular factor is the sum of the logs of its diagonal, read from the
stored values in O(nnz). Marginal variances of a covariance factor are row sums of squares of
``A``: ``(L o L) 1`` or ``D + (L o L) D``, again O(nnz). Every product and solve is a torch_api
op, so gradients reach ``loc``, ``diagonal`` and the factor's values (as sparse gradients).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, constraints

from ._encoders import sparse_with_values
from ._pattern import Pattern
from ._sparse_mm import sparse_mm
from ._triangular_solve import sparse_triangular_solve
from ._validate import check_dense, check_match, check_sparse

_LOG_2PI = math.log(2 * math.pi)
_NO_SAMPLE = torch.Size()


class _SparseLowerTriangular(constraints.Constraint):
    """A sparse (COO/CSR, 2-D or batched) lower-triangular factor; O(nnz) checks.

    ``strict``: no stored diagonal (the unit diagonal of LDL^T is implicit).
    ``positive_diagonal``: every diagonal entry stored and positive (an LL^T factor).
    """

    event_dim = 2

    def __init__(self, strict: bool = False, positive_diagonal: bool = False):
        self.strict, self.positive_diagonal = strict, positive_diagonal
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        pattern, values = Pattern.of(value)
        rows, cols = pattern.rows(), pattern.col
        n, nb = value.shape[-1], pattern.nb
        batch = torch.div(rows, n, rounding_mode="floor")
        bad = (rows < cols) | ((rows == cols) if self.strict else False)
        if self.positive_diagonal:
            good_diag = (rows == cols) & (values > 0)
            count = torch.zeros(nb, dtype=torch.long, device=rows.device)
            count.index_add_(0, batch, good_diag.long())
            ok_diag = count == n
        else:
            ok_diag = torch.ones(nb, dtype=torch.bool, device=rows.device)
        nbad = torch.zeros(nb, dtype=torch.long, device=rows.device)
        nbad.index_add_(0, batch, bad.long())
        ok = (nbad == 0) & ok_diag
        return ok.reshape(value.shape[:-2])

    def __repr__(self) -> str:
        kind = "Strictly" if self.strict else ""
        extra = ", positive diagonal" if self.positive_diagonal else ""
        return f"Sparse{kind}LowerTriangular({extra.lstrip(', ')})"


class _TransposedMM(torch.autograd.Function):
    """``Y = A^T X`` with ``dA = X G^T`` at A's pattern and ``dX = A G``."""

    @staticmethod
    def forward(ctx, A, X):
        pattern, values = Pattern.of(A)
        Xf, vector = pattern.flat_rhs(X)
        ctx.pattern, ctx.vector = pattern, vector
        ctx.save_for_backward(values, Xf)
        return pattern.unflat(pattern.csr_t(values) @ Xf, vector, A.shape[-1])

    @staticmethod
    def backward(ctx, G):
        pattern: Pattern = ctx.pattern
        values, Xf = ctx.saved_tensors
        Gf, _ = pattern.flat_rhs(G.contiguous())
        dA = pattern.wrap(pattern.sddmm(Xf, Gf)) if ctx.needs_input_grad[0] else None
        dX = None
        if ctx.needs_input_grad[1]:
            dX = pattern.unflat(pattern.csr(values) @ Gf, ctx.vector, pattern.shape[-2])
        return dA, dX


def _apply(op, A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``op(A, V)`` on every vector of ``v (..., [b], n)``, gathered as the columns of ``V``."""
    n = v.shape[-1]
    if A.dim() == 2:
        lead = v.shape[:-1]
        out = op(A, v.reshape(-1, n).transpose(0, 1))
        return out.transpose(0, 1).reshape(*lead, n)
    b = A.shape[0]
    lead = v.shape[:-2]
    out = op(A, v.reshape(-1, b, n).permute(1, 2, 0))
    return out.permute(2, 0, 1).reshape(*lead, b, n)


def _lower_solve(unit: bool):
    return lambda A, B: sparse_triangular_solve(A, B, upper=False, unitriangular=unit)


def _lower_solve_t(unit: bool):
    return lambda A, B: sparse_triangular_solve(
        A, B, upper=False, unitriangular=unit, transpose=True
    )


class _ValuesOf(torch.autograd.Function):
    """A's stored values ``(nnz,)`` or ``(b, nnz)`` (COO coalesced), gradient back on A's pattern.

    Unlike ``A.values()`` it saves no tensors, so the node can be built once per distribution
    and backpropagated through by every later call.
    """

    @staticmethod
    def forward(ctx, A):
        if A.layout == torch.sparse_coo:
            ctx.index, ctx.shape = (A._indices(),), A.shape
            return A._values()
        ctx.index, ctx.shape = (A.crow_indices(), A.col_indices()), A.shape
        return A.values()

    @staticmethod
    def backward(ctx, g):
        if len(ctx.index) == 1:
            return torch.sparse_coo_tensor(ctx.index[0], g, ctx.shape, is_coalesced=True)
        return torch.sparse_csr_tensor(*ctx.index, g, ctx.shape)


def _sum_log_diagonal(A: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``sum_i log A_ii`` per batch item, from the stored values (``-inf`` if one is missing)."""
    pattern, _ = Pattern.of(A)
    rows = pattern.rows()
    on = rows == pattern.col
    diag = values.new_zeros(pattern.nb * A.shape[-1])
    diag = diag.index_put((rows[on].long(),), values.reshape(-1)[on])
    return diag.log().reshape(*A.shape[:-2], -1).sum(-1)


def _check_common(loc, factor_name, factor, diagonal):
    loc = check_dense("loc", loc, ndims=(1, 2))
    n = loc.shape[-1]
    factor = check_sparse(factor_name, factor, square=True)
    check_match("loc", loc, factor_name, factor)
    if factor.shape[-1] != n:
        raise ValueError(
            f"{factor_name}: expected shape ({n}, {n}) or (b, {n}, {n}) to match loc's event "
            f"size {n}, got shape {tuple(factor.shape)}."
        )
    if factor.layout == torch.sparse_coo and not factor.is_coalesced():
        factor = factor.coalesce()
    if diagonal is not None:
        diagonal = check_dense("diagonal", diagonal, ndims=(1, 2))
        check_match("loc", loc, "diagonal", diagonal)
        if diagonal.shape[-1] != n:
            raise ValueError(
                f"diagonal: expected shape ({n},) or (b, {n}) to match loc's event size {n}, "
                f"got shape {tuple(diagonal.shape)}."
            )
    shapes = [loc.shape[:-1], factor.shape[:-2]] + (
        [diagonal.shape[:-1]] if diagonal is not None else []
    )
    try:
        batch_shape = torch.broadcast_shapes(*shapes)
    except RuntimeError:
        raise ValueError(
            f"loc, diagonal, {factor_name}: batch shapes {[tuple(s) for s in shapes]} do not "
            f"broadcast."
        ) from None
    if len(factor.shape) == 3 and batch_shape != factor.shape[:1]:
        raise ValueError(
            f"loc, diagonal: expected batch size {factor.shape[0]} (or none) to match "
            f"{factor_name}, got batch shape {tuple(batch_shape)}."
        )
    return loc, factor, diagonal, batch_shape


class SparseMultivariateNormal(Distribution):
    """Multivariate normal with a sparse triangular covariance or precision factor.

    Args:
        loc: mean, ``(n,)`` or ``(b, n)``.
        diagonal: ``D`` of an LDL^T parameterisation, ``(n,)`` or ``(b, n)``, positive; ``None``
            for LL^T.
        scale_tril: covariance factor, sparse COO/CSR ``(n, n)`` or ``(b, n, n)``: lower
            triangular with a positive diagonal (LL^T) or strictly lower (LDL^T).
        precision_tril: precision factor, same form; give exactly one of the two.
        validate_args: check the constraints (triangularity, positive diagonals) at
            construction, and samples in :meth:`log_prob`.

    Example:
        >>> L = torch.tensor([[1.0, 0.0], [0.5, 2.0]]).to_sparse_csr()
        >>> d = SparseMultivariateNormal(torch.zeros(2), scale_tril=L)
        >>> d.rsample((3,)).shape
        torch.Size([3, 2])
    """

    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self, loc, diagonal=None, scale_tril=None, precision_tril=None, validate_args=None
    ):
        if (scale_tril is None) == (precision_tril is None):
            raise ValueError(
                "scale_tril, precision_tril: expected exactly one of them, got "
                f"{'both' if scale_tril is not None else 'neither'}."
            )
        self._is_scale = scale_tril is not None
        name = "scale_tril" if self._is_scale else "precision_tril"
        given = scale_tril if self._is_scale else precision_tril
        loc, factor, diagonal, batch_shape = _check_common(loc, name, given, diagonal)
        self._loc, self._factor, self._diagonal = loc, factor, diagonal
        self._values = _ValuesOf.apply(factor)
        super().__init__(batch_shape, loc.shape[-1:], validate_args=validate_args)

    # ------------------------------------------------------------------------- parameters
    @property
    def arg_constraints(self) -> dict:
        ldlt = self._diagonal is not None
        out = {"loc": constraints.real_vector}
        if ldlt:
            out["diagonal"] = constraints.independent(constraints.positive, 1)
        name = "scale_tril" if self._is_scale else "precision_tril"
        out[name] = _SparseLowerTriangular(strict=ldlt, positive_diagonal=not ldlt)
        return out

    @property
    def loc(self) -> torch.Tensor:
        return self._loc

    @property
    def diagonal(self) -> torch.Tensor | None:
        return self._diagonal

    @property
    def scale_tril(self) -> torch.Tensor | None:
        return self._factor if self._is_scale else None

    @property
    def precision_tril(self) -> torch.Tensor | None:
        return None if self._is_scale else self._factor

    @property
    def is_ldlt_parameterization(self) -> bool:
        return self._diagonal is not None

    @property
    def mean(self) -> torch.Tensor:
        return self._loc.expand(self.batch_shape + self.event_shape)

    @property
    def mode(self) -> torch.Tensor:
        return self.mean

    # --------------------------------------------------------------------------- sampling
    def rsample(self, sample_shape=_NO_SAMPLE) -> torch.Tensor:
        """Reparameterised samples ``(*sample_shape, *batch_shape, n)``, ``eps = torch.randn``."""
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, dtype=self._loc.dtype, device=self._loc.device)
        L, D = self._use(), self._diagonal
        if self._is_scale:
            if D is None:
                x = _apply(sparse_mm, L, eps)
            else:
                eta = D.sqrt() * eps
                x = eta + _apply(sparse_mm, L, eta)
        else:
            if D is None:
                x = _apply(_lower_solve_t(False), L, eps)
            else:
                x = _apply(_lower_solve_t(True), L, eps * D.rsqrt())
        return self._loc + x

    # ------------------------------------------------------------------------ densities
    def _use(self) -> torch.Tensor:
        """The factor for one sparse use: a fresh tensor on the shared values node, so that
        several uses add their gradients densely on the values (torch 2.13 adds two batched CSR
        gradients wrongly) and the factor receives one sparse gradient."""
        return sparse_with_values(self._factor, self._values)

    def _half_logdet(self) -> torch.Tensor:
        """``log|Sigma| / 2`` per batch item, O(nnz) from the stored values."""
        D = self._diagonal
        sign = 1.0 if self._is_scale else -1.0
        if D is not None:
            return sign * 0.5 * D.log().sum(-1)
        return sign * _sum_log_diagonal(self._factor, self._values)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        d = value - self._loc
        d = d.expand(torch.broadcast_shapes(d.shape, self.batch_shape + self.event_shape))
        half_logdet, L, D = self._half_logdet(), self._use(), self._diagonal
        if self._is_scale:
            z = _apply(_lower_solve(D is not None), L, d)
            if D is not None:
                z = z * D.rsqrt()
        else:
            z = _apply(_TransposedMM.apply, L, d)
            if D is not None:
                z = (d + z) * D.sqrt()
        n = self.event_shape[0]
        return -0.5 * (n * _LOG_2PI + z.pow(2).sum(-1)) - half_logdet

    def entropy(self) -> torch.Tensor:
        n = self.event_shape[0]
        return (0.5 * n * (1.0 + _LOG_2PI) + self._half_logdet()).expand(self.batch_shape)

    @property
    def variance(self) -> torch.Tensor:
        """Marginal variances, O(nnz), for covariance factors (precision factors: see below)."""
        if not self._is_scale:
            raise NotImplementedError(
                "variance: with a precision factor the marginal variances are diag(P^{-1}), "
                "which needs a selected inversion of the factor (Takahashi recursion, with "
                "fill-in), not an O(nnz) operation; it is not implemented. Use a covariance "
                "factor (scale_tril), or estimate the variances from samples."
            )
        D, values = self._diagonal, self._values
        squares = sparse_with_values(self._factor, values * values)
        full = self.batch_shape + self.event_shape
        if D is None:
            w = torch.ones(full, dtype=values.dtype, device=values.device)
            return _apply(sparse_mm, squares, w)
        w = D.expand(full)
        return w + _apply(sparse_mm, squares, w)


class SparseMultivariateNormalNative(Distribution):
    """LL^T covariance Gaussian with an unbatched CSR factor, sampled with ``torch.sparse.mm``.

    Args:
        loc: mean ``(n,)``.
        scale_tril: sparse CSR ``(n, n)``, lower triangular with a positive diagonal.
        validate_args: check the factor's triangularity and diagonal.

    ``log_prob`` needs a triangular solve, which is outside ``torch.sparse.mm``; use
    :class:`SparseMultivariateNormal` for densities.

    Example:
        >>> L = torch.tensor([[1.0, 0.0], [0.5, 2.0]]).to_sparse_csr()
        >>> SparseMultivariateNormalNative(torch.zeros(2), L).rsample((4,)).shape
        torch.Size([4, 2])
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "scale_tril": _SparseLowerTriangular(positive_diagonal=True),
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, scale_tril, validate_args=None):
        loc = check_dense("loc", loc, ndims=(1,))
        scale_tril = check_sparse(
            "scale_tril", scale_tril, layouts=(torch.sparse_csr,), ndims=(2,), square=True
        )
        check_match("loc", loc, "scale_tril", scale_tril)
        if scale_tril.shape[-1] != loc.shape[-1]:
            raise ValueError(
                f"scale_tril: expected shape ({loc.shape[-1]}, {loc.shape[-1]}) to match loc, "
                f"got shape {tuple(scale_tril.shape)}."
            )
        self._loc, self._scale_tril = loc, scale_tril
        super().__init__(torch.Size(), loc.shape, validate_args=validate_args)

    @property
    def loc(self) -> torch.Tensor:
        return self._loc

    @property
    def scale_tril(self) -> torch.Tensor:
        return self._scale_tril

    @property
    def mean(self) -> torch.Tensor:
        return self._loc

    @property
    def mode(self) -> torch.Tensor:
        return self._loc

    @property
    def variance(self) -> torch.Tensor:
        L = self._scale_tril
        rows = Pattern.of(L)[0].rows().long()
        v = L.values()
        return (v * v).new_zeros(L.shape[0]).index_add(0, rows, v * v)

    def entropy(self) -> torch.Tensor:
        n = self._loc.shape[-1]
        return 0.5 * n * (1.0 + _LOG_2PI) + _sum_log_diagonal(
            self._scale_tril, self._scale_tril.values()
        )

    def rsample(self, sample_shape=_NO_SAMPLE) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, dtype=self._loc.dtype, device=self._loc.device)
        n = self._loc.shape[-1]
        x = torch.sparse.mm(self._scale_tril, eps.reshape(-1, n).transpose(0, 1))
        return self._loc + x.transpose(0, 1).reshape(shape)
