"""What both frontends' one-sample mean and covariance tests share: the checks of the scalar
arguments, the statistics from the triangular solves, and the thresholds (``scipy.stats``).

Draw ``n`` samples, compute the sample mean ``x`` and the unbiased sample covariance ``S``, and
ask whether the reference parameters lie in the confidence region. A test *passes* (accepts)
when its statistic is at most the ``confidence_level`` quantile of the statistic's null
distribution, so under the null it falsely rejects with probability ``1 - confidence_level``; a
higher level is more lenient.

- Hotelling's T^2 for the mean ``mu``: ``T^2 = n (x - mu)^T S^{-1} (x - mu) = n ||y||^2`` with
  ``S = L L^T`` and ``L y = x - mu``. For Gaussian data ``(n - d) / (d (n - 1)) T^2`` follows
  ``F(d, n - d)`` exactly, so the threshold is ``d (n - 1) / (n - d) F.ppf(level; d, n - d)``
  (needs ``n > d``).
- Nagao's (1973) test for the covariance ``Sigma``: ``T_n = (n / 2) tr[(S Sigma^{-1} - I)^2]``,
  asymptotically chi^2 with ``d (d + 1) / 2`` degrees of freedom. With ``Sigma = L L^T``,
  ``S Sigma^{-1}`` is similar to ``W = L^{-1} S L^{-T}``, so ``T_n = (n / 2) tr[(W - I)^2]``,
  computed with two triangular solves (no inverse).

The statistics take any array with ``*``, ``-``, ``.sum(axes)`` and ``.mT`` (torch, JAX).
"""

from __future__ import annotations

import operator

from .messages import value_error


def check_level(confidence_level: object) -> float:
    """A confidence level in ``(0, 1)``."""
    try:
        level = float(confidence_level)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"confidence_level: expected a float in (0, 1), got {confidence_level!r}."
        ) from None
    if not 0.0 < level < 1.0:
        raise value_error("confidence_level", f"{level}", "a value in (0, 1)")
    return level


def check_n(n: object, minimum: int, why: str) -> int:
    """The sample size: an int at least ``minimum`` (``why`` explains the minimum)."""
    try:
        if isinstance(n, bool):
            raise TypeError
        n = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"n: expected an int (the sample size), got {n!r}.") from None
    if n < minimum:
        raise value_error("n", f"{n}", f"a sample size >= {minimum} ({why})")
    return n


def check_cov_shape(name: str, C, B: int | None = None, d: int | None = None) -> None:
    """``C`` (an array already checked to be 3-D) must be ``(B, d, d)`` square matrices."""
    if C.shape[-1] != C.shape[-2]:
        raise value_error(name, C, "a batch of square (B, d, d) matrices")
    if B is not None and tuple(C.shape) != (B, d, d):
        raise value_error(name, C, f"shape ({B}, {d}, {d})")


def check_hotelling_args(sample_mean, true_mean, sample_cov, n, level, check_match, check_cov):
    """The checks of the T^2 test once each mean is a checked 2-D array of its frontend:
    ``check_match(name_a, a, name_b, b)`` (same dtype/device) and ``check_cov(name, C, B, d)``
    are the frontend's. Returns ``(sample_cov, n, level)``."""
    check_match("sample_mean", sample_mean, "true_mean", true_mean)
    if true_mean.shape != sample_mean.shape:
        raise value_error("true_mean", true_mean, f"shape {tuple(sample_mean.shape)}")
    B, d = sample_mean.shape
    sample_cov = check_cov("sample_cov", sample_cov, B, d)
    check_match("sample_mean", sample_mean, "sample_cov", sample_cov)
    n = check_n(n, d + 1, "n > d for the F distribution's n - d degrees of freedom")
    return sample_cov, n, check_level(level)


def check_nagao_args(emp_cov, ref_cov, n, level, check_match, check_cov):
    """The checks of Nagao's test, with the frontend's ``check_match`` and ``check_cov`` (as in
    :func:`check_hotelling_args`). Returns ``(emp_cov, ref_cov, n, level)``."""
    emp_cov = check_cov("emp_cov", emp_cov, None, None)
    B, d, _ = emp_cov.shape
    ref_cov = check_cov("ref_cov", ref_cov, B, d)
    check_match("emp_cov", emp_cov, "ref_cov", ref_cov)
    n = check_n(n, 2, "an unbiased sample covariance needs two samples")
    return emp_cov, ref_cov, n, check_level(level)


def check_factored(name: str, bad_batches) -> None:
    """Refuse a Cholesky factorisation that failed; ``bad_batches``: the failed batch indices."""
    if len(bad_batches):
        raise value_error(
            name, f"a matrix that is not positive definite at batch index {int(bad_batches[0])}",
            "symmetric positive-definite matrices",
        )


def hotelling_t2(y, n: int):
    """``T^2 = n ||y||^2`` per batch item, from ``y (B, d, 1) = L^{-1} (x - mu)``."""
    return n * (y * y).sum((-2, -1))


def nagao_t_n(W, identity, n: int):
    """``T_n = (n / 2) tr[(W - I)^2]`` per batch item, from ``W (B, d, d) = L^{-1} S L^{-T}``."""
    E = W - identity
    return (n / 2) * (E * E.mT).sum((-2, -1))


def hotelling_threshold(d: int, n: int, level: float) -> float:
    """The ``level`` quantile of ``T^2``'s null law (F-distributed after scaling)."""
    from scipy import stats

    return d * (n - 1) / (n - d) * float(stats.f.ppf(level, d, n - d))


def nagao_threshold(d: int, level: float) -> float:
    """The ``level`` quantile of chi^2 with ``d (d + 1) / 2`` degrees of freedom."""
    from scipy import stats

    return float(stats.chi2.ppf(level, d * (d + 1) // 2))
