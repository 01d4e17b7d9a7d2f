"""Small test inputs of the bad-input audit: dense 3 x 3 matrices of known kind, right-hand
sides, and torch sparse tensors broken in one way each (unsorted, hybrid, out-of-range indices,
non-monotone row pointers)."""

from __future__ import annotations

import numpy as np
import torch

F64 = torch.float64


def mat(kind: str = "general", dtype=F64) -> torch.Tensor:
    """Small dense test matrices (3 x 3, except ``tall``: 4 x 3)."""
    M = {
        "general": [[4.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0]],
        "spd": [[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 5.0]],
        "lower": [[2.0, 0.0, 0.0], [1.0, 3.0, 0.0], [0.0, 1.0, 4.0]],
        "strict": [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        "singular": [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        "indefinite": [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, -1.0]],
            # b^T A b = 0 for rhs()[:, 0]
        "tall": [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 2.0]],
    }[kind]
    return torch.tensor(M, dtype=dtype)


def rhs(n: int = 3, k: int | None = 2, dtype=F64) -> torch.Tensor:
    full = torch.tensor([[1.0, 2.0], [0.0, 1.0], [-1.0, 0.5], [2.0, -1.0]], dtype=dtype)[:n]
    return full[:, 0].clone() if k is None else full[:, :k].clone()


def sp(D: torch.Tensor, layout: str = "csr") -> torch.Tensor:
    if layout == "coo":
        return D.to_sparse_coo().coalesce()
    return {"csr": D.to_sparse_csr, "csc": D.to_sparse_csc}[layout]()


def with_nan(D: torch.Tensor, where=(0, 0), value=float("nan")) -> torch.Tensor:
    D = D.clone()
    D[where] = value
    return D


def unsorted_csr(D: torch.Tensor) -> torch.Tensor:
    """CSR of ``D`` with the column indices of every row in descending order."""
    S = D.to_sparse_csr()
    crow, col, val = S.crow_indices(), S.col_indices().clone(), S.values().clone()
    for r in range(D.shape[0]):
        a, b = int(crow[r]), int(crow[r + 1])
        col[a:b], val[a:b] = col[a:b].flip(0), val[a:b].flip(0)
    return torch.sparse_csr_tensor(crow, col, val, D.shape)


def hybrid_coo(D: torch.Tensor) -> torch.Tensor:
    """``D`` as a COO tensor with one sparse and one dense dimension."""
    return torch.sparse_coo_tensor(torch.arange(D.shape[0])[None], D.clone(), D.shape)


def coo_out_of_range(D: torch.Tensor, dim: int = 1, value: int | None = None) -> torch.Tensor:
    S = D.to_sparse_coo().coalesce()
    idx = S.indices().clone()
    idx[dim, -1] = D.shape[dim] + 2 if value is None else value
    return torch.sparse_coo_tensor(idx, S.values().clone(), D.shape)


def csr_out_of_range(D: torch.Tensor, value: int | None = None) -> torch.Tensor:
    S = D.to_sparse_csr()
    col = S.col_indices().clone()
    col[-1] = D.shape[-1] + 4 if value is None else value
    return torch.sparse_csr_tensor(S.crow_indices().clone(), col, S.values().clone(), D.shape)


def csr_bad_crow(D: torch.Tensor) -> torch.Tensor:
    S = D.to_sparse_csr()
    crow = S.crow_indices().clone()
    crow[1] = crow[-1] + 3  # rises past nnz, then falls
    return torch.sparse_csr_tensor(crow, S.col_indices().clone(), S.values().clone(), D.shape)


def dense_of(x) -> torch.Tensor:
    return x.to_dense() if x.layout != torch.strided else x



def solved(kind="general", n_rhs=2):
    """Reference ``D^{-1} B`` of the test matrix ``mat(kind)`` and ``rhs()``."""
    return lambda call: torch.linalg.solve(mat(kind), rhs(3, n_rhs))


def inconsistent() -> torch.Tensor:
    """A right-hand side outside the range of ``mat("singular")`` (no solution exists)."""
    return torch.tensor([1.0, 0.0, 1.0], dtype=F64)


def math_log_sum_exp(xs) -> float:
    return float(np.log(np.sum(np.exp(np.asarray(xs)))))


def utils():
    import torch_api.utils as U

    return U


def few(fn) -> dict:
    """An iteration cap of 30 for a solver that cannot converge (a cheaper row)."""
    name = fn.__name__
    if name == "bicgstab":
        return {"settings": utils().BICGSTABSettings(matvec_max=60)}
    return {"maxiter": 30} if name == "lsmr" else {"max_iter": 30}


def minres_settings():
    return utils().MINRESSettings(minres_tolerance=1e-12)


def scipy_sparse():
    import scipy.sparse

    return scipy.sparse


def check(cond) -> None:
    assert cond
