"""Block-diagonal assembly and splitting, sparse identities and CSR stacking.

All of them move index tensors with offsets (one Python step per block, never per entry).
"""

from __future__ import annotations

import torch

from bridge.internal.options import check_choice, check_size, check_square

from ._validate import FLOATS, INDEX_DTYPES, check_indices, check_tensor, type_error, value_error

_CPU = torch.device("cpu")


def _index_dtype(tensors) -> torch.dtype:
    """The common index dtype of CSR tensors: int64 if any is int64 (never a downcast)."""
    dtypes = {t.col_indices().dtype for t in tensors}
    return torch.int64 if torch.int64 in dtypes else torch.int32


def _check_blocks(name: str, tensors) -> torch.layout:
    if len(tensors) == 0:
        raise ValueError(f"{name}: expected at least one sparse tensor, got none.")
    for i, t in enumerate(tensors):
        t = check_tensor(f"{name}[{i}]", t)
        if t.layout not in (torch.sparse_coo, torch.sparse_csr):
            raise type_error(f"{name}[{i}]", t, "a sparse COO or CSR tensor")
        if t.layout != tensors[0].layout:
            raise type_error(f"{name}[{i}]", t, f"the layout of {name}[0] ({tensors[0].layout})")
        if t.dim() != 2 or t.dense_dim() != 0:
            raise value_error(f"{name}[{i}]", t, "a 2-D sparse matrix")
        if t.dtype != tensors[0].dtype or t.device != tensors[0].device:
            raise value_error(
                f"{name}[{i}]", t, f"dtype {tensors[0].dtype} on {tensors[0].device} like {name}[0]"
            )
        check_indices(f"{name}[{i}]", t)
    return tensors[0].layout


def sparse_block_diag(*sparse_tensors: torch.Tensor) -> torch.Tensor:
    """The block-diagonal matrix of 2-D sparse matrices (all COO or all CSR).

    Args:
        *sparse_tensors: 2-D sparse ``(n_i, m_i)`` tensors of one layout, dtype and device.

    Returns:
        Sparse ``(sum n_i, sum m_i)`` in their layout (COO coalesced; CSR with int64 indices if
        any input has them, else int32). A single input is returned as it is.

    Example:
        >>> D = sparse_block_diag(torch.eye(2).to_sparse_csr(), torch.eye(3).to_sparse_csr())
    """
    layout = _check_blocks("sparse_tensors", sparse_tensors)
    if len(sparse_tensors) == 1:
        return sparse_tensors[0]
    n_rows = [t.shape[0] for t in sparse_tensors]
    n_cols = [t.shape[1] for t in sparse_tensors]
    shape = (sum(n_rows), sum(n_cols))
    row_off = [sum(n_rows[:i]) for i in range(len(n_rows))]
    col_off = [sum(n_cols[:i]) for i in range(len(n_cols))]
    if layout == torch.sparse_coo:
        parts = [t.coalesce() for t in sparse_tensors]
        offsets = [
            torch.tensor([[r], [c]], device=t.device)
            for t, r, c in zip(parts, row_off, col_off, strict=True)
        ]
        indices = torch.cat([t.indices() + o for t, o in zip(parts, offsets, strict=True)], dim=1)
        values = torch.cat([t.values() for t in parts])
        return torch.sparse_coo_tensor(indices, values, shape, is_coalesced=True)
    dtype = _index_dtype(sparse_tensors)
    if max(sum(t._nnz() for t in sparse_tensors), shape[1]) > torch.iinfo(torch.int32).max:
        dtype = torch.int64
    nnz_off = 0
    crows, cols = [sparse_tensors[0].crow_indices()[:1].to(dtype)], []
    for t, c in zip(sparse_tensors, col_off, strict=True):
        crows.append(t.crow_indices()[1:].to(dtype) + nnz_off)
        cols.append(t.col_indices().to(dtype) + c)
        nnz_off += t._nnz()
    values = torch.cat([t.values() for t in sparse_tensors])
    return torch.sparse_csr_tensor(torch.cat(crows), torch.cat(cols), values, shape)


