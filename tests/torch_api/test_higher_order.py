"""Higher-order reverse mode (``create_graph=True``, ``gradgradcheck``) of every torch_api op.

Derivatives w.r.t. A are taken w.r.t. its stored values (a dense ``(nnz,)`` leaf turned into A
by ``sparse_with_values``: torch's own CSR constructor has no double backward), so second
derivatives are checked at A's pattern only, in float64, against finite differences.
"""

from __future__ import annotations

import functools
import itertools

import pytest
import torch

from tests.helpers import random_dense, solve_matrix, to_sparse
from torch_api import (
    sparse_bidir_logsumexp,
    sparse_generic_lstsq,
    sparse_generic_solve,
    sparse_logsumexp,
    sparse_mm,
    sparse_triangular_solve,
)
from torch_api._pattern import sparse_with_values
from torch_api.utils import (
    BICGSTABSettings,
    LinearCGSettings,
    MINRESSettings,
    bicgstab,
    linear_cg,
    minres,
)

F64 = torch.float64


def _values(S):
    return S.values().detach().clone().requires_grad_()


def _rhs(*shape, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=F64).requires_grad_()


def _check(op, S, B, **kw):
    f = lambda v, b: op(sparse_with_values(S, v), b)
    args = (_values(S), B)
    assert torch.autograd.gradcheck(f, args, **kw)
    assert torch.autograd.gradgradcheck(f, args, **kw)


@pytest.mark.parametrize("batch", [None, 2])
def test_sparse_mm(layout, batch):
    shape = (4, 5) if batch is None else (batch, 4, 5)
    S = to_sparse(random_dense(shape, density=0.4, seed=3), layout)
    B = _rhs(*shape[:-2], 5, 3)
    _check(sparse_mm, S, B)


def test_sparse_mm_vector(layout):
    S = to_sparse(random_dense((4, 5), density=0.4, seed=4), layout)
    _check(sparse_mm, S, _rhs(5))


@pytest.mark.parametrize(
    "upper,unitriangular,transpose", list(itertools.product([False, True], repeat=3))
)
def test_triangular_solve_every_flag(upper, unitriangular, transpose):
    D = solve_matrix(5, "upper" if upper else "lower", seed=5)
    if unitriangular:
        D = D - torch.diag(D.diagonal())
    layout = (torch.sparse_coo, torch.sparse_csr)[(upper + transpose) % 2]  # the flags alternate it
    S = to_sparse(D, layout)
    op = lambda A, b: sparse_triangular_solve(
        A, b, upper=upper, unitriangular=unitriangular, transpose=transpose
    )
    _check(op, S, _rhs(5, 2))


def test_triangular_solve_batched(layout):
    D1 = solve_matrix(4, "lower", seed=6)
    D = torch.stack([D1, D1 * (1.5 + torch.rand(4, 4, dtype=F64))])  # one pattern, as CSR needs
    S = to_sparse(D, layout)
    _check(lambda A, b: sparse_triangular_solve(A, b, upper=False), S, _rhs(2, 4, 2))


SOLVERS = {
    "cg": ("spd", linear_cg, LinearCGSettings(cg_tolerance=1e-14, max_cg_iterations=200)),
    "minres": ("spd", minres, MINRESSettings(minres_tolerance=1e-14)),
    "bicgstab": ("general", bicgstab, BICGSTABSettings(matvec_max=200, abstol=0.0, reltol=1e-14)),
}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_generic_solve(name, layout):
    kind, solver, settings = SOLVERS[name]
    S = to_sparse(solve_matrix(5, kind, seed=8), layout)
    op = lambda A, b: sparse_generic_solve(A, b, solve=solver, settings=settings)
    _check(op, S, _rhs(5, 2), atol=1e-6, rtol=1e-5)


def test_generic_solve_second_derivative_matches_dense():
    """d^2/dB dv of <G, A^{-1} B> through CG equals the dense one (the reference's test)."""
    D = solve_matrix(6, "spd", seed=9)
    S = to_sparse(D, torch.sparse_csr)
    settings = LinearCGSettings(cg_tolerance=1e-14, max_cg_iterations=200)
    v, B, G = _values(S), _rhs(6, 2, seed=2), _rhs(6, 2, seed=3).detach()
    X = sparse_generic_solve(sparse_with_values(S, v), B, solve=linear_cg, settings=settings)
    (gB,) = torch.autograd.grad((X * G).sum(), B, create_graph=True)
    (hv,) = torch.autograd.grad(gB.square().sum(), v)

    rows, cols = D.nonzero().T
    vd = D[rows, cols].clone().requires_grad_()
    Dd = torch.zeros_like(D).index_put((rows, cols), vd)
    (gBd,) = torch.autograd.grad((torch.linalg.solve(Dd, B) * G).sum(), B, create_graph=True)
    (hvd,) = torch.autograd.grad(gBd.square().sum(), vd)
    assert hv.shape == (S._nnz(),)
    torch.testing.assert_close(hv, hvd, rtol=1e-8, atol=1e-9)


