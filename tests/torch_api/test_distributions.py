"""SparseMultivariateNormal(/Native) against MultivariateNormal on densified parameters."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import MultivariateNormal

from tests.helpers import assert_sparse_grad, tol
from tests.torch_api.mvn_cases import (
    F64,
    PARAMS,
    dense_reference,
    dense_transform,
    make_case,
    sparse_dist,
    sparsify,
)
from torch_api.distributions import SparseMultivariateNormal, SparseMultivariateNormalNative
from torch_api.encoders import PairwiseEncoder
from torch_api.utils import cov_nagao_test, mean_hotelling_t2_test

# ----------------------------------------------------------------------------- densities


@pytest.mark.parametrize("param", PARAMS)
def test_log_prob_and_entropy_match_dense(param, layout, batch):
    loc, D, L = make_case(param, layout, batch)
    dist = sparse_dist(param, loc, D, sparsify(L, layout), validate_args=True)
    ref = dense_reference(param, loc, D, L)
    assert dist.batch_shape == ref.batch_shape and dist.event_shape == ref.event_shape
    x = torch.randn(4, *loc.shape, dtype=F64)
    torch.testing.assert_close(dist.log_prob(x), ref.log_prob(x), rtol=0, atol=1e-10)
    x1 = torch.randn(loc.shape[-1], dtype=F64)  # broadcast over the batch
    torch.testing.assert_close(dist.log_prob(x1), ref.log_prob(x1), rtol=0, atol=1e-10)
    torch.testing.assert_close(dist.entropy(), ref.entropy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("param", PARAMS)
def test_log_prob_gradients_match_dense(param, layout, batch):
    loc, D, L = make_case(param, layout, batch, seed=1)
    x = torch.randn(3, *loc.shape, dtype=F64)

    Ls = sparsify(L, layout).requires_grad_()
    loc_s = loc.clone().requires_grad_()
    D_s = D.clone().requires_grad_() if D is not None else None
    dist = sparse_dist(param, loc_s, D_s, Ls)
    (dist.log_prob(x).sum() + dist.entropy().sum()).backward()

    L_d = L.clone().requires_grad_()
    loc_d = loc.clone().requires_grad_()
    D_d = D.clone().requires_grad_() if D is not None else None
    ref = dense_reference(param, loc_d, D_d, L_d)
    (ref.log_prob(x).sum() + ref.entropy().sum()).backward()

    t = {"rtol": 1e-8, "atol": 1e-9}
    torch.testing.assert_close(loc_s.grad, loc_d.grad, **t)
    if D is not None:
        torch.testing.assert_close(D_s.grad, D_d.grad, **t)
    assert_sparse_grad(Ls.grad, Ls, L_d.grad, **t)


@pytest.mark.parametrize("param", ["scale_llt", "scale_ldlt"])
def test_variance_matches_dense(param, layout, batch):
    loc, D, L = make_case(param, layout, batch, seed=2)
    Ls = sparsify(L, layout).requires_grad_()
    D_s = D.clone().requires_grad_() if D is not None else None
    var = sparse_dist(param, loc, D_s, Ls).variance
    L_d = L.clone().requires_grad_()
    D_d = D.clone().requires_grad_() if D is not None else None
    ref = dense_reference(param, loc, D_d, L_d).variance
    torch.testing.assert_close(var, ref, **tol(F64))
    w = torch.randn_like(ref)
    (var * w).sum().backward()
    (ref * w).sum().backward()
    assert_sparse_grad(Ls.grad, Ls, L_d.grad, **tol(F64))
    if D is not None:
        torch.testing.assert_close(D_s.grad, D_d.grad, **tol(F64))


@pytest.mark.parametrize("param", ["precision_llt", "precision_ldlt"])
def test_precision_variance_not_implemented(param, layout):
    loc, D, L = make_case(param, layout, None)
    with pytest.raises(NotImplementedError, match=r"precision factor.*diag\(P\^\{-1\}\)"):
        _ = sparse_dist(param, loc, D, sparsify(L, layout)).variance


# ------------------------------------------------------------------------------ sampling


@pytest.mark.parametrize("param", PARAMS)
def test_rsample_is_the_dense_transform_with_gradients(param, layout, batch):
    loc, D, L = make_case(param, layout, batch, seed=3)
    sample_shape = (5, 2)
    Ls = sparsify(L, layout).requires_grad_()
    loc_s = loc.clone().requires_grad_()
    D_s = D.clone().requires_grad_() if D is not None else None
    dist = sparse_dist(param, loc_s, D_s, Ls)
    torch.manual_seed(123)
    x = dist.rsample(sample_shape)
    torch.manual_seed(123)
    eps = torch.randn(*sample_shape, *loc.shape, dtype=F64)
    assert x.shape == eps.shape

    L_d = L.clone().requires_grad_()
    loc_d = loc.clone().requires_grad_()
    D_d = D.clone().requires_grad_() if D is not None else None
    x_ref = loc_d + dense_transform(param, D_d, L_d, eps)
    torch.testing.assert_close(x, x_ref, **tol(F64))

    w = torch.randn_like(x)
    (x * w).sum().backward()
    (x_ref * w).sum().backward()
    torch.testing.assert_close(loc_s.grad, loc_d.grad, **tol(F64))
    if D is not None:
        torch.testing.assert_close(D_s.grad, D_d.grad, **tol(F64))
    assert_sparse_grad(Ls.grad, Ls, L_d.grad, **tol(F64))


@pytest.mark.parametrize("param", PARAMS)
def test_sample_mean_and_covariance(param, layout, batch):
    # Hotelling T^2 and Nagao tests at 99.9%: accept the true parameters, reject shifted ones.
    loc, D, L = make_case(param, layout, batch, seed=6)
    dist = sparse_dist(param, loc, D, sparsify(L, layout))
    ref = dense_reference(param, loc, D, L)
    N = 4000
    torch.manual_seed(11)
    s = dist.sample((N,)).reshape(N, -1, 7)  # (N, B, n)
    mean = s.mean(0)
    cov = torch.stack([torch.cov(s[:, b].T) for b in range(s.shape[1])])
    true_mean = ref.mean.reshape(-1, 7)
    true_cov = ref.covariance_matrix.reshape(-1, 7, 7)
    ok, _, _ = mean_hotelling_t2_test(mean, true_mean, cov, N, confidence_level=0.999)
    assert bool(ok.all())
    ok, _, _ = cov_nagao_test(cov, true_cov, N, confidence_level=0.999)
    assert bool(ok.all())
    sd = true_cov.diagonal(dim1=-2, dim2=-1).sqrt()
    ok, _, _ = mean_hotelling_t2_test(mean, true_mean + 0.2 * sd, cov, N, confidence_level=0.999)
    assert not bool(ok.any())
    ok, _, _ = cov_nagao_test(cov, 1.3 * true_cov, N, confidence_level=0.999)
    assert not bool(ok.any())


@pytest.mark.parametrize("param", PARAMS)
def test_sample_has_no_graph_and_right_shape(param, layout, dtype):
    loc, D, L = make_case(param, layout, 2, dtype=dtype)
    dist = sparse_dist(param, loc.requires_grad_(), D, sparsify(L, layout))
    s = dist.sample((3,))
    assert s.shape == (3, 2, 7) and s.dtype == dtype and not s.requires_grad
    assert dist.rsample().shape == (2, 7)


def test_unbatched_factor_with_batched_loc(layout):
    loc, D, L = make_case("scale_ldlt", layout, None)
    locb = torch.stack([loc, loc + 1.0, loc - 2.0])
    dist = SparseMultivariateNormal(locb, diagonal=D, scale_tril=sparsify(L, layout))
    ref = dense_reference("scale_ldlt", locb, D, L)
    assert dist.batch_shape == (3,)
    x = torch.randn(4, 3, 7, dtype=F64)
    torch.testing.assert_close(dist.log_prob(x), ref.log_prob(x), rtol=0, atol=1e-10)
    torch.manual_seed(0)
    s = dist.rsample((2,))
    torch.manual_seed(0)
    eps = torch.randn(2, 3, 7, dtype=F64)
    torch.testing.assert_close(s, locb + dense_transform("scale_ldlt", D, L, eps), **tol(F64))


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("param", PARAMS)
def test_properties(param, layout):
    loc, D, L = make_case(param, layout, 3)
    Ls = sparsify(L, layout)
    dist = sparse_dist(param, loc, D, Ls)
    assert dist.loc is loc and dist.diagonal is D
    assert dist.is_ldlt_parameterization == (D is not None)
    if param.startswith("scale"):
        assert dist.scale_tril is Ls and dist.precision_tril is None
    else:
        assert dist.precision_tril is Ls and dist.scale_tril is None
    torch.testing.assert_close(dist.mean, loc)
    torch.testing.assert_close(dist.mode, loc)
    assert dist.has_rsample and dist.support is not None


def test_uncoalesced_coo_factor_is_coalesced():
    loc, _, L = make_case("scale_llt", None, None)
    S = L.to_sparse_coo().coalesce()
    idx, v = S.indices(), S.values()
    unco = torch.sparse_coo_tensor(torch.cat([idx, idx], 1), torch.cat([v / 2, v / 2]), S.shape)
    dist = SparseMultivariateNormal(loc, scale_tril=unco, validate_args=True)
    x = torch.randn(7, dtype=F64)
    ref = MultivariateNormal(loc, scale_tril=L)
    torch.testing.assert_close(dist.log_prob(x), ref.log_prob(x), rtol=0, atol=1e-10)


@pytest.mark.parametrize("param", ["scale_llt", "precision_ldlt"])
def test_several_uses_and_backward_calls(param, layout, batch):
    # log_prob, entropy, rsample of one distribution in one loss: the factor gets one summed
    # sparse gradient (also batched CSR, which torch 2.13 cannot add), then a second backward
    # through the same distribution (skipped for batched CSR, whose .grad torch 2.13 cannot
    # accumulate: a torch bug outside this library).
    loc, D, L = make_case(param, layout, batch, seed=4)
    Ls = sparsify(L, layout).requires_grad_()
    dist = sparse_dist(param, loc, D, Ls)
    x = torch.randn(2, *loc.shape, dtype=F64)
    torch.manual_seed(0)
    (dist.log_prob(x).sum() + dist.entropy().sum() + dist.rsample().sum()).backward()
    again = not (layout == torch.sparse_csr and batch is not None)
    if again:
        dist.log_prob(x).sum().backward()

    L_d = L.clone().requires_grad_()
    ref = dense_reference(param, loc, D, L_d)
    torch.manual_seed(0)
    eps = torch.randn(*loc.shape, dtype=F64)
    r = dense_transform(param, D, L_d, eps)
    ((1 + again) * ref.log_prob(x).sum() + ref.entropy().sum() + r.sum()).backward()
    assert_sparse_grad(
        Ls.grad.coalesce() if Ls.grad.layout == torch.sparse_coo else Ls.grad,
        Ls,
        L_d.grad,
        rtol=1e-8,
        atol=1e-9,
    )


# ---------------------------------------------------------------------------- validation


def test_validate_args_rejects_bad_factors(layout):
    loc, D, L = make_case("scale_ldlt", layout, None)
    eye = torch.eye(7, dtype=F64)
    Lfull = L + eye
    with pytest.raises(ValueError, match="scale_tril"):  # entries above the diagonal
        SparseMultivariateNormal(loc, D, scale_tril=sparsify(L + L.T, layout), validate_args=True)
    with pytest.raises(ValueError, match="precision_tril.*LowerTriangular"):
        SparseMultivariateNormal(loc, D, precision_tril=sparsify(L.T, layout), validate_args=True)
    with pytest.raises(ValueError, match="scale_tril.*positive diagonal"):
        SparseMultivariateNormal(loc, scale_tril=sparsify(L, layout), validate_args=True)
    neg = Lfull.clone()
    neg[3, 3] = -1.0
    with pytest.raises(ValueError, match="scale_tril.*positive diagonal"):
        SparseMultivariateNormal(loc, scale_tril=sparsify(neg, layout), validate_args=True)
    with pytest.raises(ValueError, match="diagonal"):
        SparseMultivariateNormal(loc, -D, scale_tril=sparsify(L, layout), validate_args=True)
    with pytest.raises(ValueError, match="loc"):
        SparseMultivariateNormal(loc * torch.nan, D, sparsify(L, layout), validate_args=True)
    # without validation, construction does no O(nnz) checks
    SparseMultivariateNormal(loc, -D, scale_tril=sparsify(L, layout), validate_args=False)


def test_validate_args_batched_reports_bad_item():
    loc, D, L = make_case("precision_llt", None, 2)
    L[1, 2, 2] = 0.0  # batch item 1 lacks a diagonal entry (to_sparse drops the zero)
    with pytest.raises(ValueError, match="precision_tril"):
        SparseMultivariateNormal(loc, precision_tril=L.to_sparse_coo(), validate_args=True)


def test_bad_arguments(layout):
    loc, D, L = make_case("scale_ldlt", layout, None)
    Ls = sparsify(L, layout)
    with pytest.raises(ValueError, match="exactly one of them, got both"):
        SparseMultivariateNormal(loc, D, scale_tril=Ls, precision_tril=Ls)
    with pytest.raises(ValueError, match="exactly one of them, got neither"):
        SparseMultivariateNormal(loc, D)
    with pytest.raises(TypeError, match="scale_tril: expected a sparse COO or sparse CSR"):
        SparseMultivariateNormal(loc, D, scale_tril=L)
    with pytest.raises(TypeError, match="precision_tril: expected a sparse COO or sparse CSR"):
        SparseMultivariateNormal(loc, D, precision_tril=L.to_sparse_csc())
    with pytest.raises(ValueError, match="scale_tril: expected shape \\(8, 8\\)"):
        SparseMultivariateNormal(torch.zeros(8, dtype=F64), scale_tril=Ls)
    with pytest.raises(ValueError, match="diagonal: expected shape \\(7,\\)"):
        SparseMultivariateNormal(loc, torch.ones(6, dtype=F64), scale_tril=Ls)
    with pytest.raises(ValueError, match="scale_tril: expected dtype torch.float32"):
        SparseMultivariateNormal(loc.float(), scale_tril=Ls)
    with pytest.raises(ValueError, match="diagonal: expected dtype torch.float64"):
        SparseMultivariateNormal(loc, D.float(), scale_tril=Ls)
    with pytest.raises(ValueError, match="loc: expected a 1 or 2-D tensor"):
        SparseMultivariateNormal(loc.expand(2, 2, 7), scale_tril=Ls)
    with pytest.raises(ValueError, match="scale_tril: expected a square matrix"):
        SparseMultivariateNormal(loc, scale_tril=sparsify(L[:, :6], layout))
    Lb = sparsify(L.expand(3, 7, 7).contiguous(), layout)
    with pytest.raises(ValueError, match=r"batch shapes \[\(2,\), \(3,\)\] do not broadcast"):
        SparseMultivariateNormal(loc.expand(2, 7), scale_tril=Lb)
    L1 = sparsify(L.unsqueeze(0), layout)
    with pytest.raises(ValueError, match="expected batch size 1 .* got batch shape \\(2,\\)"):
        SparseMultivariateNormal(loc.expand(2, 7), scale_tril=L1)
    with pytest.raises(ValueError, match="do not broadcast"):
        SparseMultivariateNormal(loc.expand(2, 7), D.expand(3, 7), scale_tril=Ls)


# -------------------------------------------------------------------------------- native


def test_native_matches_dense(dtype):
    loc, _, L = make_case("scale_llt", None, None, dtype=dtype)
    Ls = L.to_sparse_csr().requires_grad_()
    loc_s = loc.clone().requires_grad_()
    dist = SparseMultivariateNormalNative(loc_s, Ls, validate_args=True)
    torch.manual_seed(5)
    x = dist.rsample((4,))
    torch.manual_seed(5)
    eps = torch.randn(4, 7, dtype=dtype)
    L_d = L.clone().requires_grad_()
    x_ref = loc + eps @ L_d.T
    torch.testing.assert_close(x, x_ref, **tol(dtype))
    w = torch.randn_like(x)
    (x * w).sum().backward()
    (x_ref * w).sum().backward()
    assert_sparse_grad(Ls.grad, Ls, L_d.grad, **tol(dtype))
    torch.testing.assert_close(loc_s.grad, w.sum(0), **tol(dtype))
    ref = MultivariateNormal(loc, scale_tril=L)
    torch.testing.assert_close(dist.entropy(), ref.entropy(), **tol(dtype))
    torch.testing.assert_close(dist.variance, ref.variance, **tol(dtype))
    assert dist.sample((2,)).shape == (2, 7)


def test_native_rejects_other_forms():
    loc, _, L = make_case("scale_llt", None, None)
    with pytest.raises(TypeError, match="scale_tril: expected a sparse CSR"):
        SparseMultivariateNormalNative(loc, L.to_sparse_coo())
    with pytest.raises(ValueError, match="scale_tril: expected a 2-D"):
        SparseMultivariateNormalNative(loc, L.expand(2, 7, 7).contiguous().to_sparse_csr())
    with pytest.raises(ValueError, match="loc: expected a 1-D"):
        SparseMultivariateNormalNative(loc.expand(2, 7), L.to_sparse_csr())
    with pytest.raises(ValueError, match="scale_tril"):
        SparseMultivariateNormalNative(loc, L.T.to_sparse_csr(), validate_args=True)


# --------------------------------------------------------------------------- integration


@pytest.mark.parametrize("batch_values", [None, 2])
def test_encoder_to_rsample_gradient(layout, batch_values):
    shape = (2, 3, 3)
    enc = PairwiseEncoder(1.5, shape, diag=True, upper=False, layout=layout)
    lead = () if batch_values is None else (batch_values,)
    g = torch.Generator().manual_seed(0)
    v = 0.3 * torch.randn(*lead, len(enc.offsets), *shape, generator=g, dtype=F64)
    v[..., 0, :, :, :] = 1.0 + torch.rand(*lead, *shape, generator=g, dtype=F64)  # diagonal
    v.requires_grad_()
    A = enc(v)
    loc = torch.zeros(*lead, enc.volume_numel, dtype=F64)
    dist = SparseMultivariateNormal(loc, scale_tril=A, validate_args=True)
    torch.manual_seed(9)
    x = dist.rsample((3,))
    w = torch.randn_like(x)
    (x * w).sum().backward()

    torch.manual_seed(9)
    eps = torch.randn(3, *lead, enc.volume_numel, dtype=F64)
    v2 = v.detach().clone().requires_grad_()
    coo = PairwiseEncoder(1.5, shape, diag=True, upper=False)  # checked against the contract
    Ad = coo(v2).to_dense()
    ((Ad @ eps.unsqueeze(-1)).squeeze(-1) * w).sum().backward()
    torch.testing.assert_close(v.grad, v2.grad, **tol(F64))
