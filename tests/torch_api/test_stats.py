"""Hotelling T^2 and Nagao tests: statistics against direct formulas, acceptance of the true
parameters, rejection of wrong ones, and calibration of the false-rejection rate."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from torch_api.utils import cov_nagao_test, mean_hotelling_t2_test

DRAWS = 400  # independent experiments per calibration test, run as one batch


def _experiments(d, n, draws=DRAWS, seed=0, dtype=torch.float64):
    """``draws`` independent samples of size ``n`` from N(mu, Sigma): their means/covariances."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    Sigma = A @ A.T + d * torch.eye(d, dtype=torch.float64)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    x = mu + torch.randn(draws, n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(
        Sigma
    ).T
    mean = x.mean(1)
    xc = x - mean[:, None]
    cov = xc.mT @ xc / (n - 1)
    to = lambda t: t.to(dtype)
    return to(mean), to(cov), to(mu.expand(draws, d)), to(Sigma.expand(draws, d, d))


def _tolerated(rate, draws=DRAWS):
    """Rejection counts a correct test produces with probability 0.999 (binomial, two-sided)."""
    lo, hi = stats.binom.interval(0.999, draws, rate)
    return int(lo), int(hi)


def test_statistics_match_direct_formulas(dtype):
    mean, cov, mu, Sigma = _experiments(3, 40, draws=5, seed=1, dtype=dtype)
    n, d = 40, 3
    passed, t2, thr = mean_hotelling_t2_test(mean, mu, cov, n, confidence_level=0.9)
    diff = (mean - mu).double()
    want = n * torch.einsum("bi,bij,bj->b", diff, torch.linalg.inv(cov.double()), diff)
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(t2.double(), want, rtol=rtol, atol=0)
    assert thr == pytest.approx(d * (n - 1) / (n - d) * stats.f.ppf(0.9, d, n - d))
    assert passed.dtype == torch.bool and passed.shape == (5,)
    assert torch.equal(passed, t2 <= thr)

    passed, t_n, thr = cov_nagao_test(cov, Sigma, n, confidence_level=0.9)
    M = cov.double() @ torch.linalg.inv(Sigma.double()) - torch.eye(d, dtype=torch.float64)
    want = n / 2 * torch.einsum("bij,bji->b", M, M)
    torch.testing.assert_close(t_n.double(), want, rtol=rtol, atol=0)
    assert thr == pytest.approx(stats.chi2.ppf(0.9, d * (d + 1) / 2))
    assert torch.equal(passed, t_n <= thr)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("level", [0.95, 0.8])
def test_calibration_false_rejection_rate(d, level):
    """Under the null, the number of rejections over DRAWS experiments is Binomial(DRAWS,
    1 - level) (exactly for Hotelling; asymptotically for Nagao, about 5.3% instead of 5% at
    n = 200 in a 20000-draw simulation); accept counts inside its central 99.9% interval."""
    n = 200
    mean, cov, mu, Sigma = _experiments(d, n, seed=10 + d)
    lo, hi = _tolerated(1 - level)
    passed, _, _ = mean_hotelling_t2_test(mean, mu, cov, n, confidence_level=level)
    rejected = int((~passed).sum())
    assert lo <= rejected <= hi, (rejected, lo, hi)
    passed, _, _ = cov_nagao_test(cov, Sigma, n, confidence_level=level)
    rejected = int((~passed).sum())
    assert lo <= rejected <= hi, (rejected, lo, hi)


@pytest.mark.parametrize("d", [2, 3])
def test_rejects_wrong_parameters(d):
    n = 200
    mean, cov, mu, Sigma = _experiments(d, n, seed=20 + d)
    # a shift of half a standard deviation along every axis: T^2 noncentrality about 50 d
    wrong_mu = mu + 0.5 * torch.sqrt(torch.diagonal(Sigma, dim1=-2, dim2=-1))
    passed, _, _ = mean_hotelling_t2_test(mean, wrong_mu, cov, n)
    assert (~passed).double().mean() >= 0.95
    passed, _, _ = cov_nagao_test(cov, 1.6 * Sigma, n)
    assert (~passed).double().mean() >= 0.95
    # the true parameters pass in most experiments of the same batch
    assert mean_hotelling_t2_test(mean, mu, cov, n)[0].double().mean() >= 0.9
    assert cov_nagao_test(cov, Sigma, n)[0].double().mean() >= 0.9


def test_higher_confidence_is_more_lenient():
    mean, cov, mu, Sigma = _experiments(2, 50, draws=200, seed=30)
    wrong = mu + 0.2
    low = mean_hotelling_t2_test(mean, wrong, cov, 50, confidence_level=0.5)[0]
    high = mean_hotelling_t2_test(mean, wrong, cov, 50, confidence_level=0.99)[0]
    assert torch.all(high | ~low) and high.sum() > low.sum()  # low passes imply high passes


def test_bad_inputs():
    mean, cov, mu, Sigma = _experiments(2, 20, draws=3)
    with pytest.raises(ValueError, match=r"true_mean: expected shape \(3, 2\)"):
        mean_hotelling_t2_test(mean, mu[:2], cov, 20)
    with pytest.raises(ValueError, match="sample_mean: expected"):
        mean_hotelling_t2_test(mean[0, 0], mu[0], cov, 20)  # 0-D: neither one test nor a batch
    with pytest.raises(ValueError, match=r"sample_cov: expected shape \(3, 2, 2\)"):
        mean_hotelling_t2_test(mean, mu, cov[:, :1, :1], 20)
    with pytest.raises(ValueError, match="true_mean: expected dtype torch.float64 to match"):
        mean_hotelling_t2_test(mean, mu.float(), cov, 20)
    with pytest.raises(ValueError, match=r"n: expected a sample size >= 3 \(n > d"):
        mean_hotelling_t2_test(mean, mu, cov, 2)
    with pytest.raises(TypeError, match="n: expected an int"):
        mean_hotelling_t2_test(mean, mu, cov, 20.0)
    with pytest.raises(ValueError, match=r"confidence_level: expected a value in \(0, 1\)"):
        mean_hotelling_t2_test(mean, mu, cov, 20, confidence_level=95)
    with pytest.raises(ValueError, match="sample_cov: expected symmetric positive-definite"):
        mean_hotelling_t2_test(mean, mu, -cov, 20)
    with pytest.raises(ValueError, match="ref_cov: expected symmetric positive-definite"):
        cov_nagao_test(cov, torch.zeros_like(Sigma), 20)
    with pytest.raises(ValueError, match="emp_cov: expected a batch of square"):
        cov_nagao_test(cov[:, :, :1], Sigma, 20)
    with pytest.raises(ValueError, match=r"ref_cov: expected shape \(3, 2, 2\)"):
        cov_nagao_test(cov, Sigma[:1], 20)
    with pytest.raises(TypeError, match="ref_cov: expected a torch.Tensor"):
        cov_nagao_test(cov, Sigma.numpy(), 20)
    with pytest.raises(ValueError, match=r"n: expected a sample size >= 2"):
        cov_nagao_test(cov, Sigma, 1)
