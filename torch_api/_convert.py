"""COO -> CSR conversion, 2-D or with one batch dimension, keeping the index dtype.

A batched CSR tensor needs the same number of stored entries in every batch item; the batched
conversions check that. Everything is vectorised (sorting and counting, no Python loop over
entries).
"""

from __future__ import annotations

import torch

from ._validate import check_indices, check_tensor, type_error, value_error


def _lex_order(indices: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Permutation sorting the columns of ``indices`` ((batch,) row, col) lexicographically."""
    rows, cols = indices[-2].long(), indices[-1].long()
    n_cols = int(cols.max()) + 1 if cols.numel() else 1
    n_batch = int(indices[0].max()) + 1 if indices.shape[0] == 3 and cols.numel() else 1
    if n_batch * num_rows * n_cols < 2**62:
        key = rows * n_cols + cols
        if indices.shape[0] == 3:
            key = key + indices[0].long() * (num_rows * n_cols)
        return torch.argsort(key, stable=True)
    order = torch.argsort(cols, stable=True)  # keys too large for one int64: sort key by key
    for key in (indices[-2], indices[0])[: indices.shape[0] - 1]:  # row, then batch
        order = order[torch.argsort(key[order], stable=True)]
    return order


def _crow(rows: torch.Tensor, n_batch: int, num_rows: int, dtype: torch.dtype) -> torch.Tensor:
    """CSR row pointers ``(n_batch, num_rows + 1)`` of flat row ids ``batch * num_rows + row``."""
    counts = torch.bincount(rows, minlength=n_batch * num_rows).reshape(n_batch, num_rows)
    crow = torch.zeros(n_batch, num_rows + 1, dtype=dtype, device=rows.device)
    crow[:, 1:] = counts.cumsum(1)
    return crow


def _check_indices(coo_indices: object, num_rows: object) -> torch.Tensor:
    coo_indices = check_tensor("coo_indices", coo_indices)
    if coo_indices.layout != torch.strided or coo_indices.dtype not in (torch.int32, torch.int64):
        raise type_error("coo_indices", coo_indices, "a dense int32 or int64 tensor")
    if coo_indices.dim() != 2 or coo_indices.shape[0] not in (2, 3):
        raise value_error(
            "coo_indices", coo_indices, "shape (2, nnz) (row, col) or (3, nnz) (batch, row, col)"
        )
    if isinstance(num_rows, bool) or not isinstance(num_rows, int):
        raise TypeError(f"num_rows: expected an int, got {type(num_rows).__name__} {num_rows!r}.")
    if num_rows < 0:
        raise ValueError(f"num_rows: expected a non-negative int, got {num_rows}.")
    if coo_indices.numel():
        if bool((coo_indices < 0).any()):
            raise ValueError("coo_indices: expected non-negative indices, got a negative one.")
        top = int(coo_indices[-2].max())
        if top >= num_rows:
            raise ValueError(
                f"coo_indices: expected row indices below num_rows={num_rows}, got row {top}."
            )
    return coo_indices


def convert_coo_to_csr_indices_values(
    coo_indices: torch.Tensor, num_rows: int, values: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR ``(crow_indices, col_indices, values)`` of COO indices, in any order.

    Args:
        coo_indices: ``(2, nnz)`` (row, col) or ``(3, nnz)`` (batch, row, col), int32/int64,
            without duplicates. Batched input needs the same nnz in every batch item.
        num_rows: rows per matrix.
        values: ``(nnz,)`` values in the order of ``coo_indices``, or None.

    Returns:
        ``crow (num_rows + 1,)``, ``col (nnz,)`` and ``values (nnz,)`` in CSR order; batched:
        ``(b, num_rows + 1)``, ``(b, nnz / b)``, ``(b, nnz / b)``. The index dtype is that of
        ``coo_indices``. With ``values=None`` the third result is the permutation that puts
        COO-ordered values into CSR order (``csr_values = coo_values[perm]``).

    Example:
        >>> crow, col, val = convert_coo_to_csr_indices_values(
        ...     torch.tensor([[1, 0], [0, 1]]), 2, torch.tensor([5.0, 6.0]))
    """
    coo_indices = _check_indices(coo_indices, num_rows)
    nnz = coo_indices.shape[1]
    if values is not None:
        values = check_tensor("values", values)
        if values.layout != torch.strided or values.dim() != 1 or values.shape[0] != nnz:
            raise value_error("values", values, f"a dense 1-D tensor of {nnz} values")
        if values.device != coo_indices.device:
            raise ValueError(
                f"values: expected device {coo_indices.device} to match coo_indices, "
                f"got {values.device}."
            )
    perm = _lex_order(coo_indices, num_rows)
    idx = coo_indices[:, perm]
    batched = coo_indices.shape[0] == 3
    n_batch = int(idx[0].max()) + 1 if batched and nnz else 1
    flat_rows = idx[-2].long() + (idx[0].long() * num_rows if batched else 0)
    if nnz > 1:
        same = (flat_rows[1:] == flat_rows[:-1]) & (idx[-1, 1:] == idx[-1, :-1])
        if bool(same.any()):
            k = int(same.nonzero()[0, 0])
            raise ValueError(
                f"coo_indices: expected unique indices, got {tuple(idx[:, k].tolist())} twice; "
                "coalesce (sum duplicates) first."
            )
    crow = _crow(flat_rows, n_batch, num_rows, coo_indices.dtype)
    out_values = values[perm] if values is not None else perm
    if not batched:
        return crow[0], idx[-1].contiguous(), out_values
    per_batch = crow[:, -1]
    if nnz and bool((per_batch != per_batch[0]).any()):
        raise ValueError(
            "coo_indices: expected the same number of entries in every batch item (batched CSR "
            f"requires it), got {per_batch.tolist()}."
        )
    per = nnz // n_batch
    return crow, idx[-1].reshape(n_batch, per), out_values.reshape(n_batch, per)


def convert_coo_to_csr(sparse_coo_tensor: torch.Tensor) -> torch.Tensor:
    """The CSR tensor of a 2-D or batched 3-D COO tensor (coalesced first if needed).

    Args:
        sparse_coo_tensor: sparse COO ``(n, m)`` or ``(b, n, m)``; batched input needs the same
            nnz in every batch item.

    Returns:
        Sparse CSR of the same shape, values and dtype, with int64 indices (COO's index dtype).

    Example:
        >>> A = convert_coo_to_csr(torch.eye(3).to_sparse_coo())
    """
    A = check_tensor("sparse_coo_tensor", sparse_coo_tensor)
    if A.layout != torch.sparse_coo:
        raise type_error("sparse_coo_tensor", A, "a sparse COO tensor")
    if A.dim() not in (2, 3) or A.dense_dim() != 0:
        raise value_error(
            "sparse_coo_tensor", A, "a 2-D or 3-D COO tensor without dense dimensions"
        )
    check_indices("sparse_coo_tensor", A)
    A = A.coalesce()  # coalesced indices are sorted lexicographically: already CSR order
    idx, values = A.indices(), A.values()
    n = A.shape[-2]
    if A.dim() == 2:
        crow = _crow(idx[0], 1, n, idx.dtype)[0]
        return torch.sparse_csr_tensor(crow, idx[1], values, A.shape)
    b = A.shape[0]
    crow = _crow(idx[0] * n + idx[1], b, n, idx.dtype)
    per_batch = crow[:, -1]
    if bool((per_batch != per_batch[0]).any()):
        raise ValueError(
            "sparse_coo_tensor: expected the same number of entries in every batch item (batched "
            f"CSR requires it), got {per_batch.tolist()}."
        )
    per = idx.shape[1] // b if b else 0
    return torch.sparse_csr_tensor(crow, idx[2].reshape(b, per), values.reshape(b, per), A.shape)
