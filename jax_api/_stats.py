"""Batched tests that a sample's mean and covariance match reference values (JAX arrays).

The statistics, thresholds and conventions are torch_api's (see :mod:`torch_api._stats`):
Hotelling's T^2 ``n (x - mu)^T S^{-1} (x - mu)`` against ``d (n - 1) / (n - d) F.ppf(level;
d, n - d)``, and Nagao's ``(n / 2) tr[(W - I)^2]`` with ``W = L^{-1} S L^{-T}``, ``Sigma = L L^T``,
against ``chi2.ppf(level; d (d + 1) / 2)``. A test passes (accepts) when the statistic is at
most the threshold, so under the null it falsely rejects with probability ``1 - level``.

These are test utilities that need concrete values, not functions to ``jit``: the quantiles
come from ``scipy.stats`` and positive definiteness is checked on the values.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from torch_api._stats import _check_level, _check_n

from ._validate import check_dense, check_match, is_concrete, value_error

__all__ = ["mean_hotelling_t2_test", "cov_nagao_test"]


def _check_concrete(**arrays):
    for name, x in arrays.items():
        if not is_concrete(x):
            raise TypeError(
                f"{name}: expected a concrete array (a test utility, called outside jit/vmap/"
                f"grad), got a traced value."
            )


def _check_cov(name: str, C, B: int | None = None, d: int | None = None):
    C = check_dense(name, C, ndims=(3,))
    if C.shape[-1] != C.shape[-2]:
        raise value_error(name, C, "a batch of square (B, d, d) matrices")
    if B is not None and tuple(C.shape) != (B, d, d):
        raise value_error(name, C, f"shape ({B}, {d}, {d})")
    return C


def _cholesky(name: str, C):
    L = jnp.linalg.cholesky(C)
    bad = np.nonzero(~np.isfinite(np.asarray(L)).all(axis=(-2, -1)))[0]
    if bad.size:
        raise value_error(
            name,
            f"a matrix that is not positive definite at batch index {int(bad[0])}",
            "symmetric positive-definite matrices",
        )
    return L


def mean_hotelling_t2_test(sample_mean, true_mean, sample_cov, n, confidence_level=0.95):
    """One-sample Hotelling T^2 test of ``true_mean``, batched.

    Args:
        sample_mean: ``(B, d)`` sample means, float32/float64.
        true_mean: ``(B, d)`` hypothesised means, same dtype.
        sample_cov: ``(B, d, d)`` unbiased sample covariances (positive definite).
        n: the number of samples behind each mean and covariance, ``n > d``.
        confidence_level: in ``(0, 1)``; the test falsely rejects with probability ``1 - level``.

    Returns:
        ``(passed (B,) bool array, t2_stat (B,), threshold float)``.

    Example:
        >>> x = jax.random.normal(jax.random.key(0), (500, 2))
        >>> passed, t2, thr = mean_hotelling_t2_test(
        ...     x.mean(0)[None], jnp.zeros((1, 2)), jnp.cov(x.T)[None], 500)
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
    _check_concrete(sample_mean=sample_mean, true_mean=true_mean, sample_cov=sample_cov)
    n = _check_n(n, d + 1, "n > d for the F distribution's n - d degrees of freedom")
    level = _check_level(confidence_level)

    L = _cholesky("sample_cov", sample_cov)
    y = solve_triangular(L, (sample_mean - true_mean)[..., None], lower=True)
    t2 = n * jnp.sum(y * y, axis=(-2, -1))
    threshold = d * (n - 1) / (n - d) * float(stats.f.ppf(level, d, n - d))
    return t2 <= threshold, t2, threshold


def cov_nagao_test(emp_cov, ref_cov, n, confidence_level=0.95):
    """Nagao's test of ``ref_cov`` against the sample covariance ``emp_cov``, batched.

    Args:
        emp_cov: ``(B, d, d)`` unbiased sample covariances, float32/float64.
        ref_cov: ``(B, d, d)`` hypothesised covariances (positive definite), same dtype.
        n: the number of samples behind each ``emp_cov``, ``n >= 2``.
        confidence_level: in ``(0, 1)``; the test falsely rejects with probability about
            ``1 - level`` (the chi^2 law of the statistic is asymptotic in ``n``).

    Returns:
        ``(passed (B,) bool array, t_n_stat (B,), threshold float)``.

    Example:
        >>> x = jax.random.normal(jax.random.key(0), (500, 2))
        >>> passed, t_n, thr = cov_nagao_test(jnp.cov(x.T)[None], jnp.eye(2)[None], 500)
    """
    from scipy import stats

    emp_cov = _check_cov("emp_cov", emp_cov)
    B, d, _ = emp_cov.shape
    ref_cov = _check_cov("ref_cov", ref_cov, B, d)
    check_match("emp_cov", emp_cov, "ref_cov", ref_cov)
    _check_concrete(emp_cov=emp_cov, ref_cov=ref_cov)
    n = _check_n(n, 2, "an unbiased sample covariance needs two samples")
    level = _check_level(confidence_level)

    L = _cholesky("ref_cov", ref_cov)
    X = solve_triangular(L, emp_cov, lower=True)  # L^{-1} S
    W = jnp.swapaxes(solve_triangular(L, jnp.swapaxes(X, -1, -2), lower=True), -1, -2)
    E = W - jnp.eye(d, dtype=W.dtype)
    t_n = (n / 2) * jnp.sum(E * jnp.swapaxes(E, -1, -2), axis=(-2, -1))  # tr[(W - I)^2]
    threshold = float(stats.chi2.ppf(level, d * (d + 1) // 2))
    return t_n <= threshold, t_n, threshold
