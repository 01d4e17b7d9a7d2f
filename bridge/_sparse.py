"""COO/CSR sparse tensors between torch, JAX (BCOO/BCSR), SciPy and CuPy.

Every sparse input is read (:mod:`bridge._sparse_read`) into a :class:`~bridge._hub.Hub`: its
components as torch tensors (zero-copy views where possible, on the input's device), its shape,
and whether its indices are canonical (COO: sorted in row-major order without duplicates; CSR:
sorted and distinct within each row). Writers (here) build the target from the hub, converting
each component with :func:`bridge._dense.convert`, so the dense traps (x64, strides, alignment,
devices) are handled once. Torch is the hub because it can view any strided layout on CPU and
GPU (e.g. BCOO's ``(nnz, ndim)`` indices as ``(ndim, nnz)``).

Metadata stays honest: torch COO is marked coalesced and BCOO/BCSR ``indices_sorted`` /
``unique_indices`` are set only when the indices are canonical (taken from trustworthy flags or
checked); BCOO/BCSR padding entries (out-of-range indices left by jit-ed operations) are dropped.
"""

from __future__ import annotations

import torch

from ._dense import convert, refuse
from ._hub import Hub
from ._optional import require
from ._sparse_read import READERS, sparse_kind

__all__ = ["convert_sparse", "sparse_kind"]

_CSR_NAMES = ("crow_indices", "col_indices")


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
            "values: expected the same number of entries in every batch after merging "
            "duplicates (torch's batched CSR needs it), got different counts."
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
            f"values: expected scalars per entry (SciPy sparse arrays have no dense or batch "
            f"dimensions), got values of shape {tuple(hub.values.shape)}."
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
                f"x: expected a COO array this SciPy can hold, got a {len(hub.shape)}-D one "
                f"({exc}); convert each batch separately."
            ) from exc
        out.has_canonical_format = hub.is_canonical()
        return out
    if len(hub.shape) != 2:
        raise ValueError(
            f"x: expected a 2-D CSR matrix (SciPy has no batched CSR), got shape {hub.shape}; "
            "convert each batch separately, or convert a COO tensor to an n-D coo_array."
        )
    crow, col = (np_of(t, name) for t, name in zip(hub.index, _CSR_NAMES, strict=True))
    return sp.csr_array((values, col, crow), shape=hub.shape, copy=False)


def _write_cupy(hub: Hub, copy):
    cusp = require("cupyx.scipy.sparse")
    if len(hub.shape) != 2 or hub.values.ndim != 1:
        raise ValueError(
            f"x: expected a 2-D matrix with scalar entries (as cupyx sparse matrices are), got "
            f"shape {hub.shape} with values of shape {tuple(hub.values.shape)}."
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
