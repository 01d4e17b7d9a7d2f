"""Incomplete factorizations with zero fill, IC(0) and ILU(0), on NumPy CSR arrays.

Shared by ``torch_api`` and ``jax_api`` (their ``ic0``/``ilu0`` preconditioners): the frontends
hand over a host copy of a square CSR matrix ``(indptr (n + 1,), indices (nnz,), data (nnz,))``
and get the factors' CSR arrays back. The factors keep A's pattern (no fill):

- :func:`ic0`: ``L`` lower triangular with A's lower pattern (diagonal included) such that
  ``(L L^T)[i, j] = A[i, j]`` at every stored ``(i, j)``, ``j <= i``. On a matrix that is not an
  M-matrix a pivot may become non-positive; the factorization is then retried on
  ``A + alpha diag(A)`` (``alpha = 1e-3, 2e-3, 4e-3, ...``) and the ``alpha`` used is returned.
- :func:`ilu0`: ``L`` unit lower (strict lower part stored) and ``U`` upper (diagonal included)
  with ``(L U)[i, j] = A[i, j]`` at every stored ``(i, j)``.

The loops are compiled with numba on first use (importing this module imports no numba).
Columns may come unsorted and repeated: :func:`canonical_csr` sorts them and sums duplicates.
"""

from __future__ import annotations

import numpy as np

from .messages import value_error

__all__ = ["canonical_csr", "ic0", "ilu0", "lower_part", "upper_part"]

_KERNELS: dict[str, object] = {}


def _kernels() -> dict[str, object]:
    """The numba-compiled loops, compiled on the first call."""
    if _KERNELS:
        return _KERNELS
    from bridge._optional import require

    numba = require("numba")
    njit = numba.njit(cache=False, nogil=True)

    @njit
    def by_rows(row_kernel, indptr, indices, data, diag_pos):
        # row_kernel(i, start, end, pos, ...) on each row in turn in place, with pos[j] the
        # position of column j in row i (-1 if absent); returns -1 on success or the first row
        # whose kernel failed
        n = indptr.size - 1
        pos = np.full(n, -1, np.int64)
        for i in range(n):
            start, end = indptr[i], indptr[i + 1]
            for p in range(start, end):
                pos[indices[p]] = p
            ok = row_kernel(i, start, end, pos, indptr, indices, data, diag_pos)
            for p in range(start, end):
                pos[indices[p]] = -1
            if not ok:
                return i
        return -1

    @njit
    def ic0_row(i, start, end, pos, indptr, indices, data, diag_pos):
        # row-oriented IC(0) on the lower CSR (sorted columns, diagonal last in each row);
        # False when the row's pivot is not positive
        for p in range(start, end - 1):  # off-diagonal entries L[i, j], j < i, increasing j
            j = indices[p]
            s = data[p]
            for q in range(indptr[j], diag_pos[j]):  # L[j, k], k < j
                r = pos[indices[q]]
                if r >= 0:
                    s -= data[r] * data[q]
            data[p] = s / data[diag_pos[j]]
        d = data[end - 1]
        for p in range(start, end - 1):
            d -= data[p] * data[p]
        if not (d > 0.0) or not np.isfinite(d):
            return False
        data[end - 1] = np.sqrt(d)
        return True

    @njit
    def ilu0_row(i, start, end, pos, indptr, indices, data, diag_pos):
        # IKJ ILU(0) in place on the full CSR (sorted columns); False when the row's pivot is
        # zero (or not finite)
        for p in range(start, diag_pos[i]):  # L[i, k], k < i, increasing k
            k = indices[p]
            lik = data[p] / data[diag_pos[k]]
            data[p] = lik
            for q in range(diag_pos[k] + 1, indptr[k + 1]):  # U[k, j], j > k
                r = pos[indices[q]]
                if r >= 0:
                    data[r] -= lik * data[q]
        d = data[diag_pos[i]]
        return d != 0.0 and np.isfinite(d)

    @njit
    def ic0_kernel(indptr, indices, data, diag_pos):
        return by_rows(ic0_row, indptr, indices, data, diag_pos)

    @njit
    def ilu0_kernel(indptr, indices, data, diag_pos):
        return by_rows(ilu0_row, indptr, indices, data, diag_pos)

    _KERNELS.update(ic0=ic0_kernel, ilu0=ilu0_kernel)
    return _KERNELS


def canonical_csr(indptr, indices, data, shape: tuple[int, int]):
    """The CSR arrays (int64 indices) with sorted columns in each row, duplicates summed."""
    indptr = np.asarray(indptr, np.int64)
    indices = np.asarray(indices, np.int64)
    data = np.asarray(data)
    n = shape[0]
    nnz = int(indptr[-1])
    indices, data = indices[:nnz], data[:nnz]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    key = rows * max(shape[1], 1) + indices
    if key.size > 1 and not bool((key[1:] > key[:-1]).all()):
        order = np.argsort(key, kind="stable")
        key, rows, indices, data = key[order], rows[order], indices[order], data[order]
        first = np.ones(key.size, bool)
        first[1:] = key[1:] != key[:-1]
        starts = np.flatnonzero(first)
        data = np.add.reduceat(data, starts) if key.size else data
        rows, indices = rows[starts], indices[starts]
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, indices, np.array(data, copy=True)


