"""The matrix parameterisations of :class:`~torch_api._distributions.SparseMultivariateNormal`:
a sparse SPD ``precision_matrix`` ``Q`` or ``covariance_matrix`` ``Sigma``.

With ``d = x - loc``: ``d^T Q d`` is a sparse product, ``d^T Sigma^{-1} d`` a
``sparse_cholesky_solve``, ``log|Q|`` / ``log|Sigma|`` a ``sparse_logdet``: gradients reach
``loc`` and the matrix's stored values (sparse, at its pattern). Samples colour ``eps`` through
the matrix's sparse ``L D L^T`` factorisation (:meth:`bridge.internal.factor.Factor.sample_colour`);
their derivative in the matrix values (the derivative of the factor, dense in general) is not
implemented, so ``rsample`` refuses a matrix that requires grad.
"""

from __future__ import annotations

import numpy as np
import torch

from bridge.internal.messages import GAUSSIAN_MATRICES, renamed

from ._direct import Factors
from ._direct_solve import sparse_cholesky_solve
from ._logdet import sparse_logdet
from ._pattern import Pattern
from ._sparse_factor import apply_to_vectors
from ._sparse_mm import sparse_mm

MATRIX_NAMES = GAUSSIAN_MATRICES


def quadratic(name: str, M: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``d^T Q d`` (``name`` precision) or ``d^T Sigma^{-1} d`` for ``d (..., *batch, n)``."""
    with renamed(name):
        if name == "precision_matrix":
            return (d * apply_to_vectors(sparse_mm, M, d)).sum(-1)
        return (d * apply_to_vectors(sparse_cholesky_solve, M, d)).sum(-1)


def logdet(name: str, M: torch.Tensor) -> torch.Tensor:
    with renamed(name):
        return sparse_logdet(M)


def _factors(name: str, M: torch.Tensor, values: torch.Tensor):
    pattern, _ = Pattern.of(M)
    with renamed(name):
        return Factors("cholesky").of(pattern, values.detach().reshape(-1))


def factor_check(name: str, M: torch.Tensor, values: torch.Tensor) -> None:
    """Factor once, for the symmetric / positive definite checks (ValueError naming ``name``)."""
    _factors(name, M, values)


def precision_variance(M: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``diag(Q^{-1})`` from the selected inverse (not differentiable: the caller refuses)."""
    factors = _factors("precision_matrix", M, values)
    n = M.shape[-1]
    idx = np.arange(n, dtype=np.int64)
    out = np.stack([F.inverse_at(idx, idx) for F in factors])
    out = torch.from_numpy(out).to(dtype=values.dtype, device=values.device)
    return out.reshape(*M.shape[:-2], n)


def colour(name: str, M: torch.Tensor, values: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``C eps`` with ``C C^T = Sigma`` for ``eps (..., *batch, n)`` (not differentiable in M)."""
    factors = _factors(name, M, values)
    precision = name == "precision_matrix"
    n = eps.shape[-1]
    e = eps.detach().cpu().to(torch.float64)
    if M.dim() == 2:
        E = e.reshape(-1, n).T.numpy()
        X = torch.from_numpy(np.ascontiguousarray(factors[0].sample_colour(E, precision).T))
        X = X.reshape(eps.shape)
    else:
        b = M.shape[0]
        E = e.reshape(-1, b, n)
        X = torch.stack([
            torch.from_numpy(np.ascontiguousarray(
                F.sample_colour(E[:, i].T.numpy(), precision).T))
            for i, F in enumerate(factors)], dim=1).reshape(eps.shape)
    return X.to(dtype=eps.dtype, device=eps.device)
