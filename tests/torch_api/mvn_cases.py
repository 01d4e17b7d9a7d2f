"""Cases and dense references of the sparse Gaussian tests (test_distributions, test_kl,
test_distributions_protocol): a random lower factor per parameterisation, its dense
MultivariateNormal and the dense reparameterisation."""

from __future__ import annotations

import torch
from torch.distributions import MultivariateNormal

from torch_api.distributions import SparseMultivariateNormal

PARAMS = ["scale_llt", "scale_ldlt", "precision_llt", "precision_ldlt"]
F64 = torch.float64


def sparsify(D: torch.Tensor, layout) -> torch.Tensor:
    return D.to_sparse_coo().coalesce() if layout == torch.sparse_coo else D.to_sparse_csr()


def make_case(param, layout, batch, n=7, seed=0, dtype=F64):
    """Dense parameters (loc, D or None, lower factor) and the sparse distribution's kwargs."""
    g = torch.Generator().manual_seed(seed)
    lead = () if batch is None else (batch,)
    ldlt = param.endswith("ldlt")
    mask = (torch.rand(n, n, generator=g) < 0.4).tril(-1)  # one pattern for every batch item
    L = 0.4 * torch.randn(*lead, n, n, generator=g, dtype=F64) * mask
    if not ldlt:
        L = L + torch.diag_embed(1.0 + torch.rand(*lead, n, generator=g, dtype=F64))
    D = 0.5 + torch.rand(*lead, n, generator=g, dtype=F64) if ldlt else None
    loc = torch.randn(*lead, n, generator=g, dtype=F64)
    L, loc = L.to(dtype), loc.to(dtype)
    D = D.to(dtype) if D is not None else None
    return loc, D, L


def dense_unit(L, D):
    """The dense factor of the full matrix: ``L`` (LL^T) or ``I + L`` (LDL^T)."""
    return L if D is None else L + torch.eye(L.shape[-1], dtype=L.dtype)


def dense_reference(param, loc, D, L) -> MultivariateNormal:
    U = dense_unit(L, D)
    M = U @ U.transpose(-1, -2) if D is None else U @ torch.diag_embed(D) @ U.transpose(-1, -2)
    if param.startswith("scale"):
        if D is None:
            return MultivariateNormal(loc, scale_tril=U)
        return MultivariateNormal(loc, covariance_matrix=M)
    return MultivariateNormal(loc, precision_matrix=M)


def dense_transform(param, D, L, eps):
    """``x - loc`` for a standard normal ``eps`` (..., [b], n), from the dense parameters."""
    U = dense_unit(L, D)
    e = eps.unsqueeze(-1)
    if param.startswith("scale"):
        s = e if D is None else D.sqrt().unsqueeze(-1) * e
        return (U @ s).squeeze(-1)
    s = e if D is None else D.rsqrt().unsqueeze(-1) * e
    return torch.linalg.solve_triangular(U.transpose(-1, -2), s, upper=True).squeeze(-1)


def sparse_dist(param, loc, D, Ls, **kw):
    key = "scale_tril" if param.startswith("scale") else "precision_tril"
    return SparseMultivariateNormal(loc, diagonal=D, **{key: Ls}, **kw)
