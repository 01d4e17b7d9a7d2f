"""Batched one-sample tests that a sample's mean and covariance match reference values.

Hotelling's T^2 for the mean and Nagao's test for the covariance, derived in
:mod:`bridge.internal.stats` (shared with jax_api); here the Cholesky factor and triangular
solves run in torch, on the inputs' device. Quantiles come from ``scipy.stats``.
"""

from __future__ import annotations

import torch

from bridge.internal import stats as shared

from ._validate import check_dense, check_match

__all__ = ["mean_hotelling_t2_test", "cov_nagao_test"]


def _check_cov(name: str, C: object, B: int | None = None, d: int | None = None) -> torch.Tensor:
    C = check_dense(name, C, ndims=(3,))
    shared.check_cov_shape(name, C, B, d)
    return C


def _cholesky(name: str, C: torch.Tensor) -> torch.Tensor:
    L, info = torch.linalg.cholesky_ex(C)
    shared.check_factored(name, torch.nonzero(info).flatten().tolist())
    return L


def mean_hotelling_t2_test(
    sample_mean: torch.Tensor,
    true_mean: torch.Tensor,
    sample_cov: torch.Tensor,
    n: int,
    confidence_level: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One-sample Hotelling T^2 test of ``true_mean``, batched.

    Args:
        sample_mean: ``(B, d)`` sample means, float32/float64; a ``(d,)`` mean is one test
            (``B = 1``, and ``sample_cov`` may then be ``(d, d)``).
        true_mean: ``(B, d)`` hypothesised means, same dtype and device; a ``(d,)`` mean is
            the hypothesis of every test of the batch.
        sample_cov: ``(B, d, d)`` unbiased sample covariances (positive definite).
        n: the number of samples behind each mean and covariance, ``n > d``.
        confidence_level: in ``(0, 1)``; the test falsely rejects with probability ``1 - level``.

    Returns:
        ``(passed (B,) bool, t2_stat (B,), threshold float)``, on the inputs' device.

    Example:
        >>> x = torch.randn(500, 2, dtype=torch.float64)
        >>> passed, t2, thr = mean_hotelling_t2_test(
        ...     x.mean(0)[None], torch.zeros(1, 2, dtype=torch.float64), torch.cov(x.T)[None], 500)
    """
    sample_mean = check_dense("sample_mean", sample_mean, ndims=(1, 2))
    true_mean = check_dense("true_mean", true_mean, ndims=(1, 2))
    if sample_mean.dim() == 1:  # a single test: a batch of one
        sample_mean = sample_mean[None]
        if isinstance(sample_cov, torch.Tensor) and sample_cov.dim() == 2:
            sample_cov = sample_cov[None]
    if true_mean.dim() == 1:  # one hypothesised mean for every test of the batch
        true_mean = true_mean[None]
        if true_mean.shape[-1] == sample_mean.shape[-1]:
            true_mean = true_mean.expand(sample_mean.shape[0], -1)
    sample_cov, n, level = shared.check_hotelling_args(
        sample_mean, true_mean, sample_cov, n, confidence_level, check_match, _check_cov
    )
    d = sample_mean.shape[-1]

    L = _cholesky("sample_cov", sample_cov)
    y = torch.linalg.solve_triangular(L, (sample_mean - true_mean).unsqueeze(-1), upper=False)
    t2 = shared.hotelling_t2(y, n)
    threshold = shared.hotelling_threshold(d, n, level)
    return t2 <= threshold, t2, threshold


def cov_nagao_test(
    emp_cov: torch.Tensor,
    ref_cov: torch.Tensor,
    n: int,
    confidence_level: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Nagao's test of ``ref_cov`` against the sample covariance ``emp_cov``, batched.

    Args:
        emp_cov: ``(B, d, d)`` unbiased sample covariances, float32/float64.
        ref_cov: ``(B, d, d)`` hypothesised covariances (positive definite), same dtype/device.
        n: the number of samples behind each ``emp_cov``, ``n >= 2``.
        confidence_level: in ``(0, 1)``; the test falsely rejects with probability about
            ``1 - level`` (the chi^2 law of the statistic is asymptotic in ``n``).

    Returns:
        ``(passed (B,) bool, t_n_stat (B,), threshold float)``, on the inputs' device.

    Example:
        >>> x = torch.randn(500, 2, dtype=torch.float64)
        >>> passed, t_n, thr = cov_nagao_test(
        ...     torch.cov(x.T)[None], torch.eye(2, dtype=torch.float64)[None], 500)
    """
    emp_cov, ref_cov, n, level = shared.check_nagao_args(
        emp_cov, ref_cov, n, confidence_level, check_match, _check_cov
    )
    d = emp_cov.shape[-1]

    L = _cholesky("ref_cov", ref_cov)
    X = torch.linalg.solve_triangular(L, emp_cov, upper=False)  # L^{-1} S
    W = torch.linalg.solve_triangular(L, X.mT, upper=False).mT  # L^{-1} S L^{-T}
    t_n = shared.nagao_t_n(W, torch.eye(d, dtype=W.dtype, device=W.device), n)
    threshold = shared.nagao_threshold(d, level)
    return t_n <= threshold, t_n, threshold
