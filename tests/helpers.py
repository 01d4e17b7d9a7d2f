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


def solve_matrix(n: int, kind: str = "general", dtype=torch.float64, seed: int = 0, density=0.3):
    """A dense, well-conditioned ``(n, n)`` test matrix with a random sparse pattern.

    ``kind``: ``"general"`` (non-symmetric, diagonally dominant), ``"spd"`` (symmetric positive
    definite), ``"lower"`` / ``"upper"`` (triangular with a dominant diagonal).
    """
    R = random_dense((n, n), density=density, seed=seed)
    if kind == "spd":
        R = 0.5 * (R + R.T)
    elif kind == "lower":
        R = torch.tril(R, -1)
    elif kind == "upper":
        R = torch.triu(R, 1)
    elif kind != "general":
        raise ValueError(f"kind: unknown {kind!r}")
    R.fill_diagonal_(0.0)
    R += torch.diag(R.abs().sum(1) + R.abs().sum(0) + 1.0)
    return R.to(dtype)


def dense_solve_reference(D: torch.Tensor, B: torch.Tensor, G: torch.Tensor):
    """``X = D^{-1} B`` and the dense-autograd gradients ``(dD, dB)`` of ``sum(G * X)``."""
    D = D.detach().clone().requires_grad_()
    B = B.detach().clone().requires_grad_()
    X = torch.linalg.solve(D, B)
    (X * G).sum().backward()
    return X.detach(), D.grad, B.grad
