"""Reference helpers shared by the test suite (dense references, sparse builders, comparisons)."""

from __future__ import annotations

import torch


def tol(dtype) -> dict:
    """Comparison tolerances for a torch dtype."""
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-5}


def random_dense(shape, density=0.3, dtype=torch.float64, seed=0, nnz_per_batch_equal=True):
    """A dense tensor with a random sparsity pattern (equal nnz per batch item when batched,
    as torch's batched CSR requires)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    if len(shape) == 3 and nnz_per_batch_equal:
        n, m = shape[-2:]
        k = max(1, int(density * n * m))
        mask = torch.zeros(shape, dtype=torch.bool)
        for b in range(shape[0]):
            idx = torch.randperm(n * m, generator=g)[:k]
            mask[b].view(-1)[idx] = True
    else:
        mask = torch.rand(*shape, generator=g) < density
    return values * mask


def to_sparse(D: torch.Tensor, layout, index_dtype=torch.int64) -> torch.Tensor:
    """``D`` as a COO or CSR tensor (CSR with the requested index dtype)."""
    if layout == torch.sparse_coo:
        return D.to_sparse_coo().coalesce()
    S = D.to_sparse_csr()
    return torch.sparse_csr_tensor(
        S.crow_indices().to(index_dtype), S.col_indices().to(index_dtype), S.values(), S.shape
    )


def pattern_mask(A: torch.Tensor) -> torch.Tensor:
    """Dense boolean mask of A's stored entries (including stored zeros)."""
    ones = A.detach().clone()
    if ones.layout == torch.sparse_coo:
        ones = torch.sparse_coo_tensor(ones._indices(), torch.ones_like(ones._values()), ones.shape)
    else:
        ones = torch.sparse_csr_tensor(
            ones.crow_indices(), ones.col_indices(), torch.ones_like(ones.values()), ones.shape
        )
    return ones.to_dense() != 0


def assert_sparse_grad(grad: torch.Tensor, A: torch.Tensor, dense_grad: torch.Tensor, **kw):
    """``grad`` has A's layout, shape and nnz, and equals ``dense_grad`` on A's pattern."""
    assert grad.layout == A.layout, (grad.layout, A.layout)
    assert grad.shape == A.shape
    assert grad._nnz() == A._nnz()
    mask = pattern_mask(A)
    torch.testing.assert_close(grad.to_dense(), dense_grad * mask, **kw)
