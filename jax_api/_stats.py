"""Batched tests that a sample's mean and covariance match reference values, for JAX arrays.

The statistics are torch_api's (:mod:`torch_api._stats`, where they are derived); the arrays
cross the bridge without copying and the results come back as JAX arrays. These are test
utilities that need concrete values: they cannot run under ``jit``/``vmap``/``grad`` (a traced
input is a TypeError), since the quantiles come from ``scipy.stats``.
"""

from __future__ import annotations

import bridge
from torch_api import _stats

from ._validate import check_dense, is_concrete

__all__ = ["mean_hotelling_t2_test", "cov_nagao_test"]


def _via_torch(fn, arrays: dict, *args):
    tensors = {name: _to_torch(name, a, 2 if "mean" in name else 3) for name, a in arrays.items()}
    passed, stat, threshold = fn(*tensors.values(), *args)
    return bridge.to_jax(passed), bridge.to_jax(stat), threshold


def _to_torch(name: str, a, ndim: int):
    a = check_dense(name, a, ndims=(ndim,))
    if not is_concrete(a):
        raise TypeError(
            f"{name}: expected a concrete array (a test utility, called outside jit/vmap/grad), "
            f"got a traced value."
        )
    return bridge.to_torch(a)


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
    arrays = dict(sample_mean=sample_mean, true_mean=true_mean, sample_cov=sample_cov)
    return _via_torch(_stats.mean_hotelling_t2_test, arrays, n, confidence_level)


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
    arrays = dict(emp_cov=emp_cov, ref_cov=ref_cov)
    return _via_torch(_stats.cov_nagao_test, arrays, n, confidence_level)
