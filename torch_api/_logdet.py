"""``sparse_logdet`` and ``sparse_slogdet``: log-determinants of sparse matrices whose gradient
``d log|det A| / dA = A^{-T}`` is evaluated at A's nonzeros only.

The forward factors each block (:class:`~torch_api._direct.Factors`); the gradient is the
selected inverse of that factorisation (Takahashi's recursion, :mod:`bridge.internal.factor`),
never the dense inverse. Forward mode: ``d log|det A| = sum(A^{-T} * dA)`` over the nonzeros.
Second derivatives need entries of ``A^{-1}`` off the pattern (``-A^{-T} dA^T A^{-T}``), which
the sparse factorisation does not give: differentiating the gradient again raises.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from ._direct import Factors
from ._pattern import Pattern
from ._pattern_cache import operation
from ._sddmm import sparse_scope, to_values
from ._validate import check_sparse


class SlogdetResult(NamedTuple):
    """``(sign, logabsdet)``, as ``torch.linalg.slogdet`` returns."""

    sign: torch.Tensor
    logabsdet: torch.Tensor


class _LogAbsDet(torch.autograd.Function):
    """``values -> (log|det A_i|)_i`` of each block; a second output carries the signs."""

    @staticmethod
    def forward(values, pattern: Pattern, factors: Factors):
        with torch.no_grad():
            out = [F.slogdet() for F in factors.of(pattern, values)]
        sign = torch.tensor([s for s, _ in out], dtype=values.dtype, device=values.device)
        logabs = torch.tensor([v for _, v in out], dtype=values.dtype, device=values.device)
        return logabs, sign

    @staticmethod
    def setup_context(ctx, inputs, output):
        values, ctx.pattern, ctx.factors = inputs
        ctx.save_for_backward(values)
        ctx.save_for_forward(values)
        ctx.mark_non_differentiable(output[1])

    @staticmethod
    def _blocks(ctx) -> torch.Tensor:
        """The block (batch item) of each nonzero of the flat pattern."""
        n, crow = ctx.pattern.shape[-1], ctx.pattern.crow
        counts = (crow[n::n] - crow[:-1:n]).long() if n else crow.new_zeros(ctx.pattern.nb)
        return torch.repeat_interleave(torch.arange(ctx.pattern.nb, device=crow.device), counts,
                                       output_size=ctx.pattern.nnz)

    @staticmethod
    def backward(ctx, g, _):
        (values,) = ctx.saved_tensors
        with torch.no_grad():
            Z = ctx.factors.inverse_transposed(ctx.pattern, values)
        if torch.is_grad_enabled():  # create_graph: Z's own derivative is not available
            Z = _Refuse.apply(Z, values)
        return g[_LogAbsDet._blocks(ctx).to(g.device)] * Z, None, None

    @staticmethod
    def jvp(ctx, dv, *_):
        (values,) = ctx.saved_tensors
        Z = ctx.factors.inverse_transposed(ctx.pattern, values)
        d = Z.new_zeros(ctx.pattern.nb)
        return d.index_add_(0, _LogAbsDet._blocks(ctx).to(Z.device), Z * dv), None


class _Refuse(torch.autograd.Function):
    """``Z`` (the selected inverse) as a function of the values that refuses to be
    differentiated: its derivative needs ``A^{-1}`` off the pattern."""

    @staticmethod
    def forward(Z, values):
        return Z.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    @once_differentiable
    def backward(ctx, _):
        raise NotImplementedError(
            "sparse_logdet / sparse_slogdet: the second derivative of a log-determinant needs "
            "entries of A^{-1} off A's pattern, which the sparse factorisation does not give; "
            "differentiate it once (create_graph=False), or use a dense torch.logdet for "
            "Hessians of small matrices."
        )


def _logabsdet(A: torch.Tensor, kind: str):
    with sparse_scope():
        A = check_sparse("A", A, square=True)
        pattern, values = Pattern.of(A)
    v = to_values(A, pattern, values)
    logabs, sign = _LogAbsDet.apply(v, pattern, Factors(kind))
    if pattern.batch is None:
        logabs, sign = logabs[0], sign[0]
    return logabs, sign


@operation
def sparse_logdet(A: torch.Tensor) -> torch.Tensor:
    """``log det A`` of a sparse symmetric positive definite ``A``; ``A.grad`` keeps A's pattern.

    Args:
        A: sparse COO or CSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, symmetric
            positive definite (otherwise a ValueError naming ``A``).

    Returns:
        A scalar (``(b,)`` batched). ``A.grad`` is ``A^{-T}`` (times the upstream gradient) at
        A's nonzeros, from the selected inverse of A's Cholesky-type factorisation.

    Example:
        >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]]).to_sparse_csr().requires_grad_()
        >>> sparse_logdet(A).backward()
    """
    return _logabsdet(A, "cholesky")[0]


@operation
def sparse_slogdet(A: torch.Tensor) -> SlogdetResult:
    """``(sign, log|det A|)`` of a sparse square ``A`` (LU with partial pivoting).

    Args:
        A: sparse COO or CSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, nonsingular
            (a singular one raises a ValueError naming ``A``).

    Returns:
        ``SlogdetResult(sign, logabsdet)``, scalars (``(b,)`` batched); ``logabsdet``'s
        gradient is ``A^{-T}`` at A's nonzeros, ``sign`` is not differentiable.

    Example:
        >>> A = torch.tensor([[0.0, 2.0], [1.0, 3.0]]).to_sparse_csr().requires_grad_()
        >>> sign, logabsdet = sparse_slogdet(A)
        >>> logabsdet.backward()
    """
    logabs, sign = _logabsdet(A, "lu")
    return SlogdetResult(sign, logabs)
