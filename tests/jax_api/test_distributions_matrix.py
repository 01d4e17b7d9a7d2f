"""jax_api SparseMultivariateNormal with a sparse SPD precision_matrix / covariance_matrix,
against jax.scipy.stats.multivariate_normal (float64) and torch_api."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.experimental.sparse import BCOO, BCSR

from jax_api import SparseMultivariateNormal

N = 7
KINDS = ["precision_matrix", "covariance_matrix"]


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def spd(n=N, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.3)
    S = M + M.T
    return S + (np.abs(S).sum(1).max() + 1.0) * np.eye(n)


def sparse(D, layout):
    D = jnp.asarray(D)
    return BCSR.fromdense(D) if layout == "bcsr" else BCOO.fromdense(D)


def sigma(D, kind):
    return D if kind == "covariance_matrix" else np.linalg.inv(D)


@pytest.mark.parametrize("layout", ["bcoo", "bcsr"])
@pytest.mark.parametrize("kind", KINDS)
def test_log_prob_entropy_variance(x64, kind, layout):
    D = spd()
    loc = jnp.asarray(np.random.default_rng(1).standard_normal(N))
    x = jnp.asarray(np.random.default_rng(2).standard_normal((4, N)))
    d = SparseMultivariateNormal(loc, **{kind: sparse(D, layout)})
    S = sigma(D, kind)
    ref = jax.scipy.stats.multivariate_normal.logpdf(x, loc, S)
    np.testing.assert_allclose(d.log_prob(x), ref, rtol=1e-10)
    h = 0.5 * N * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(S)[1]
    np.testing.assert_allclose(d.entropy(), h, rtol=1e-10)
    np.testing.assert_allclose(d.variance, np.diag(S), rtol=1e-10)
    np.testing.assert_allclose(jax.jit(lambda d: d.log_prob(x))(d), ref, rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients(x64, kind):
    D = spd(seed=1)
    A = BCOO.fromdense(jnp.asarray(D))
    loc = jnp.asarray(np.random.default_rng(3).standard_normal(N))
    x = jnp.asarray(np.random.default_rng(4).standard_normal((3, N)))

    def f(data, loc):
        M = BCOO((data, A.indices), shape=A.shape)
        return SparseMultivariateNormal(loc, **{kind: M}).log_prob(x).sum()

    def f_dense(Dm, loc):
        Dm = (Dm + Dm.T) / 2
        S = Dm if kind == "covariance_matrix" else jnp.linalg.inv(Dm)
        return jax.scipy.stats.multivariate_normal.logpdf(x, loc, S).sum()

    g_data, g_loc = jax.grad(f, (0, 1))(A.data, loc)
    G, G_loc = jax.grad(f_dense, (0, 1))(jnp.asarray(D), loc)
    np.testing.assert_allclose(g_loc, G_loc, rtol=1e-9)
    rows, cols = np.asarray(A.indices).T
    # each stored value moves one entry: pairs (i,j),(j,i) sum to the symmetric gradient's
    Gs = np.zeros((N, N))
    Gs[rows, cols] = g_data
    Gd = np.asarray(G)
    mask = D != 0
    np.testing.assert_allclose((Gs + Gs.T)[mask], (Gd + Gd.T)[mask], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_sample_covariance_and_refusals(x64, kind):
    D = spd(seed=3)
    loc = jnp.asarray(np.random.default_rng(5).standard_normal(N))
    A = BCSR.fromdense(jnp.asarray(D))
    d = SparseMultivariateNormal(loc, **{kind: A})
    s = np.asarray(d.sample(jax.random.key(0), (20000,)))
    S = sigma(D, kind)
    scale = np.sqrt(np.diag(S))
    err = (np.cov(s.T) - S) / np.outer(scale, scale)
    assert np.abs(err).max() < 0.05
    # gradients reach loc; in the matrix's values they are refused
    g = jax.grad(lambda m: SparseMultivariateNormal(m, **{kind: A}).sample(
        jax.random.key(1), (3,)).sum())(loc)
    np.testing.assert_allclose(g, 3.0)

    def in_values(data):
        M = BCSR((data, A.indices, A.indptr), shape=A.shape)
        return SparseMultivariateNormal(loc, **{kind: M}).sample(jax.random.key(1)).sum()

    with pytest.raises(NotImplementedError, match="scale_tril"):
        jax.grad(in_values)(A.data)


def test_refusals(x64):
    D = sparse(spd(), "bcsr")
    loc = jnp.zeros(N)
    with pytest.raises(ValueError, match="exactly one.*neither"):
        SparseMultivariateNormal(loc)
    with pytest.raises(ValueError, match=r"both \(precision_matrix, covariance_matrix\)"):
        SparseMultivariateNormal(loc, precision_matrix=D, covariance_matrix=D)
    with pytest.raises(ValueError, match="diagonal"):
        SparseMultivariateNormal(loc, diagonal=jnp.ones(N), covariance_matrix=D)
    bad = sparse(-spd(), "bcsr")
    with pytest.raises(ValueError, match="^precision_matrix.*positive definite"):
        SparseMultivariateNormal(loc, precision_matrix=bad, validate_args=True)
    P = BCOO.fromdense(jnp.asarray(spd()))

    def var_in_values(data):
        M = BCOO((data, P.indices), shape=P.shape)
        return SparseMultivariateNormal(loc, precision_matrix=M).variance.sum()

    with pytest.raises(NotImplementedError, match="variance"):
        jax.grad(var_in_values)(P.data)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_and_jax_agree(x64, kind):
    from torch_api.distributions import SparseMultivariateNormal as TorchSMVN

    D = spd(seed=5)
    loc = np.random.default_rng(6).standard_normal(N)
    x = np.random.default_rng(7).standard_normal((3, N))
    dj = SparseMultivariateNormal(jnp.asarray(loc), **{kind: sparse(D, "bcsr")})
    dt = TorchSMVN(torch.from_numpy(loc), **{kind: torch.from_numpy(D).to_sparse_csr()})
    np.testing.assert_allclose(dj.log_prob(jnp.asarray(x)),
                               dt.log_prob(torch.from_numpy(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(dj.entropy(), dt.entropy().numpy(), rtol=1e-12)
