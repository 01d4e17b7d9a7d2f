"""Test helpers across frameworks: buffer addresses and parts of torch/JAX/SciPy sparse
matrices, builders of the same matrix in each framework, and the JAX sparse test matrices."""

from __future__ import annotations

import torch


# ---------------------------------------------------------------- bridge (conversion) helpers
def data_ptr(x) -> int:
    """Address of the first element of a torch tensor, JAX array or NumPy array."""
    if isinstance(x, torch.Tensor):
        return x.data_ptr()
    if hasattr(x, "unsafe_buffer_pointer"):
        return x.unsafe_buffer_pointer()
    return x.__array_interface__["data"][0]


def sparse_parts(x) -> dict:
    """Named components of a torch / BCOO / BCSR / SciPy sparse tensor (a SciPy COO's
    ``indices`` is its first coordinate array, which starts the shared index buffer)."""
    if isinstance(x, torch.Tensor):
        if x.layout == torch.sparse_coo:
            return {"indices": x._indices(), "values": x._values()}
        names = ("crow_indices", "col_indices", "values")
        return dict(zip(names, (x.crow_indices(), x.col_indices(), x.values()), strict=True))
    if hasattr(x, "indptr"):
        return {"crow_indices": x.indptr, "col_indices": x.indices, "values": x.data}
    if hasattr(x, "coords"):
        return {"indices": x.coords[0], "values": x.data}
    return {"indices": x.indices, "values": x.data}


def dense_of(x):
    """A NumPy copy of any dense or sparse array (each framework densifies its own)."""
    import numpy as np

    if isinstance(x, torch.Tensor):
        return (x.to_dense() if x.layout != torch.strided else x).detach().resolve_neg().numpy()
    if hasattr(x, "n_batch"):  # BCOO / BCSR, densified in NumPy (no per-shape JAX compile)
        return _jax_sparse_dense(x)
    if hasattr(x, "toarray"):
        return x.toarray()
    return np.array(x)


def _jax_sparse_dense(x):
    import numpy as np

    if x.n_dense or (x.n_batch and not hasattr(x, "indptr")):
        return np.asarray(x.todense())
    data, indices = np.asarray(x.data), np.asarray(x.indices)
    out = np.zeros(x.shape, data.dtype)
    if not hasattr(x, "indptr"):  # BCOO; padding entries (index == shape) are skipped
        keep = (indices < np.array(x.shape)).all(axis=1)
        np.add.at(out, tuple(indices[keep].T), data[keep])
        return out
    indptr = np.asarray(x.indptr).reshape(-1, x.shape[-2] + 1)
    nb, nse = len(indptr), indices.shape[-1]
    flat = out.reshape(nb, *x.shape[-2:])
    cols, vals = indices.reshape(nb, nse), data.reshape(nb, nse)
    for b, ptr in enumerate(indptr):
        rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        np.add.at(flat[b], (rows, cols[b, : ptr[-1]]), vals[b, : ptr[-1]])
    return out


def aligned_numpy(a):
    """A NumPy copy of ``a`` in torch-allocated (64-byte aligned) memory, shareable with JAX."""
    import numpy as np

    return torch.from_numpy(np.array(a, order="C")).clone().numpy()


def make_sparse(framework: str, D: torch.Tensor, layout, index_dtype=torch.int64):
    """``D`` (2-D or 3-D) as a fresh, aligned sparse tensor of ``framework`` ("torch", "jax" or
    "scipy") with sorted, unique indices, built with that framework's own constructors from
    torch's (reference) indices. Batched CSR: torch / BCSR n_batch=1;
    batched COO: 3 sparse dims / BCOO n_batch=0 / 3-D coo_array. JAX needs x64 for 64-bit data."""
    from tests.helpers import to_sparse

    S = to_sparse(D, layout, index_dtype)
    if layout == torch.sparse_coo:
        indices, values = S._indices().to(index_dtype), S._values()
    else:
        parts = (S.crow_indices(), S.col_indices(), S.values())
    if framework == "jax":
        import jax.numpy as jnp
        from jax.experimental import sparse as jsparse

        flags = {"shape": D.shape, "indices_sorted": True, "unique_indices": True}
        if layout == torch.sparse_coo:
            args = (jnp.asarray(values.numpy()), jnp.asarray(indices.T.numpy()))
            return jsparse.BCOO(args, **flags)
        crow, col, values = (jnp.asarray(p.numpy()) for p in parts)
        return jsparse.BCSR((values, col, crow), **flags)
    if framework == "torch":
        if layout == torch.sparse_coo:
            return torch.sparse_coo_tensor(
                indices.clone(), values.clone(), D.shape, is_coalesced=True, check_invariants=True
            )
        return torch.sparse_csr_tensor(*(p.clone() for p in parts), D.shape, check_invariants=True)
    import scipy.sparse as sp

    if layout == torch.sparse_coo:
        coords, values = aligned_numpy(indices.numpy()), aligned_numpy(values.numpy())
        return sp.coo_array((values, tuple(coords)), shape=D.shape, copy=False)
    crow, col, values = (aligned_numpy(p.numpy()) for p in parts)
    return sp.csr_array((values, col, crow), shape=D.shape, copy=False)