def test_generic_lstsq(layout):
    D = random_dense((7, 4), density=0.5, seed=10) + torch.eye(7, 4, dtype=F64) * 3
    S = to_sparse(D, layout)
    op = lambda A, b: sparse_generic_lstsq(A, b, atol=1e-14, btol=1e-14, maxiter=500)
    _check(op, S, _rhs(7, 2), atol=1e-6, rtol=1e-5)


def test_sparse_leaf_gradient_is_differentiable():
    """``A.grad`` with ``create_graph=True`` keeps A's layout and nnz and has a graph."""
    A = to_sparse(random_dense((4, 4), density=0.5, seed=11), torch.sparse_csr).requires_grad_()
    B = _rhs(4, 2)
    (gA,) = torch.autograd.grad(sparse_mm(A, B).square().sum(), A, create_graph=True)
    assert gA.layout == torch.sparse_csr and gA.values().numel() == A.values().numel()
    assert gA.requires_grad
    (gB,) = torch.autograd.grad(gA.values().sum(), B)
    # d/dB sum_{ij in P} 2 (A B)_i . B_j  ->  compare with dense autograd on the pattern
    Dm = A.detach().to_dense()
    mask = Dm != 0
    Bd = B.detach().clone().requires_grad_()
    g = (2 * (Dm @ Bd) @ Bd.T)[mask].sum()
    (gBd,) = torch.autograd.grad(g, Bd)
    torch.testing.assert_close(gB, gBd)


def test_hessian_vector_product_stays_on_the_pattern(layout):
    """HVP of sum(sparse_mm(A, B)^2) w.r.t. A's values: length nnz, equal to the dense one."""
    D = random_dense((6, 5), density=0.4, seed=12)
    S = to_sparse(D, layout)
    v, B = _values(S), _rhs(5, 3).detach()
    u = torch.randn(v.shape, dtype=F64, generator=torch.Generator().manual_seed(4))
    (g,) = torch.autograd.grad(sparse_mm(sparse_with_values(S, v), B).square().sum(), v,
                               create_graph=True)
    (hvp,) = torch.autograd.grad(g, v, u)
    rows, cols = (S.to_dense() != 0).nonzero().T

    def dense_loss(w):
        return (torch.zeros_like(D).index_put((rows, cols), w) @ B).square().sum()

    _, ref = torch.autograd.functional.hvp(dense_loss, v.detach(), u)
    assert hvp.shape == (S.values().numel(),)
    torch.testing.assert_close(hvp, ref)


def _cg(hvp, g, iters=50, tol=1e-13):
    x, r = torch.zeros_like(g), -g
    p, rr = r.clone(), r @ r
    for _ in range(iters):
        Hp = hvp(p)
        alpha = rr / (p @ Hp)
        x, r = x + alpha * p, r - alpha * Hp
        rr_new = r @ r
        if rr_new.sqrt() < tol:
            break
        p, rr = r + rr_new / rr * p, rr_new
    return x


