"""Batched tests that a sample's mean and covariance match reference values, for JAX arrays.

The statistics are derived in :mod:`bridge.internal.stats` (shared with torch_api); the Cholesky
factor and triangular solves run in JAX. These are test utilities that need concrete values:
they cannot run under ``jit``/``vmap``/``grad`` (a traced input is a TypeError), since a
covariance that is not positive definite is refused by value and the quantiles come from
``scipy.stats``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from bridge.internal.stats import (
    check_cov_shape,
    check_factored,
    check_hotelling_args,
    check_nagao_args,
    hotelling_t2,
    hotelling_threshold,
    nagao_t_n,
    nagao_threshold,
)

from ._validate import check_dense, check_match, is_concrete

__all__ = ["mean_hotelling_t2_test", "cov_nagao_test"]


def _concrete(name: str, a, ndim: int):
    a = check_dense(name, a, ndims=(ndim,))
    if not is_concrete(a):
        raise TypeError(
            f"{name}: expected a concrete array (a test utility, called outside jit/vmap/grad), "
            f"got a traced value."
        )
    return a


def _check_cov(name: str, C, B: int | None = None, d: int | None = None):
    C = _concrete(name, C, 3)
    check_cov_shape(name, C, B, d)
    return C


def _cholesky(name: str, C):
    L = jnp.linalg.cholesky(C)
    check_factored(name, np.flatnonzero(np.asarray(jnp.isnan(L).any((-2, -1)))))
    return L


def mean_hotelling_t2_test(sample_mean, true_mean, sample_cov, n, confidence_level=0.95):
    """One-sample Hotelling T^2 test of ``true_mean``, batched (as torch_api's).

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
    sample_mean = _concrete("sample_mean", sample_mean, 2)
    true_mean = _concrete("true_mean", true_mean, 2)
    sample_cov, n, level = check_hotelling_args(
        sample_mean, true_mean, sample_cov, n, confidence_level, check_match, _check_cov
    )
    d = sample_mean.shape[-1]

    L = _cholesky("sample_cov", sample_cov)
    y = solve_triangular(L, (sample_mean - true_mean)[..., None], lower=True)
    t2 = hotelling_t2(y, n)
    threshold = hotelling_threshold(d, n, level)
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
    emp_cov, ref_cov, n, level = check_nagao_args(
        emp_cov, ref_cov, n, confidence_level, check_match, _check_cov
    )
    d = emp_cov.shape[-1]

    L = _cholesky("ref_cov", ref_cov)
    X = solve_triangular(L, emp_cov, lower=True)  # L^{-1} S
    W = solve_triangular(L, X.mT, lower=True).mT  # L^{-1} S L^{-T}
    t_n = nagao_t_n(W, jnp.eye(d, dtype=W.dtype), n)
    threshold = nagao_threshold(d, level)
    return t_n <= threshold, t_n, threshold
