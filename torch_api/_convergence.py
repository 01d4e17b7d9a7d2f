"""Convergence reporting for torch_api's solvers: the shared policy of
:mod:`bridge.internal.convergence` (the same warning and error classes as jax_api's), and the
true-residual check of a solver that reports no convergence of its own, on torch tensors.
"""

from __future__ import annotations

import torch

from bridge.internal.convergence import (
    ConvergenceError,
    ConvergenceWarning,
    report_nonconvergence,
    residual_verdict,
)

__all__ = ["ConvergenceError", "ConvergenceWarning", "report_nonconvergence", "residual_failures"]


def residual_failures(
    matrix: torch.Tensor, X: torch.Tensor, B: torch.Tensor, tol: float, atol: float
) -> tuple[float, bool]:
    """Worst relative residual ``||A x - b|| / ||b||`` over the columns, and whether any column
    misses the bound of :mod:`bridge.internal.convergence`.

    Args:
        matrix: the 2-D sparse ``A``; X, B: ``(n, p)`` solution and right-hand side.
        tol, atol: the relative and absolute tolerances.

    The norms are computed where the tensors live and cross to the host in one transfer.
    Example: ``worst, failed = residual_failures(A, X, B, 1e-5, 0.0)``.
    """
    norms = torch.stack([
        torch.linalg.vector_norm(matrix @ X - B, dim=0),
        torch.linalg.vector_norm(B, dim=0),
        torch.linalg.vector_norm(X, dim=0),
    ])
    a_norm = torch.linalg.vector_norm(matrix.values())
    host = torch.cat([norms.reshape(-1), a_norm.reshape(1)]).double().cpu().numpy()
    res, bn, xn = host[:-1].reshape(3, -1)
    eps = torch.finfo(X.dtype).eps
    return residual_verdict(res, bn, xn, float(host[-1]), eps, tol, atol)
