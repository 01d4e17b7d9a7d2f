"""Random sparse test matrices: general, triangular and symmetric positive definite.

Positions are drawn without replacement and uniformly (every set of ``nnz`` positions equally
likely) on the host by :mod:`bridge.internal.sampling` (shared with jax_api), from a NumPy
generator seeded by torch's global CPU generator, and moved to ``device``; values are drawn by
torch on ``device``. ``torch.manual_seed`` reproduces a draw.

"Well conditioned" means strictly row diagonally dominant: every diagonal value is at least
``min_diag_value`` plus the sum of the absolute off-diagonal values of its row, which bounds
``||A^{-1}||_inf <= 1 / min_diag_value`` (Varah) and makes a symmetric matrix SPD.
"""

from __future__ import annotations

import numpy as np
import torch

from bridge.internal.options import (
    check_choice,
    check_positive,
    check_range,
    check_size,
    check_square,
)
from bridge.internal.sampling import (
    check_nnz,
    crow_indices,
    general_positions,
    host_rng,
    spd_empty_pairs,
    symmetric_positions,
    triangular_positions,
)

from ._blocks import _CPU
from ._validate import FLOATS, INDEX_DTYPES

__all__ = [
    "generate_random_sparse_coo_matrix",
    "generate_random_sparse_csr_matrix",
    "generate_random_sparse_strictly_triangular_coo_matrix",
    "generate_random_sparse_strictly_triangular_csr_matrix",
    "generate_random_sparse_triangular_coo_matrix",
    "generate_random_sparse_triangular_csr_matrix",
    "make_spd_sparse",
    "rand_sparse",
    "rand_sparse_tri",
]

_LAYOUTS = (torch.sparse_coo, torch.sparse_csr)
# the value dtypes of make_spd_sparse and the generate_random_sparse_* functions (the original's
# generators accept half precision; rand_sparse and rand_sparse_tri keep to float32/float64)
_VALUE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_VALUE_DTYPES_TEXT = "torch.float16, torch.bfloat16, torch.float32 or torch.float64"


def _rng() -> np.random.Generator:
    """A NumPy generator seeded from torch's global generator (``torch.manual_seed``)."""
    return host_rng(torch.randint(0, 2**62, (2,)).tolist())


def _on(device, *arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(a).to(device) for a in arrays]


def _assemble(rows, cols, values, size, layout, indices_dtype) -> torch.Tensor:
    """Sparse tensor from per-batch ``(b, k)`` row/col/value tensors sorted in row-major order
    (``crow``: their ``(b, n + 1)`` NumPy row pointers, for CSR)."""
    n_r = size[-2]
    batched = len(size) == 3
    b, k = rows.shape
    if layout == torch.sparse_coo:
        if batched:
            bi = torch.arange(b, device=rows.device).repeat_interleave(k)
            indices = torch.stack([bi, rows.reshape(-1), cols.reshape(-1)])
        else:
            indices = torch.stack([rows[0], cols[0]])
        return torch.sparse_coo_tensor(indices, values.reshape(-1), size, is_coalesced=True)
    crow = torch.from_numpy(crow_indices(rows.cpu().numpy(), n_r)).to(rows.device, indices_dtype)
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


def _check_common(size, nnz, layout, indices_dtype, values_dtype, max_nnz, min_nnz, halves):
    size = check_size(size)
    nnz = check_nnz(nnz, min_nnz, max_nnz, size)
    _check_layout(layout)
    check_choice("indices_dtype", indices_dtype, INDEX_DTYPES, "torch.int32 or torch.int64")
    if halves:
        check_choice("values_dtype", values_dtype, _VALUE_DTYPES, _VALUE_DTYPES_TEXT)
    else:
        check_choice("values_dtype", values_dtype, FLOATS, "torch.float32 or torch.float64")
    return size


def _check_layout(layout):
    if layout not in _LAYOUTS:
        raise TypeError(f"layout: expected torch.sparse_coo or torch.sparse_csr, got {layout!r}.")


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
    return _general(size, nnz, layout, indices_dtype, values_dtype, device, well_conditioned,
                    min_diag_value, halves=False)


def _general(size, nnz, layout, indices_dtype, values_dtype, device, well_conditioned,
             min_diag_value, halves):
    n_r, n_c = check_size(size)[-2:]
    square_wc = well_conditioned and n_r == n_c
    size = _check_common(
        size, nnz, layout, indices_dtype, values_dtype, n_r * n_c, n_r if square_wc else 0, halves
    )
    b = size[0] if len(size) == 3 else 1
    if square_wc:
        check_positive("min_diag_value", min_diag_value)
    rows, cols = _on(device, *general_positions(_rng(), b, n_r, n_c, nnz, square_wc))
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
    return _triangular(size, nnz, layout, upper, strict, indices_dtype, values_dtype, device,
                       value_range, well_conditioned, min_diag_value, halves=False)