def sparse_block_diag_split(
    sparse_block_diag_tensor: torch.Tensor, *shapes: tuple[int, int]
) -> tuple[torch.Tensor, ...]:
    """Split a block-diagonal sparse matrix into its diagonal blocks (inverse of
    :func:`sparse_block_diag`).

    Args:
        sparse_block_diag_tensor: 2-D sparse COO or CSR ``(sum n_i, sum m_i)`` with no stored
            entries outside the diagonal blocks.
        *shapes: the block shapes ``(n_i, m_i)``.

    Returns:
        A tuple of sparse ``(n_i, m_i)`` blocks in the input's layout and index dtype.

    Example:
        >>> D = sparse_block_diag(torch.eye(2).to_sparse(), torch.eye(3).to_sparse())
        >>> a, b = sparse_block_diag_split(D, (2, 2), (3, 3))
    """
    name = "sparse_block_diag_tensor"
    T = check_tensor(name, sparse_block_diag_tensor)
    if T.layout not in (torch.sparse_coo, torch.sparse_csr):
        raise type_error(name, T, "a sparse COO or CSR tensor")
    if T.dim() != 2 or T.dense_dim() != 0:
        raise value_error(name, T, "a 2-D sparse matrix")
    check_indices(name, T)
    if not shapes:
        raise ValueError("shapes: expected at least one block shape (n_i, m_i), got none.")
    for s in shapes:
        if len(tuple(s)) != 2 or not all(isinstance(v, int) and v >= 0 for v in s):
            raise ValueError(
                f"shapes: expected (rows, cols) pairs of non-negative ints, got {s!r}."
            )
    rows_l, cols_l = [s[0] for s in shapes], [s[1] for s in shapes]
    if (sum(rows_l), sum(cols_l)) != tuple(T.shape):
        raise ValueError(
            f"shapes: expected block shapes summing to {tuple(T.shape)}, "
            f"got {list(map(tuple, shapes))} summing to {(sum(rows_l), sum(cols_l))}."
        )
    dev = T.device
    row_start = torch.tensor([0, *rows_l], device=dev).cumsum(0)
    col_start = torch.tensor([0, *cols_l], device=dev).cumsum(0)
    if T.layout == torch.sparse_coo:
        T = T.coalesce()
        rows, cols = T.indices()
        values = T.values()
    else:
        crow, cols, values = T.crow_indices(), T.col_indices(), T.values()
        rows = torch.repeat_interleave(
            torch.arange(T.shape[0], device=dev), crow[1:] - crow[:-1], output_size=cols.numel()
        )
    # Block of each entry by its row; its column must fall in the same block.
    block = torch.searchsorted(row_start[1:], rows.long(), right=True)
    cols64 = cols.long()
    outside = (cols64 < col_start[block]) | (cols64 >= col_start[block + 1])
    if bool(outside.any()):
        k = int(outside.nonzero()[0, 0])
        raise ValueError(
            f"{name}: expected no stored entries outside the diagonal blocks "
            f"{list(map(tuple, shapes))}, got one at ({int(rows[k])}, {int(cols[k])})."
        )
    counts = torch.bincount(block, minlength=len(shapes)).tolist()
    local_cols = (cols64 - col_start[block]).to(cols.dtype)
    pieces = zip(local_cols.split(counts), values.split(counts), shapes, strict=True)
    if T.layout == torch.sparse_coo:
        local_rows = rows - row_start[block]
        out = []
        for (c, v, s), r in zip(pieces, local_rows.split(counts), strict=True):
            out.append(torch.sparse_coo_tensor(torch.stack([r, c]), v, tuple(s), is_coalesced=True))
        return tuple(out)
    out, r0 = [], 0
    for c, v, s in pieces:
        r1 = r0 + s[0]
        sub_crow = crow[r0 : r1 + 1] - crow[r0]
        out.append(torch.sparse_csr_tensor(sub_crow, c, v, tuple(s)))
        r0 = r1
    return tuple(out)


