"""The sparse triangular factor of a Gaussian: constraint, products, solves, values, checks.

Shared by :mod:`torch_api._distributions`, :mod:`torch_api._distributions_native` and
:mod:`torch_api._kl`. Every product and solve is a torch_api op, so gradients reach the factor's
stored values as sparse gradients.
"""

from __future__ import annotations

import torch
from torch.distributions import constraints

from bridge.internal.gaussian import batch_shape as broadcast_batch
from bridge.internal.gaussian import check_event_size

from ._pattern import Pattern
from ._triangular_solve import sparse_triangular_solve
from ._validate import check_dense, check_match, check_sparse

NO_SAMPLE = torch.Size()  # the default sample_shape of the Gaussians' rsample


class SparseLowerTriangular(constraints.Constraint):
    """A sparse (COO/CSR, 2-D or batched) lower-triangular factor; O(nnz) checks.

    ``strict``: no stored diagonal (the unit diagonal of LDL^T is implicit).
    ``positive_diagonal``: every diagonal entry stored and positive (an LL^T factor).
    """

    event_dim = 2

    def __init__(self, strict: bool = False, positive_diagonal: bool = False):
        self.strict, self.positive_diagonal = strict, positive_diagonal
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        pattern, values = Pattern.of(value)
        rows, cols = pattern.rows(), pattern.col
        n, nb = value.shape[-1], pattern.nb
        batch = torch.div(rows, n, rounding_mode="floor")
        bad = (rows < cols) | ((rows == cols) if self.strict else False)
        if self.positive_diagonal:
            good_diag = (rows == cols) & (values > 0)
            count = torch.zeros(nb, dtype=torch.long, device=rows.device)
            count.index_add_(0, batch, good_diag.long())
            ok_diag = count == n
        else:
            ok_diag = torch.ones(nb, dtype=torch.bool, device=rows.device)
        nbad = torch.zeros(nb, dtype=torch.long, device=rows.device)
        nbad.index_add_(0, batch, bad.long())
        ok = (nbad == 0) & ok_diag
        return ok.reshape(value.shape[:-2])

    def __repr__(self) -> str:
        kind = "Strictly" if self.strict else ""
        extra = ", positive diagonal" if self.positive_diagonal else ""
        return f"Sparse{kind}LowerTriangular({extra.lstrip(', ')})"


