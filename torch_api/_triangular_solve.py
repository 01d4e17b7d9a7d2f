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

import numpy as np
import torch

from ._pattern import Pattern, _cached
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse


def _check_triangular(pattern: Pattern, values: torch.Tensor, upper: bool, unitriangular: bool):
    """The structure (sorted CSR columns, which MKL needs; the side; a stored diagonal) depends on
    the indices alone: checked once per pattern and remembered with it. The diagonal's values are
    checked on every call, in O(n)."""
    key = f"triangular upper={upper} unitriangular={unitriangular}"
    diagonal = _cached(key, pattern.source, pattern.shape, lambda: _structure(pattern, upper,
                                                                             unitriangular))
    if diagonal is not None:
        zero = int((values[diagonal] == 0).sum())
        if zero:
            raise _singular(0, zero, diagonal.numel())


def _structure(pattern: Pattern, upper: bool, unitriangular: bool) -> torch.Tensor | None:
    rows, cols = pattern.rows(), pattern.col
    if pattern.nnz > 1 and not bool(((rows[1:] > rows[:-1]) | (cols[1:] > cols[:-1])).all()):
        raise ValueError(
            "A: expected CSR column indices sorted and distinct within each row (torch's CSR "
            "invariant, which MKL's triangular solve relies on), got unsorted or repeated ones; "
            "rebuild A, e.g. A.to_sparse_coo().coalesce().to_sparse_csr()."
        )
    return check_triangular_csr(
        pattern.crow, cols, None, shape=pattern.shape, upper=upper, unitriangular=unitriangular
    )


def _singular(missing: int, zero: int, n: int) -> ValueError:
    return ValueError(
        f"A: expected a nonzero stored diagonal (unitriangular=False), got {missing} missing "
        f"and {zero} zero diagonal entries out of {n}: the matrix is singular."
    )


def check_triangular_csr(
    crow, col, values, *, shape, upper: bool, unitriangular: bool, ignore_diagonal: bool = False
) -> torch.Tensor | None:
    """O(nnz) triangularity checks on a flat, row-sorted CSR pattern (torch tensors; padding after
    ``crow[-1]`` ignored, duplicates allowed; NumPy does the work on CPU, where it is
    several times faster for these small passes); positions in the caller's coordinates.
    ``ignore_diagonal``: check the side only (a solver that ignores the stored diagonal);
    ``values=None``: the structure only. Returns the positions of the stored diagonal entries
    when a diagonal is required (``unitriangular=False``), else None."""
    n = shape[-1]
    nv = int(crow[-1])
    N = crow.shape[0] - 1
    if crow.device.type == "cpu":
        crow, cols = crow.numpy(), col[:nv].numpy()
        values = None if values is None else values[:nv].numpy()
        if ignore_diagonal and _side_ok(crow, cols, upper):
            return None
        passed, diagonal = _sorted_fast_path(crow, cols, values, upper, unitriangular,
                                             ignore_diagonal)
        if passed:
            return diagonal
        rows = np.repeat(np.arange(N, dtype=cols.dtype), np.diff(crow))
        first = lambda mask: int(np.argmax(mask))
        rows_or_n = lambda mask: np.where(mask, rows, N)
        flags = np.zeros(N + 1, dtype=bool)
    else:
        cols, values = col[:nv], None if values is None else values[:nv]
        rows = torch.repeat_interleave(
            torch.arange(N, device=cols.device, dtype=cols.dtype),
            crow[1:] - crow[:-1],
            output_size=nv,
        )
        first = lambda mask: int(torch.argmax(mask.to(torch.uint8)))
        rows_or_n = lambda mask: torch.where(mask, rows, N).long()
        flags = torch.zeros(N + 1, dtype=torch.bool, device=cols.device)

    def where(mask) -> str:
        k = first(mask)
        r, c = int(rows[k]), int(cols[k])
        return f"({r}, {c})" if len(shape) == 2 else f"({r // n}, {r % n}, {c % n})"

    wrong = rows > cols if upper else rows < cols
    if bool(wrong.any()):
        side = "below" if upper else "above"
        raise ValueError(
            f"A: expected {'an upper' if upper else 'a lower'}-triangular matrix (upper={upper}), "
            f"got {int(wrong.sum())} stored entries {side} the diagonal, e.g. at {where(wrong)}."
        )
    if ignore_diagonal:
        return None
    diag = rows == cols
    if unitriangular:
        if bool(diag.any()):
            raise ValueError(
                "A: expected a strictly triangular matrix with unitriangular=True (the unit "
                f"diagonal is implicit), got {int(diag.sum())} stored diagonal entries, "
                f"e.g. at {where(diag)}."
            )
        return None
    zero = 0 if values is None else int((diag & (values == 0)).sum())
    flags[rows_or_n(diag)] = True  # rows that store a diagonal entry
    missing = N - int(flags[:N].sum())
    if missing or zero:
        raise _singular(missing, zero, N)
    if isinstance(diag, np.ndarray):
        return torch.from_numpy(np.flatnonzero(diag))
    return torch.nonzero(diag).flatten()


def columns_sorted(crow: np.ndarray, cols: np.ndarray) -> bool:
    """Whether the columns increase strictly within each row (``cols`` without padding)."""
    if cols.size < 2:
        return True
    step = cols[1:] > cols[:-1]
    starts = crow[1:-1]
    step[starts[(starts > 0) & (starts < cols.size)] - 1] = True  # a new row starts anywhere
    return bool(step.all())


def _sorted_fast_path(crow, cols, values, upper, unitriangular, ignore_diagonal):
    """Valid input in one O(nnz) pass: with columns strictly increasing within each row, a lower
    row's last entry (an upper row's first) is its largest (smallest) column, so the side and
    the diagonal are read there in O(n). Returns ``(True, diagonal positions or None)`` when
    every check passes, ``(False, None)`` when the full pass must find and name the failure."""
    if not columns_sorted(crow, cols):
        return False, None
    N = crow.size - 1
    nonempty = crow[1:] > crow[:-1]
    edge = crow[:-1] if upper else crow[1:] - 1  # the first / last entry of each row
    rows = np.flatnonzero(nonempty)
    c = cols[edge[nonempty]]
    if not bool((c >= rows).all() if upper else (c <= rows).all()):
        return False, None
    if ignore_diagonal:
        return True, None
    if unitriangular:
        return bool((c != rows).all()), None
    if rows.size != N or not bool((c == rows).all()):
        return False, None
    if values is not None and not bool((values[edge] != 0).all()):
        return False, None
    return True, torch.from_numpy(edge.astype(np.int64))


def _side_ok(crow: np.ndarray, cols: np.ndarray, upper: bool) -> bool:
    """Every stored entry on the right side of the diagonal, in one gather and no row array:
    entry ``k`` of row ``r`` (``crow[r] <= k < crow[r + 1]``) has ``cols[k] <= r`` exactly when
    ``crow[cols[k]] <= k``, and ``cols[k] >= r`` exactly when ``crow[cols[k] + 1] > k``."""
    k = np.arange(cols.size, dtype=crow.dtype)
    if upper:
        return bool((crow[cols + 1] > k).all())
    return bool((crow[cols] <= k).all())


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
        B, M, upper=upper, transpose=transpose, unitriangular=unitriangular
    ).solution


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
