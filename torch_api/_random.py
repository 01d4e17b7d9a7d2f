"""Random sparse test matrices: general, triangular and symmetric positive definite.

Positions are drawn without replacement and uniformly (every set of ``nnz`` positions equally
likely) by vectorised rejection: draw integers, keep the distinct ones, take a random subset.
Randomness comes from torch's global generator (``torch.manual_seed`` reproduces a draw).

"Well conditioned" means strictly row diagonally dominant: every diagonal value is at least
``min_diag_value`` plus the sum of the absolute off-diagonal values of its row, which bounds
``||A^{-1}||_inf <= 1 / min_diag_value`` (Varah) and makes a symmetric matrix SPD.
"""

from __future__ import annotations

import torch

from ._blocks import _CPU, _check_choice, _check_size
from ._validate import FLOATS, INDEX_DTYPES

_LAYOUTS = (torch.sparse_coo, torch.sparse_csr)


def _sample_unique(total: int, k: int, device) -> torch.Tensor:
    """``k`` distinct integers drawn uniformly from ``[0, total)``, sorted (int64)."""
    if k == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    if 2 * k >= total:  # dense draw: a permutation costs O(total) = O(k)
        return torch.randperm(total, device=device)[:k].sort().values
    got = torch.zeros(0, dtype=torch.int64, device=device)
    while got.numel() < k:
        draw = torch.randint(total, (int(1.25 * (k - got.numel())) + 16,), device=device)
        got = torch.unique(torch.cat([got, draw]))
    return got[torch.randperm(got.numel(), device=device)[:k]].sort().values


