"""``sparse_mm``: sparse @ dense with a gradient on A's pattern.

For ``Y = A @ B`` with upstream gradient ``G``: ``dA = (G @ B^T)`` sampled at A's nonzeros and
``dB = A^T @ G`` (a CSR product with the cached transposed pattern): the differentiable blocks of
:mod:`torch_api._sddmm`, so the product differentiates to any order, in reverse and forward mode
and under ``vmap``. A vector ``B`` (``(m,)``, or ``(b, m)`` for a batched ``A``) is one column
and gives a vector.

Memory layouts: the CSR product and ``sampled_addmm`` read any strides of ``B`` and ``G``
correctly on the CPU, so ``B`` (a column slice, a transposed or expanded view) is used as given;
the upstream gradient is made contiguous once (autograd may hand over a stride-0 expansion, e.g.
from ``.sum()``), which is the layout every backend's kernels accept.
"""

from __future__ import annotations

import torch

from ._pattern import Pattern
from ._pattern_cache import operation
from ._sddmm import pattern_mm, sparse_scope, to_values
from ._validate import check_rhs, check_sparse


@operation
def sparse_mm(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Sparse-dense product ``A @ B`` whose gradient for ``A`` keeps A's pattern.

    Args:
        A: sparse COO or CSR, ``(n, m)`` or batched ``(b, n, m)``, float32/float64.
        B: dense ``(m, p)`` or a vector ``(m,)``; ``(b, m, p)`` or ``(b, m)`` for a batched
            ``A``. Same dtype and device as ``A``; any strides.

    Returns:
        Dense ``(n, p)`` / ``(n,)``, or ``(b, n, p)`` / ``(b, n)``. ``A.grad`` has A's layout,
        indices and nnz.

    Example:
        >>> A = torch.eye(3).to_sparse_csr().requires_grad_()
        >>> sparse_mm(A, torch.ones(3, 2)).sum().backward()
        >>> sparse_mm(A.detach(), torch.ones(3)).shape
        torch.Size([3])
    """
    with sparse_scope():
        A = check_sparse("A", A)
        pattern, values = Pattern.of(A)
    B = check_rhs("B", B, A)
    Bf, vector = pattern.flat_rhs(B)
    Y = pattern_mm(pattern, to_values(A, pattern, values), Bf)
    return pattern.unflat(Y, vector, A.shape[-2])


def sparse_mm_t(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``A^T @ X`` for an already validated sparse ``A`` (``X`` of ``A.shape[-2]`` rows), with
    the same gradients as :func:`sparse_mm` (any order; internal, no validation)."""
    pattern, values = Pattern.of(A)
    Xf, vector = pattern.flat_rhs(X)
    Y = pattern_mm(pattern, to_values(A, pattern, values), Xf, transpose=True)
    return pattern.unflat(Y, vector, A.shape[-1])
