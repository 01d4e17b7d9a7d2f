"""COO/CSR sparse tensors between torch, JAX (BCOO/BCSR), SciPy and CuPy.

Every sparse input is read into a :class:`Hub`: its components as torch tensors (zero-copy views
where possible, on the input's device), its shape, and whether its indices are canonical (COO:
sorted in row-major order without duplicates; CSR: sorted and distinct within each row). Writers
build the target from the hub, converting each component with :func:`bridge._dense.convert`, so the
dense traps (x64, strides, alignment, devices) are handled once. Torch is the hub because it can
view any strided layout on CPU and GPU (e.g. BCOO's ``(nnz, ndim)`` indices as ``(ndim, nnz)``).

Metadata stays honest: torch COO is marked coalesced and BCOO/BCSR ``indices_sorted`` /
``unique_indices`` are set only when the indices are canonical (taken from trustworthy flags or
checked); BCOO/BCSR padding entries (out-of-range indices left by jit-ed operations) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._dense import check_concrete, convert, refuse
from ._optional import loaded, require

_CSR_NAMES = ("crow_indices", "col_indices")


@dataclass
class Hub:
    layout: str  # "coo" or "csr"
    shape: tuple[int, ...]
    values: torch.Tensor  # COO: (nnz, *dense); CSR: (*batch, nnz, *dense)
    index: tuple[torch.Tensor, ...]  # COO: (indices (n_sparse, nnz),); CSR: (crow, col)
    canonical: bool | None = None  # None: not known yet, checked on demand

    def is_canonical(self) -> bool:
        if self.canonical is None:
            check = _coo_canonical if self.layout == "coo" else _csr_canonical
            self.canonical = bool(check(*self.index))
        return self.canonical


def _coo_canonical(indices: torch.Tensor) -> bool:
    """Columns of ``indices`` strictly increasing in lexicographic (row-major) order."""
    if indices.shape[1] < 2:
        return True
    diff = indices[:, 1:].long() - indices[:, :-1].long()
    first = (diff != 0).int().argmax(dim=0, keepdim=True)
    return bool((diff.gather(0, first) > 0).all())


def _csr_canonical(crow: torch.Tensor, col: torch.Tensor) -> bool:
    """Column indices sorted and distinct within every row (batched too)."""
    nnz = col.shape[-1]
    if nnz < 2:
        return True
    starts = torch.zeros(*col.shape[:-1], nnz + 1, dtype=torch.bool, device=col.device)
    starts.scatter_(-1, crow.long(), True)
    return bool(((col[..., 1:] > col[..., :-1]) | starts[..., 1:nnz]).all())


def _component(x, name: str, copy) -> torch.Tensor:
    return convert(x, "torch", copy=copy, name=name, fn="bridge")


# ---------------------------------------------------------------- readers: sparse input -> Hub
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
    """Refuse out-of-range indices (torch builds sparse tensors without checking them; JAX would
    take them for padding and drop them, SciPy would read past its buffers). One host sync."""
    if first.device.type == "meta":
        return
    if col is None:  # COO indices (ndim, nnz)
        bound = torch.tensor(shape[: first.shape[0]], device=first.device).unsqueeze(1)
        ok = first.numel() == 0 or bool(((first >= 0) & (first < bound)).all())
        what = f"COO indices within the shape {tuple(shape)}"
    else:
        nnz, n_rows = col.shape[-1], shape[-2]
        ok = first.shape[-1] == n_rows + 1
        if ok and first.numel():
            flags = [(first[..., 0] == 0).all(), (first[..., -1] == nnz).all(),
                     (first[..., 1:] >= first[..., :-1]).all()]
            if nnz:
                flags += [(col >= 0).all(), (col < shape[-1]).all()]
            ok = bool(torch.stack(flags).all())
        what = f"CSR indices (row pointers rising from 0 to nnz, columns in [0, {shape[-1]}))"
    if not ok:
        raise ValueError(f"indices: expected {what}, got out-of-range or inconsistent indices")


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
            "values: this batched BCSR has padding and a different number of entries per batch; "
            "torch's batched CSR needs the same count in every batch"
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


def _read_scipy_csr(x, copy) -> Hub:
    crow = _component(x.indptr, "crow_indices", copy)
    col = _component(x.indices, "col_indices", copy)
    values = _component(x.data, "values", copy)
    return Hub("csr", tuple(x.shape), values, (crow, col), bool(x.has_canonical_format))


def _read_cupyx_coo(x, copy) -> Hub:
    refuse(copy, "indices", "cupyx keeps row and col in separate arrays")
    indices = _component(require("cupy").stack([x.row, x.col]), "indices", copy)
    values = _component(x.data, "values", copy)
    return Hub("coo", tuple(x.shape), values, (indices,), bool(x.has_canonical_format) or None)


def _read_cupyx_csr(x, copy) -> Hub:
    crow = _component(x.indptr, "crow_indices", copy)
    col = _component(x.indices, "col_indices", copy)
    values = _component(x.data, "values", copy)
    return Hub("csr", tuple(x.shape), values, (crow, col), bool(x.has_canonical_format) or None)


READERS = {
    ("torch", "coo"): _read_torch,
    ("torch", "csr"): _read_torch,
    ("jax", "coo"): _read_bcoo,
    ("jax", "csr"): _read_bcsr,
    ("scipy", "coo"): _read_scipy_coo,
    ("scipy", "csr"): _read_scipy_csr,
    ("cupy", "coo"): _read_cupyx_coo,
    ("cupy", "csr"): _read_cupyx_csr,
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


# ---------------------------------------------------------------- writers: Hub -> target
def _canonical_csr(hub: Hub, copy) -> Hub:
    """Sort and merge the column indices of every row (a copy): torch CSR requires it."""
    if hub.is_canonical():
        return hub
    refuse(copy, "col_indices", "torch CSR needs sorted, distinct column indices in every row")
    crow, col = hub.index
    n_batch = crow.ndim - 1
    batches = (
        [(crow, col, hub.values)]
        if not n_batch
        else zip(
            crow.reshape(-1, crow.shape[-1]),
            col.reshape(-1, col.shape[-1]),
            hub.values.reshape(-1, *hub.values.shape[n_batch:]),
            strict=True,
        )
    )
    parts = []
    for c, k, v in batches:
        rows = torch.repeat_interleave(torch.arange(len(c) - 1, device=c.device), c.diff())
        coo = torch.sparse_coo_tensor(torch.stack([rows, k.long()]), v, hub.shape[n_batch:][:2])
        parts.append(coo.coalesce().to_sparse_csr())
    if len({p.values().shape[0] for p in parts}) > 1:
        raise ValueError(
            "values: merging duplicates left batches with different entry counts, "
            "which torch's batched CSR cannot hold"
        )
    batch = hub.shape[:n_batch]
    new_crow = torch.stack([p.crow_indices() for p in parts]).reshape(*batch, -1).to(crow.dtype)
    new_col = torch.stack([p.col_indices() for p in parts]).reshape(*batch, -1).to(col.dtype)
    values = torch.stack([p.values() for p in parts])
    values = values.reshape(*batch, *values.shape[1:])
    return Hub("csr", hub.shape, values, (new_crow, new_col), True)


def _write_torch(hub: Hub, copy) -> torch.Tensor:
    if hub.layout == "coo":
        (indices,) = hub.index
        if indices.dtype != torch.int64:
            refuse(
                copy,
                "indices",
                f"torch COO indices are always int64 and these are "
                f"{str(indices.dtype).removeprefix('torch.')}",
            )
            indices = indices.long()
        return torch.sparse_coo_tensor(
            indices, hub.values, hub.shape, check_invariants=False, is_coalesced=hub.is_canonical()
        )
    hub = _canonical_csr(hub, copy)
    crow, col = hub.index
    if crow.dtype != col.dtype:
        refuse(copy, "crow_indices", "torch CSR needs crow and col indices of one dtype")
        crow = crow.to(col.dtype)
    return torch.sparse_csr_tensor(crow, col, hub.values, hub.shape, check_invariants=False)


def _write_jax(hub: Hub, copy):
    jsparse = require("jax.experimental.sparse")
    flags = {"indices_sorted": hub.is_canonical(), "unique_indices": hub.is_canonical()}
    jax_of = lambda t, name: convert(t, "jax", copy=copy, name=name, fn="to_jax")
    values = jax_of(hub.values, "values")
    if hub.layout == "coo":
        indices = jax_of(hub.index[0].T, "indices")
        return jsparse.BCOO((values, indices), shape=hub.shape, **flags)
    crow, col = (jax_of(t, name) for t, name in zip(hub.index, _CSR_NAMES, strict=True))
    return jsparse.BCSR((values, col, crow), shape=hub.shape, **flags)


def _write_scipy(hub: Hub, copy):
    sp = require("scipy.sparse")
    if hub.values.ndim != (1 if hub.layout == "coo" else len(hub.shape) - 1):
        raise ValueError(
            f"values: SciPy sparse arrays hold scalars per entry; got values of shape "
            f"{tuple(hub.values.shape)} (dense or batch dimensions)"
        )
    np_of = lambda t, name: convert(t, "numpy", copy=copy, name=name, fn="to_scipy")
    values = np_of(hub.values, "values")
    if hub.layout == "coo":
        indices = hub.index[0]
        if len(hub.shape) > 2 and indices.dtype != torch.int64:
            refuse(copy, "indices", "SciPy's n-D coo_array stores int64 coordinates only")
            indices = indices.long()
        indices = np_of(indices, "indices")
        try:
            out = sp.coo_array((values, tuple(indices)), shape=hub.shape, copy=False)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"this SciPy cannot hold a {len(hub.shape)}-D COO array ({exc}); "
                "convert each batch separately"
            ) from exc
        out.has_canonical_format = hub.is_canonical()
        return out
    if len(hub.shape) != 2:
        raise ValueError(
            f"SciPy has no batched CSR; got shape {hub.shape}. Convert each batch "
            "separately, or convert a COO tensor to an n-D coo_array"
        )
    crow, col = (np_of(t, name) for t, name in zip(hub.index, _CSR_NAMES, strict=True))
    return sp.csr_array((values, col, crow), shape=hub.shape, copy=False)


def _write_cupy(hub: Hub, copy):
    cusp = require("cupyx.scipy.sparse")
    if len(hub.shape) != 2 or hub.values.ndim != 1:
        raise ValueError(
            f"cupyx sparse matrices are 2-D with scalar entries; got shape {hub.shape}"
        )
    cp_of = lambda t, name: convert(t, "cupy", copy=copy, name=name, fn="to_cupy")
    # cupyx sparse matrices take int32 indices only
    small = lambda t, name: cp_of(_int32(t, name, copy), name)
    values = cp_of(hub.values, "values")
    if hub.layout == "coo":
        row, col = (small(t, "indices") for t in hub.index[0])
        out = cusp.coo_matrix((values, (row, col)), shape=hub.shape)
        out.has_canonical_format = hub.is_canonical()
        return out
    crow, col = (small(t, name) for t, name in zip(hub.index, _CSR_NAMES, strict=True))
    return cusp.csr_matrix((values, col, crow), shape=hub.shape)


def _int32(t: torch.Tensor, name: str, copy) -> torch.Tensor:
    if t.dtype == torch.int32:
        return t
    refuse(copy, name, f"cupyx sparse matrices need int32 indices and these are {t.dtype}")
    return t.to(torch.int32)


WRITERS = {"torch": _write_torch, "jax": _write_jax, "scipy": _write_scipy, "cupy": _write_cupy}


def convert_sparse(x, kind: tuple[str, str], target: str, copy):
    """Sparse ``x`` of ``kind`` as the ``target`` framework's tensor of the same layout."""
    # Components are copied once: by the reader when torch is the target, else by the writer.
    hub = READERS[kind](x, copy if target == "torch" or copy is False else None)
    return WRITERS[target](hub, copy)