def _strict_lower(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major rank ``t`` of a strictly-lower position -> ``(row, col)`` with ``row > col``."""
    i = ((1 + torch.sqrt(1 + 8 * t.double())) / 2).floor().long()
    i = i - (i * (i - 1) // 2 > t).long()  # correct float rounding either way
    i = i + ((i + 1) * i // 2 <= t).long()
    return i, t - i * (i - 1) // 2


def _assemble(rows, cols, values, size, layout, indices_dtype) -> torch.Tensor:
    """Sparse tensor from per-batch ``(b, k)`` (or ``(k,)``) row/col/value arrays, any order."""
    n_r, n_c = size[-2], size[-1]
    batched = len(size) == 3
    if rows.dim() == 1:
        rows, cols, values = rows[None], cols[None], values[None]
    b, k = rows.shape
    order = torch.argsort(rows * n_c + cols, dim=1)
    rows, cols, values = rows.gather(1, order), cols.gather(1, order), values.gather(1, order)
    if layout == torch.sparse_coo:
        if batched:
            bi = torch.arange(b, device=rows.device).repeat_interleave(k)
            indices = torch.stack([bi, rows.reshape(-1), cols.reshape(-1)])
        else:
            indices = torch.stack([rows[0], cols[0]])
        return torch.sparse_coo_tensor(indices, values.reshape(-1), size, is_coalesced=True)
    flat = (rows + torch.arange(b, device=rows.device)[:, None] * n_r).reshape(-1)
    counts = torch.bincount(flat, minlength=b * n_r).reshape(b, n_r)
    crow = torch.zeros(b, n_r + 1, dtype=indices_dtype, device=rows.device)
    crow[:, 1:] = counts.cumsum(1)
    cols = cols.to(indices_dtype)
    if not batched:
        crow, cols, values = crow[0], cols[0], values[0]
    return torch.sparse_csr_tensor(crow, cols, values, size)


def _dominant_diagonal(rows, cols, values, n, min_diag_value):
    """Set each stored diagonal value to ``min_diag_value + U[0, 0.5) + sum_row |off-diag|``."""
    b = rows.shape[0]
    diag = rows == cols
    flat = rows + torch.arange(b, device=rows.device)[:, None] * n
    off = torch.where(diag, torch.zeros_like(values), values.abs())
    row_sum = torch.zeros(b * n, dtype=values.dtype, device=values.device)
    row_sum.index_add_(0, flat.reshape(-1), off.reshape(-1))
    boost = min_diag_value + 0.5 * torch.rand_like(values) + row_sum[flat]
    return torch.where(diag, boost, values)


def _check_common(size, nnz, layout, indices_dtype, values_dtype, max_nnz, min_nnz=0):
    size = _check_size(size)
    if isinstance(nnz, bool) or not isinstance(nnz, int):
        raise TypeError(f"nnz: expected an int, got {type(nnz).__name__} {nnz!r}.")
    if not min_nnz <= nnz <= max_nnz:
        raise ValueError(f"nnz: expected {min_nnz} <= nnz <= {max_nnz} for size {size}, got {nnz}.")
    if layout not in _LAYOUTS:
        raise TypeError(f"layout: expected torch.sparse_coo or torch.sparse_csr, got {layout!r}.")
    _check_choice("indices_dtype", indices_dtype, INDEX_DTYPES, "torch.int32 or torch.int64")
    _check_choice("values_dtype", values_dtype, FLOATS, "torch.float32 or torch.float64")
    return size


def _check_square(size):
    if size[-1] != size[-2]:
        raise ValueError(f"size: expected a square (n, n) or (b, n, n), got {size!r}.")


def _check_min_diag(min_diag_value):
    if not min_diag_value > 0:
        raise ValueError(f"min_diag_value: expected a positive number, got {min_diag_value!r}.")


def rand_sparse(
    size: tuple[int, ...],
    nnz: int,
    layout: torch.layout = torch.sparse_coo,
    *,
    indices_dtype: torch.dtype = torch.int64,
    values_dtype: torch.dtype = torch.float32,
    device: torch.device | str = _CPU,
    well_conditioned: bool = False,
    min_diag_value: float = 1.0,
) -> torch.Tensor:
    """A random sparse matrix with exactly ``nnz`` stored entries per batch item.

    Args:
        size: ``(n, m)`` or ``(b, n, m)``.
        nnz: stored entries per batch item, placed uniformly at random; values uniform in [0, 1).
        layout: ``torch.sparse_coo`` (coalesced, int64 indices) or ``torch.sparse_csr``.
        indices_dtype: CSR index dtype, int32 or int64.
        values_dtype: float32 or float64.
        device: where to allocate.
        well_conditioned: for a square matrix, store the whole diagonal (``nnz >= n``) and make
            it dominant (see the module docstring); ignored for a rectangular one.
        min_diag_value: the dominance margin when ``well_conditioned``.

    Example:
        >>> A = rand_sparse((2, 50, 50), 200, torch.sparse_csr, well_conditioned=True)
    """
    n_r, n_c = _check_size(size)[-2:]
    square_wc = well_conditioned and n_r == n_c
    size = _check_common(
        size, nnz, layout, indices_dtype, values_dtype, n_r * n_c, n_r if square_wc else 0
    )
    b = size[0] if len(size) == 3 else 1
    if square_wc:
        _check_min_diag(min_diag_value)
    rows_l, cols_l = [], []
    for _ in range(b):
        if square_wc:  # the diagonal, plus nnz - n off-diagonal positions
            t = _sample_unique(n_r * (n_r - 1), nnz - n_r, device)
            i, r = t // max(n_r - 1, 1), t % max(n_r - 1, 1)
            ar = torch.arange(n_r, device=device)
            rows_l.append(torch.cat([ar, i]))
            cols_l.append(torch.cat([ar, r + (r >= i).long()]))
        else:
            t = _sample_unique(n_r * n_c, nnz, device)
            rows_l.append(t // max(n_c, 1))
            cols_l.append(t % max(n_c, 1))
    rows, cols = torch.stack(rows_l), torch.stack(cols_l)
    values = torch.rand(rows.shape, dtype=values_dtype, device=device)
    if square_wc:
        values = _dominant_diagonal(rows, cols, values, n_r, min_diag_value)
    return _assemble(rows, cols, values, size, layout, indices_dtype)


def rand_sparse_tri(
    size: tuple[int, ...],
    nnz: int,
    layout: torch.layout = torch.sparse_coo,
    *,
    upper: bool = True,
    strict: bool = False,
    indices_dtype: torch.dtype = torch.int64,
    values_dtype: torch.dtype = torch.float32,
    device: torch.device | str = _CPU,
    value_range: tuple[float, float] = (0, 1),
    well_conditioned: bool = False,
    min_diag_value: float = 1.0,
) -> torch.Tensor:
    """A random sparse triangular matrix with exactly ``nnz`` stored entries per batch item.

    Args:
        size: square ``(n, n)`` or ``(b, n, n)``.
        nnz: stored entries per batch item: ``nnz <= n(n-1)/2`` if ``strict``, else
            ``n <= nnz <= n(n+1)/2`` (the whole diagonal is stored, the rest is placed
            uniformly at random in the triangle).
        layout: ``torch.sparse_coo`` (coalesced, int64 indices) or ``torch.sparse_csr``.
        upper: upper (True) or lower (False) triangular.
        strict: no stored diagonal (for ``unitriangular`` solves).
        indices_dtype: CSR index dtype, int32 or int64.
        values_dtype: float32 or float64.
        device: where to allocate.
        value_range: ``(low, high)``: values are uniform in ``[low, high)``.
        well_conditioned: (not ``strict``) make the diagonal dominant (module docstring).
        min_diag_value: the dominance margin when ``well_conditioned``.

    Example:
        >>> L = rand_sparse_tri((40, 40), 200, torch.sparse_csr, upper=False, well_conditioned=True)
    """
    n = _check_size(size)[-1]
    _check_square(size)
    pairs = n * (n - 1) // 2
    min_nnz = 0 if strict else n
    size = _check_common(
        size, nnz, layout, indices_dtype, values_dtype, pairs + (0 if strict else n), min_nnz
    )
    low, high = _check_range(value_range)
    wc = well_conditioned and not strict
    if wc:
        _check_min_diag(min_diag_value)
    b = size[0] if len(size) == 3 else 1
    rows_l, cols_l = [], []
    for _ in range(b):
        i, j = _strict_lower(_sample_unique(pairs, nnz - min_nnz, device))
        if not strict:
            ar = torch.arange(n, device=device)
            i, j = torch.cat([ar, i]), torch.cat([ar, j])
        rows_l.append(j if upper else i)
        cols_l.append(i if upper else j)
    rows, cols = torch.stack(rows_l), torch.stack(cols_l)
    values = low + (high - low) * torch.rand(rows.shape, dtype=values_dtype, device=device)
    if wc:
        values = _dominant_diagonal(rows, cols, values, n, min_diag_value)
    return _assemble(rows, cols, values, size, layout, indices_dtype)


def _check_range(value_range) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise TypeError(
            f"value_range: expected a pair (low, high) of numbers, got {value_range!r}."
        ) from None
    if not low <= high:
        raise ValueError(f"value_range: expected low <= high, got {value_range!r}.")
    return low, high


def make_spd_sparse(
    n: int,
    layout: torch.layout,
    value_dtype: torch.dtype,
    index_dtype: torch.dtype,
    device: torch.device | str,
    sparsity_ratio: float = 0.5,
    nz: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random sparse symmetric positive definite matrix, and the same matrix dense.

    Off-diagonal values are Gaussian on a symmetric random pattern; the diagonal is dominant
    (module docstring), so the matrix is SPD by Gershgorin's theorem.

    Args:
        n: the matrix is ``(n, n)``.
        layout: ``torch.sparse_coo`` (coalesced, int64 indices) or ``torch.sparse_csr``.
        value_dtype: float32 or float64.
        index_dtype: CSR index dtype, int32 or int64.
        device: where to allocate.
        sparsity_ratio: fraction of the ``n(n-1)/2`` off-diagonal symmetric pairs left empty.
        nz: if given, the number of off-diagonal entries left empty instead (``nz // 2``
            symmetric pairs); the result stores exactly ``n*n - 2*(nz//2)`` entries.

    Returns:
        ``(A_sparse, A_dense)``.

    Example:
        >>> A, D = make_spd_sparse(20, torch.sparse_csr, torch.float64, torch.int32, "cpu", 0.8)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}.")
    if layout not in _LAYOUTS:
        raise TypeError(f"layout: expected torch.sparse_coo or torch.sparse_csr, got {layout!r}.")
    _check_choice("value_dtype", value_dtype, FLOATS, "torch.float32 or torch.float64")
    _check_choice("index_dtype", index_dtype, INDEX_DTYPES, "torch.int32 or torch.int64")
    pairs = n * (n - 1) // 2
    if nz is not None:
        if isinstance(nz, bool) or not isinstance(nz, int) or not 0 <= nz // 2 <= pairs:
            raise ValueError(f"nz: expected an int in [0, {2 * pairs + 1}] for n={n}, got {nz!r}.")
        empty = nz // 2
    else:
        if not 0.0 <= float(sparsity_ratio) <= 1.0:
            raise ValueError(
                f"sparsity_ratio: expected a number in [0, 1], got {sparsity_ratio!r}."
            )
        empty = int(sparsity_ratio * pairs)
    i, j = _strict_lower(_sample_unique(pairs, pairs - empty, device))
    v = torch.randn(i.shape, dtype=value_dtype, device=device)
    v = torch.where(v == 0, torch.ones_like(v), v)  # keep the pattern exact
    ar = torch.arange(n, device=device)
    rows, cols = torch.cat([i, j, ar]), torch.cat([j, i, ar])
    values = torch.cat([v, v, torch.zeros(n, dtype=value_dtype, device=device)])
    values = _dominant_diagonal(rows[None], cols[None], values[None], n, 1.0)[0]
    dense = torch.zeros(n, n, dtype=value_dtype, device=device)
    dense[rows, cols] = values
    return _assemble(rows, cols, values, (n, n), layout, index_dtype), dense
