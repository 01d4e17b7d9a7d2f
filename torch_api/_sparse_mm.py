"""``sparse_mm``: sparse @ dense with a gradient on A's pattern.

For ``Y = A @ B`` with upstream gradient ``G``: ``dA = (G @ B^T)`` sampled at A's nonzeros and
``dB = A^T @ G`` (a CSR product with the cached transposed pattern).
"""

from __future__ import annotations

import torch

from ._pattern import Pattern
from ._validate import check_dense, check_match, check_sparse


class SparseMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        pattern, values = Pattern.of(A)
        Bf, _ = pattern.flat_rhs(B)
        ctx.pattern = pattern
        ctx.save_for_backward(values, Bf)
        return pattern.unflat(pattern.csr(values) @ Bf, False, A.shape[-2])

    @staticmethod
    def backward(ctx, G: torch.Tensor):
        pattern: Pattern = ctx.pattern
        values, Bf = ctx.saved_tensors
        Gf, _ = pattern.flat_rhs(G.contiguous())
        dA = pattern.wrap(pattern.sddmm(Gf, Bf)) if ctx.needs_input_grad[0] else None
        dB = None
        if ctx.needs_input_grad[1]:
            dB = pattern.unflat(pattern.csr_t(values) @ Gf, False, pattern.shape[-1])
        return dA, dB


def sparse_mm(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Sparse-dense product ``A @ B`` whose gradient for ``A`` keeps A's pattern.

    Args:
        A: sparse COO or CSR, ``(n, m)`` or batched ``(b, n, m)``, float32/float64.
        B: dense ``(m, p)`` or ``(b, m, p)``, same dtype and device as ``A``.

    Returns:
        Dense ``(n, p)`` or ``(b, n, p)``. ``A.grad`` has A's layout, indices and nnz.

    Example:
        >>> A = torch.eye(3).to_sparse_csr().requires_grad_()
        >>> sparse_mm(A, torch.ones(3, 2)).sum().backward()
    """
    A = check_sparse("A", A)
    B = check_dense("B", B, ndims=(A.dim(),))
    check_match("A", A, "B", B)
    if A.dim() == 3 and B.shape[0] != A.shape[0]:
        raise ValueError(f"B: expected batch size {A.shape[0]} to match A, got {B.shape[0]}.")
    if B.shape[-2] != A.shape[-1]:
        raise ValueError(
            f"B: expected {A.shape[-1]} rows to match A's shape {tuple(A.shape)}, "
            f"got shape {tuple(B.shape)}."
        )
    return SparseMM.apply(A, B)
