"""``sparse_triangular_solve``: ``X = op(A)^{-1} B`` for a sparse triangular ``A``.

``op(A)`` is ``A`` or, with ``transpose=True``, ``A^T``. Differentiation is
:func:`~torch_api._solve.implicit_solve`'s (one transposed triangular solve and an SDDMM at A's
nonzeros); this module supplies the two flat solves on the block-diagonal 2-D CSR of
:class:`~torch_api._pattern.Pattern`, so a batched ``A`` never reaches torch's batched CSR
triangular solve (which returns NaN in torch 2.13).

On CPU the solves are MKL's (``torch.triangular_solve`` with a CSR matrix), whose speed depends
on the triangle stored and the number of right-hand sides ``k``. Measured at 50^3 (torch 2.13's
MKL, a 2-core Intel Xeon; other CPUs may differ): a stored upper triangle is up to 3x faster
below 16 columns and a stored lower one up to 4x faster from 16 (``op(A) = L^T`` with
``k = 32``: 9.5 ms with ``L`` stored, 30 ms as ``U = L^T`` stored). A solve whose stored
triangle is the slower one for its ``k`` runs as the equivalent solve with the cached
transposed pattern: ``op(A) = (A^T)^T``.
"""

from __future__ import annotations

import functools

import torch

from bridge.internal.csr_checks import check_triangular, singular_error

from ._pattern import Pattern
from ._pattern_cache import cached, operation
from ._sddmm import sparse_scope
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse


def _check_triangular(pattern: Pattern, values: torch.Tensor, upper: bool, unitriangular: bool):
    """The structure (sorted CSR columns, which MKL needs; the side; a stored diagonal) depends on
    the indices alone: checked once per pattern and remembered with it. The diagonal's values are
    checked on every call, in O(n)."""
    key = f"triangular upper={upper} unitriangular={unitriangular}"
    diagonal = cached(key, pattern.source, pattern.shape, lambda: _structure(pattern, upper,
                                                                             unitriangular))
    if diagonal is not None:
        zero = int((values[diagonal] == 0).sum())
        if zero:
            raise singular_error(0, zero, diagonal.numel())


def _structure(pattern: Pattern, upper: bool, unitriangular: bool) -> torch.Tensor | None:
    rows, cols = pattern.rows(), pattern.col
    if pattern.nnz > 1 and not bool(((rows[1:] > rows[:-1]) | (cols[1:] > cols[:-1])).all()):
        raise ValueError(
            "A: expected CSR column indices sorted and distinct within each row (torch's CSR "
            "invariant, which MKL's triangular solve relies on), got unsorted or repeated ones; "
            "rebuild A from COO, e.g. C = A.to_sparse_coo(); torch.sparse_coo_tensor("
            "C.indices(), C.values(), C.shape).coalesce().to_sparse_csr() (a conversion of A "
            "alone keeps its order)."
        )
    return check_triangular_csr(
        pattern.crow, cols, None, shape=pattern.shape, upper=upper, unitriangular=unitriangular
    )


def check_triangular_csr(
    crow, col, values, *, shape, upper: bool, unitriangular: bool, ignore_diagonal: bool = False
) -> torch.Tensor | None:
    """:func:`bridge.internal.csr_checks.check_triangular` on torch tensors (NumPy views on the
    CPU, a host copy of the indices elsewhere; padding after ``crow[-1]`` ignored). Returns the
    positions of the stored diagonal entries (on ``crow``'s device), or None."""
    diagonal = check_triangular(crow, col, values, shape=tuple(shape), upper=upper,
                                unitriangular=unitriangular, ignore_diagonal=ignore_diagonal)
    return None if diagonal is None else torch.from_numpy(diagonal).to(crow.device)


def mkl_prefers_upper(k: int) -> bool:
    """Whether MKL's CSR triangular solve with ``k`` right-hand sides is faster with an upper
    triangle stored than with a lower one (the module docstring has the measurements)."""
    return k < 16


def _flat_solve(
    pattern: Pattern,
    values: torch.Tensor,
    B: torch.Tensor,
    *,
    upper: bool,
    unitriangular: bool,
    transpose: bool,
    check: bool = False,
) -> torch.Tensor:
    """Solve ``op(A) X = B`` on the flat block-diagonal CSR (``op(A) = A^T`` if ``transpose``)."""
    if check:
        _check_triangular(pattern, values, upper, unitriangular)
    if pattern.nnz == 0:  # only reachable with unitriangular=True: op(A) is the identity
        return B.clone()
    if pattern.device.type == "cpu" and upper != mkl_prefers_upper(B.shape[-1]):
        # op(A) X = B with A^T stored (see the module docstring)
        M, upper, transpose = pattern.csr_t(values), not upper, not transpose
    else:
        M = pattern.csr(values)
    return torch.triangular_solve(
        _dense_rows(B), M, upper=upper, transpose=transpose, unitriangular=unitriangular
    ).solution


def _dense_rows(B: torch.Tensor) -> torch.Tensor:
    """``B`` in a layout the sparse triangular solve reads correctly: row-major, or column-major
    with several columns. MKL's solve with one right-hand side reads the first ``n`` contiguous
    elements whatever the row stride (a column of a wider matrix would give a wrong answer), so
    any other layout (a column slice, a stride-0 expansion, a strided batch) is copied."""
    if B.is_contiguous() or (B.shape[1] > 1 and B.t().is_contiguous()):
        return B
    return B.contiguous()


@operation
def sparse_triangular_solve(
    A: torch.Tensor,
    B: torch.Tensor,
    upper: bool = True,
    unitriangular: bool = False,
    transpose: bool = False,
) -> torch.Tensor:
    """Solve ``A X = B`` (or ``A^T X = B``) for a sparse triangular ``A``, with sparse ``A.grad``.

    Args:
        A: sparse COO or CSR, ``(n, n)`` or batched ``(b, n, n)``, float32/float64; triangular
            on the side ``upper`` names. Entries on the other side are an error. With
            ``unitriangular=True`` the diagonal is implicitly 1 and must not be stored.
        B: dense ``(n,)``/``(n, k)``, or ``(b, n)``/``(b, n, k)`` for a batched ``A``.
        upper: whether ``A`` is upper (True) or lower (False) triangular.
        unitriangular: whether ``A`` has an implicit unit diagonal.
        transpose: solve ``A^T X = B`` instead.

    Returns:
        Dense ``X`` of B's shape. ``A.grad`` has A's layout, indices and nnz; ``B.grad`` is dense.

    Example:
        >>> A = torch.tensor([[2.0, 0.0], [1.0, 4.0]]).to_sparse_csr().requires_grad_()
        >>> x = sparse_triangular_solve(A, torch.ones(2), upper=False)
        >>> x.sum().backward()
    """
    with sparse_scope():
        A = check_sparse("A", A, square=True)
    B = check_rhs("B", B, A)
    flags = {"upper": upper, "unitriangular": unitriangular, "transpose": transpose}
    for name, flag in flags.items():
        if not isinstance(flag, (bool, int)):
            raise TypeError(f"{name}: expected a bool, got {type(flag).__name__} {flag!r}.")
    upper, unitriangular, transpose = bool(upper), bool(unitriangular), bool(transpose)
    opts = {"upper": upper, "unitriangular": unitriangular}
    solve = functools.partial(_flat_solve, transpose=transpose, check=True, **opts)
    transpose_solve = functools.partial(_flat_solve, transpose=not transpose, **opts)
    return implicit_solve(A, B, solve, transpose_solve, transposed=transpose)
