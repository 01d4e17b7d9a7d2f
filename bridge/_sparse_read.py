"""Readers of the sparse converters: a torch, JAX, SciPy or cupyx COO/CSR input -> a
:class:`~bridge._hub.Hub` (zero-copy views where possible; see :mod:`bridge._sparse`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ._dense import check_concrete, refuse
from ._hub import Hub, _component
from ._optional import loaded, require
from .internal import indices


def _read_torch(x: torch.Tensor, copy) -> Hub:
    """Views of the components; the writer copies them if it must (torch is never the target)."""
    x = x.detach()
    if x.layout == torch.sparse_coo:
        _check_torch_indices(x._indices(), None, x.shape)
        return Hub("coo", tuple(x.shape), x._values(), (x._indices(),), x.is_coalesced() or None)
    crow, col = x.crow_indices(), x.col_indices()
    _check_torch_indices(crow, col, x.shape)
    # torch does not check CSR invariants by default: sortedness is checked when a writer needs it
    return Hub("csr", tuple(x.shape), x.values(), (crow, col), None)


def _check_torch_indices(first: torch.Tensor, col: torch.Tensor | None, shape) -> None:
    """Refuse out-of-range indices: JAX would take them for padding and drop them, SciPy would
    read past its buffers (:mod:`bridge.internal.indices`; one host sync)."""
    if first.device.type == "meta":
        return
    if col is None:
        indices.check_coo("indices", first, tuple(shape))
    else:
        indices.check_compressed("indices", first, col, tuple(shape), "CSR")


def _drop_coo_padding(hub: Hub, copy) -> Hub:
    (indices,) = hub.index
    bound = torch.tensor(hub.shape[: indices.shape[0]], device=indices.device).unsqueeze(1)
    keep = (indices < bound).all(dim=0)
    if bool(keep.all()):
        return hub
    refuse(copy, "indices", "BCOO padding entries (out-of-range indices) must be dropped")
    hub.index, hub.values = (indices[:, keep],), hub.values[keep]
    return hub


def _read_bcoo(x, copy) -> Hub:
    check_concrete(x.data, "bridge")
    if x.n_batch:
        refuse(
            copy,
            "indices",
            f"this BCOO has n_batch={x.n_batch}; its per-batch indices must be "
            "merged into one (nnz, ndim) array",
        )
        x = require("jax.experimental.sparse").bcoo_update_layout(x, n_batch=0)
    indices = _component(x.indices, "indices", copy).T
    values = _component(x.data, "values", copy)
    known = (x.indices_sorted and x.unique_indices) or None
    return _drop_coo_padding(Hub("coo", tuple(x.shape), values, (indices,), known), copy)


def _read_bcsr(x, copy) -> Hub:
    check_concrete(x.data, "bridge")
    crow = _component(x.indptr, "crow_indices", copy)
    col = _component(x.indices, "col_indices", copy)
    values = _component(x.data, "values", copy)
    known = (x.indices_sorted and x.unique_indices) or None
    return _drop_csr_padding(Hub("csr", tuple(x.shape), values, (crow, col), known))


def _drop_csr_padding(hub: Hub) -> Hub:
    """Entries past ``crow[..., -1]`` are padding: keep the prefix (a view) of each batch."""
    crow, col = hub.index
    ends = crow[..., -1].reshape(-1)
    nnz = int(ends[0]) if ends.numel() else 0
    if ends.numel() == 0 or nnz == col.shape[-1]:
        return hub
    if bool((ends != nnz).any()):
        raise ValueError(
            "values: expected the same number of entries in every batch (torch's batched CSR "
            "needs it), got a batched BCSR with padding and different counts per batch."
        )
    n_batch = crow.ndim - 1
    hub.index = (crow, col[..., :nnz])
    hub.values = hub.values[(slice(None),) * n_batch + (slice(0, nnz),)]
    return hub


def _stack_view(arrays) -> np.ndarray | None:
    """A ``(k, n)`` view whose rows are the equal 1-D ``arrays`` if they lie at a constant distance
    inside one buffer (as when they came from one index array), else None."""
    a0 = arrays[0]
    if any(a.ndim != 1 or a.dtype != a0.dtype or a.strides != a0.strides for a in arrays):
        return None
    if any(a.shape != a0.shape for a in arrays) or a0.size == 0:
        return None
    ptrs = [a.__array_interface__["data"][0] for a in arrays]
    step = ptrs[1] - ptrs[0] if len(ptrs) > 1 else a0.itemsize
    owners = {id(_owner(a)) for a in arrays}
    if any(q - p != step for p, q in zip(ptrs, ptrs[1:], strict=False)) or len(owners) != 1:
        return None
    owner = _owner(a0)
    if not (owner.flags.c_contiguous or owner.flags.f_contiguous):
        return None
    lo, hi = (
        owner.__array_interface__["data"][0],
        owner.__array_interface__["data"][0] + owner.nbytes,
    )
    corners = [ptrs[0], ptrs[-1], ptrs[0] + (a0.size - 1) * a0.strides[0]]
    corners.append(corners[1] + corners[2] - corners[0])
    if min(corners) < lo or max(corners) + a0.itemsize > hi:
        return None
    return np.lib.stride_tricks.as_strided(a0, (len(arrays), a0.size), (step, a0.strides[0]))


def _owner(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _read_scipy_coo(x, copy) -> Hub:
    coords = x.coords if hasattr(x, "coords") else (x.row, x.col)
    stacked = _stack_view([np.asarray(c) for c in coords])
    if stacked is None:
        if x.nnz:
            refuse(
                copy,
                "indices",
                "SciPy keeps each coordinate in its own array and torch/JAX "
                "need them in one index array",
            )
        stacked = np.stack(coords)
    indices = _component(stacked, "indices", copy)
    values = _component(x.data, "values", copy)
    return Hub("coo", tuple(x.shape), values, (indices,), bool(x.has_canonical_format) or None)


def _read_csr_array(x, copy, *, trust_false: bool) -> Hub:
    """A SciPy or cupyx CSR: SciPy's ``has_canonical_format`` is exact (False: not canonical);
    cupyx's False can mean "not known" (then checked on demand)."""
    crow = _component(x.indptr, "crow_indices", copy)
    col = _component(x.indices, "col_indices", copy)
    values = _component(x.data, "values", copy)
    known = bool(x.has_canonical_format) if trust_false else bool(x.has_canonical_format) or None
    return Hub("csr", tuple(x.shape), values, (crow, col), known)


