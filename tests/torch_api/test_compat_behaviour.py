"""Behaviours of torchsparsegradutils 0.2.7 that torch_api adopted for compatibility, against
dense references and the original's documented behaviour."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import torch_api
from torch_api.distributions import SparseMultivariateNormal, SparseMultivariateNormalNative
from torch_api.utils import (
    BICGSTABSettings,
    MINRESSettings,
    bicgstab,
    linear_cg,
    lsmr,
    mean_hotelling_t2_test,
    minres,
    rand_sparse_tri,
)

F64 = torch.float64


def test_subpackages_are_attributes_after_import():
    code = ("import torch_api; print(torch_api.utils.minres.__name__, "
            "torch_api.distributions.SparseMultivariateNormal.__name__, "
            "torch_api.encoders.PairwiseEncoder.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["minres", "SparseMultivariateNormal", "PairwiseEncoder"]


# ------------------------------------------------------------------------------ statistics
def test_hotelling_with_one_dimensional_means():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, 3, generator=g, dtype=F64)  # 400 draws, 3 tests, d = 3
    mean, mu = x.mean(0), torch.zeros(3, dtype=F64)
    cov = torch.stack([torch.cov(x[:, i].T) for i in range(3)])
    batched = mean_hotelling_t2_test(mean, mu.expand(3, 3), cov, 400)
    broadcast = mean_hotelling_t2_test(mean, mu, cov, 400)  # one hypothesis for every test
    torch.testing.assert_close(broadcast[1], batched[1])
    single = mean_hotelling_t2_test(mean[1], mu, cov[1], 400)  # one test: a batch of one
    assert single[0].shape == (1,)
    torch.testing.assert_close(single[1], batched[1][1:2])
    with pytest.raises(ValueError, match="true_mean: expected shape"):
        mean_hotelling_t2_test(mean, torch.zeros(2, dtype=F64), cov, 400)


# ---------------------------------------------------------------------------- distributions
def _factor(n=6, layout=torch.sparse_csr, batch=()):
    torch.manual_seed(1)
    L = rand_sparse_tri((*batch, n, n), 14, layout, upper=False, values_dtype=F64,
                        value_range=(0.5, 1.0))
    return L


def test_native_log_prob_and_covariance_match_dense_mvn():
    L = _factor().requires_grad_()
    loc = torch.randn(6, dtype=F64, requires_grad=True)
    d = SparseMultivariateNormalNative(loc, L)
    Ld = L.detach().to_dense()
    ref = torch.distributions.MultivariateNormal(loc.detach(), scale_tril=Ld)
    torch.testing.assert_close(d.covariance_matrix, Ld @ Ld.T)
    x = torch.randn(5, 6, dtype=F64)
    lp = d.log_prob(x)
    torch.testing.assert_close(lp, ref.log_prob(x))
    torch.testing.assert_close(d.log_prob(x[0]), ref.log_prob(x[0]))
    lp.sum().backward()
    Lr = Ld.clone().requires_grad_()
    locr = loc.detach().clone().requires_grad_()
    torch.distributions.MultivariateNormal(locr, scale_tril=Lr).log_prob(x).sum().backward()
    torch.testing.assert_close(loc.grad, locr.grad)
    assert L.grad.layout == torch.sparse_csr and L.grad._nnz() == L._nnz()
    torch.testing.assert_close(L.grad.to_dense(), Lr.grad * (Ld != 0))


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
@pytest.mark.parametrize("kind", ["scale_tril", "precision_tril"])
@pytest.mark.parametrize("batch", [(), (2,)], ids=["2d", "batched"])
def test_ldlt_factor_with_stored_diagonal_ignores_it(layout, kind, batch):
    """An LDL^T factor that stores diagonal entries is I + (its strictly lower part): the
    stored diagonal is ignored (as the original's unit-triangular solve ignores it) and gets a
    zero gradient."""
    L = _factor(layout=layout, batch=batch).requires_grad_()
    D = torch.rand(*batch, 6, dtype=F64) + 0.5
    dist = SparseMultivariateNormal(torch.zeros(6, dtype=F64), diagonal=D, **{kind: L})
    Ld = L.detach().to_dense()
    U = torch.eye(6, dtype=F64) + Ld.tril(-1)
    M = U @ torch.diag_embed(D) @ U.mT
    key = "covariance_matrix" if kind == "scale_tril" else "precision_matrix"
    ref = torch.distributions.MultivariateNormal(torch.zeros(6, dtype=F64), **{key: M})
    x = torch.randn(4, *batch, 6, dtype=F64)
    lp = dist.log_prob(x)
    torch.testing.assert_close(lp, ref.log_prob(x))
    lp.sum().backward()
    assert L.grad.layout == layout
    grad = L.grad.to_dense()
    assert (grad.diagonal(dim1=-2, dim2=-1) == 0).all()
    Ur = Ld.tril(-1).clone().requires_grad_()
    U2 = torch.eye(6, dtype=F64) + Ur
    M2 = U2 @ torch.diag_embed(D) @ U2.mT
    torch.distributions.MultivariateNormal(torch.zeros(6, dtype=F64), **{key: M2}).log_prob(
        x).sum().backward()
    torch.testing.assert_close(grad, Ur.grad * (Ld.tril(-1) != 0))
    if kind == "scale_tril":
        torch.testing.assert_close(dist.variance, ref.variance)


def test_default_validation_checks_the_factor_at_first_use():
    # torch's global default is on unless something (a first torch.compile) turned it off
    torch.distributions.Distribution.set_default_validate_args(True)  # conftest restores it
    L = _factor().to_dense()
    full = (L + L.T).to_sparse_csr()  # not triangular
    dist = SparseMultivariateNormal(torch.zeros(6, dtype=F64), scale_tril=full)  # builds
    for use in (dist.rsample, lambda: dist.log_prob(torch.zeros(6, dtype=F64)), dist.entropy,
                lambda: dist.variance):
        with pytest.raises(ValueError, match="scale_tril: expected a factor satisfying"):
            use()
    with pytest.raises(ValueError, match="scale_tril"):
        SparseMultivariateNormal(torch.zeros(6, dtype=F64), scale_tril=full, validate_args=True)
    unchecked = SparseMultivariateNormal(torch.zeros(6, dtype=F64), scale_tril=full,
                                         validate_args=False)
    assert unchecked.rsample((2,)).shape == (2, 6)
    good = SparseMultivariateNormal(torch.zeros(6, dtype=F64), scale_tril=_factor())
    assert good.rsample((3,)).shape == (3, 6) and good.expand((4,)).batch_shape == (4,)


# -------------------------------------------------------------------------------- solvers
def test_bicgstab_zero_budget_evaluates_nothing():
    def fail(x):
        raise AssertionError("called")

    rhs = torch.tensor([[1.0, 3.0], [2.0, -1.0]], dtype=F64)
    guess = torch.full_like(rhs, 0.3)
    with pytest.warns(UserWarning, match="matvec_max=0"):
        out = bicgstab(fail, rhs, guess, BICGSTABSettings(matvec_max=0, precon=fail))
    assert torch.equal(out, guess) and out.data_ptr() != guess.data_ptr()
    with pytest.warns(UserWarning, match="matvec_max=0"):
        assert torch.equal(bicgstab(fail, rhs, settings=BICGSTABSettings(matvec_max=0)),
                           torch.zeros_like(rhs))


def test_bicgstab_budget_counts_initial_residual_and_warm_starts_return_at_once():
    calls = []

    def op(x):
        calls.append(x.shape)
        return torch.tensor([2.0, 4.0], dtype=F64) * x  # written for vectors

    rhs = torch.tensor([2.0, 4.0], dtype=F64)
    guess = torch.full_like(rhs, 1.0 - 5e-7)  # within the default relative tolerance
    assert torch.equal(bicgstab(op, rhs, guess), guess)
    assert calls == [(2,)]
    calls.clear()
    with pytest.warns(UserWarning):  # the budget ends the solve before it converges
        out = bicgstab(op, rhs, torch.zeros_like(rhs), BICGSTABSettings(matvec_max=1))
    assert calls == [(2,)] and torch.equal(out, torch.zeros_like(rhs))
    calls.clear()
    x = bicgstab(op, rhs, settings=BICGSTABSettings(reltol=1e-12, abstol=0))
    torch.testing.assert_close(x, torch.ones(2, dtype=F64))
    assert all(shape == (2,) for shape in calls)  # a vector closure is called on vectors


def test_bicgstab_tolerance_is_per_column():
    rhs = torch.tensor([[2e6, 2e-6], [4e6, 4e-6]], dtype=F64)
    guess = rhs / 2
    guess[:, 0] *= 1.0 - 5e-7  # within 1e-6 of its own column's norm
    guess[:, 1] *= 0.5
    out = bicgstab(lambda x: 2 * x, rhs, guess, BICGSTABSettings(reltol=1e-6, abstol=0))
    assert torch.equal(out[:, 0], guess[:, 0])
    res = torch.linalg.vector_norm(rhs - 2 * out, dim=0)
    assert (res <= 1e-6 * torch.linalg.vector_norm(rhs, dim=0)).all()


def test_linear_cg_eps_must_be_representable():
    with pytest.raises(ValueError, match="eps: expected a threshold representable"):
        linear_cg(torch.eye(2), torch.ones(2), eps=1e-100)
    x = linear_cg(torch.eye(2, dtype=F64), torch.ones(2, dtype=F64), eps=1e-300)
    torch.testing.assert_close(x, torch.ones(2, dtype=F64))


def test_minres_broadcasts_rhs_over_a_batch_of_matrices():
    g = torch.Generator().manual_seed(3)
    M = torch.randn(3, 8, 8, generator=g, dtype=F64)
    A = M @ M.mT + torch.eye(8, dtype=F64)
    B = torch.randn(8, 2, generator=g, dtype=F64)
    X = minres(A, B, settings=MINRESSettings(minres_tolerance=1e-12))
    assert X.shape == (3, 8, 2)
    torch.testing.assert_close(X, torch.linalg.solve(A, B.expand(3, 8, 2)))


@pytest.mark.parametrize("k", [None, 2])
def test_lsmr_complex(k):
    g = torch.Generator().manual_seed(4)
    A = torch.complex(torch.randn(9, 5, generator=g, dtype=F64),
                      torch.randn(9, 5, generator=g, dtype=F64))
    shape = (9,) if k is None else (9, k)
    b = torch.complex(torch.randn(shape, generator=g, dtype=F64),
                      torch.randn(shape, generator=g, dtype=F64))
    x, _ = lsmr(A, b, atol=1e-12, btol=1e-12, maxiter=100)
    ref = torch.linalg.lstsq(A, b if k else b[:, None]).solution
    torch.testing.assert_close(x, ref if k else ref[:, 0])
    with pytest.raises(ValueError, match="b: expected float32, float64, complex64"):
        lsmr(A, torch.ones(9, dtype=torch.int64))


def test_c4t_accepts_the_original_tolerance_keyword():
    D = 3 * torch.eye(4, dtype=F64) + torch.ones(4, 4, dtype=F64)
    A = D.to_sparse_csr().requires_grad_()
    b = torch.arange(1.0, 5.0, dtype=F64, requires_grad=True)
    for solve in ("cg", "minres", "gmres", "cgs", "spsolve"):
        x = torch_api.sparse_solve_c4t(A, b, solve=solve, tol=1e-12)
        torch.testing.assert_close(x, torch.linalg.solve(D, b.detach()))
    x = torch_api.sparse_solve_c4t(A, b, solve="cg", rtol=1e-12)
    torch.testing.assert_close(x, torch.linalg.solve(D, b.detach()))


# ----------------------------------------------------------------- the Function class names
def test_function_classes_apply_the_operations():
    g = torch.Generator().manual_seed(5)
    D = torch.eye(4, dtype=F64) * 3 + torch.rand(4, 4, generator=g, dtype=F64).tril(-1)
    B = torch.rand(4, 2, generator=g, dtype=F64)
    L = D.to_sparse_csr()
    torch.testing.assert_close(torch_api.SparseMatMul.apply(L, B), D @ B)
    torch.testing.assert_close(
        torch_api.SparseTriangularSolve.apply(L, B, False, False, False),
        torch.linalg.solve_triangular(D, B, upper=False))
    S = D @ D.T
    torch.testing.assert_close(
        torch_api.SparseGenericSolve.apply(
            S.to_sparse(), B, None, None, {"settings": MINRESSettings(minres_tolerance=1e-12)}
        ),
        torch.linalg.solve(S, B), atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(
        torch_api.SparseSolveC4T.apply(L, B, "spsolve", None, {}), torch.linalg.solve(D, B))
    R = torch.rand(6, 3, generator=g, dtype=F64) + torch.eye(6, 3, dtype=F64)
    torch.testing.assert_close(
        torch_api.SparseGenericLstsq.apply(R.to_sparse(), B.new_ones(6), None, None),
        torch.linalg.lstsq(R, B.new_ones(6, 1)).solution[:, 0], atol=1e-6, rtol=1e-6)
    A = L.clone().requires_grad_()
    torch_api.SparseMatMul.apply(A, B).sum().backward()
    assert A.grad.layout == torch.sparse_csr
    torch.testing.assert_close(A.grad.to_dense(), (torch.ones(4, 2, dtype=F64) @ B.T) * (D != 0))
