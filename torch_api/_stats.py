"""Batched one-sample tests that a sample's mean and covariance match reference values.

Used to check samplers: draw ``n`` samples, compute the sample mean ``x`` and the unbiased
sample covariance ``S``, and ask whether the reference parameters lie in the confidence region.
A test *passes* (accepts) when its statistic is at most the ``confidence_level`` quantile of the
statistic's null distribution, so under the null it falsely rejects with probability
``1 - confidence_level``; a higher level is more lenient.

- Hotelling's T^2 for the mean ``mu``: ``T^2 = n (x - mu)^T S^{-1} (x - mu)``. For Gaussian data
  ``(n - d) / (d (n - 1)) T^2`` follows ``F(d, n - d)`` exactly, so the threshold is
  ``d (n - 1) / (n - d) * F.ppf(confidence_level; d, n - d)`` (needs ``n > d``).
- Nagao's (1973) test for the covariance ``Sigma``: ``T_n = (n / 2) tr[(S Sigma^{-1} - I)^2]``,
  asymptotically chi^2 with ``d (d + 1) / 2`` degrees of freedom. With ``Sigma = L L^T``,
  ``S Sigma^{-1}`` is similar to ``W = L^{-1} S L^{-T}``, so ``T_n = (n / 2) tr[(W - I)^2]``,
  computed with two triangular solves (no inverse).

Quantiles come from ``scipy.stats``.
"""

from __future__ import annotations

import operator

import torch

from ._validate import check_dense, check_match, value_error

__all__ = ["mean_hotelling_t2_test", "cov_nagao_test"]


def _check_level(confidence_level: object) -> float:
    try:
        level = float(confidence_level)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"confidence_level: expected a float in (0, 1), got {confidence_level!r}."
        ) from None
    if not 0.0 < level < 1.0:
        raise value_error("confidence_level", f"{level}", "a value in (0, 1)")
    return level


def _check_n(n: object, minimum: int, why: str) -> int:
    if isinstance(n, bool):
        raise TypeError(f"n: expected an int (the sample size), got {n!r}.")
    try:
        n = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"n: expected an int (the sample size), got {n!r}.") from None
    if n < minimum:
        raise value_error("n", f"{n}", f"a sample size >= {minimum} ({why})")
    return n


def _check_cov(name: str, C: object, B: int | None = None, d: int | None = None) -> torch.Tensor:
    C = check_dense(name, C, ndims=(3,))
    if C.shape[-1] != C.shape[-2]:
        raise value_error(name, C, "a batch of square (B, d, d) matrices")
    if B is not None and tuple(C.shape) != (B, d, d):
        raise value_error(name, C, f"shape ({B}, {d}, {d})")
    return C


def _cholesky(name: str, C: torch.Tensor) -> torch.Tensor:
    L, info = torch.linalg.cholesky_ex(C)
    bad = torch.nonzero(info).flatten()
    if bad.numel():
        raise value_error(
            name, f"a matrix that is not positive definite at batch index {int(bad[0])}",
            "symmetric positive-definite matrices",
        )
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
        sample_mean: ``(B, d)`` sample means, float32/float64.
        true_mean: ``(B, d)`` hypothesised means, same dtype and device.
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
    from scipy import stats

    sample_mean = check_dense("sample_mean", sample_mean, ndims=(2,))
    true_mean = check_dense("true_mean", true_mean, ndims=(2,))
    check_match("sample_mean", sample_mean, "true_mean", true_mean)
    if true_mean.shape != sample_mean.shape:
        raise value_error("true_mean", true_mean, f"shape {tuple(sample_mean.shape)}")
    B, d = sample_mean.shape
    sample_cov = _check_cov("sample_cov", sample_cov, B, d)
    check_match("sample_mean", sample_mean, "sample_cov", sample_cov)
    n = _check_n(n, d + 1, "n > d for the F distribution's n - d degrees of freedom")
    level = _check_level(confidence_level)

    L = _cholesky("sample_cov", sample_cov)
    y = torch.linalg.solve_triangular(L, (sample_mean - true_mean).unsqueeze(-1), upper=False)
    t2 = n * y.square().sum((-2, -1))
    threshold = d * (n - 1) / (n - d) * float(stats.f.ppf(level, d, n - d))
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
    from scipy import stats

    emp_cov = _check_cov("emp_cov", emp_cov)
    B, d, _ = emp_cov.shape
    ref_cov = _check_cov("ref_cov", ref_cov, B, d)
    check_match("emp_cov", emp_cov, "ref_cov", ref_cov)
    n = _check_n(n, 2, "an unbiased sample covariance needs two samples")
    level = _check_level(confidence_level)

    L = _cholesky("ref_cov", ref_cov)
    X = torch.linalg.solve_triangular(L, emp_cov, upper=False)  # L^{-1} S
    W = torch.linalg.solve_triangular(L, X.mT, upper=False).mT  # L^{-1} S L^{-T}
    E = W - torch.eye(d, dtype=W.dtype, device=W.device)
    t_n = (n / 2) * (E * E.mT).sum((-2, -1))  # tr[(W - I)^2]
    threshold = float(stats.chi2.ppf(level, d * (d + 1) // 2))
    return t_n <= threshold, t_n, threshold
