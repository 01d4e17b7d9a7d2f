"""``SparseMultivariateNormalNative``: an LL^T Gaussian sampled with ``torch.sparse.mm`` only."""

from __future__ import annotations

import torch
from torch.distributions import Distribution, constraints

from bridge.internal.gaussian import LOG_2PI

from ._pattern import Pattern
from ._sparse_factor import (
    NO_SAMPLE,
    GaussianBase,
    SparseLowerTriangular,
    apply_to_vectors,
    lower_solve,
    sum_log_diagonal,
)
from ._validate import check_dense, check_match, check_sparse


class SparseMultivariateNormalNative(GaussianBase, Distribution):
    """LL^T covariance Gaussian with an unbatched CSR factor, sampled with ``torch.sparse.mm``.

    Args:
        loc: mean ``(n,)``.
        scale_tril: sparse CSR ``(n, n)``, lower triangular with a positive diagonal.
        validate_args: check the factor's triangularity and diagonal.

    Samples use ``torch.sparse.mm`` only; ``log_prob`` uses torch_api's sparse triangular
    solve (O(nnz), gradients to ``loc`` and the factor's values), and ``covariance_matrix`` is
    the dense ``L L^T`` (``(n, n)``, as in torchsparsegradutils). ``expand`` shares the factor.

    Example:
        >>> L = torch.tensor([[1.0, 0.0], [0.5, 2.0]]).to_sparse_csr()
        >>> SparseMultivariateNormalNative(torch.zeros(2), L).rsample((4,)).shape
        torch.Size([4, 2])
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "scale_tril": SparseLowerTriangular(positive_diagonal=True),
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
    def scale_tril(self) -> torch.Tensor:
        return self._scale_tril

    def __repr__(self) -> str:
        L = self._scale_tril
        return (
            f"{type(self).__name__}(loc: {tuple(self._loc.shape)}, scale_tril: {tuple(L.shape)} "
            f"sparse_csr nnz={L._nnz()}, LL^T covariance factor, batch_shape="
            f"{tuple(self.batch_shape)}, event_shape={tuple(self.event_shape)}, "
            f"dtype={self._loc.dtype})"
        )

    def expand(self, batch_shape, _instance=None):
        """This distribution over ``batch_shape``, sharing the (unbatched) factor."""
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(SparseMultivariateNormalNative, _instance)
        new._loc = self._loc.expand(batch_shape + self.event_shape)
        new._scale_tril = self._scale_tril
        super(SparseMultivariateNormalNative, new).__init__(
            batch_shape, self.event_shape, validate_args=False
        )
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value):
        """``log N(value; loc, L L^T)`` for ``value (..., n)``: shape ``value.shape[:-1]``
        broadcast with the batch shape."""
        if self._validate_args:
            self._validate_sample(value)
        d = value - self._loc
        z = apply_to_vectors(lower_solve(False), self._scale_tril, d)  # L^{-1} d
        L = self._scale_tril
        n = self._loc.shape[-1]
        return -0.5 * (n * LOG_2PI + z.pow(2).sum(-1)) - sum_log_diagonal(L, L.values())

    @property
    def covariance_matrix(self) -> torch.Tensor:
        """The dense covariance ``L L^T``, ``(*batch_shape, n, n)`` (O(n^2) memory)."""
        L = self._scale_tril.to_dense()
        return (L @ L.T).expand(self.batch_shape + L.shape)

    @property
    def variance(self) -> torch.Tensor:
        L = self._scale_tril
        rows = Pattern.of(L)[0].rows().long()
        v = L.values()
        out = (v * v).new_zeros(L.shape[0]).index_add(0, rows, v * v)
        return out.expand(self.batch_shape + self.event_shape)

    def entropy(self) -> torch.Tensor:
        n = self._loc.shape[-1]
        L = self._scale_tril
        out = 0.5 * n * (1.0 + LOG_2PI) + sum_log_diagonal(L, L.values())
        return out.expand(self.batch_shape)

    def rsample(self, sample_shape=NO_SAMPLE) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, dtype=self._loc.dtype, device=self._loc.device)
        n = self._loc.shape[-1]
        x = torch.sparse.mm(self._scale_tril, eps.reshape(-1, n).transpose(0, 1))
        return self._loc + x.transpose(0, 1).reshape(shape)
