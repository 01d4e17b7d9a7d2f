"""torch_api.utils.jacobi / ic0 / ilu0: factors against dense references, preconditioned solves
against dense solves, fewer CG iterations, exact-solve gradients, batched A, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests import references
from tests.helpers import tol
from tests.references import ic0_reference, ilu0_reference, suitesparse
from torch_api import sparse_generic_solve
from torch_api.utils import (
    BICGSTABSettings,
    bicgstab,
    ic0,
    ilu0,
    jacobi,
    linear_cg,
    minres,
)


# ----------------------------------------------------------------------------- helpers
def _csr(D: torch.Tensor) -> torch.Tensor:
    return D.to_sparse_csr()


def _torch_csr(M) -> torch.Tensor:
    return torch.sparse_csr_tensor(
        torch.from_numpy(M.indptr).long(), torch.from_numpy(M.indices).long(),
        torch.from_numpy(M.data), M.shape,
    )


def _mtx(name: str, scale: bool = False) -> torch.Tensor:
    return _torch_csr(suitesparse(name, scale))


def poisson3d(k: int, dtype=torch.float64) -> torch.Tensor:
    """The 7-point Dirichlet Poisson matrix of a k^3 grid (CSR)."""
    return _torch_csr(references.poisson3d(k)).to(dtype)


def spd_dense(n: int, seed: int = 0, density: float = 0.3) -> torch.Tensor:
    """A sparse SPD matrix that is not an M-matrix (random signs), diagonally dominant."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=g) < density
    R = torch.randn(n, n, generator=g, dtype=torch.float64) * mask
    S = R + R.T
    return S + torch.diag(S.abs().sum(1) + 1)


def general_dense(n: int, seed: int = 1, density: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, n, generator=g) < density
    R = torch.randn(n, n, generator=g, dtype=torch.float64) * mask
    return R + torch.diag(R.abs().sum(1) + 1)


def cg_iterations(A, b, P) -> int:
    _, info = linear_cg(A, b, preconditioner=P, tolerance=1e-8, max_iter=5000, return_info=True,
                        raise_on_failure=True)
    return info.iterations


# ----------------------------------------------------------------------------- factors
@pytest.mark.parametrize("layout", [torch.sparse_csr, torch.sparse_coo])
def test_ic0_matches_dense_reference(layout):
    D = spd_dense(30)
    A = D.to_sparse_csr() if layout == torch.sparse_csr else D.to_sparse_coo()
    M = ic0(A)
    assert M.shift == 0.0
    (L,) = M.factors
    Ld = L.to_dense()
    torch.testing.assert_close(Ld, torch.from_numpy(ic0_reference(D.numpy())), **tol(D.dtype))
    lower = torch.tril(D) != 0
    assert torch.equal(Ld != 0, lower)  # zero fill: L has A's lower pattern
    torch.testing.assert_close((Ld @ Ld.T)[lower], D[lower], **tol(D.dtype))


def test_ic0_real_matrix_and_shift():
    A = _mtx("494_bus")
    M = ic0(A)
    assert M.shift == 0.0
    D = A.to_dense()
    Ld = M.factors[0].to_dense()
    lower = torch.tril(D) != 0
    torch.testing.assert_close((Ld @ Ld.T)[lower], D[lower], **tol(D.dtype))
    # bcsstk13 scaled to a unit diagonal: IC(0) breaks down and is shifted
    B = _mtx("bcsstk13", scale=True)
    MB = ic0(B)
    assert MB.shift >= 1e-3
    DB = B.to_dense()
    shifted = DB + MB.shift * torch.diag(torch.diagonal(DB))
    LB = MB.factors[0].to_dense()
    lowerB = torch.tril(DB) != 0
    torch.testing.assert_close((LB @ LB.T)[lowerB], shifted[lowerB], rtol=1e-9, atol=1e-9)


def test_ilu0_matches_dense_reference():
    D = general_dense(30)
    M = ilu0(D.to_sparse_coo())
    L, U = (F.to_dense() for F in M.factors)
    Lr, Ur = ilu0_reference(D.numpy())
    torch.testing.assert_close(L + torch.eye(30, dtype=D.dtype), torch.from_numpy(Lr),
                               **tol(D.dtype))
    torch.testing.assert_close(U, torch.from_numpy(Ur), **tol(D.dtype))
    P = D != 0
    torch.testing.assert_close(((L + torch.eye(30, dtype=D.dtype)) @ U)[P], D[P], **tol(D.dtype))


def test_ilu0_real_matrix():
    A = _mtx("watt_2")
    D = A.to_dense()
    L, U = (F.to_dense() for F in ilu0(A).factors)
    LU = (L + torch.eye(D.shape[0], dtype=D.dtype)) @ U
    P = D != 0
    torch.testing.assert_close(LU[P], D[P], rtol=1e-10, atol=1e-12)


