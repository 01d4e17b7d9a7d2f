"""SparseMultivariateNormal with a sparse SPD precision_matrix / covariance_matrix, against
torch.distributions.MultivariateNormal (dense, float64)."""

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from torch_api.distributions import SparseMultivariateNormal

N = 7


def spd(n=N, seed=0, batch=None):
    g = torch.Generator().manual_seed(seed)
    shape = (n, n) if batch is None else (batch, n, n)
    M = torch.randn(shape, generator=g, dtype=torch.float64)
    keep = torch.rand((n, n), generator=g, dtype=torch.float64) < 0.3  # one pattern per batch
    M = torch.where(keep, M, 0.0)
    S = M + M.transpose(-1, -2)
    return S + (S.abs().sum(-1).max() + 1.0) * torch.eye(n, dtype=torch.float64)


def sparse(D, layout):
    return D.to_sparse_csr() if layout == "csr" else D.to_sparse().coalesce()


KINDS = ["precision_matrix", "covariance_matrix"]


def dense_ref(loc, D, kind):
    return MultivariateNormal(loc, **{kind: D})


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("kind", KINDS)
def test_log_prob_entropy_mean(kind, layout):
    D = spd()
    loc = torch.randn(N, dtype=torch.float64)
    x = torch.randn(5, N, dtype=torch.float64)
    d = SparseMultivariateNormal(loc, **{kind: sparse(D, layout)})
    ref = dense_ref(loc, D, kind)
    torch.testing.assert_close(d.log_prob(x), ref.log_prob(x))
    torch.testing.assert_close(d.entropy(), ref.entropy())
    torch.testing.assert_close(d.mean, ref.mean)
    assert getattr(d, kind) is not None and d.scale_tril is None and d.precision_tril is None


@pytest.mark.parametrize("kind", KINDS)
def test_batched(kind):
    D = spd(batch=3)
    loc = torch.randn(3, N, dtype=torch.float64)
    x = torch.randn(2, 3, N, dtype=torch.float64)
    d = SparseMultivariateNormal(loc, **{kind: D.to_sparse_csr()})
    ref = dense_ref(loc, D, kind)
    torch.testing.assert_close(d.log_prob(x), ref.log_prob(x))
    torch.testing.assert_close(d.entropy(), ref.entropy())
    torch.manual_seed(1)
    s = d.sample((20000,))
    assert s.shape == (20000, 3, N)
    for i in range(3):  # each block coloured by its own factor
        S = ref.covariance_matrix[i]
        scale = S.diagonal().sqrt()
        err = (torch.cov(s[:, i].T) - S) / (scale[:, None] * scale[None, :])
        assert err.abs().max() < 0.05


def test_variance_covariance_and_grad():
    D = spd()
    A = D.to_sparse_csr().requires_grad_()
    d = SparseMultivariateNormal(torch.zeros(N, dtype=torch.float64), covariance_matrix=A)
    torch.testing.assert_close(d.variance, D.diagonal())
    (d.variance * torch.arange(N, dtype=torch.float64)).sum().backward()
    G = A.grad.to_dense()
    torch.testing.assert_close(G, torch.diag(torch.arange(N, dtype=torch.float64)))


def test_variance_precision():
    D = spd()
    d = SparseMultivariateNormal(torch.zeros(N, dtype=torch.float64),
                                 precision_matrix=D.to_sparse_csr())
    torch.testing.assert_close(d.variance, torch.linalg.inv(D).diagonal())
    A = D.to_sparse_csr().requires_grad_()
    d = SparseMultivariateNormal(torch.zeros(N, dtype=torch.float64), precision_matrix=A)
    with pytest.raises(NotImplementedError, match="variance"):
        _ = d.variance
    with torch.no_grad():
        torch.testing.assert_close(d.variance, torch.linalg.inv(D).diagonal())


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize("kind", KINDS)
def test_gradients(kind, layout):
    """Each stored value its own parameter: the dense MVN's gradient at the pattern, with the
    symmetric perturbation v -> (v + v[mirror]) / 2 mapping the stored values to a matrix."""
    D = spd(seed=1)
    loc = torch.randn(N, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, N, dtype=torch.float64)
    A = sparse(D, layout).detach().requires_grad_()
    d = SparseMultivariateNormal(loc, **{kind: A})
    (d.log_prob(x).sum() + d.entropy()).backward()
    loc2 = loc.detach().clone().requires_grad_()
    D2 = D.clone().requires_grad_()
    ref = dense_ref(loc2, D2, kind)
    (ref.log_prob(x).sum() + ref.entropy()).backward()
    torch.testing.assert_close(loc.grad, loc2.grad)
    mask = D != 0
    # the dense MVN symmetrises internally: its gradient is symmetric; each stored value of the
    # sparse matrix moves one entry only, so the sum over the pair (i,j),(j,i) must agree
    Gs = A.grad.to_dense()
    Gd = D2.grad
    torch.testing.assert_close((Gs + Gs.T)[mask], (Gd + Gd.T)[mask])
    assert not Gs[~mask].any()