def sparse_eye(
    size: tuple[int, ...],
    *,
    layout: torch.layout = torch.sparse_coo,
    values_dtype: torch.dtype = torch.float64,
    indices_dtype: torch.dtype = torch.int64,
    device: torch.device | str = _CPU,
    requires_grad: bool = False,
) -> torch.Tensor:
    """The sparse identity ``(n, n)`` or a batch of them ``(b, n, n)``.

    Args:
        size: ``(n, n)`` or ``(b, n, n)``.
        layout: ``torch.sparse_coo`` or ``torch.sparse_csr``.
        values_dtype: float32 or float64.
        indices_dtype: int32 or int64 (COO indices are always int64 in torch).
        device: where to allocate.
        requires_grad: whether the result is a leaf requiring grad.

    Returns:
        Sparse identity with ``n`` (per batch item) stored ones; COO is coalesced.

    Example:
        >>> I = sparse_eye((2, 4, 4), layout=torch.sparse_csr)
    """
    size = check_size(size)
    check_square(size)
    if layout not in (torch.sparse_coo, torch.sparse_csr):
        raise TypeError(f"layout: expected torch.sparse_coo or torch.sparse_csr, got {layout!r}.")
    check_choice("values_dtype", values_dtype, FLOATS, "torch.float32 or torch.float64")
    check_choice("indices_dtype", indices_dtype, INDEX_DTYPES, "torch.int32 or torch.int64")
    n, b = size[-1], (size[0] if len(size) == 3 else None)
    ar = torch.arange(n, dtype=indices_dtype, device=device)
    if layout == torch.sparse_coo:
        if b is None:
            indices = torch.stack([ar, ar])
        else:
            bi = torch.arange(b, dtype=indices_dtype, device=device).repeat_interleave(n)
            indices = torch.stack([bi, ar.repeat(b), ar.repeat(b)])
        values = torch.ones(indices.shape[1], dtype=values_dtype, device=device)
        out = torch.sparse_coo_tensor(indices, values, size, is_coalesced=True)
    else:
        crow = torch.arange(n + 1, dtype=indices_dtype, device=device)
        col, values = ar, torch.ones(n, dtype=values_dtype, device=device)
        if b is not None:
            crow, col, values = crow.repeat(b, 1), col.repeat(b, 1), values.repeat(b, 1)
        out = torch.sparse_csr_tensor(crow, col, values, size)
    return out.requires_grad_(requires_grad)


def stack_csr(tensors: list[torch.Tensor] | tuple[torch.Tensor, ...], dim: int = 0) -> torch.Tensor:
    """Stack 2-D CSR tensors into a batched ``(b, n, m)`` CSR tensor (``torch.stack`` for CSR).

    Args:
        tensors: 2-D CSR tensors of one shape, dtype, device and nnz (batched CSR needs equal nnz).
        dim: 0 (or -3): CSR batch dimensions lead.

    Returns:
        Sparse CSR ``(len(tensors), n, m)``; int64 indices if any input has them, else int32.

    Example:
        >>> S = stack_csr([torch.eye(3).to_sparse_csr(), 2 * torch.eye(3).to_sparse_csr()])
    """
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(
            f"tensors: expected a list or tuple of CSR tensors, got {type(tensors).__name__}."
        )
    if isinstance(dim, bool) or not isinstance(dim, int) or dim not in (0, -3):
        raise ValueError(f"dim: expected 0 (CSR batch dimensions lead), got {dim!r}.")
    if len(tensors) == 0:
        raise ValueError("tensors: expected at least one CSR tensor, got none.")
    for i, t in enumerate(tensors):
        t = check_tensor(f"tensors[{i}]", t)
        if t.layout != torch.sparse_csr:
            raise type_error(f"tensors[{i}]", t, "a sparse CSR tensor")
        if t.dim() != 2 or t.dense_dim() != 0:
            raise value_error(f"tensors[{i}]", t, "a 2-D CSR matrix")
        first = tensors[0]
        if (t.shape, t.dtype, t.device) != (first.shape, first.dtype, first.device):
            raise value_error(
                f"tensors[{i}]", t, f"shape {tuple(first.shape)}, {first.dtype} on {first.device}"
            )
        check_indices(f"tensors[{i}]", t)
        if t._nnz() != first._nnz():
            raise ValueError(
                f"tensors[{i}]: expected {first._nnz()} stored entries like tensors[0] "
                f"(batched CSR needs equal nnz), got {t._nnz()}."
            )
    dtype = _index_dtype(tensors)
    crow = torch.stack([t.crow_indices().to(dtype) for t in tensors])
    col = torch.stack([t.col_indices().to(dtype) for t in tensors])
    values = torch.stack([t.values() for t in tensors])
    return torch.sparse_csr_tensor(crow, col, values, (len(tensors), *tensors[0].shape))