def apply_to_vectors(op, A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``op(A, V)`` on every vector of ``v (..., [b], n)``, gathered as the columns of ``V``."""
    n = v.shape[-1]
    if A.dim() == 2:
        lead = v.shape[:-1]
        out = op(A, v.reshape(-1, n).transpose(0, 1))
        return out.transpose(0, 1).reshape(*lead, n)
    b = A.shape[0]
    lead = v.shape[:-2]
    out = op(A, v.reshape(-1, b, n).permute(1, 2, 0))
    return out.permute(2, 0, 1).reshape(*lead, b, n)


def lower_solve(unit: bool):
    return lambda A, B: sparse_triangular_solve(A, B, upper=False, unitriangular=unit)


def lower_solve_t(unit: bool):
    return lambda A, B: sparse_triangular_solve(
        A, B, upper=False, unitriangular=unit, transpose=True
    )


class ValuesOf(torch.autograd.Function):
    """A's stored values ``(nnz,)`` or ``(b, nnz)`` (COO coalesced), gradient back on A's pattern.

    Unlike ``A.values()`` it saves no tensors, so the node can be built once per distribution
    and backpropagated through by every later call.
    """

    @staticmethod
    def forward(ctx, A):
        if A.layout == torch.sparse_coo:
            ctx.index, ctx.shape = (A._indices(),), A.shape
            return A._values()
        ctx.index, ctx.shape = (A.crow_indices(), A.col_indices()), A.shape
        return A.values()

    @staticmethod
    def backward(ctx, g):
        if len(ctx.index) == 1:
            return torch.sparse_coo_tensor(ctx.index[0], g, ctx.shape, is_coalesced=True)
        return torch.sparse_csr_tensor(*ctx.index, g, ctx.shape)


def stored_diagonal(A: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``diag(A)`` ``(*batch, n)`` from the stored values (differentiably; 0 where absent)."""
    pattern, _ = Pattern.of(A)
    rows = pattern.rows()
    on = rows == pattern.col
    diag = values.new_zeros(pattern.nb * A.shape[-1])
    diag = diag.index_put((rows[on].long(),), values.reshape(-1)[on])
    return diag.reshape(*A.shape[:-2], -1)


def sum_log_diagonal(A: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``sum_i log A_ii`` per batch item, from the stored values (``-inf`` if one is missing)."""
    return stored_diagonal(A, values).log().sum(-1)


def check_parameters(loc, factor_name, factor, diagonal):
    loc = check_dense("loc", loc, ndims=(1, 2))
    n = loc.shape[-1]
    factor = check_sparse(factor_name, factor, square=True)
    check_match("loc", loc, factor_name, factor)
    check_event_size(factor_name, factor.shape, n)
    if factor.layout == torch.sparse_coo and not factor.is_coalesced():
        factor = factor.coalesce()
    if factor.layout == torch.sparse_csr and factor.requires_grad and not _columns_sorted(factor):
        raise ValueError(
            f"{factor_name}: expected CSR column indices sorted and distinct within each row for "
            "a factor that requires grad (torch's sparse_csr_tensor backward hands the gradient "
            "back in stored order, so the values' gradient would come back permuted), got "
            "unsorted ones; build it from the sorted columns and the values tensor permuted "
            "the same way (perm = argsort(row * n + col); values[perm]): any route through the "
            "unsorted tensor itself (values(), to_sparse_coo()) carries the permutation too."
        )
    if diagonal is not None:
        diagonal = check_dense("diagonal", diagonal, ndims=(1, 2))
        check_match("loc", loc, "diagonal", diagonal)
        check_event_size("diagonal", diagonal.shape, n)
    shapes = [loc.shape[:-1], factor.shape[:-2]] + (
        [diagonal.shape[:-1]] if diagonal is not None else []
    )
    batch_shape = torch.Size(broadcast_batch(factor_name, shapes))
    if len(factor.shape) == 3 and batch_shape != factor.shape[:1]:
        raise ValueError(
            f"loc, diagonal: expected batch size {factor.shape[0]} (or none) to match "
            f"{factor_name}, got batch shape {tuple(batch_shape)}."
        )
    return loc, factor, diagonal, batch_shape


def _columns_sorted(A: torch.Tensor) -> bool:
    """Whether a CSR matrix's columns increase strictly within every row, O(nnz)."""
    pattern, _ = Pattern.of(A)
    rows, col = pattern.rows(), pattern.col
    return not bool(((rows[1:] == rows[:-1]) & (col[1:] <= col[:-1])).any())


class GaussianBase:
    """What the sparse Gaussians share (on ``self._loc``), and the Distribution methods a
    multivariate normal cannot offer, each saying why."""

    @property
    def loc(self) -> torch.Tensor:
        return self._loc

    @property
    def mean(self) -> torch.Tensor:
        return self._loc.expand(self.batch_shape + self.event_shape)

    @property
    def mode(self) -> torch.Tensor:
        return self.mean

    def cdf(self, value):
        raise NotImplementedError(
            "cdf: a multivariate normal has no closed-form CDF (it is an n-dimensional integral "
            "over a box); estimate it from samples, e.g. (d.sample((N,)) <= x).all(-1).mean()."
        )

    def icdf(self, value):
        raise NotImplementedError(
            "icdf: the inverse CDF is defined for scalar distributions only; a multivariate "
            "normal has none. Use rsample for reparameterised draws."
        )

    def enumerate_support(self, expand=True):
        raise NotImplementedError(
            "enumerate_support: a normal distribution has continuous support "
            "(has_enumerate_support is False); there is nothing to enumerate."
        )
