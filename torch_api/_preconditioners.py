"""Preconditioners for the iterative solvers: ``jacobi``, ``ic0`` and ``ilu0``.

Each builds ``M`` from a sparse ``A`` once and returns a :class:`Preconditioner`, a callable
``R -> M^{-1} R`` on a vector ``(n,)`` or a block ``(n, k)`` (``(b, n, k)`` for a batched ``A``),
which is what ``linear_cg(..., preconditioner=)``, ``minres(..., preconditioner=)``,
``BICGSTABSettings(precon=)`` and, through its keyword arguments,
``sparse_generic_solve(A, B, solve=..., preconditioner=M)`` take:

- ``jacobi``: ``M = diag(A)``, a diagonal scaling.
- ``ic0``: ``M = L L^T`` with ``L`` the incomplete Cholesky factor of A's lower pattern (zero
  fill; SPD ``A``). Applied as two triangular solves.
- ``ilu0``: ``M = L U`` (zero fill, ``L`` unit lower, ``U`` upper; any square ``A`` whose
  pivots stay nonzero). Applied as two triangular solves.

The factors are computed on the host (:mod:`bridge.internal.incomplete`, numba) from a detached
copy of A's values and kept as CSR tensors on A's device; they are applied with
:func:`torch_api.sparse_triangular_solve`. A preconditioner is a constant: it changes how many
iterations a solve takes, never the gradient of :func:`torch_api.sparse_generic_solve` (which
is that of the exact solve). A batched ``A (b, n, n)`` is factored as its block-diagonal matrix
(each block's factor; one diagonal shift for all blocks if IC(0) needs one).

``M.T`` is the preconditioner of ``A^T`` (the same object for the symmetric ``jacobi`` and
``ic0``); give it to a ``transpose_solve`` of a non-symmetric ``A``.
"""

from __future__ import annotations

import torch

from bridge.internal import incomplete

from ._pattern import Pattern
from ._sddmm import sparse_scope
from ._triangular_solve import sparse_triangular_solve
from ._validate import check_sparse, value_error

__all__ = ["Preconditioner", "ic0", "ilu0", "jacobi"]


