"""sparse_mm against the dense product and dense autograd."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import (
    assert_sparse_grad,
    check_operand_errors,
    gradcheck_in_values,
    random_dense,
    to_sparse,
    tol,
    with_values,
)
from torch_api import sparse_mm

N, M, P = 9, 7, 4


def dense_reference(D, B, G):
    D = D.detach().clone().requires_grad_()
    B = B.detach().clone().requires_grad_()
    Y = D @ B
    (Y * G).sum().backward()
    return Y.detach(), D.grad, B.grad


def shapes(batch):
    lead = () if batch is None else (batch,)
    return (*lead, N, M), (*lead, M, P), (*lead, N, P)


def test_matches_dense(layout, batch, dtype, index_dtype):
    sa, sb, sy = shapes(batch)
    D = random_dense(sa, dtype=dtype, seed=1)
    B = torch.randn(sb, dtype=torch.float64).to(dtype)
    G = torch.randn(sy, dtype=torch.float64).to(dtype)
    Yr, dDr, dBr = dense_reference(D, B, G)
    A = to_sparse(D, layout, index_dtype).requires_grad_()
    Bv = B.clone().requires_grad_()
    Y = sparse_mm(A, Bv)
    assert Y.shape == sy and Y.dtype == dtype
    torch.testing.assert_close(Y, Yr, **tol(dtype))
    (Y * G).sum().backward()
    assert_sparse_grad(A.grad, A, dDr, **tol(dtype))
    if layout == torch.sparse_csr:
        assert A.grad.col_indices().dtype == index_dtype
        assert A.grad.crow_indices().dtype == index_dtype
    else:  # A's own (sorted, unique) indices; torch's AccumulateGrad drops the coalesced flag
        assert torch.equal(A.grad._indices(), A.indices())
    assert Bv.grad.layout == torch.strided
    torch.testing.assert_close(Bv.grad, dBr, **tol(dtype))


def test_gradcheck(layout, batch):
    sa, sb, _ = shapes(batch)
    S = to_sparse(random_dense(sa, seed=2), layout)
    assert gradcheck_in_values(sparse_mm, S, torch.randn(sb, dtype=torch.float64))


def test_vector_b(layout, batch):
    """A vector B ((m,), or (b, m) for a batched A) gives a vector, as in jax_api."""
    sa, _, _ = shapes(batch)
    D = random_dense(sa, seed=4)
    S = to_sparse(D, layout)
    b = torch.randn(sa[:-2] + sa[-1:], dtype=torch.float64)
    y = sparse_mm(S, b)
    assert y.shape == sa[:-1]
    torch.testing.assert_close(y, (D @ b.unsqueeze(-1)).squeeze(-1))
    assert gradcheck_in_values(sparse_mm, S, b)


def test_noncoalesced_coo():
    D = random_dense((N, M), seed=4)
    C = D.to_sparse_coo().coalesce()
    idx, val = C.indices(), C.values()
    A = torch.sparse_coo_tensor(torch.cat([idx, idx], 1), torch.cat([val, val]) / 2, D.shape)
    assert not A.is_coalesced()
    B = torch.randn(M, P, dtype=torch.float64)
    torch.testing.assert_close(sparse_mm(A, B), D @ B)


def test_noncontiguous_b(layout):
    D = random_dense((N, M), seed=5)
    Bt = torch.randn(P, M, dtype=torch.float64).requires_grad_()
    G = torch.randn(N, P, dtype=torch.float64)
    Y = sparse_mm(to_sparse(D, layout), Bt.T)
    torch.testing.assert_close(Y, D @ Bt.T.detach())
    (Y * G).sum().backward()
    torch.testing.assert_close(Bt.grad, (D.T @ G).T)


def test_empty_pattern_and_zero_columns(layout):
    Z = to_sparse(torch.zeros(N, M, dtype=torch.float64), layout).requires_grad_()
    B = torch.randn(M, P, dtype=torch.float64, requires_grad=True)
    Y = sparse_mm(Z, B)
    torch.testing.assert_close(Y, torch.zeros(N, P, dtype=torch.float64))
    Y.sum().backward()
    assert Z.grad._nnz() == 0
    torch.testing.assert_close(B.grad, torch.zeros_like(B))
    D = random_dense((N, M), seed=6)
    A = to_sparse(D, layout).requires_grad_()
    B0 = torch.zeros(M, 0, dtype=torch.float64, requires_grad=True)
    Y = sparse_mm(A, B0)
    assert Y.shape == (N, 0)
    Y.sum().backward()
    assert_sparse_grad(A.grad, A, torch.zeros(N, M, dtype=torch.float64))


def test_new_values_and_modified_indices_on_cached_pattern(layout):
    """The transposed pattern is cached per index tensors: new values on the same indices must be
    used, a new pattern must not hit the old entry, and indices of A changed in place must be
    seen (through their version counter)."""
    G = torch.randn(N, P, dtype=torch.float64)
    B = torch.randn(M, P, dtype=torch.float64)

    def check(A):
        Bv = B.clone().requires_grad_()
        (sparse_mm(A, Bv) * G).sum().backward()
        torch.testing.assert_close(Bv.grad, A.to_dense().T @ G)

    S = to_sparse(random_dense((N, M), seed=7), layout)
    check(with_values(S, S.values()))
    check(with_values(S, -3 * S.values()))  # same indices, new values
    check(to_sparse(random_dense((N, M), seed=8), layout))  # another pattern
    # one entry per row in column 1, then moved to column 0 in place (still sorted, unique)
    one = torch.ones(N, dtype=torch.float64)
    if layout == torch.sparse_coo:
        A = torch.sparse_coo_tensor(
            torch.stack([torch.arange(N), torch.ones(N, dtype=int)]), one, (N, M)
        ).coalesce()
        check(A)
        A._indices()[1].zero_()
    else:
        A = torch.sparse_csr_tensor(torch.arange(N + 1), torch.ones(N, dtype=int), one, (N, M))
        check(A)
        A.col_indices().zero_()
    assert bool((A.to_dense()[:, 0] == 1).all())
    check(A)


# ---------------------------------------------------------------------------- bad inputs
def test_bad_inputs():
    D = random_dense((N, M), seed=8)
    B = torch.randn(M, P, dtype=torch.float64)
    check_operand_errors(sparse_mm, D, B)  # A not a tensor, dense, CSC, integer; B's rows, ...
    with pytest.raises(TypeError, match="A: expected a torch.Tensor"):
        sparse_mm([[1.0]], B)
    with pytest.raises(TypeError, match="hybrid"):
        sparse_mm(D.to_sparse(1), B)
    with pytest.raises(ValueError, match="A: expected a 2 or 3-D sparse tensor"):
        sparse_mm(torch.ones(2, 2, 2, 2).to_sparse(), B)


def test_batch_mismatch(layout):
    A = to_sparse(random_dense((2, N, M), seed=9), layout)
    with pytest.raises(ValueError, match="B: expected batch size 2"):
        sparse_mm(A, torch.randn(3, M, P, dtype=torch.float64))
    with pytest.raises(ValueError, match="B: expected a 2 or 3-D tensor"):
        sparse_mm(A, torch.randn(M, dtype=torch.float64))


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr], ids=["coo", "csr"])
def test_index_check_reruns_after_in_place_change(layout):
    """The index-range check is remembered per index tensor, but an in-place change to the
    indices (a new version) is checked again and refused."""
    A = to_sparse(random_dense((N, M), seed=3), layout)
    B = torch.randn(M, P, dtype=A.dtype)
    sparse_mm(A, B)  # passes and is remembered
    sparse_mm(A, B)
    coo = layout == torch.sparse_coo
    idx = A._indices()[1] if coo else A.col_indices()
    idx[0] = M + 5  # out of range
    what = "COO indices of dimension 1" if coo else "column indices"
    with pytest.raises(ValueError, match=f"A: expected {what} in \\[0, {M}\\)"):
        sparse_mm(A, B)