# ------------------------------------------------------------------- JAX sparse test matrices
JAX_KINDS_2D = ("bcoo", "bcoo_unsorted", "bcoo_padded", "bcsr", "bcsr_padded")
JAX_KINDS_3D = ("bcoo", "bcoo_padded", "bcoo3", "bcsr", "bcsr_padded")


def jax_sparse(D, kind: str, seed: int = 0):
    """A NumPy ``D`` (2-D, or 3-D batched) as a ``jax.experimental.sparse`` matrix of ``kind``.

    ``bcoo``/``bcsr``: ``fromdense`` (3-D: one batch dimension). ``bcoo_unsorted``: the entries
    shuffled (``indices_sorted=False``). ``*_padded``: three padding entries per matrix holding
    *nonzero garbage* data, which every op must treat as absent. ``bcoo3``: a 3-D BCOO with three
    sparse dimensions (torch's batched COO layout). Uses the caller's x64 mode for float64.
    """
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental.sparse import BCOO, BCSR

    Dn = np.asarray(D)
    D = jnp.asarray(D)
    n_batch = 1 if D.ndim == 3 and kind != "bcoo3" else 0
    per_matrix = Dn.reshape(Dn.shape[0], -1) if n_batch else Dn.reshape(1, -1)
    nnz = int(np.count_nonzero(per_matrix, axis=1).max())
    if kind in ("bcoo", "bcoo3"):
        return BCOO.fromdense(D, n_batch=n_batch)
    if kind == "bcsr":
        return BCSR.fromdense(D, n_batch=n_batch)
    if kind == "bcoo_unsorted":
        A = BCOO.fromdense(D)
        perm = np.random.default_rng(seed).permutation(A.nse)
        return BCOO((A.data[perm], A.indices[perm]), shape=A.shape)
    garbage = lambda A: A.data.at[..., nnz:].set(7.5)  # padding sits after the nnz entries
    if kind == "bcoo_padded":
        A = BCOO.fromdense(D, n_batch=n_batch, nse=nnz + 3)
        return BCOO((garbage(A), A.indices), shape=A.shape, indices_sorted=True)
    if kind == "bcsr_padded":
        A = BCSR.fromdense(D, n_batch=n_batch, nse=nnz + 3)
        return BCSR((garbage(A), A.indices, A.indptr), shape=A.shape)
    raise ValueError(f"kind: unknown {kind!r}")


def jax_with_data(A, data):
    """``A`` with its data array replaced (same indices, flags and shape)."""
    from jax.experimental.sparse import BCSR

    if isinstance(A, BCSR):
        return BCSR((data, A.indices, A.indptr), shape=A.shape)
    return type(A)((data, A.indices), shape=A.shape, indices_sorted=A.indices_sorted,
                   unique_indices=A.unique_indices)


def jax_padding_mask(A):
    """NumPy bool mask, shaped like ``A.data``, of A's padding entries."""
    import numpy as np
    from jax.experimental.sparse import BCSR

    if isinstance(A, BCSR):
        indptr = np.asarray(A.indptr)
        pos = np.arange(A.indices.shape[-1])
        return pos >= indptr[..., -1:]
    idx = np.asarray(A.indices)
    sparse_shape = np.array(A.shape[A.n_batch:])
    mask = (idx >= sparse_shape).any(-1)
    return np.broadcast_to(mask, A.data.shape)


def jax_sparse_grad_dense(A, grad_data):
    """The dense matrix holding ``grad_data`` (a gradient for ``A.data``) at A's entries;
    padding entries must have zero gradient."""
    import numpy as np

    g = np.asarray(grad_data)
    assert g.shape == A.data.shape, (g.shape, A.data.shape)
    assert np.all(g[jax_padding_mask(A)] == 0), "padding entries got a nonzero gradient"
    return dense_of(jax_with_data(A, np.where(jax_padding_mask(A), 0, g)))