def _select(indptr, indices, data, keep):
    n = indptr.size - 1
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    out_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=n), out=out_ptr[1:])
    return out_ptr, indices[keep], data[keep]


def lower_part(indptr, indices, data, *, strict: bool = False):
    """The lower triangle (``col <= row``, or ``<`` if ``strict``) of a canonical CSR."""
    rows = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    return _select(indptr, indices, data, indices < rows if strict else indices <= rows)


def upper_part(indptr, indices, data, *, strict: bool = False):
    """The upper triangle (``col >= row``, or ``>`` if ``strict``) of a canonical CSR."""
    rows = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    return _select(indptr, indices, data, indices > rows if strict else indices >= rows)


def _diagonal_positions(indptr, indices, name: str, n: int) -> np.ndarray:
    """Position of the stored diagonal entry of each row (ValueError naming ``name`` if one is
    missing)."""
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    on_diag = np.flatnonzero(indices == rows)
    have = np.zeros(n, bool)
    have[rows[on_diag]] = True
    if not have.all():
        missing = np.flatnonzero(~have)
        raise value_error(
            name, f"no stored diagonal entry in {missing.size} row(s), the first row {missing[0]}",
            "a stored nonzero diagonal entry in every row",
        )
    diag = np.empty(n, np.int64)
    diag[rows[on_diag]] = on_diag
    return diag


def _square(shape, name: str) -> int:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise value_error(name, f"shape {tuple(shape)}", "a square matrix")
    return int(shape[0])


def ic0(indptr, indices, data, shape: tuple[int, int], *, name: str = "A",
        max_shift: float = 1e3):
    """IC(0) of a symmetric positive definite CSR matrix (only its lower triangle is read).

    Args:
        indptr, indices, data: CSR arrays ``(n + 1,)``, ``(nnz,)``, ``(nnz,)`` (float).
        shape: ``(n, n)``.
        name: the argument named in errors.
        max_shift: the largest diagonal shift ``alpha`` tried after a breakdown.

    Returns:
        ``(indptr, indices, data, alpha)``: ``L`` in CSR (sorted columns, diagonal last in each
        row) and the shift used (``0.0`` when none was needed).

    Example:
        >>> L_ptr, L_idx, L_val, alpha = ic0(ptr, idx, val, (n, n))
    """
    n = _square(shape, name)
    ptr, idx, val = lower_part(*canonical_csr(indptr, indices, data, shape))
    diag = _diagonal_positions(ptr, idx, name, n)
    dvals = val[diag]
    if not bool(np.all(dvals > 0)):
        bad = int(np.flatnonzero(~(dvals > 0))[0])
        raise value_error(name, f"diagonal entry {dvals[bad]!r} in row {bad}",
                          "a positive diagonal (a symmetric positive definite matrix)")
    kernel = _kernels()["ic0"]
    alpha = 0.0
    while True:
        work = val.copy()
        if alpha:
            work[diag] = dvals * (1.0 + alpha)
        failed = kernel(ptr, idx, work, diag)
        if failed < 0:
            return ptr, idx, work, alpha
        alpha = 1e-3 if alpha == 0.0 else 2 * alpha
        if alpha > max_shift:
            raise value_error(
                name, f"a non-positive pivot in row {failed} even with a diagonal shift "
                f"{alpha / 2:g} * diag(A)", "a symmetric positive definite matrix for IC(0)",
            )


def ilu0(indptr, indices, data, shape: tuple[int, int], *, name: str = "A"):
    """ILU(0) of a square CSR matrix.

    Args:
        indptr, indices, data: CSR arrays ``(n + 1,)``, ``(nnz,)``, ``(nnz,)`` (float).
        shape: ``(n, n)``.
        name: the argument named in errors.

    Returns:
        ``((L_indptr, L_indices, L_data), (U_indptr, U_indices, U_data))``: ``L`` strictly lower
        (its unit diagonal implicit), ``U`` upper with the diagonal, sorted columns.

    Example:
        >>> (L_ptr, L_idx, L_val), (U_ptr, U_idx, U_val) = ilu0(ptr, idx, val, (n, n))
    """
    n = _square(shape, name)
    ptr, idx, val = canonical_csr(indptr, indices, data, shape)
    diag = _diagonal_positions(ptr, idx, name, n)
    failed = _kernels()["ilu0"](ptr, idx, val, diag)
    if failed >= 0:
        raise value_error(name, f"a zero pivot U[{failed}, {failed}] = {val[diag[failed]]!r}",
                          "a matrix whose ILU(0) has nonzero pivots")
    return lower_part(ptr, idx, val, strict=True), upper_part(ptr, idx, val)