def test_apply_equals_dense_inverse():
    D = spd_dense(25, seed=3)
    A = D.to_sparse_csr()
    R = torch.randn(25, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(jacobi(A)(R), R / torch.diagonal(D)[:, None], **tol(D.dtype))
    Ld = ic0(A).factors[0].to_dense()
    torch.testing.assert_close(ic0(A)(R), torch.linalg.solve(Ld @ Ld.T, R), **tol(D.dtype))
    G = general_dense(25, seed=4)
    M = ilu0(G.to_sparse_csr())
    L, U = (F.to_dense() for F in M.factors)
    LU = (L + torch.eye(25, dtype=G.dtype)) @ U
    torch.testing.assert_close(M(R), torch.linalg.solve(LU, R), **tol(G.dtype))
    torch.testing.assert_close(M.T(R), torch.linalg.solve(LU.T, R), **tol(G.dtype))
    torch.testing.assert_close(M(R[:, 0]), torch.linalg.solve(LU, R[:, 0]), **tol(G.dtype))


def test_float32():
    D = spd_dense(20).float()
    A = D.to_sparse_csr()
    R = torch.ones(20, 2)
    for P in (jacobi(A), ic0(A), ilu0(A)):
        Y = P(R)
        assert Y.dtype == torch.float32 and Y.shape == (20, 2)
    Ld = ic0(A).factors[0].to_dense().double()
    torch.testing.assert_close(ic0(A)(R).double(), torch.linalg.solve(Ld @ Ld.T, R.double()),
                               rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- solves
@pytest.mark.parametrize("name", ["poisson", "494_bus", "bcsstk13"])
def test_cg_iterations_drop(name):
    if name == "poisson":
        A = poisson3d(12)
    else:
        A = _mtx(name, scale=name == "bcsstk13")
    n = A.shape[0]
    b = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    plain, jac, ic = (cg_iterations(A, b, P) for P in (None, jacobi(A), ic0(A)))
    # bcsstk13 is scaled to a unit diagonal: Jacobi is the identity there up to rounding, which
    # moves CG's count by a few of its ~1500 iterations
    slack = plain // 100 if name == "bcsstk13" else 0
    assert ic < jac <= plain + slack, (plain, jac, ic)
    x = linear_cg(A, b, preconditioner=ic0(A), tolerance=1e-10, max_iter=5000)
    D = A.to_dense()
    r = (D @ x - b).norm() / b.norm()
    assert r < 1e-9


def test_cg_and_minres_match_dense_solve():
    D = spd_dense(40, seed=5)
    A = D.to_sparse_csr()
    B = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    X_ref = torch.linalg.solve(D, B)
    for P in (jacobi(A), ic0(A)):
        X = linear_cg(A, B, preconditioner=P, tolerance=1e-12)
        torch.testing.assert_close(X, X_ref, **tol(D.dtype, "iterative"))
        from torch_api.utils import MINRESSettings

        X = minres(A, B, preconditioner=P, settings=MINRESSettings(minres_tolerance=1e-12))
        torch.testing.assert_close(X, X_ref, **tol(D.dtype, "iterative"))


def _counting(A):
    calls = [0]

    def op(X):
        calls[0] += 1
        return A @ X

    return op, calls


def test_bicgstab_ilu0_real_nonsymmetric():
    A = _mtx("watt_2")
    n = A.shape[0]
    x_true = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    b = A @ x_true
    counts = {}
    for label, P in (("none", None), ("ilu0", ilu0(A))):
        op, calls = _counting(A)
        settings = BICGSTABSettings(precon=P, matvec_max=4000, reltol=1e-10, abstol=0.0)
        x = bicgstab(op, b, settings=settings, raise_on_failure=True)
        assert float((A @ x - b).norm() / b.norm()) <= 1e-10
        counts[label] = calls[0]
    assert counts["ilu0"] < counts["none"] / 3, counts


def test_bicgstab_ilu0_matches_dense_solve():
    G = general_dense(40, seed=6)
    B = torch.randn(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    settings = BICGSTABSettings(precon=ilu0(G.to_sparse_csr()), reltol=1e-13, abstol=0.0)
    X = bicgstab(G.to_sparse_csr(), B, settings=settings, raise_on_failure=True)
    torch.testing.assert_close(X, torch.linalg.solve(G, B), **tol(G.dtype, "iterative"))


def test_batched_matrix():
    g = torch.Generator().manual_seed(0)
    Ds = torch.diag_embed(3 + torch.rand(2, 15, generator=g, dtype=torch.float64))
    # a shared pattern (CSR batches need equal nnz): tridiagonal plus the diagonal
    T = torch.diag(torch.full((14,), -1.0, dtype=torch.float64), 1)
    Ds = Ds + T + T.T
    A = Ds.to_sparse_csr()
    assert A.dim() == 3
    B = torch.randn(2, 15, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X_ref = torch.linalg.solve(Ds, B)
    for P in (jacobi(A), ic0(A), ilu0(A)):
        assert P.shape == (2, 15, 15)
        X = linear_cg(A, B, preconditioner=P, tolerance=1e-12)
        torch.testing.assert_close(X, X_ref, **tol(Ds.dtype, "iterative"))
    X = bicgstab(A, B, settings=BICGSTABSettings(precon=ilu0(A), reltol=1e-13, abstol=0.0))
    torch.testing.assert_close(X, X_ref, **tol(Ds.dtype, "iterative"))
    # the block-diagonal factor is the factor of each block
    L0 = ic0(Ds[0].to_sparse_csr()).factors[0].to_dense()
    torch.testing.assert_close(ic0(A).factors[0].to_dense()[:15, :15], L0, **tol(Ds.dtype))


# ----------------------------------------------------------------------------- gradients
def test_generic_solve_gradcheck_with_preconditioner():
    D = spd_dense(8, seed=7, density=0.4)
    A0 = D.to_sparse_csr()
    crow, col = A0.crow_indices(), A0.col_indices()
    M = ic0(A0)
    B = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3),
                    requires_grad=True)

    def f(values, B):
        A = torch.sparse_csr_tensor(crow, col, values, D.shape)
        return sparse_generic_solve(A, B, solve=linear_cg, preconditioner=M, tolerance=1e-13,
                                    max_iter=200)

    values = A0.values().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (values, B), atol=1e-7, rtol=1e-6)

    # the gradient is that of the exact solve
    G = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    A = torch.sparse_csr_tensor(crow, col, values.detach(), D.shape).requires_grad_()
    Bg = B.detach().clone().requires_grad_()
    (sparse_generic_solve(A, Bg, solve=linear_cg, preconditioner=M, tolerance=1e-13) * G).sum()\
        .backward()
    Dd = D.clone().requires_grad_()
    Bd = B.detach().clone().requires_grad_()
    (torch.linalg.solve(Dd, Bd) * G).sum().backward()
    P = D != 0
    torch.testing.assert_close(A.grad.to_dense()[P], Dd.grad[P], **tol(D.dtype, "iterative"))
    torch.testing.assert_close(Bg.grad, Bd.grad, **tol(D.dtype, "iterative"))


def test_generic_solve_nonsymmetric_ilu0_gradient():
    Gm = general_dense(12, seed=8, density=0.4)
    A = Gm.to_sparse_csr().requires_grad_()
    M = ilu0(A)
    B = torch.randn(12, dtype=torch.float64, generator=torch.Generator().manual_seed(5),
                    requires_grad=True)
    W = torch.randn(12, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    settings = BICGSTABSettings(precon=M, reltol=1e-11, abstol=0.0)
    X = sparse_generic_solve(A, B, solve=bicgstab, settings=settings)
    (X * W).sum().backward()
    Dd = Gm.clone().requires_grad_()
    Bd = B.detach().clone().requires_grad_()
    Xd = torch.linalg.solve(Dd, Bd)
    (Xd * W).sum().backward()
    torch.testing.assert_close(X.detach(), Xd.detach(), **tol(Gm.dtype, "iterative"))
    P = Gm != 0
    torch.testing.assert_close(A.grad.to_dense()[P], Dd.grad[P], **tol(Gm.dtype, "iterative"))
    torch.testing.assert_close(B.grad, Bd.grad, **tol(Gm.dtype, "iterative"))


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("build", [jacobi, ic0, ilu0])
def test_bad_input(build):
    with pytest.raises(TypeError, match="A: expected .*COO or sparse CSR.*got a dense"):
        build(torch.eye(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="A: expected"):
        build(np.eye(3))
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        build(torch.ones(3, 4, dtype=torch.float64).to_sparse_csr())
    with pytest.raises(ValueError, match="A: expected float32 or float64"):
        build(torch.eye(3, dtype=torch.int64).to_sparse_coo())
    zero_diag = torch.tensor([[1.0, 0.5, 0.0], [0.5, 0.0, 0.2], [0.0, 0.2, 1.0]],
                             dtype=torch.float64)
    with pytest.raises(ValueError, match="A: expected .*diagonal"):
        build(zero_diag.to_sparse_csr())


def test_ic0_non_positive_diagonal():
    D = torch.tensor([[2.0, 0.5], [0.5, -1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="A: expected a positive diagonal.*row 1"):
        ic0(D.to_sparse_csr())


def test_ilu0_zero_pivot():
    D = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"A: expected .*nonzero pivots, got a zero pivot U\[1, 1"):
        ilu0(D.to_sparse_csr())


def test_real_matrix_without_diagonal():
    A = _mtx("impcol_a")  # structurally zero diagonal entries
    with pytest.raises(ValueError, match="A: expected a stored nonzero diagonal entry"):
        ilu0(A)
    with pytest.raises(ValueError, match="A: expected a nonzero diagonal"):
        jacobi(A)


def test_wrong_rhs():
    M = ic0(spd_dense(6).to_sparse_csr())
    with pytest.raises(ValueError, match=r"R: expected a vector \(6,\)"):
        M(torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="R: expected torch.float64"):
        M(torch.ones(6))
    with pytest.raises(TypeError, match="R: expected a dense"):
        M(np.ones(6))
