"""sparse_solve_c4t: SciPy (CPU) / CuPy (CUDA) solvers from torch, against dense references."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings

import pytest
import scipy.sparse.linalg as ssl
import torch

from tests.helpers import assert_sparse_grad, dense_solve_reference, solve_matrix, to_sparse
from torch_api import sparse_solve_c4t
from torch_api._convergence import ConvergenceError, ConvergenceWarning
from torch_api._solve_c4t import _CuPy, backend_for

N = 12
ITER_TOL = {torch.float64: 1e-12, torch.float32: 1e-4}  # SciPy cgs stalls near 2e-5 in f32
CHECK = {torch.float64: {"rtol": 1e-8, "atol": 1e-9}, torch.float32: {"rtol": 2e-3, "atol": 1e-3}}
HAS_CUPY = importlib.util.find_spec("cupy") is not None

# solver name -> (matrix kind, extra options); iterative solvers also get a tolerance
CASES = {
    "cg": ("spd", {}),
    "minres": ("spd", {}),
    "cgs": ("general", {}),
    "gmres": ("general", {}),
    "spsolve": ("general", {}),
    "spsolve_triangular": ("lower", {}),
    "spsolve_triangular-upper": ("upper", {"lower": False}),
}


def _problem(kind, layout, dtype, k, seed=0, index_dtype=torch.int64):
    D = solve_matrix(N, kind, dtype, seed=seed)
    A = to_sparse(D, layout, index_dtype).requires_grad_()
    g = torch.Generator().manual_seed(seed + 1)
    shape = (N,) if k is None else (N, k)
    B = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
    G = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    return D, A, B, G


def _check(D, A, B, G, X, dtype, Dref=None):
    Xd, dD, dB = dense_solve_reference(D if Dref is None else Dref, B, G)
    assert X.dtype == dtype and X.shape == B.shape and X.device == B.device
    torch.testing.assert_close(X, Xd, **CHECK[dtype])
    (X * G).sum().backward()
    assert_sparse_grad(A.grad, A, dD, **CHECK[dtype])
    torch.testing.assert_close(B.grad, dB, **CHECK[dtype])


@pytest.mark.parametrize("k", [None, 3], ids=["vector", "matrix"])
@pytest.mark.parametrize("case", list(CASES))
def test_named_solvers_match_dense(case, layout, dtype, k):
    name = case.split("-")[0]
    kind, opts = CASES[case]
    if name in ("cg", "cgs", "minres", "gmres"):
        opts = {**opts, "rtol": ITER_TOL[dtype]}
    D, A, B, G = _problem(kind, layout, dtype, k)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        X = sparse_solve_c4t(A, B, name, **opts)
        _check(D, A, B, G, X, dtype)


def test_default_is_spsolve_on_nonsymmetric(layout):
    D, A, B, G = _problem("general", layout, torch.float64, 2)
    X = sparse_solve_c4t(A, B)
    torch.testing.assert_close(X, torch.linalg.solve(D, B.detach()), rtol=1e-13, atol=1e-13)
    _check(D, A, B, G, X, torch.float64)


def test_unit_diagonal_ignores_stored_diagonal(layout):
    D, A, B, G = _problem("lower", layout, torch.float64, 2)
    Dref = torch.tril(D, -1) + torch.eye(N, dtype=D.dtype)
    X = sparse_solve_c4t(A, B, "spsolve_triangular", unit_diagonal=True)
    Xd, dDref, dB = dense_solve_reference(Dref, B, G)
    torch.testing.assert_close(X, Xd, **CHECK[torch.float64])
    (X * G).sum().backward()
    # the diagonal does not enter the solve, so its gradient is zero
    assert_sparse_grad(A.grad, A, torch.tril(dDref, -1), **CHECK[torch.float64])
    torch.testing.assert_close(B.grad, dB, **CHECK[torch.float64])


def test_scipy_signature_callables(layout):
    D, A, B, G = _problem("general", layout, torch.float64, 2)
    # returns (x, info)
    X = sparse_solve_c4t(A, B, ssl.bicgstab, rtol=1e-12)
    _check(D, A, B, G, X, torch.float64)
    # returns x only; a different solver for the transposed system
    D, A, B, G = _problem("general", layout, torch.float64, None, seed=4)
    X = sparse_solve_c4t(A, B, lambda M, b, **kw: ssl.spsolve(M.tocsc(), b), "gmres", rtol=1e-12)
    _check(D, A, B, G, X, torch.float64)


def test_scipy_matrix_shares_torch_buffers(layout, index_dtype):
    D, A, B, _ = _problem("general", layout, torch.float64, None, index_dtype=index_dtype)
    seen = []

    def probe(M, b):
        seen.append((M.data.ctypes.data, M.indices.ctypes.data, M.indices.dtype))
        return ssl.spsolve(M, b)

    sparse_solve_c4t(A, B, probe)
    if layout == torch.sparse_coo:
        values, col = A.detach()._values(), A.detach()._indices()[1]
    else:
        values, col = A.detach().values(), A.detach().col_indices()
    data_ptr, index_ptr, index_np = seen[0]
    assert data_ptr == values.data_ptr() and index_ptr == col.data_ptr()
    assert str(index_np) == str(col.dtype).removeprefix("torch.")  # never downcast


def test_input_is_not_mutated_by_noncanonical_pattern():
    # CSR with unsorted column indices inside a row: SciPy would sort them in place
    crow = torch.tensor([0, 2, 3])
    col = torch.tensor([1, 0, 1])
    vals = torch.tensor([1.0, 4.0, 2.0], dtype=torch.float64)
    A = torch.sparse_csr_tensor(crow, col, vals, (2, 2))
    for _ in range(2):  # the second call finds the pattern's canonical-format verdict cached
        X = sparse_solve_c4t(A, torch.tensor([6.0, 4.0], dtype=torch.float64))
        torch.testing.assert_close(X, torch.tensor([1.0, 2.0], dtype=torch.float64))
        assert col.tolist() == [1, 0, 1] and vals.tolist() == [1.0, 4.0, 2.0]
    # same pattern, new values (the verdict depends on the indices only); backward solves A^T
    vals2 = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64, requires_grad=True)
    B = torch.tensor([3.0, 1.0], dtype=torch.float64, requires_grad=True)
    X = sparse_solve_c4t(torch.sparse_csr_tensor(crow, col, vals2, (2, 2)), B)
    torch.testing.assert_close(X, torch.tensor([1.0, 1.0], dtype=torch.float64))
    X.sum().backward()
    dense = torch.tensor([[2.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    ones = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(B.grad, torch.linalg.solve(dense.T, ones))
    assert col.tolist() == [1, 0, 1]


@pytest.mark.parametrize("name", ["spsolve", "cg", "spsolve_triangular"])
def test_empty_right_hand_side(name):
    A = solve_matrix(4, "lower").to_sparse_csr()
    X = sparse_solve_c4t(A, torch.zeros(4, 0, dtype=torch.float64), name)
    assert X.shape == (4, 0) and X.dtype == torch.float64


@pytest.mark.parametrize("name", ["spsolve", "cg"])
def test_gradcheck_float64(name):
    D = solve_matrix(5, "spd", seed=2)
    A = D.to_sparse_csr()
    B = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    values = A.values().clone().requires_grad_()

    def f(values, B):
        A_ = torch.sparse_csr_tensor(A.crow_indices(), A.col_indices(), values, A.shape)
        return sparse_solve_c4t(A_, B, name, **({"rtol": 1e-14} if name == "cg" else {}))

    assert torch.autograd.gradcheck(f, (values, B), atol=1e-6, rtol=1e-5)


def test_nonconvergence_warns_or_raises():
    D, A, B, _ = _problem("spd", torch.sparse_csr, torch.float64, 2)
    with pytest.warns(ConvergenceWarning, match="cg did not converge"):
        sparse_solve_c4t(A, B, "cg", maxiter=1, rtol=1e-12)
    with pytest.raises(ConvergenceError, match="gmres did not converge"):
        sparse_solve_c4t(A, B, "gmres", maxiter=1, restart=1, rtol=1e-12, raise_on_failure=True)


def test_bad_inputs():
    D, A, B, _ = _problem("general", torch.sparse_csr, torch.float64, None)
    with pytest.raises(TypeError, match="A: expected a sparse COO or sparse CSR"):
        sparse_solve_c4t(D, B)
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        sparse_solve_c4t(D[:5].to_sparse_csr(), B)
    with pytest.raises(ValueError, match="B: expected 12 rows"):
        sparse_solve_c4t(A, torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="B: expected dtype torch.float64"):
        sparse_solve_c4t(A, B.float())
    with pytest.raises(ValueError, match="solve: expected one of"):
        sparse_solve_c4t(A, B, "lu")
    with pytest.raises(TypeError, match="transpose_solve: expected a solver name or a callable"):
        sparse_solve_c4t(A, B, "cg", 3)
    with pytest.raises(ValueError, match="options of 'spsolve_triangular' only"):
        sparse_solve_c4t(A, B, "cg", lower=False)


def test_cuda_without_cupy_names_the_extra():
    if HAS_CUPY:
        pytest.skip("CuPy is installed; the missing-extra error cannot occur")
    with pytest.raises(ImportError, match=r"sparsegradutils\[cupy\]"):
        backend_for(torch.device("cuda", 0))


def test_cupy_indices_beyond_int32_raise():
    be = _CuPy.__new__(_CuPy)  # the range check runs before any CuPy call
    crow = torch.tensor([0, 2**31], dtype=torch.int64)
    with pytest.raises(ValueError, match="CuPy's sparse solvers need int32 indices"):
        be.matrix(crow, torch.zeros(1, dtype=torch.int64), torch.zeros(1), 1)


def test_cpu_never_imports_cupy():
    code = (
        "import sys, torch; from torch_api import sparse_solve_c4t; "
        "A = (2 * torch.eye(3, dtype=torch.float64)).to_sparse_csr(); "
        "sparse_solve_c4t(A, torch.ones(3, dtype=torch.float64), 'cg'); "
        "assert 'cupy' not in sys.modules and 'jax' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_cupy_solvers_on_cuda(case, layout):
    pytest.importorskip("cupy")
    name = case.split("-")[0]
    kind, opts = CASES[case]
    if name in ("cg", "cgs", "minres", "gmres"):
        opts = {**opts, "tol": 1e-12}
    D, A, B, G = _problem(kind, layout, torch.float64, 2, index_dtype=torch.int32)
    Ac = A.detach().cuda().requires_grad_()
    Bc = B.detach().cuda().requires_grad_()
    X = sparse_solve_c4t(Ac, Bc, name, **opts)
    assert X.device == Bc.device
    Xd, dD, dB = dense_solve_reference(D, B, G)
    torch.testing.assert_close(X.cpu(), Xd, **CHECK[torch.float64])
    (X * G.cuda()).sum().backward()
    assert_sparse_grad(Ac.grad.cpu(), A.detach(), dD, **CHECK[torch.float64])
    torch.testing.assert_close(Bc.grad.cpu(), dB, **CHECK[torch.float64])