def test_gradcheck_symmetric_parameterisation():
    D = spd(n=5, seed=2)
    S = D.to_sparse_csr()
    crow, col, v0 = S.crow_indices(), S.col_indices(), S.values()
    rows = torch.repeat_interleave(torch.arange(5), crow.diff())
    key = rows * 5 + col
    mirror = torch.searchsorted(key, col * 5 + rows)
    x = torch.randn(2, 5, dtype=torch.float64)

    for kind in KINDS:
        def f(v, loc, kind=kind):
            A = torch.sparse_csr_tensor(crow, col, (v + v[mirror]) / 2, (5, 5))
            return SparseMultivariateNormal(loc, **{kind: A}).log_prob(x)

        torch.autograd.gradcheck(
            f, (v0.clone().requires_grad_(), torch.zeros(5, dtype=torch.float64,
                                                         requires_grad=True)))


@pytest.mark.parametrize("kind", KINDS)
def test_sample_covariance(kind):
    D = spd(seed=3)
    loc = torch.randn(N, dtype=torch.float64)
    d = SparseMultivariateNormal(loc, **{kind: D.to_sparse_csr()})
    torch.manual_seed(0)
    s = d.sample((20000,))
    Sigma = D if kind == "covariance_matrix" else torch.linalg.inv(D)
    C = torch.cov(s.T)
    scale = Sigma.diagonal().sqrt()
    corr_err = (C - Sigma) / (scale[:, None] * scale[None, :])
    assert corr_err.abs().max() < 0.05
    assert (s.mean(0) - loc).abs().max() < 5 * scale.max() / 20000**0.5


def test_rsample_grads_reach_loc_and_refuse_matrix_grad():
    D = spd()
    loc = torch.zeros(N, dtype=torch.float64, requires_grad=True)
    d = SparseMultivariateNormal(loc, precision_matrix=D.to_sparse_csr())
    d.rsample((3,)).sum().backward()
    torch.testing.assert_close(loc.grad, torch.full((N,), 3.0, dtype=torch.float64))
    A = D.to_sparse_csr().requires_grad_()
    d = SparseMultivariateNormal(loc, covariance_matrix=A)
    with pytest.raises(NotImplementedError, match="scale_tril"):
        d.rsample()
    assert d.sample((2,)).shape == (2, N)  # no grad: always works


def test_refusals():
    D = spd().to_sparse_csr()
    loc = torch.zeros(N, dtype=torch.float64)
    with pytest.raises(ValueError, match="exactly one.*neither"):
        SparseMultivariateNormal(loc)
    with pytest.raises(ValueError, match=r"got both \(precision_matrix, covariance_matrix\)"):
        SparseMultivariateNormal(loc, precision_matrix=D, covariance_matrix=D)
    with pytest.raises(ValueError, match="scale_tril, precision_matrix"):
        SparseMultivariateNormal(loc, scale_tril=D, precision_matrix=D)
    with pytest.raises(ValueError, match="diagonal"):
        SparseMultivariateNormal(loc, diagonal=torch.ones(N, dtype=torch.float64),
                                 covariance_matrix=D)
    bad = (-spd()).to_sparse_csr()
    with pytest.raises(ValueError, match="^precision_matrix.*positive definite"):
        SparseMultivariateNormal(loc, precision_matrix=bad, validate_args=True)
    d = SparseMultivariateNormal(loc, covariance_matrix=bad, validate_args=False)
    with pytest.raises(ValueError, match="^covariance_matrix"):
        d.log_prob(loc)
    nonsym = spd()
    nonsym[0, 1] += 1.0
    with pytest.raises(ValueError, match="^covariance_matrix.*A - A\\^T"):
        SparseMultivariateNormal(loc, covariance_matrix=nonsym.to_sparse_csr(),
                                 validate_args=True)


def test_kl_refuses_matrix_parameterisation():
    D = spd()
    loc = torch.zeros(N, dtype=torch.float64)
    p = SparseMultivariateNormal(loc, precision_matrix=D.to_sparse_csr())
    q = SparseMultivariateNormal(loc, scale_tril=torch.eye(N, dtype=torch.float64).to_sparse_csr())
    for a, b in ((p, q), (q, p), (p, p), (p, MultivariateNormal(loc, D))):
        with pytest.raises(NotImplementedError, match="precision_matrix"):
            kl_divergence(a, b)
