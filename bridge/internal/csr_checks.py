"""NumPy structure checks of a CSR pattern, shared by torch_api and jax_api (NumPy only).

A triangular solve needs the stored entries on one side of the diagonal, columns sorted within
each row (MKL relies on it) and, unless the diagonal is implicit, a stored nonzero diagonal. Valid
input passes in one O(nnz) pass (:func:`sorted_fast_path`); only a failing or unsorted pattern
takes the full entrywise pass that finds and names the first bad entry.

Arrays: ``crow (N + 1,)`` row pointers of a flat (block-diagonal when batched) pattern,
``cols (nnz,)`` without padding, ``values (nnz,)`` or None. :func:`check_triangular` also takes
any array NumPy can read or that has ``.detach().cpu()`` (a torch tensor, on any device), and
ignores padding after ``crow[-1]``. Positions in messages are in the
caller's coordinates: ``(row, col)`` or ``(batch, row, col)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_triangular", "columns_sorted", "side_ok", "singular_error", "sorted_fast_path"]


def columns_sorted(crow: np.ndarray, cols: np.ndarray) -> bool:
    """Whether the columns increase strictly within each row (``cols`` without padding)."""
    if cols.size < 2:
        return True
    step = cols[1:] > cols[:-1]
    starts = crow[1:-1]
    step[starts[(starts > 0) & (starts < cols.size)] - 1] = True  # a new row starts anywhere
    return bool(step.all())


def side_ok(crow: np.ndarray, cols: np.ndarray, upper: bool) -> bool:
    """Every stored entry on the right side of the diagonal, in one gather and no row array:
    entry ``k`` of row ``r`` (``crow[r] <= k < crow[r + 1]``) has ``cols[k] <= r`` exactly when
    ``crow[cols[k]] <= k``, and ``cols[k] >= r`` exactly when ``crow[cols[k] + 1] > k``."""
    k = np.arange(cols.size, dtype=crow.dtype)
    if upper:
        return bool((crow[cols + 1] > k).all())
    return bool((crow[cols] <= k).all())


def sorted_fast_path(crow, cols, values, upper: bool, unitriangular: bool, ignore_diagonal: bool):
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
    return True, edge.astype(np.int64)


def _host(x) -> np.ndarray:
    """A NumPy view (CPU) or copy of an array; a torch tensor is read through ``.cpu()``."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
    return np.asarray(x)


def singular_error(missing: int, zero: int, n: int) -> ValueError:
    return ValueError(
        f"A: expected a nonzero stored diagonal (unitriangular=False), got {missing} missing "
        f"and {zero} zero diagonal entries out of {n}: the matrix is singular."
    )


def check_triangular(
    crow: np.ndarray, cols: np.ndarray, values: np.ndarray | None, *, shape: tuple[int, ...],
    upper: bool, unitriangular: bool, ignore_diagonal: bool = False,
) -> np.ndarray | None:
    """O(nnz) triangularity checks of a flat, row-sorted CSR pattern (duplicates allowed),
    raising ``ValueError`` that names the first bad entry. ``ignore_diagonal``: the side only;
    ``values=None``: the structure only. Returns the positions (int64) of the stored diagonal
    entries when a diagonal is required (``unitriangular=False``), else None.

    Example:
        >>> check_triangular(np.array([0, 1, 3]), np.array([0, 0, 1]), None, shape=(2, 2),
        ...                  upper=False, unitriangular=False)
        array([0, 2])
    """
    crow = _host(crow)
    nv = int(crow[-1])
    cols = _host(cols)[:nv]
    values = None if values is None else _host(values)[:nv]
    n, N = shape[-1], crow.size - 1
    if ignore_diagonal and side_ok(crow, cols, upper):
        return None
    passed, diagonal = sorted_fast_path(crow, cols, values, upper, unitriangular,
                                        ignore_diagonal)
    if passed:
        return diagonal
    rows = np.repeat(np.arange(N, dtype=cols.dtype), np.diff(crow))

    def where(mask: np.ndarray) -> str:
        k = int(np.argmax(mask))
        r, c = int(rows[k]), int(cols[k])
        return f"({r}, {c})" if len(shape) == 2 else f"({r // n}, {r % n}, {c % n})"

    wrong = rows > cols if upper else rows < cols
    if wrong.any():
        side = "below" if upper else "above"
        raise ValueError(
            f"A: expected {'an upper' if upper else 'a lower'}-triangular matrix (upper={upper}), "
            f"got {int(wrong.sum())} stored entries {side} the diagonal, e.g. at {where(wrong)}."
        )
    if ignore_diagonal:
        return None
    diag = rows == cols
    if unitriangular:
        if diag.any():
            raise ValueError(
                "A: expected a strictly triangular matrix with unitriangular=True (the unit "
                f"diagonal is implicit), got {int(diag.sum())} stored diagonal entries, "
                f"e.g. at {where(diag)}."
            )
        return None
    zero = 0 if values is None else int((diag & (values == 0)).sum())
    missing = N - np.unique(rows[diag]).size
    if missing or zero:
        raise singular_error(missing, zero, N)
    return np.flatnonzero(diag)
