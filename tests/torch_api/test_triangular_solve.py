"""sparse_triangular_solve against torch.linalg.solve_triangular on the dense matrix."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from tests.helpers import (
    assert_sparse_grad,
    check_operand_errors,
    gradcheck_in_values,
    to_sparse,
    tol,
    with_values,
)
from torch_api import sparse_triangular_solve

N = 7
COMBOS = list(itertools.product([True, False], repeat=3))  # upper, unitriangular, transpose
COMBO_IDS = [
    f"{'up' if u else 'lo'}-{'unit' if d else 'diag'}-{'T' if t else 'N'}" for u, d, t in COMBOS
]


def tri_dense(shape, upper, unitriangular, dtype=torch.float64, seed=0, density=0.5):
    """Triangular test matrix: one random pattern shared by the batch (equal nnz, as batched CSR
    needs), values bounded away from zero, a dominant diagonal unless ``unitriangular`` (then
    none is stored)."""
    g = torch.Generator().manual_seed(seed)
    n = shape[-1]
    mask = torch.rand(n, n, generator=g) < density
    mask = mask.triu(1) if upper else mask.tril(-1)
    sign = torch.randint(0, 2, shape, generator=g) * 2 - 1
    vals = sign * (0.5 + 0.5 * torch.rand(shape, generator=g, dtype=torch.float64))
    D = vals * mask
    if not unitriangular:
        D = D + torch.diag_embed(2.0 + torch.rand(shape[:-1], generator=g, dtype=torch.float64))
    return D.to(dtype)


def dense_reference(D, B, G, upper, unitriangular, transpose):
    """X and the dense-autograd gradients of ``sum(G * X)``; B may be a vector (per batch item)."""
    D = D.detach().clone().requires_grad_()
    B = B.detach().clone().requires_grad_()
    vector = B.dim() == D.dim() - 1
    M = D.mT if transpose else D
    X = torch.linalg.solve_triangular(
        M, B.unsqueeze(-1) if vector else B, upper=upper != transpose, unitriangular=unitriangular
    )
    X = X.squeeze(-1) if vector else X
    (X * G).sum().backward()
    return X.detach(), D.grad, B.grad


def make(D, layout, index_dtype):
    return to_sparse(D, layout, index_dtype).requires_grad_()


@pytest.mark.parametrize("k", [3, 16], ids=["k3", "k16"])  # either stored triangle on the CPU
@pytest.mark.parametrize(("upper", "unitriangular", "transpose"), COMBOS, ids=COMBO_IDS)
def test_matches_dense(upper, unitriangular, transpose, layout, batch, dtype, index_dtype, k):
    shape = (N, N) if batch is None else (batch, N, N)
    D = tri_dense(shape, upper, unitriangular, dtype)
    g = torch.Generator().manual_seed(1)
    B = torch.randn(*shape[:-1], k, generator=g, dtype=torch.float64).to(dtype)
    G = torch.randn(*shape[:-1], k, generator=g, dtype=torch.float64).to(dtype)
    Xr, dDr, dBr = dense_reference(D, B, G, upper, unitriangular, transpose)
    A = make(D, layout, index_dtype)
    Bv = B.clone().requires_grad_()
    X = sparse_triangular_solve(A, Bv, upper, unitriangular, transpose)
    torch.testing.assert_close(X, Xr, **tol(dtype))
    (X * G).sum().backward()
    assert_sparse_grad(A.grad, A, dDr, **tol(dtype))
    if layout == torch.sparse_csr:
        assert A.grad.col_indices().dtype == index_dtype
    torch.testing.assert_close(Bv.grad, dBr, **tol(dtype))


@pytest.mark.parametrize("transpose", [False, True])
def test_vector_rhs(layout, batch, transpose):
    shape = (N, N) if batch is None else (batch, N, N)
    D = tri_dense(shape, False, False)
    B = torch.randn(shape[:-1], dtype=torch.float64)
    G = torch.randn(shape[:-1], dtype=torch.float64)
    Xr, dDr, dBr = dense_reference(D, B, G, False, False, transpose)
    A = make(D, layout, torch.int64)
    Bv = B.clone().requires_grad_()
    X = sparse_triangular_solve(A, Bv, upper=False, transpose=transpose)
    assert X.shape == B.shape
    torch.testing.assert_close(X, Xr)
    (X * G).sum().backward()
    assert_sparse_grad(A.grad, A, dDr)
    torch.testing.assert_close(Bv.grad, dBr)


def test_default_is_upper_not_transposed():
    D = tri_dense((N, N), True, False)
    B = torch.randn(N, 2, dtype=torch.float64)
    X = sparse_triangular_solve(to_sparse(D, torch.sparse_csr), B)
    torch.testing.assert_close(X, torch.linalg.solve_triangular(D, B, upper=True))


@pytest.mark.parametrize(("upper", "unitriangular", "transpose"), COMBOS, ids=COMBO_IDS)
def test_gradcheck(upper, unitriangular, transpose, layout, batch):
    shape = (5, 5) if batch is None else (2, 5, 5)
    S = to_sparse(tri_dense(shape, upper, unitriangular, seed=3), layout)
    op = lambda A, B: sparse_triangular_solve(A, B, upper, unitriangular, transpose)
    assert gradcheck_in_values(op, S, torch.randn(*shape[:-1], 2, dtype=torch.float64))


def test_noncoalesced_coo():
    D = tri_dense((N, N), False, False)
    C = D.to_sparse_coo().coalesce()
    idx, val = C.indices(), C.values()
    # the same matrix with each entry split in two halves, uncoalesced
    A = torch.sparse_coo_tensor(torch.cat([idx, idx], 1), torch.cat([val, val]) / 2, D.shape)
    assert not A.is_coalesced()
    B = torch.randn(N, 2, dtype=torch.float64)
    X = sparse_triangular_solve(A, B, upper=False)
    torch.testing.assert_close(X, torch.linalg.solve_triangular(D, B, upper=False))


def test_repeated_calls_same_pattern(layout):
    """Cached transposed patterns must follow new values on an unchanged pattern."""
    D1 = tri_dense((N, N), False, False, seed=4)
    A = to_sparse(D1, layout)
    B = torch.randn(N, 2, dtype=torch.float64)
    for scale in (1.0, 2.0):
        A2 = with_values(A, A.values() * scale)
        for transpose in (False, True):
            M = (scale * D1).mT if transpose else scale * D1
            X = sparse_triangular_solve(A2, B, upper=False, transpose=transpose)
            torch.testing.assert_close(X, torch.linalg.solve_triangular(M, B, upper=transpose))


# ---------------------------------------------------------------------------- bad inputs
def test_wrong_side_of_diagonal(layout, batch):
    shape = (N, N) if batch is None else (batch, N, N)
    D = tri_dense(shape, False, False)
    A = to_sparse(D, layout)
    B = torch.randn(*shape[:-1], 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="upper-triangular.*below the diagonal"):
        sparse_triangular_solve(A, B, upper=True)
    U = to_sparse(tri_dense(shape, True, False), layout)
    with pytest.raises(ValueError, match="lower-triangular.*above the diagonal"):
        sparse_triangular_solve(U, B, upper=False)
    with pytest.raises(ValueError, match="lower-triangular.*above the diagonal"):
        sparse_triangular_solve(U, B, upper=False, transpose=True)


def test_unitriangular_with_stored_diagonal(layout):
    A = to_sparse(tri_dense((N, N), True, False), layout)
    with pytest.raises(ValueError, match="strictly triangular.*unitriangular=True"):
        sparse_triangular_solve(A, torch.ones(N, dtype=torch.float64), unitriangular=True)


def test_missing_or_zero_diagonal(layout, batch):
    shape = (N, N) if batch is None else (batch, N, N)
    B = torch.ones(*shape[:-1], dtype=torch.float64)
    strict = to_sparse(tri_dense(shape, True, True), layout)  # no diagonal stored
    with pytest.raises(ValueError, match="missing.*singular"):
        sparse_triangular_solve(strict, B)
    D = tri_dense(shape, True, False)
    S = to_sparse(D, layout)
    vals = S.values().clone()
    # zero the first stored diagonal value, keeping it stored (values are in row-major order)
    dense_pos = (D != 0).nonzero()
    k = int((dense_pos[:, -1] == dense_pos[:, -2]).nonzero()[0, 0])
    vals.view(-1)[k] = 0.0
    Z = with_values(S, vals)
    with pytest.raises(ValueError, match="1 zero diagonal.*singular"):
        sparse_triangular_solve(Z, B)


def test_bad_types_and_shapes():
    D = tri_dense((N, N), True, False)
    A = to_sparse(D, torch.sparse_csr)
    B = torch.ones(N, 2, dtype=torch.float64)
    check_operand_errors(sparse_triangular_solve, D, B)  # A not a tensor, dense, CSC, ...
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        sparse_triangular_solve(to_sparse(D[:, :-1], torch.sparse_csr), B)
    with pytest.raises(TypeError, match="upper: expected a bool"):
        sparse_triangular_solve(A, B, upper="yes")


def test_batch_mismatch():
    A = to_sparse(tri_dense((2, N, N), True, False), torch.sparse_csr)
    with pytest.raises(ValueError, match="B: expected batch size 2"):
        sparse_triangular_solve(A, torch.ones(3, N, 1, dtype=torch.float64))


@pytest.mark.parametrize("upper", [False, True])
def test_side_check_without_row_array_matches_the_entrywise_check(upper):
    from bridge.internal.csr_checks import side_ok as _side_ok

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 9))
        D = rng.random((n, n)) < 0.3  # empty rows included
        D = np.triu(D) if upper else np.tril(D)
        if trial % 2:  # one entry on the wrong side
            r, c = rng.integers(0, n, 2)
            if r != c:
                D[min(r, c), max(r, c)] = not upper
                D[max(r, c), min(r, c)] = upper
        rows, cols = np.nonzero(D)
        crow = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
        want = bool(np.all(cols >= rows) if upper else np.all(cols <= rows))
        assert _side_ok(crow, cols.astype(np.int64), upper) == want


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_remembered_structure_still_checks_each_calls_diagonal(layout):
    # the structure is checked once per pattern; a zero put on the diagonal later must still fail
    L = torch.tensor([[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 4.0, 5.0]], dtype=torch.float64)
    A = to_sparse(L, layout)
    B = torch.ones(3, 2, dtype=torch.float64)
    torch.testing.assert_close(sparse_triangular_solve(A, B, upper=False),
                               torch.linalg.solve_triangular(L, B, upper=False))
    values = A.values() if layout == torch.sparse_csr else A._values()
    values[2] = 0.0  # the (1, 1) entry, in place: the same index tensors
    with pytest.raises(ValueError, match="1 zero diagonal entries out of 3: the matrix is"):
        sparse_triangular_solve(A, B, upper=False)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("unitriangular", [False, True])
def test_sorted_fast_path_agrees_with_the_dense_matrix(upper, unitriangular):
    # the O(n) reading of sorted rows passes exactly the valid matrices, and finds the diagonal
    from bridge.internal.csr_checks import sorted_fast_path as _sorted_fast_path

    rng = np.random.default_rng(1)
    for trial in range(400):
        n = int(rng.integers(1, 8))
        V = np.where(rng.random((n, n)) < 0.4, rng.integers(1, 4, (n, n)), 0).astype(float)
        V = np.triu(V) if upper else np.tril(V)
        np.fill_diagonal(V, 0 if unitriangular else rng.integers(1, 3, n))
        stored = V != 0
        r, c = sorted(int(x) for x in rng.integers(0, n, 2))
        kind = trial % 4  # 0 valid, 1 an entry on the wrong side, 2 a diagonal entry toggled
        if kind == 1 and r != c:
            stored[(c, r) if upper else (r, c)] = True
            V[(c, r) if upper else (r, c)] = 1.0
        elif kind == 2:
            stored[r, r] = not stored[r, r]
        elif kind == 3 and not unitriangular:
            V[r, r] = 0.0  # stored, but zero
        rows, cols = np.nonzero(stored)
        values = V[rows, cols]
        crow = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
        diag = rows == cols
        valid = bool(np.all(cols >= rows) if upper else np.all(cols <= rows))
        if unitriangular:
            valid &= not diag.any()
        else:
            valid &= diag.sum() == n and bool((values[diag] != 0).all())
        passed, positions = _sorted_fast_path(crow, cols, values, upper, unitriangular, False)
        assert passed == valid, (trial, V, stored)
        if passed and not unitriangular:
            assert positions.tolist() == np.flatnonzero(diag).tolist()


def test_unsorted_columns_refused_with_advice_that_works():
    """A CSR matrix whose columns are unsorted within a row is refused; the rebuild the error
    message suggests gives a matrix that is accepted and solves correctly."""
    crow, col = torch.tensor([0, 1, 3]), torch.tensor([0, 1, 0])  # row 1: columns 1, 0
    A = torch.sparse_csr_tensor(crow, col, torch.tensor([2.0, 3.0, 1.0], dtype=torch.float64))
    B = torch.tensor([[2.0], [4.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="A: expected CSR column indices sorted") as info:
        sparse_triangular_solve(A, B, upper=False)
    assert "torch.sparse_coo_tensor(C.indices(), C.values(), C.shape)" in str(info.value)
    C = A.to_sparse_coo()
    fixed = torch.sparse_coo_tensor(C.indices(), C.values(), C.shape).coalesce().to_sparse_csr()
    want = torch.linalg.solve_triangular(A.to_dense(), B, upper=False)
    torch.testing.assert_close(sparse_triangular_solve(fixed, B, upper=False), want)
