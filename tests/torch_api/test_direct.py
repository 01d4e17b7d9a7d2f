"""Direct solves and log-determinants (torch_api): dense references, gradients on A's pattern,
real SuiteSparse matrices, factor reuse, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import torch
from torch.autograd import forward_ad as fwAD

import torch_api._direct as direct
from tests.helpers import check_sparse_grads, random_dense, to_sparse
from torch_api import (
    sparse_cholesky_solve,
    sparse_logdet,
    sparse_lu_solve,
    sparse_slogdet,
)
from torch_api._direct import Factors
from torch_api._logdet import _LogAbsDet
from torch_api._pattern import Pattern, sparse_with_values

F64 = torch.float64
LAYOUTS = [torch.sparse_coo, torch.sparse_csr]
MATRICES = Path(__file__).resolve().parents[2].parent / "shared" / "matrices"


def _batch(D, batch):
    """``batch`` matrices of one pattern: ``D + i I`` (D stores its diagonal)."""
    if batch is None:
        return D
    return torch.stack([D + i * torch.eye(D.shape[-1], dtype=D.dtype) for i in range(batch)])


def _general(n, seed=0, batch=None, dtype=F64):
    D = random_dense((n, n), density=0.4, seed=seed, dtype=dtype)
    return _batch(D + 3 * torch.eye(n, dtype=dtype), batch)


def _spd(n, seed=0, batch=None, dtype=F64):
    M = _general(n, seed, None, dtype)
    return _batch(M @ M.T + torch.eye(n, dtype=dtype), batch)


def _rhs(*shape, seed=1, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


def _real(name) -> torch.Tensor:
    if not MATRICES.is_dir():
        pytest.skip(f"the SuiteSparse matrices are not at {MATRICES}")
    M = sp.csr_matrix(scipy.io.mmread(MATRICES / f"{name}.mtx"))
    M.sort_indices()
    return torch.sparse_csr_tensor(torch.from_numpy(M.indptr), torch.from_numpy(M.indices),
                                   torch.from_numpy(M.data.astype(np.float64)), M.shape)


def _transpose_positions(S: torch.Tensor) -> torch.Tensor:
    """For each stored value of a symmetric-pattern COO/CSR ``S``, the index of its mirror."""
    C = S.to_sparse_coo().coalesce() if S.layout == torch.sparse_csr else S
    r, c = C.indices()
    n = S.shape[-1]
    key, mirror = r * n + c, c * n + r
    return torch.searchsorted(key, mirror)


OPS = {"cholesky": (sparse_cholesky_solve, _spd), "lu": (sparse_lu_solve, _general)}


# ------------------------------------------------------------------------------ solves
@pytest.mark.parametrize("kind", OPS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("batch", [None, 2])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_solve_matches_dense_with_sparse_grads(kind, layout, batch, dtype):
    op, make = OPS[kind]
    D = make(6, seed=2, batch=batch, dtype=dtype)
    A = to_sparse(D, layout).requires_grad_()
    B = _rhs(*D.shape[:-1], 3, dtype=dtype).requires_grad_()
    X = op(A, B)
    assert X.dtype == dtype and X.shape == B.shape
    Dd, Bd = D.clone().requires_grad_(), B.detach().clone().requires_grad_()
    Xd = torch.linalg.solve(Dd, Bd)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else {}
    torch.testing.assert_close(X, Xd, **tol)
    G = _rhs(*X.shape, seed=5, dtype=dtype)
    (X * G).sum().backward()
    (Xd * G).sum().backward()
    check_sparse_grads(A.grad, A, Dd.grad, **tol)
    torch.testing.assert_close(B.grad, Bd.grad, **tol)


@pytest.mark.parametrize("kind", OPS)
def test_solve_vector_rhs(kind):
    op, make = OPS[kind]
    D = make(5, seed=3)
    b = _rhs(5)
    torch.testing.assert_close(op(to_sparse(D, torch.sparse_csr), b), torch.linalg.solve(D, b))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_lu_solve_gradcheck_and_gradgradcheck(layout):
    S = to_sparse(_general(5, seed=4), layout)
    f = lambda v, b: sparse_lu_solve(sparse_with_values(S, v), b)
    args = (S.values().detach().clone().requires_grad_(), _rhs(5, 2).requires_grad_())
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


def test_cholesky_solve_gradcheck_on_symmetric_perturbations():
    S = to_sparse(_spd(5, seed=6), torch.sparse_coo)
    mirror = _transpose_positions(S)
    f = lambda v, b: sparse_cholesky_solve(sparse_with_values(S, (v + v[mirror]) / 2), b)
    args = (S.values().detach().clone().requires_grad_(), _rhs(5, 2).requires_grad_())
    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


def test_one_factorisation_per_forward_and_backward(monkeypatch):
    calls = []
    real = direct.factorize_blocks
    monkeypatch.setattr(direct, "factorize_blocks",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    A = to_sparse(_general(6, seed=7), torch.sparse_csr).requires_grad_()
    B = _rhs(6, 2).requires_grad_()
    sparse_lu_solve(A, B).sum().backward()
    assert len(calls) == 1 and A.grad is not None and B.grad is not None


# ---------------------------------------------------------------------- log-determinants
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("batch", [None, 3])
def test_logdet_and_slogdet_match_dense(layout, batch):
    for D, fn in ((_spd(6, seed=8, batch=batch), sparse_logdet),
                  (_general(6, seed=9, batch=batch), lambda A: sparse_slogdet(A).logabsdet)):
        A = to_sparse(D, layout).requires_grad_()
        Dd = D.clone().requires_grad_()
        ref = torch.linalg.slogdet(Dd).logabsdet
        got = fn(A)
        torch.testing.assert_close(got, ref.detach())
        w = torch.arange(1.0, 1.0 + got.numel(), dtype=F64).reshape(got.shape)
        (got * w).sum().backward()
        (ref * w).sum().backward()
        check_sparse_grads(A.grad, A, Dd.grad)


def test_slogdet_sign():
    D = _general(5, seed=10)
    P = torch.eye(5, dtype=F64)[[1, 0, 2, 3, 4]]  # one swap: the sign flips
    for M in (D, P @ D, -D):
        sign, logabs = sparse_slogdet(to_sparse(M, torch.sparse_csr))
        ref = torch.linalg.slogdet(M)
        assert float(sign) == float(ref.sign)
        torch.testing.assert_close(logabs, ref.logabsdet)


@pytest.mark.parametrize("kind", ["logdet", "slogdet"])
def test_logdet_gradcheck_and_forward_mode(kind):
    D = _spd(5, seed=11) if kind == "logdet" else _general(5, seed=11)
    S = to_sparse(D, torch.sparse_coo)
    if kind == "logdet":
        mirror = _transpose_positions(S)
        f = lambda v: sparse_logdet(sparse_with_values(S, (v + v[mirror]) / 2))
    else:
        f = lambda v: sparse_slogdet(sparse_with_values(S, v)).logabsdet
    v = S.values().detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (v,))
    dv = _rhs(v.numel(), seed=12)
    # forward mode at the value level (torch has no sparse tangents to carry it through A)
    pattern, _ = Pattern.of(S)
    factors = Factors("cholesky" if kind == "logdet" else "lu")
    with fwAD.dual_level():
        out, _ = _LogAbsDet.apply(fwAD.make_dual(v.detach(), dv), pattern, factors)
        tangent = fwAD.unpack_dual(out).tangent[0]
    f = lambda v: sparse_slogdet(sparse_with_values(S, v)).logabsdet
    (g,) = torch.autograd.grad(f(v), v)
    torch.testing.assert_close(tangent, (g * dv).sum())


def test_logdet_second_derivative_is_refused_not_wrong():
    S = to_sparse(_spd(4, seed=13), torch.sparse_coo)
    v = S.values().detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(sparse_slogdet(sparse_with_values(S, v)).logabsdet, v,
                               create_graph=True)
    with pytest.raises(NotImplementedError, match="second derivative of a log-determinant"):
        g.sum().backward()


# ------------------------------------------------------------------------- real matrices
def _entries_of_inverse(D: np.ndarray, A: torch.Tensor) -> np.ndarray:
    C = A.to_sparse_coo().coalesce()
    r, c = C.indices().numpy()
    return np.linalg.inv(D).T[r, c]


@pytest.mark.parametrize("name,kind", [("494_bus", "cholesky"), ("bcsstk13", "cholesky"),
                                       ("west0479", "lu"), ("impcol_a", "lu"), ("watt_2", "lu")])
def test_real_matrices(name, kind):
    A = _real(name)
    D = A.to_dense().numpy()
    n = A.shape[0]
    b = torch.from_numpy(np.random.default_rng(0).standard_normal(n))
    x = (sparse_cholesky_solve if kind == "cholesky" else sparse_lu_solve)(A, b)
    ref = np.linalg.solve(D, b.numpy())
    assert np.linalg.norm(D @ x.numpy() - b.numpy()) <= 1e-8 * np.linalg.norm(D) * np.linalg.norm(
        ref) + 1e-10
    A = A.requires_grad_()
    value = sparse_logdet(A) if kind == "cholesky" else sparse_slogdet(A).logabsdet
    sign, logabs = np.linalg.slogdet(D)
    np.testing.assert_allclose(float(value), logabs, rtol=1e-9)
    value.backward()
    Z = _entries_of_inverse(D, A)
    got = A.grad.to_sparse_coo().coalesce().values().numpy()
    assert A.grad.layout == torch.sparse_csr and got.shape == Z.shape
    np.testing.assert_allclose(got, Z, rtol=1e-6, atol=1e-9 * np.abs(Z).max())


def test_indefinite_real_matrix_is_refused_by_cholesky():
    A = _real("hangGlider_2")
    with pytest.raises(ValueError, match="A: expected a symmetric positive definite"):
        sparse_cholesky_solve(A, torch.ones(A.shape[0], dtype=F64))
    with pytest.raises(ValueError, match="A: expected a symmetric positive definite"):
        sparse_logdet(A)


# ---------------------------------------------------------------------------- bad input
def test_bad_inputs():
    spd = to_sparse(_spd(4), torch.sparse_csr)
    b = torch.ones(4, dtype=F64)
    with pytest.raises(ValueError, match="A: expected .*square"):
        sparse_lu_solve(to_sparse(random_dense((3, 4)), torch.sparse_csr), torch.ones(3, dtype=F64))
    with pytest.raises(TypeError, match="A: expected a sparse"):
        sparse_cholesky_solve(_spd(4), b)
    with pytest.raises(ValueError, match="A: expected a symmetric positive definite matrix, got "
                                         "a matrix with"):
        sparse_cholesky_solve(to_sparse(_general(4, seed=3) + torch.triu(torch.ones(4, 4,
                              dtype=F64), 1), torch.sparse_csr), b)
    with pytest.raises(ValueError, match="not positive definite"):
        sparse_cholesky_solve(to_sparse(-_spd(4), torch.sparse_csr), b)
    singular = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=F64).to_sparse_csr()
    for op in (sparse_lu_solve, lambda A, b: sparse_slogdet(A)):
        with pytest.raises(ValueError, match="A: expected a nonsingular matrix"):
            op(singular, torch.ones(2, dtype=F64))
    nan = _spd(4)
    nan[1, 1] = float("nan")
    with pytest.raises(ValueError, match="A: expected finite values"):
        sparse_lu_solve(to_sparse(nan, torch.sparse_coo), b)
    with pytest.raises(ValueError, match="B"):
        sparse_lu_solve(spd, torch.ones(5, dtype=F64))
    batched = to_sparse(torch.stack([_spd(3), -_spd(3)]), torch.sparse_coo)
    with pytest.raises(ValueError, match=r"A\[1\]: expected a symmetric positive definite"):
        sparse_logdet(batched)


def test_inputs_are_not_mutated():
    A = to_sparse(_spd(5, seed=14), torch.sparse_csr)
    before = [t.clone() for t in (A.crow_indices(), A.col_indices(), A.values())]
    B = _rhs(5, 2)
    B0 = B.clone()
    sparse_cholesky_solve(A, B)
    sparse_logdet(A)
    for t, t0 in zip((A.crow_indices(), A.col_indices(), A.values()), before, strict=True):
        assert torch.equal(t, t0)
    assert torch.equal(B, B0)


# ------------------------------------------------------------------ torch.func and compile
def test_torch_func_transforms_over_the_right_hand_side():
    D = _general(5, seed=15)
    A = to_sparse(D, torch.sparse_csr)
    Bs = _rhs(3, 5, seed=16)
    Ai = torch.linalg.inv(D)
    got = torch.func.vmap(lambda b: sparse_lu_solve(A, b))(Bs)
    torch.testing.assert_close(got, Bs @ Ai.T)
    g = torch.func.grad(lambda b: sparse_lu_solve(A, b).square().sum())(Bs[0])
    torch.testing.assert_close(g, 2 * Ai.T @ (Ai @ Bs[0]))
    _, t = torch.func.jvp(lambda b: sparse_lu_solve(A, b), (Bs[0],), (Bs[1],))
    torch.testing.assert_close(t, Ai @ Bs[1])
    J = torch.func.jacfwd(lambda b: sparse_lu_solve(A, b))(Bs[0])
    torch.testing.assert_close(J, Ai)


def test_torch_compile_runs_with_the_same_numbers():
    S = to_sparse(_spd(5, seed=17), torch.sparse_csr)
    B = _rhs(5, 2, seed=18)

    def f(A, B):
        return sparse_cholesky_solve(A, B).sum() + sparse_logdet(A)

    compiled = torch.compile(f, backend="eager", fullgraph=False)
    torch.testing.assert_close(compiled(S, B), f(S, B))
