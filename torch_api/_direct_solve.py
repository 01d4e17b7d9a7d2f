"""``sparse_cholesky_solve`` and ``sparse_lu_solve``: ``X = A^{-1} B`` by a sparse direct
factorisation, with ``A.grad`` on A's pattern.

Differentiation is :func:`~torch_api._solve.implicit_solve`'s (``dB = A^{-T} G``,
``dA = -dB X^T`` at A's nonzeros, to any order); the transposed solve of the backward reuses the
forward's factorisation (:class:`~torch_api._direct.Factors`). The factorisations and their
checks are :mod:`bridge.internal.factor`'s.
"""

from __future__ import annotations

import torch

from ._direct import Factors
from ._pattern_cache import operation
from ._sddmm import sparse_scope
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse


def _direct_solve(kind: str, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    with sparse_scope():
        A = check_sparse("A", A, square=True)
    B = check_rhs("B", B, A)
    factors = Factors(kind)
    solve = lambda pattern, values, Bf: factors.solve(pattern, values, Bf)
    transpose_solve = lambda pattern, values, Gf: factors.solve(pattern, values, Gf, True)
    return implicit_solve(A, B, solve, transpose_solve)


@operation
def sparse_cholesky_solve(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Solve ``A X = B`` for a sparse symmetric positive definite ``A``; ``A.grad`` keeps A's
    pattern.

    Args:
        A: sparse COO or CSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, symmetric
            positive definite (both triangles stored). Otherwise a ValueError naming ``A``.
        B: dense ``(n,)``/``(n, k)`` (``(b, n)``/``(b, n, k)`` for a batched ``A``).

    Returns:
        ``X`` shaped like ``B``. Each stored value of ``A`` is its own parameter: ``A.grad`` is
        ``-A^{-1} G X^T`` at A's nonzeros (not symmetrised).

    Example:
        >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]]).to_sparse_csr().requires_grad_()
        >>> sparse_cholesky_solve(A, torch.ones(2)).sum().backward()
    """
    return _direct_solve("cholesky", A, B)


@operation
def sparse_lu_solve(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Solve ``A X = B`` for a sparse nonsingular square ``A`` by LU with partial pivoting;
    ``A.grad`` keeps A's pattern.

    Args:
        A: sparse COO or CSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, nonsingular
            (a singular one raises a ValueError naming ``A``).
        B: dense ``(n,)``/``(n, k)`` (``(b, n)``/``(b, n, k)`` for a batched ``A``).

    Returns:
        ``X`` shaped like ``B``; ``A.grad`` has A's layout, indices and nnz.

    Example:
        >>> A = torch.tensor([[0.0, 2.0], [1.0, 3.0]]).to_sparse_csr().requires_grad_()
        >>> sparse_lu_solve(A, torch.ones(2)).sum().backward()
    """
    return _direct_solve("lu", A, B)