def _triangular(size, nnz, layout, upper, strict, indices_dtype, values_dtype, device,
                value_range, well_conditioned, min_diag_value, halves):
    n = check_size(size)[-1]
    check_square(size)
    pairs = n * (n - 1) // 2
    min_nnz = 0 if strict else n
    size = _check_common(
        size, nnz, layout, indices_dtype, values_dtype, pairs + (0 if strict else n), min_nnz,
        halves,
    )
    low, high = check_range(value_range)
    wc = well_conditioned and not strict
    if wc:
        check_positive("min_diag_value", min_diag_value)
    b = size[0] if len(size) == 3 else 1
    positions = triangular_positions(_rng(), b, n, nnz, bool(upper), bool(strict))
    rows, cols = _on(device, *positions)
    values = low + (high - low) * torch.rand(rows.shape, dtype=values_dtype, device=device)
    if wc:
        values = _dominant_diagonal(rows, cols, values, n, min_diag_value)
    return _assemble(rows, cols, values, size, layout, indices_dtype)


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
        value_dtype: float16, bfloat16, float32 or float64.
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
    n, empty = spd_empty_pairs(n, nz, sparsity_ratio)
    _check_layout(layout)
    check_choice("value_dtype", value_dtype, _VALUE_DTYPES, _VALUE_DTYPES_TEXT)
    check_choice("index_dtype", index_dtype, INDEX_DTYPES, "torch.int32 or torch.int64")
    rows, cols, pair = _on(device, *symmetric_positions(_rng(), n, empty))
    v = torch.randn(n * (n - 1) // 2 - empty, dtype=value_dtype, device=device)
    v = torch.where(v == 0, torch.ones_like(v), v)  # keep the pattern exact
    values = torch.cat([v, v.new_zeros(1)])[pair]  # pair -1: the diagonal
    values = _dominant_diagonal(rows, cols, values, n, 1.0)
    dense = torch.zeros(n, n, dtype=value_dtype, device=device)
    dense[rows[0], cols[0]] = values[0]
    return _assemble(rows, cols, values, (n, n), layout, index_dtype), dense


# torchsparsegradutils' per-layout generators (its rand_sparse / rand_sparse_tri dispatch to them)
def generate_random_sparse_coo_matrix(
    size, nnz, *, indices_dtype=torch.int64, values_dtype=torch.float32, device=_CPU,
    well_conditioned=False, min_diag_value=1.0,
) -> torch.Tensor:
    """:func:`rand_sparse` with ``layout=torch.sparse_coo`` (values may be float16/bfloat16).

    Example:
        >>> A = generate_random_sparse_coo_matrix((3, 100, 100), 500)
    """
    return _general(size, nnz, torch.sparse_coo, indices_dtype, values_dtype, device,
                    well_conditioned, min_diag_value, halves=True)


def generate_random_sparse_csr_matrix(
    size, nnz, *, indices_dtype=torch.int64, values_dtype=torch.float32, device=_CPU,
    well_conditioned=False, min_diag_value=1.0,
) -> torch.Tensor:
    """:func:`rand_sparse` with ``layout=torch.sparse_csr`` (values may be float16/bfloat16).

    Example:
        >>> A = generate_random_sparse_csr_matrix((20, 30), 80, indices_dtype=torch.int32)
    """
    return _general(size, nnz, torch.sparse_csr, indices_dtype, values_dtype, device,
                    well_conditioned, min_diag_value, halves=True)


def generate_random_sparse_strictly_triangular_coo_matrix(
    size, nnz, *, upper=True, indices_dtype=torch.int64, values_dtype=torch.float32,
    device=_CPU, value_range=(0.0, 1.0),
) -> torch.Tensor:
    """:func:`rand_sparse_tri` with ``strict=True``, COO (no stored diagonal).

    Example:
        >>> L = generate_random_sparse_strictly_triangular_coo_matrix((4, 4), 5, upper=False)
    """
    return _triangular(size, nnz, torch.sparse_coo, upper, True, indices_dtype, values_dtype,
                       device, value_range, False, 1.0, halves=True)


def generate_random_sparse_strictly_triangular_csr_matrix(
    size, nnz, *, upper=True, indices_dtype=torch.int64, values_dtype=torch.float32,
    device=_CPU, value_range=(0.0, 1.0),
) -> torch.Tensor:
    """:func:`rand_sparse_tri` with ``strict=True``, CSR (no stored diagonal).

    Example:
        >>> L = generate_random_sparse_strictly_triangular_csr_matrix((2, 4, 4), 5)
    """
    return _triangular(size, nnz, torch.sparse_csr, upper, True, indices_dtype, values_dtype,
                       device, value_range, False, 1.0, halves=True)


def generate_random_sparse_triangular_coo_matrix(
    size, nnz, *, upper=True, indices_dtype=torch.int64, values_dtype=torch.float32,
    device=_CPU, value_range=(0.0, 1.0), well_conditioned=False, min_diag_value=1.0,
) -> torch.Tensor:
    """:func:`rand_sparse_tri` with ``strict=False``, COO (the whole diagonal stored).

    Example:
        >>> U = generate_random_sparse_triangular_coo_matrix((50, 50), 200, well_conditioned=True)
    """
    return _triangular(size, nnz, torch.sparse_coo, upper, False, indices_dtype, values_dtype,
                       device, value_range, well_conditioned, min_diag_value, halves=True)


def generate_random_sparse_triangular_csr_matrix(
    size, nnz, *, upper=True, indices_dtype=torch.int64, values_dtype=torch.float32,
    device=_CPU, value_range=(0.0, 1.0), well_conditioned=False, min_diag_value=1.0,
) -> torch.Tensor:
    """:func:`rand_sparse_tri` with ``strict=False``, CSR (the whole diagonal stored).

    Example:
        >>> U = generate_random_sparse_triangular_csr_matrix((50, 50), 200, upper=False)
    """
    return _triangular(size, nnz, torch.sparse_csr, upper, False, indices_dtype, values_dtype,
                       device, value_range, well_conditioned, min_diag_value, halves=True)
