"""Test matrices shared by the benchmarks: grid stencils on a ``k x k x k`` grid.

- :func:`poisson3d`: the SPD 7-point Laplacian (Dirichlet boundary), for CG / generic solves.
- :func:`stencil27`: the 27-point-stencil pattern with random values (about 3.3M nonzeros at
  ``k = 50``), a stand-in for the SuiteSparse matrix Rothberg/cfd2.
- :func:`lower`: the lower-triangular part of a matrix with a dominant diagonal, for
  triangular solves.

Every builder returns a coalesced COO (int64 indices: torch stores COO indices as int64 whatever
they were built with) or a CSR tensor with the requested index dtype.
"""

from __future__ import annotations

import itertools

import torch


def _grid_matrix(
    k: int,
    offsets,
    values: torch.Tensor | None,
    diag_value,
    dtype,
    layout,
    index_dtype,
    generator=None,
) -> torch.Tensor:
    """Entries ``(p, p + o)`` for each grid point ``p`` and offset ``o`` staying in the grid."""
    coords = torch.stack(torch.meshgrid(*(torch.arange(k),) * 3, indexing="ij"), -1).reshape(-1, 3)
    strides = torch.tensor([k * k, k, 1])
    rows_l, cols_l, vals_l = [], [], []
    for off in offsets:
        o = torch.tensor(off)
        nb = coords + o
        keep = ((nb >= 0) & (nb < k)).all(-1)
        r = (coords[keep] * strides).sum(-1)
        c = (nb[keep] * strides).sum(-1)
        rows_l.append(r)
        cols_l.append(c)
        if off == (0, 0, 0):
            v = torch.full((r.numel(),), float(diag_value), dtype=torch.float64)
        elif values is None:
            v = torch.rand(r.numel(), generator=generator, dtype=torch.float64) * 2 - 1
        else:
            v = torch.full((r.numel(),), float(values), dtype=torch.float64)
        vals_l.append(v)
    rows, cols, vals = torch.cat(rows_l), torch.cat(cols_l), torch.cat(vals_l)
    n = k**3
    order = torch.argsort(rows * n + cols)
    rows, cols, vals = rows[order], cols[order], vals[order].to(dtype)
    return _assemble(rows, cols, vals, n, layout, index_dtype)


def _assemble(rows, cols, vals, n, layout, index_dtype) -> torch.Tensor:
    """Sorted (row, col) triplets as a coalesced COO or a CSR tensor."""
    if layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (n, n), is_coalesced=True)
    if layout != torch.sparse_csr:
        raise ValueError(f"layout: expected torch.sparse_coo or torch.sparse_csr, got {layout}")
    crow = torch._convert_indices_from_coo_to_csr(rows, n, out_int32=index_dtype == torch.int32)
    return torch.sparse_csr_tensor(crow, cols.to(index_dtype), vals, (n, n))


def poisson3d(
    k: int, dtype=torch.float32, layout=torch.sparse_csr, index_dtype=torch.int32
) -> torch.Tensor:
    """SPD 7-point Laplacian of a ``k^3`` grid: 6 on the diagonal, -1 to each face neighbour."""
    offsets = [(0, 0, 0)] + [
        tuple(s * (i == d) for i in range(3)) for d in range(3) for s in (-1, 1)
    ]
    return _grid_matrix(k, offsets, -1.0, 6.0, dtype, layout, index_dtype)


def stencil27(
    k: int, dtype=torch.float32, layout=torch.sparse_csr, index_dtype=torch.int32, seed: int = 0
) -> torch.Tensor:
    """27-point-stencil matrix of a ``k^3`` grid, off-diagonal values uniform in ``[-1, 1)``,
    diagonal 27 (so it is diagonally dominant and nonsingular)."""
    g = torch.Generator().manual_seed(seed)
    offsets = list(itertools.product((-1, 0, 1), repeat=3))
    return _grid_matrix(k, offsets, None, 27.0, dtype, layout, index_dtype, generator=g)


def lower(A: torch.Tensor) -> torch.Tensor:
    """Lower-triangular part of ``A`` (same layout and index dtype) whose diagonal is replaced by
    ``1 + sum |off-diagonal|`` of its row, so triangular solves with it are well conditioned."""
    n = A.shape[0]
    if A.layout == torch.sparse_coo:
        A = A.coalesce()
        rows, cols = A.indices()
        vals = A.values()
        index_dtype = torch.int64
    else:
        crow, cols = A.crow_indices(), A.col_indices()
        rows = torch.repeat_interleave(torch.arange(n, dtype=crow.dtype), crow[1:] - crow[:-1])
        vals = A.values()
        index_dtype = cols.dtype
    rows, cols = rows.long(), cols.long()
    strict = cols < rows
    r, c, v = rows[strict], cols[strict], vals[strict]
    dominance = torch.zeros(n, dtype=vals.dtype).index_add_(0, r, v.abs()) + 1
    ar = torch.arange(n)
    rows, cols, vals = torch.cat([r, ar]), torch.cat([c, ar]), torch.cat([v, dominance])
    order = torch.argsort(rows * n + cols)
    return _assemble(rows[order], cols[order], vals[order], n, A.layout, index_dtype)
