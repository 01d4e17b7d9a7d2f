"""What the pure-PyTorch iterative solvers share.

- :func:`as_operator`: a sparse matrix (COO/CSR, 2-D or batched 3-D), a dense matrix or a
  callable as one function ``X (..., n, k) -> A X``. Sparse operands go through
  :class:`~torch_api._pattern.Pattern` (CSR products; ``A^T`` via the cached transposed pattern,
  never torch's CSC path).
- :func:`as_block`: a right-hand side ``(n,)`` / ``(..., n, k)`` as a block ``(..., n, k)``.
- :func:`col_dot`, :func:`col_norm`, :func:`safe_div`: column-wise reductions, so that every
  solver treats the ``k`` right-hand sides as ``k`` independent systems in one sweep.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._pattern import Pattern
from .._validate import (
    FLOATS,
    SPARSE_LAYOUTS,
    check_indices,
    check_match,
    describe,
    type_error,
    value_error,
)

MatVec = Callable[[torch.Tensor], torch.Tensor]


def _sparse_matvec(M: torch.Tensor, batch: int | None) -> MatVec:
    """``X -> M X`` for a 2-D CSR ``M``; a batched pattern is block-diagonal over ``(b, n, k)``."""

    def matvec(X: torch.Tensor) -> torch.Tensor:
        if batch is not None:
            b, n, k = X.shape[-3:]
            if X.dim() != 3 or b != batch:
                raise value_error(
                    "right-hand side", X, f"a block (b={batch}, n, k) for a batched sparse operator"
                )
            return (M @ X.reshape(b * n, k)).reshape(b, -1, k)
        if X.dim() == 2:
            return M @ X
        n, k = X.shape[-2:]
        flat = X.movedim(-2, 0).reshape(n, -1)
        Y = M @ flat
        return Y.reshape(Y.shape[0], *X.shape[:-2], k).movedim(0, -2)

    return matvec


def as_operator(A: object, name: str, *, transpose: bool = False) -> MatVec:
    """``A`` (sparse COO/CSR, dense tensor or callable) as ``X -> A X`` (or ``A^T X``).

    A callable is returned as is (``transpose`` is then the caller's business).
    """
    if isinstance(A, torch.Tensor):
        if A.layout in SPARSE_LAYOUTS:
            if A.dim() not in (2, 3):
                raise value_error(name, A, "a 2-D or batched 3-D sparse matrix")
            if A.dtype not in FLOATS:
                raise value_error(name, A, "float32 or float64 values")
            if A.dense_dim() != 0:
                raise type_error(name, A, "a sparse tensor without dense (hybrid) dimensions")
            check_indices(name, A)
            pattern, values = Pattern.of(A.detach())
            M = pattern.csr_t(values) if transpose else pattern.csr(values)
            return _sparse_matvec(M, pattern.batch)
        if A.layout != torch.strided:
            raise type_error(name, A, "a sparse COO/CSR tensor, a dense tensor or a callable")
        if A.dim() < 2:
            raise value_error(name, A, "a matrix (at least 2-D)")
        if A.dtype not in FLOATS:
            raise value_error(name, A, "float32 or float64 values")
        D = A.detach().mT if transpose else A.detach()
        return lambda X: D @ X
    if callable(A):
        return A  # type: ignore[return-value]
    raise type_error(name, A, "a sparse COO/CSR tensor, a dense tensor or a callable")


def vector_operator(A: object, op: MatVec, vector: bool) -> MatVec:
    """For a vector right-hand side ``(n,)`` a callable ``A`` is called on vectors ``(n,)`` (as
    written for them: ``lambda x: d * x``), and its result made the ``(n, 1)`` block again."""
    if not vector or isinstance(A, torch.Tensor):
        return op
    return lambda X: _as_column(op(X[..., 0]))


def _as_column(y: object) -> object:
    return y.unsqueeze(-1) if isinstance(y, torch.Tensor) and y.dim() >= 1 else y


def broadcast_rhs(A: object, B: torch.Tensor) -> torch.Tensor:
    """A block ``B (..., n, k)`` expanded over the batch dimensions of a dense operator
    ``A (..., n, n)`` (a batch of matrices with one right-hand side: as ``A @ B`` broadcasts)."""
    if not isinstance(A, torch.Tensor) or A.layout != torch.strided or A.dim() <= 2:
        return B
    try:
        batch = torch.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"rhs: expected batch dimensions broadcastable with the operator's "
            f"{tuple(A.shape[:-2])}, got shape {tuple(B.shape)}."
        ) from None
    return B.expand(*batch, *B.shape[-2:])


def check_operator_dtype(
    name: str, A: object, rhs: torch.Tensor, rhs_name: str, *, square: bool = False
) -> None:
    """A tensor operator must share the rhs's dtype and device; with ``square``, it must be a
    square matrix with as many columns as ``rhs (..., n, k)`` has rows."""
    if isinstance(A, torch.Tensor):
        check_match(name, A, rhs_name, rhs)
        if square and A.dim() >= 2 and A.shape[-1] != A.shape[-2]:
            raise value_error(name, A, "a square matrix")
        if square and A.dim() >= 2 and A.shape[-1] != rhs.shape[-2]:
            raise ValueError(
                f"{rhs_name}: expected {A.shape[-1]} rows to match {name} of shape "
                f"{tuple(A.shape)}, got shape {tuple(rhs.shape)}."
            )


COMPLEX = (torch.complex64, torch.complex128)


def as_block(rhs: object, name: str = "rhs", complex_ok: bool = False) -> tuple[torch.Tensor, bool]:
    """``rhs`` as a block ``(..., n, k)``; also whether it was a vector ``(n,)``."""
    if not isinstance(rhs, torch.Tensor):
        raise type_error(name, rhs, "a torch.Tensor")
    if rhs.layout != torch.strided:
        raise type_error(name, rhs, "a dense (strided) tensor")
    if rhs.dtype not in FLOATS + (COMPLEX if complex_ok else ()):
        what = "float32, float64, complex64 or complex128" if complex_ok else "float32 or float64"
        raise value_error(name, rhs, f"{what} values")
    if rhs.dim() == 0:
        raise value_error(name, rhs, "a vector (n,) or a block (..., n, k)")
    if rhs.dim() == 1:
        return rhs.unsqueeze(-1), True
    return rhs, False


def checked(Y: object, like: torch.Tensor, what: str) -> torch.Tensor:
    """``Y`` (what an operator or preconditioner returned) must look like ``like``."""
    if not isinstance(Y, torch.Tensor) or Y.shape != like.shape or Y.dtype != like.dtype:
        raise ValueError(
            f"{what}: expected a tensor of shape {tuple(like.shape)} and dtype {like.dtype}, "
            f"got {describe(Y)}."
        )
    return Y


def start_from(
    op: MatVec, B: torch.Tensor, initial_guess: torch.Tensor | None,
    guess: Callable[[torch.Tensor], torch.Tensor] = torch.clone,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(X, R, matvecs)`` starting an iteration on ``B (..., n, k)``: zeros and ``B`` (no
    product) without ``initial_guess``, else the checked guess (``(n,)`` or shaped like ``B``)
    passed through ``guess``, and its residual ``B - A X``."""
    if initial_guess is None:
        return torch.zeros_like(B), B.clone(), 0
    X0 = initial_guess.unsqueeze(-1) if initial_guess.dim() == 1 else initial_guess
    X = guess(checked(X0, B, "initial_guess"))
    return X, B - checked(op(X), B, "matmul_closure(initial_guess)"), 1


def col_dot(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Column-wise inner products ``(..., 1, k)``."""
    return (X * Y).sum(-2, keepdim=True)


def col_norm(X: torch.Tensor) -> torch.Tensor:
    """Column-wise 2-norms ``(..., 1, k)`` (a fused square-and-sum: torch's vector_norm over the
    row dimension of an ``(n, k)`` block is several times slower); real for a complex ``X``."""
    if X.is_complex():
        return col_dot(X.real, X.real).add_(col_dot(X.imag, X.imag)).sqrt()
    return col_dot(X, X).sqrt()


def safe_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` where ``b != 0``, else 0."""
    nz = b != 0
    return torch.where(nz, a / torch.where(nz, b, torch.ones_like(b)), torch.zeros_like(a))


def worst(ratio: torch.Tensor) -> float:
    """The largest entry of a (non-empty) residual tensor, as a float."""
    return float(ratio.max()) if ratio.numel() else 0.0
