"""sparse_solve_j4t: JAX solvers from torch, against dense solves and dense autograd."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from tests.helpers import assert_sparse_grad, dense_solve_reference, solve_matrix, to_sparse
from torch_api import sparse_solve_j4t
from torch_api._convergence import ConvergenceError, ConvergenceWarning

jax = pytest.importorskip("jax")
jsl = jax.scipy.sparse.linalg

N = 12
TIGHT = {torch.float64: 1e-12, torch.float32: 1e-6}
CHECK = {torch.float64: {"rtol": 1e-8, "atol": 1e-9}, torch.float32: {"rtol": 1e-3, "atol": 1e-4}}


def _problem(kind, layout, dtype, k, seed=0):
    D = solve_matrix(N, kind, dtype, seed=seed)
    A = to_sparse(D, layout).requires_grad_()
    g = torch.Generator().manual_seed(seed + 1)
    shape = (N,) if k is None else (N, k)
    B = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    G = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    return D, A, B, G


def _config():
    return dict(jax.config.values)


@pytest.mark.parametrize("k", [None, 3], ids=["vector", "matrix"])
@pytest.mark.parametrize(
    "solver, kind",
    [(None, "general"), (jsl.gmres, "general"), (jsl.cg, "spd")],
    ids=["bicgstab-default", "gmres", "cg"],
)
def test_matches_dense_solve_and_gradients(solver, kind, layout, dtype, k):
    D, A, B, G = _problem(kind, layout, dtype, k)
    X = sparse_solve_j4t(A, B, solver, tol=TIGHT[dtype])
    Xd, dD, dB = dense_solve_reference(D, B, G)
    assert X.dtype == dtype and X.shape == B.shape
    torch.testing.assert_close(X, Xd, **CHECK[dtype])
    (X * G).sum().backward()
    assert_sparse_grad(A.grad, A, dD, **CHECK[dtype])
    torch.testing.assert_close(B.grad, dB, **CHECK[dtype])


def test_explicit_transpose_solve_nonsymmetric(layout):
    D, A, B, G = _problem("general", layout, torch.float64, 2)
    X = sparse_solve_j4t(A, B, jsl.bicgstab, jsl.gmres, tol=1e-12)
    (X * G).sum().backward()
    _, dD, dB = dense_solve_reference(D, B, G)
    assert_sparse_grad(A.grad, A, dD, **CHECK[torch.float64])
    torch.testing.assert_close(B.grad, dB, **CHECK[torch.float64])


def test_unsorted_csr_columns():
    """A CSR with columns out of order within rows (torch builds it without complaint): JAX's
    matrix is not flagged sorted, and X, B.grad and A.grad (in A's own entry order) match the
    dense solve."""
    crow = torch.tensor([0, 2, 4, 5])
    col = torch.tensor([2, 0, 1, 0, 2])
    vals = torch.tensor([1.0, 4.0, 5.0, 1.0, 3.0], dtype=torch.float64)
    A = torch.sparse_csr_tensor(crow, col, vals, (3, 3)).requires_grad_()
    D = torch.tensor([[4.0, 0.0, 1.0], [1.0, 5.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    B = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64, requires_grad=True)
    for _ in range(2):  # the second call reads the cached indices
        X = sparse_solve_j4t(A, B, tol=1e-12)
        torch.testing.assert_close(X, torch.linalg.solve(D, B.detach()))
    X.sum().backward()
    dB = torch.linalg.solve(D.T, torch.ones(3, 2, dtype=X.dtype))
    torch.testing.assert_close(B.grad, dB)
    dD = -dB @ X.detach().T  # the dense gradient, read at the stored entries
    assert A.grad.col_indices().tolist() == [2, 0, 1, 0, 2]
    torch.testing.assert_close(A.grad.values(), dD[torch.tensor([0, 0, 1, 1, 2]), col])


def test_batched_block_diagonal():
    Ds = torch.stack([solve_matrix(6, "general", seed=s) for s in range(3)])
    # batched CSR needs equal nnz per batch item: use the union pattern with explicit zeros
    mask = (Ds != 0).any(0)
    A = torch.sparse_csr_tensor(
        *_batched_csr(Ds, mask), size=Ds.shape, dtype=torch.float64
    ).requires_grad_()
    B = torch.randn(3, 6, dtype=torch.float64)
    X = sparse_solve_j4t(A, B, tol=1e-12)
    torch.testing.assert_close(X, torch.linalg.solve(Ds, B), **CHECK[torch.float64])


def _batched_csr(Ds, mask):
    S = mask.to(torch.float64).to_sparse_csr()
    crow, col = S.crow_indices(), S.col_indices()
    rows = torch.repeat_interleave(torch.arange(mask.shape[0]), crow[1:] - crow[:-1])
    vals = Ds[:, rows, col]
    b = Ds.shape[0]
    return crow.expand(b, -1).contiguous(), col.expand(b, -1).contiguous(), vals


def test_empty_right_hand_side():
    A = solve_matrix(4, "general").to_sparse_csr()
    X = sparse_solve_j4t(A, torch.zeros(4, 0, dtype=torch.float64))
    assert X.shape == (4, 0) and X.dtype == torch.float64


def test_gradcheck_float64():
    D = solve_matrix(5, "general", seed=3)
    A = D.to_sparse_csr().requires_grad_()
    B = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)

    def f(values, B):
        A_ = torch.sparse_csr_tensor(A.crow_indices(), A.col_indices(), values, A.shape)
        return sparse_solve_j4t(A_, B, tol=1e-14)

    values = A.detach().values().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (values, B), atol=1e-6, rtol=1e-5)


def test_compiled_once_no_retrace():
    traces = []

    def counting_bicgstab(A, b, **kw):
        traces.append(b.shape)
        return jsl.bicgstab(A, b, **kw)

    D = solve_matrix(N, "general", torch.float32, seed=5)
    for i in range(4):
        A = to_sparse(D * (1 + 0.1 * i), torch.sparse_csr).requires_grad_()
        B = torch.randn(N, requires_grad=True)
        sparse_solve_j4t(A, B, counting_bicgstab, tol=1e-6).sum().backward()
    # forward and transposed solves share one compiled program (same shapes, solver, options)
    assert len(traces) == 1
    sparse_solve_j4t(A, torch.randn(N, 2), counting_bicgstab, tol=1e-6)  # new shape: compiles
    assert len(traces) == 2
    sparse_solve_j4t(A, torch.randn(N, 2), counting_bicgstab, tol=1e-5)  # new static option
    assert len(traces) == 3


def test_float64_with_x64_off_leaves_config_unchanged():
    assert not jax.config.jax_enable_x64
    before = _config()
    D, A, B, _ = _problem("general", torch.sparse_csr, torch.float64, None)
    X = sparse_solve_j4t(A, B, tol=1e-13)
    assert X.dtype == torch.float64
    # float32 could not reach this accuracy: the solve really ran in float64
    torch.testing.assert_close(X, torch.linalg.solve(D, B.detach()), rtol=1e-11, atol=1e-12)
    assert _config() == before
    assert not jax.config.jax_enable_x64


def test_float64_with_x64_on(x64):
    before = _config()
    D, A, B, _ = _problem("general", torch.sparse_coo, torch.float64, 2)
    X = sparse_solve_j4t(A, B, tol=1e-13)
    torch.testing.assert_close(X, torch.linalg.solve(D, B.detach()), rtol=1e-11, atol=1e-12)
    assert _config() == before


def test_nonconvergence_warns_or_raises():
    D, A, B, _ = _problem("general", torch.sparse_csr, torch.float64, None)
    with pytest.warns(ConvergenceWarning, match="bicgstab did not converge"):
        sparse_solve_j4t(A, B, maxiter=1, tol=1e-12)
    with pytest.raises(ConvergenceError, match="did not converge"):
        sparse_solve_j4t(A, B, maxiter=1, tol=1e-12, raise_on_failure=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        sparse_solve_j4t(A, B, tol=1e-10)  # converges: no warning


def test_nan_solution_is_reported():
    D = solve_matrix(N, "general")
    D[3, 3] = float("nan")
    A = D.to_sparse_csr()
    with pytest.warns(ConvergenceWarning):
        sparse_solve_j4t(A, torch.ones(N, dtype=torch.float64))


def test_bad_inputs():
    D, A, B, _ = _problem("general", torch.sparse_csr, torch.float64, None)
    with pytest.raises(TypeError, match="A: expected a sparse COO or sparse CSR"):
        sparse_solve_j4t(D, B)
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        sparse_solve_j4t(D[:, :5].to_sparse_csr(), B)
    with pytest.raises(ValueError, match="B: expected 12 rows"):
        sparse_solve_j4t(A, B[:5])
    with pytest.raises(ValueError, match="B: expected dtype torch.float64"):
        sparse_solve_j4t(A, B.float())
    with pytest.raises(TypeError, match="solve: expected a JAX solver"):
        sparse_solve_j4t(A, B, "bicgstab")
    with pytest.raises(TypeError, match="x0: expected a hashable static solver option"):
        sparse_solve_j4t(A, B, x0=torch.zeros(N, dtype=torch.float64))


def test_import_torch_api_does_not_import_jax_or_cupy():
    code = (
        "import sys, torch_api; torch_api.sparse_solve_j4t; torch_api.sparse_solve_c4t; "
        "bad = [m for m in ('jax', 'cupy') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_cuda_tensors_solve_on_jax_gpu():
    D, A, B, G = _problem("general", torch.sparse_csr, torch.float32, 2)
    A = A.detach().cuda().requires_grad_()
    Bc = B.detach().cuda().requires_grad_()
    X = sparse_solve_j4t(A, Bc, tol=1e-6)
    assert X.device == Bc.device
    Xd, dD, dB = dense_solve_reference(D, B, G)
    torch.testing.assert_close(X.cpu(), Xd, **CHECK[torch.float32])
    (X * G.cuda()).sum().backward()
    assert_sparse_grad(A.grad.cpu(), A.detach().cpu(), dD, **CHECK[torch.float32])
    torch.testing.assert_close(Bc.grad.cpu(), dB, **CHECK[torch.float32])