class Preconditioner:
    """``M^{-1}`` of a sparse ``A``, as a callable on vectors and blocks.

    Attributes:
        kind: ``"jacobi"``, ``"ic0"`` or ``"ilu0"``.
        shape: A's shape, ``(n, n)`` or ``(b, n, n)``.
        shift: the diagonal shift ``alpha`` of an IC(0) that broke down (``M`` then factors
            ``A + alpha diag(A)``); 0.0 otherwise.
        factors: the CSR factors (``(L,)`` for IC(0), ``(L, U)`` for ILU(0)) or the inverse
            diagonal ``(N, 1)`` for Jacobi; block-diagonal ``(b*n, b*n)`` for a batched ``A``.
    """

    def __init__(self, kind: str, shape: tuple[int, ...], factors: tuple, shift: float = 0.0,
                 transposed: bool = False):
        self.kind, self.shape, self.factors = kind, tuple(shape), factors
        self.shift, self.transposed = float(shift), transposed

    def __repr__(self) -> str:
        extra = f", shift={self.shift:g}" if self.shift else ""
        t = ", transposed" if self.transposed else ""
        return f"Preconditioner({self.kind!r}, shape={self.shape}{extra}{t})"

    @property
    def T(self) -> Preconditioner:
        """The preconditioner ``M^{-T}`` of ``A^T``."""
        if self.kind != "ilu0":
            return self
        return Preconditioner(self.kind, self.shape[:-2] + self.shape[-2:][::-1], self.factors,
                              self.shift, not self.transposed)

    def _flat(self, R: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        n = self.shape[-1]
        if len(self.shape) == 3:
            b = self.shape[0]
            if R.dim() == 2 and R.shape == (b, n):
                return R.reshape(b * n, 1), R.shape
            if R.dim() != 3 or R.shape[:2] != (b, n):
                raise value_error("R", R, f"a block ({b}, {n}, k) or ({b}, {n}) for a "
                                  "preconditioner of a batched matrix")
            return R.reshape(b * n, R.shape[-1]), R.shape
        if R.dim() == 1 and R.shape[0] == n:
            return R.unsqueeze(-1), R.shape
        if R.dim() < 2 or R.shape[-2] != n:
            raise value_error("R", R, f"a vector ({n},) or a block (..., {n}, k)")
        if R.dim() == 2:
            return R, R.shape
        return R.movedim(-2, 0).reshape(n, -1), R.shape

    def _unflat(self, X: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        if len(self.shape) == 3 or len(shape) <= 2:
            return X.reshape(shape)
        n = self.shape[-1]
        return X.reshape(n, *shape[:-2], shape[-1]).movedim(0, -2)

    def __call__(self, R: torch.Tensor) -> torch.Tensor:
        """``M^{-1} R`` for ``R (n,)``, ``(..., n, k)`` (``(b, n, k)`` or ``(b, n)`` batched)."""
        if not isinstance(R, torch.Tensor) or R.layout != torch.strided:
            from ._validate import type_error

            raise type_error("R", R, "a dense torch.Tensor")
        F0 = self.factors[0]
        if R.dtype != F0.dtype or R.device != F0.device:
            raise value_error("R", R, f"{F0.dtype} values on {F0.device} (the preconditioner's)")
        X, shape = self._flat(R)
        with torch.no_grad():
            X = self._apply(X.detach())
        return self._unflat(X, shape)

    def _apply(self, X: torch.Tensor) -> torch.Tensor:
        if self.kind == "jacobi":
            return self.factors[0] * X
        if self.kind == "ic0":
            (L,) = self.factors
            Y = sparse_triangular_solve(L, X, upper=False)
            return sparse_triangular_solve(L, Y, upper=False, transpose=True)
        L, U = self.factors
        if self.transposed:  # (L U)^{-T} = L^{-T} U^{-T}
            Y = sparse_triangular_solve(U, X, upper=True, transpose=True)
            return sparse_triangular_solve(L, Y, upper=False, unitriangular=True, transpose=True)
        Y = sparse_triangular_solve(L, X, upper=False, unitriangular=True)
        return sparse_triangular_solve(U, Y, upper=True)


def _host_csr(A: object, name: str):
    """``A`` validated, and its flat (block-diagonal) CSR pattern and values on the host."""
    with sparse_scope():
        A = check_sparse(name, A, square=True)
        pattern, values = Pattern.of(A.detach())
    crow = pattern.crow.cpu().numpy()
    col = pattern.col.cpu().numpy()
    vals = values.detach().cpu().to(torch.float64).numpy()
    return A, pattern, crow, col, vals


def _csr(A: torch.Tensor, ptr, idx, val, N: int) -> torch.Tensor:
    index_dtype = torch.int32 if N < 2**31 - 1 and len(idx) < 2**31 - 1 else torch.int64
    return torch.sparse_csr_tensor(
        torch.from_numpy(ptr).to(device=A.device, dtype=index_dtype),
        torch.from_numpy(idx).to(device=A.device, dtype=index_dtype),
        torch.from_numpy(val).to(device=A.device, dtype=A.dtype),
        (N, N),
    )


def jacobi(A: torch.Tensor) -> Preconditioner:
    """The Jacobi preconditioner ``M = diag(A)``.

    Args:
        A: sparse COO/CSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, with a stored
            nonzero diagonal.

    Returns:
        A :class:`Preconditioner` applying ``diag(A)^{-1}``.

    Example:
        >>> x, info = linear_cg(A, b, preconditioner=jacobi(A), return_info=True)
    """
    with sparse_scope():
        A = check_sparse("A", A, square=True)
        pattern, values = Pattern.of(A.detach())
    N = pattern.csr_shape[0]
    rows = pattern.rows()
    on_diag = rows == pattern.col
    diag = torch.zeros(N, dtype=A.dtype, device=A.device)
    diag.index_add_(0, rows[on_diag].long(), values.detach()[on_diag])
    zero = diag == 0
    if bool(zero.any()):
        first = int(torch.nonzero(zero)[0, 0])
        raise value_error("A", f"a zero (or missing) diagonal entry in row {first} of the "
                          f"(block-diagonal) matrix of shape {tuple(A.shape)}",
                          "a nonzero diagonal for the Jacobi preconditioner")
    return Preconditioner("jacobi", tuple(A.shape), ((1 / diag).unsqueeze(-1),))


def ic0(A: torch.Tensor) -> Preconditioner:
    """The incomplete Cholesky preconditioner ``M = L L^T`` with zero fill.

    Only A's lower triangle is read (``A`` must be symmetric positive definite with a positive
    diagonal). If a pivot breaks down, ``A + alpha diag(A)`` is factored instead (``alpha``
    from 1e-3, doubling; ``M.shift``).

    Args:
        A: sparse COO/CSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64.

    Returns:
        A :class:`Preconditioner` applying ``(L L^T)^{-1}`` by two triangular solves.

    Example:
        >>> x = linear_cg(A, b, preconditioner=ic0(A))
    """
    A, pattern, crow, col, vals = _host_csr(A, "A")
    N = pattern.csr_shape[0]
    ptr, idx, val, alpha = incomplete.ic0(crow, col, vals, (N, N), name="A")
    return Preconditioner("ic0", tuple(A.shape), (_csr(A, ptr, idx, val, N),), alpha)


def ilu0(A: torch.Tensor) -> Preconditioner:
    """The incomplete LU preconditioner ``M = L U`` with zero fill.

    Args:
        A: sparse COO/CSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, with a stored
            diagonal; a zero pivot is a ValueError.

    Returns:
        A :class:`Preconditioner` applying ``(L U)^{-1}`` by two triangular solves (``.T``:
        the one of ``A^T``).

    Example:
        >>> x = bicgstab(A, b, settings=BICGSTABSettings(precon=ilu0(A)))
    """
    A, pattern, crow, col, vals = _host_csr(A, "A")
    N = pattern.csr_shape[0]
    (lp, li, lv), (up, ui, uv) = incomplete.ilu0(crow, col, vals, (N, N), name="A")
    factors = (_csr(A, lp, li, lv, N), _csr(A, up, ui, uv, N))
    return Preconditioner("ilu0", tuple(A.shape), factors)
