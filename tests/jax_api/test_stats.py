"""jax_api.mean_hotelling_t2_test / cov_nagao_test: formulas, torch_api agreement, calibration."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from scipy import stats  # noqa: E402

from jax_api import cov_nagao_test, mean_hotelling_t2_test  # noqa: E402


def _samples(key, B, n, d):
    """``B`` independent samples of ``n`` draws from N(mu, Sigma), with their statistics."""
    k1, k2 = jax.random.split(key)
    A = jax.random.normal(k1, (d, d), jnp.float64)
    cov = A @ A.T + d * jnp.eye(d)
    mu = jnp.arange(d, dtype=jnp.float64)
    x = mu + jax.random.normal(k2, (B, n, d), jnp.float64) @ jnp.linalg.cholesky(cov).T
    mean = x.mean(1)
    centred = x - mean[:, None]
    S = jnp.einsum("bni,bnj->bij", centred, centred) / (n - 1)
    return mean, S, jnp.broadcast_to(mu, (B, d)), jnp.broadcast_to(cov, (B, d, d))


def test_statistics_match_formulas(x64):
    mean, S, mu, cov = _samples(jax.random.key(0), 3, 40, 3)
    passed, t2, thr = mean_hotelling_t2_test(mean, mu, S, 40, 0.9)
    diff = np.asarray(mean - mu)
    want = [40 * diff[b] @ np.linalg.solve(np.asarray(S[b]), diff[b]) for b in range(3)]
    np.testing.assert_allclose(t2, want, rtol=1e-10)
    assert thr == pytest.approx(3 * 39 / 37 * stats.f.ppf(0.9, 3, 37))
    np.testing.assert_array_equal(passed, np.asarray(t2) <= thr)

    passed, t_n, thr = cov_nagao_test(S, cov, 40, 0.9)
    want = []
    for b in range(3):
        E = np.asarray(S[b]) @ np.linalg.inv(np.asarray(cov[b])) - np.eye(3)
        want.append(20 * np.trace(E @ E))
    np.testing.assert_allclose(t_n, want, rtol=1e-10)
    assert thr == pytest.approx(stats.chi2.ppf(0.9, 6))
    assert passed.dtype == jnp.bool_ and passed.shape == (3,)


def test_matches_torch_api(x64):
    torch = pytest.importorskip("torch")
    from torch_api.utils import cov_nagao_test as t_nagao
    from torch_api.utils import mean_hotelling_t2_test as t_hotelling

    mean, S, mu, cov = _samples(jax.random.key(1), 4, 30, 2)
    T = lambda x: torch.from_numpy(np.array(x))
    for got, want in (
        (
            mean_hotelling_t2_test(mean, mu + 0.3, S, 30),
            t_hotelling(T(mean), T(mu + 0.3), T(S), 30),
        ),
        (cov_nagao_test(S, 1.2 * cov, 30, 0.99), t_nagao(T(S), T(1.2 * cov), 30, 0.99)),
    ):
        np.testing.assert_array_equal(got[0], want[0].numpy())
        np.testing.assert_allclose(got[1], want[1].numpy(), rtol=1e-12)
        assert got[2] == pytest.approx(want[2], rel=1e-14)


def test_calibrated_false_rejection_rate(x64):
    """Under the null, each test rejects in about 1 - confidence of 400 independent samples."""
    B = 400
    mean, S, mu, cov = _samples(jax.random.key(2), B, 300, 3)
    for level in (0.9, 0.95):
        rate_mean = 1 - float(jnp.mean(mean_hotelling_t2_test(mean, mu, S, 300, level)[0]))
        rate_cov = 1 - float(jnp.mean(cov_nagao_test(S, cov, 300, level)[0]))
        sd = np.sqrt(level * (1 - level) / B)
        assert abs(rate_mean - (1 - level)) < 4 * sd, (level, rate_mean)
        assert abs(rate_cov - (1 - level)) < 4 * sd + 0.02, (level, rate_cov)  # asymptotic law


def test_rejects_wrong_parameters(x64):
    mean, S, mu, cov = _samples(jax.random.key(3), 20, 300, 3)
    assert not bool(mean_hotelling_t2_test(mean, mu + 0.8, S, 300)[0].any())
    assert not bool(cov_nagao_test(S, 1.6 * cov, 300)[0].any())
    # a higher confidence level is more lenient: its threshold is larger
    assert (
        mean_hotelling_t2_test(mean, mu, S, 300, 0.99)[2]
        > mean_hotelling_t2_test(mean, mu, S, 300, 0.9)[2]
    )


def test_float32_inputs():
    mean = jnp.zeros((1, 2))
    passed, t2, _ = mean_hotelling_t2_test(mean, mean, jnp.eye(2)[None], 10)
    assert t2.dtype == jnp.float32 and bool(passed[0]) and float(t2[0]) == 0.0


def test_bad_inputs():
    m, S = jnp.zeros((2, 3)), jnp.broadcast_to(jnp.eye(3), (2, 3, 3))
    with pytest.raises(TypeError, match="sample_mean: expected a dense jax.Array"):
        mean_hotelling_t2_test([[0.0] * 3] * 2, m, S, 10)
    with pytest.raises(ValueError, match=r"true_mean: expected shape \(2, 3\)"):
        mean_hotelling_t2_test(m, jnp.zeros((2, 2)), S, 10)
    with pytest.raises(ValueError, match=r"sample_cov: expected shape \(2, 3, 3\)"):
        mean_hotelling_t2_test(m, m, S[:1], 10)
    with pytest.raises(ValueError, match="sample_cov: expected symmetric positive-definite"):
        mean_hotelling_t2_test(m, m, S.at[1, 0, 0].set(-1.0), 10)
    with pytest.raises(ValueError, match=r"n: expected a sample size >= 4"):
        mean_hotelling_t2_test(m, m, S, 3)
    with pytest.raises(TypeError, match="n: expected an int"):
        cov_nagao_test(S, S, 10.5)
    with pytest.raises(ValueError, match=r"confidence_level: expected a value in \(0, 1\)"):
        cov_nagao_test(S, S, 10, 1.0)
    with pytest.raises(
        ValueError, match="ref_cov: expected a batch of square|ref_cov: expected shape"
    ):
        cov_nagao_test(S, jnp.zeros((2, 3, 2)), 10)
    with pytest.raises(ValueError, match="emp_cov: expected a 3-D array"):
        cov_nagao_test(S[0], S[0], 10)
    with pytest.raises(ValueError, match="ref_cov: expected float32 or float64 values"):
        cov_nagao_test(S, S.astype(jnp.bfloat16), 10)
    with pytest.raises(TypeError, match="emp_cov: expected a concrete array"):
        jax.jit(lambda C: cov_nagao_test(C, S, 10)[1])(S)
