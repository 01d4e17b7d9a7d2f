"""The one index-range check of sparse COO/CSR/CSC components, for the bridge and torch_api.

torch builds sparse tensors without checking their indices by default; an out-of-range index
would make kernels read or write outside their buffers (garbage or a crash), JAX would take it
for padding and drop it, SciPy would read past its buffers. The check is O(nnz) on the device
where the indices live: a handful of reductions whose results cross to the host in one transfer
(one sync on a GPU). It works on torch tensors and NumPy arrays (the small adapter below picks
the framework from the array, importing nothing).
"""

from __future__ import annotations

import sys

import numpy as np


def _is_torch(a) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def _size(a) -> int:
    return a.numel() if _is_torch(a) else int(a.size)


def _minmax(a, dim: int | None = None):
    """``(min, max)`` of ``a`` (along ``dim``), in the array's framework."""
    if _is_torch(a):
        torch = sys.modules["torch"]
        return torch.aminmax(a) if dim is None else torch.aminmax(a, dim=dim)
    return a.min(axis=dim), a.max(axis=dim)


def _to_host(parts) -> list[int]:
    """The values of small arrays (of one framework) as Python ints, in one transfer."""
    if _is_torch(parts[0]):
        torch = sys.modules["torch"]
        return torch.cat([p.reshape(-1).to(torch.int64) for p in parts]).tolist()
    return np.concatenate([np.ravel(p).astype(np.int64) for p in parts]).tolist()


def check_coo(name: str, indices, shape: tuple[int, ...]) -> None:
    """``indices (n_sparse, nnz)`` must lie in ``[0, shape[d])`` for every dimension ``d``."""
    if indices.shape[-1] == 0:
        return
    k = indices.shape[0]
    host = _to_host(_minmax(indices, 1))
    for d, (lo, hi) in enumerate(zip(host[:k], host[k:], strict=True)):
        if lo < 0 or hi >= shape[d]:
            raise ValueError(
                f"{name}: expected COO indices of dimension {d} in [0, {shape[d]}), got indices "
                f"in [{lo}, {hi}] (these COO indices are not within the shape {tuple(shape)})."
            )


def check_compressed(
    name: str, ptr, idx, shape: tuple[int, ...], layout: str = "CSR"
) -> None:
    """Compressed indices (``ptr (..., n + 1)`` rising from 0 to nnz, ``idx (..., nnz)`` in
    range) of a CSR (rows compressed) or CSC (columns compressed) matrix of ``shape``."""
    n_ptr, n_idx = (-2, -1) if layout == "CSR" else (-1, -2)
    what = "column" if layout == "CSR" else "row"
    nnz = idx.shape[-1]
    ptr_ok = ptr.shape[-1] == shape[n_ptr] + 1
    lo = hi = 0
    if ptr_ok and _size(ptr):
        parts = [(ptr[..., 0] == 0).all(), (ptr[..., -1] == nnz).all(),
                 (ptr[..., 1:] >= ptr[..., :-1]).all()]
        if nnz:
            parts += list(_minmax(idx.reshape(-1)))
        host = _to_host(parts)
        ptr_ok = all(host[:3])
        if nnz:
            lo, hi = host[3:]
    if not ptr_ok:
        got = ptr.tolist() if _size(ptr) <= 12 else f"an array of shape {tuple(ptr.shape)}"
        raise ValueError(
            f"{name}: expected compressed indices of length {shape[n_ptr] + 1} rising from 0 to "
            f"nnz={nnz}, got {got} (inconsistent {layout} indices)."
        )
    if nnz and (lo < 0 or hi >= shape[n_idx]):
        raise ValueError(
            f"{name}: expected {what} indices in [0, {shape[n_idx]}), got indices in "
            f"[{lo}, {hi}] (these {layout} indices are not within the shape {tuple(shape)})."
        )