def test_newton_with_hvp_by_cg_converges():
    """Nonlinear least squares 0.5 ||L(v)^{-1} B - T||^2 over L's values: Newton converges."""
    R = random_dense((6, 6), density=0.4, seed=13)
    D = 0.3 * torch.tril(R, -1) + torch.diag(1.0 + torch.arange(6, dtype=F64) / 6)
    S = to_sparse(D, torch.sparse_csr)
    B = _rhs(6, 6).detach()  # X = L^{-1} B of full rank: L is identified, J^T J is definite
    v_true = S.values().clone()
    T = sparse_triangular_solve(S, B, upper=False)
    noise = torch.randn(v_true.shape, dtype=F64, generator=torch.Generator().manual_seed(5))
    v = v_true + 0.02 * noise * v_true.abs()
    steps = 0

    def loss(w):
        X = sparse_triangular_solve(sparse_with_values(S, w), B, upper=False)
        return 0.5 * (X - T).square().sum()

    for _ in range(8):
        v = v.detach().requires_grad_()
        (g,) = torch.autograd.grad(loss(v), v, create_graph=True)
        if g.norm() < 1e-12:
            break
        hvp = functools.partial(torch.autograd.grad, g, v, retain_graph=True)
        step = _cg(lambda p, hvp=hvp: hvp(p)[0], g.detach())
        v, steps = v + step, steps + 1
    assert steps <= 6 and loss(v.detach()) < 1e-20
    torch.testing.assert_close(v.detach(), v_true, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("which", ["c4t", "j4t"])
def test_bridged_solves(which):
    """The SciPy- and JAX-backed solves share the implicit derivative, to any order."""
    from torch_api import sparse_solve_c4t, sparse_solve_j4t

    S = to_sparse(solve_matrix(5, "general", seed=14), torch.sparse_csr)
    if which == "c4t":
        op = lambda A, b: sparse_solve_c4t(A, b, "spsolve")
    else:
        op = lambda A, b: sparse_solve_j4t(A, b, tol=1e-14, atol=0.0, maxiter=200)
    _check(op, S, _rhs(5, 2), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("key", ["scale_tril", "precision_tril"])
@pytest.mark.parametrize("method", ["log_prob", "rsample"])
def test_sparse_multivariate_normal(key, method):
    from torch_api.distributions import SparseMultivariateNormal

    S = to_sparse(torch.tril(solve_matrix(4, "lower", seed=15)) / 10, torch.sparse_csr)
    x = _rhs(4, seed=6).detach()

    def f(v, loc):
        dist = SparseMultivariateNormal(loc, **{key: sparse_with_values(S, v)})
        if method == "log_prob":
            return dist.log_prob(x)
        torch.manual_seed(0)  # the same eps on every call
        return dist.rsample((2,))

    args = (_values(S), _rhs(4, seed=7))
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


@pytest.mark.parametrize("lens", [[2, 3, 1], [1, 0, 130]], ids=["padded", "segments"])
@pytest.mark.parametrize("op", ["segment_mm", "gather_mm"])
def test_indexed_mm(lens, op):
    """Both code paths (one padded batched product; one product per segment)."""
    from torch_api import gather_mm, segment_mm

    seglen = torch.tensor(lens)
    a, b = _rhs(int(seglen.sum()), 2, seed=8), _rhs(len(lens), 2, 2, seed=9)
    if op == "segment_mm":
        f = lambda a, b: segment_mm(a, b, seglen)
    else:
        idx = torch.repeat_interleave(torch.arange(len(lens)), seglen)
        idx = idx[torch.randperm(idx.numel(), generator=torch.Generator().manual_seed(0))]
        f = lambda a, b: gather_mm(a, b, idx)
    assert torch.autograd.gradcheck(f, (a, b))
    assert torch.autograd.gradgradcheck(f, (a, b))


@pytest.mark.parametrize("include_zeros", [True, False])
@pytest.mark.parametrize("batch", [None, 2])
@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr, torch.sparse_csc])
def test_logsumexp(layout, batch, include_zeros):
    shape = (4, 5) if batch is None else (batch, 4, 5)
    D = random_dense(shape, density=0.5, seed=4)
    S = D.to_sparse_csc() if layout == torch.sparse_csc else to_sparse(D, layout)
    dims = [(0,), (1,)] if batch is None else [(1,), (2,), (0, 2)]
    if layout == torch.sparse_csc and batch is not None:
        dims = [(1,), (2,)]
    for dim in dims:
        f = lambda v, dim=dim: sparse_logsumexp(
            sparse_with_values(S, v), dim=dim, include_zeros=include_zeros
        )
        assert torch.autograd.gradgradcheck(f, (_values(S),))
    both = lambda v: torch.cat(sparse_bidir_logsumexp(
        sparse_with_values(S, v), include_zeros=include_zeros), dim=-1)
    assert torch.autograd.gradgradcheck(both, (_values(S),))


def test_logsumexp_hessian_matches_dense():
    """The Hessian in the stored values equals dense autograd's at the stored entries."""
    D = random_dense((5, 4), density=0.5, seed=6)
    S = to_sparse(D, torch.sparse_csr)
    mask = D != 0

    def sparse_loss(v):
        return sparse_logsumexp(sparse_with_values(S, v), dim=1).square().sum()

    def dense_loss(v):
        return torch.logsumexp(torch.zeros_like(D).masked_scatter(mask, v), dim=1).square().sum()

    v = S.values().detach()
    H = torch.autograd.functional.hessian(sparse_loss, v)
    torch.testing.assert_close(H, torch.autograd.functional.hessian(dense_loss, v))
    assert H.shape == (S._nnz(), S._nnz())