def _read_cupyx_coo(x, copy) -> Hub:
    refuse(copy, "indices", "cupyx keeps row and col in separate arrays")
    indices = _component(require("cupy").stack([x.row, x.col]), "indices", copy)
    values = _component(x.data, "values", copy)
    return Hub("coo", tuple(x.shape), values, (indices,), bool(x.has_canonical_format) or None)


READERS = {
    ("torch", "coo"): _read_torch,
    ("torch", "csr"): _read_torch,
    ("jax", "coo"): _read_bcoo,
    ("jax", "csr"): _read_bcsr,
    ("scipy", "coo"): _read_scipy_coo,
    ("scipy", "csr"): functools.partial(_read_csr_array, trust_false=True),
    ("cupy", "coo"): _read_cupyx_coo,
    ("cupy", "csr"): functools.partial(_read_csr_array, trust_false=False),
}


def sparse_kind(x) -> tuple[str, str] | None:
    """``(framework, "coo" | "csr")`` for a sparse input, None for anything else."""
    if isinstance(x, torch.Tensor):
        return {torch.sparse_coo: ("torch", "coo"), torch.sparse_csr: ("torch", "csr")}.get(
            x.layout
        )
    jsparse = loaded("jax.experimental.sparse")
    if jsparse is not None and isinstance(x, jsparse.BCOO | jsparse.BCSR):
        return ("jax", "coo" if isinstance(x, jsparse.BCOO) else "csr")
    fmt = getattr(x, "format", None)
    scipy_sparse = loaded("scipy.sparse")
    if scipy_sparse is not None and scipy_sparse.issparse(x) and fmt in ("coo", "csr"):
        return ("scipy", fmt)
    cupyx_sparse = loaded("cupyx.scipy.sparse")
    if cupyx_sparse is not None and cupyx_sparse.issparse(x) and fmt in ("coo", "csr"):
        return ("cupy", fmt)
    return None
