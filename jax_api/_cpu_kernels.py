"""The CPU kernels of :class:`~jax_api._pattern.Pattern`: torch's MKL CSR kernels on JAX buffers.

Each public function takes a pattern (``crow``, ``col``, ``csr_shape``, ``nnz``) and JAX arrays,
and runs a torch function on their buffers through :func:`torch_call` (``bridge.jax_kernel``).
``A^T`` products transpose with SciPy's counting sort (CSR -> CSC, O(nnz)) inside the kernel,
never torch's slow CSC path.

Under ``vmap`` :func:`torch_call` calls a kernel once with the mapped axes in front: a shared
matrix with mapped right-hand sides becomes one product with all the columns; otherwise the
items run one after another inside the same callback.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np

from ._sharding import varying_like


# ------------------------------------------------------------------------- torch functions
def torch_csr(crow, col, values, shape):
    """The torch CSR tensor of the real entries (the first ``crow[-1]``) of a flat pattern."""
    import torch

    nv = int(crow[-1])
    with warnings.catch_warnings():  # torch's "CSR support is in beta" notice
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col[:nv], values[:nv], shape, check_invariants=False)


def _crow_kernel(rows, *, n_rows: int):
    import torch

    crow = torch.zeros(n_rows + 1, dtype=rows.dtype)
    counts = torch.bincount(rows, minlength=n_rows + 1)[:n_rows]  # row n_rows is padding
    crow[1:] = torch.cumsum(counts, 0)
    return crow


def _spmm_kernel(crow, col, values, B, *, csr_shape):
    return torch_csr(crow, col, values, csr_shape) @ B


def _sddmm_kernel(crow, col, G, X, *, shape):
    import torch

    out = torch.zeros(col.shape[0], dtype=G.dtype, device=G.device)
    if int(crow[-1]):
        # out=M fills ``out`` in place (as torch_api's Pattern.sddmm): the out-of-place call
        # would copy the indices (as int64 on CPU) and the values
        M = torch_csr(crow, col, out, shape)
        torch.sparse.sampled_addmm(M, G, X.transpose(0, 1), beta=0.0, out=M)
    return out


def _to_csc(crow, col, data, shape):
    """SciPy's counting sort of the real entries by column (stable): ``(indptr, indices, data)``
    of the CSC form, i.e. the CSR form of the transpose, as torch tensors in crow's dtype."""
    import scipy.sparse as sp
    import torch

    nv = int(crow[-1])
    csc = sp.csr_matrix((data, col[:nv].numpy(), crow.numpy()), shape=shape).tocsc()
    as_index = lambda a: torch.from_numpy(a.astype(crow.numpy().dtype, copy=False))
    return as_index(csc.indptr), as_index(csc.indices), torch.from_numpy(csc.data)


def _transpose_kernel(crow, col, *, shape):
    """(crow_T, col_T, perm) of the transposed pattern; padding stays last."""
    import torch

    nse, nv = col.shape[0], int(crow[-1])
    perm = torch.arange(nse, dtype=col.dtype)
    col_t = torch.zeros(nse, dtype=col.dtype)
    if not nv:
        return torch.zeros(shape[1] + 1, dtype=crow.dtype), col_t, perm
    crow_t, col_t[:nv], order = _to_csc(crow, col, perm[:nv].numpy(), shape)
    perm[:nv] = order
    return crow_t, col_t, perm


def _rmatmul_kernel(crow, col, values, G, *, csr_shape):
    """``A^T @ G``: the CSR of ``A^T`` (values carried through the counting sort), then MKL."""
    import torch

    n, m = csr_shape
    if not int(crow[-1]):
        return G.new_zeros(m, G.shape[1])
    crow_t, col_t, values_t = _to_csc(crow, col, values[: int(crow[-1])].numpy(), csr_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        At = torch.sparse_csr_tensor(crow_t, col_t, values_t, (m, n), check_invariants=False)
    return At @ G


# ------------------------------------------------------------------------- the vmap adapter
def torch_call(
    fn,
    out_shapes,
    *args,
    core_ndims: tuple[int, ...],
    n_matrix: int = 0,
    fold: bool = False,
    **static,
):
    """Run the torch function ``fn(*tensors, **static)`` on JAX's buffers (``bridge.jax_kernel``).

    Under ``vmap`` the kernel is called once with every argument carrying the mapped axes in
    front (``core_ndims`` gives each argument's unmapped rank). With ``fold=True`` and the first
    ``n_matrix`` arguments (the matrix) unmapped, the single dense argument's mapped axes are
    folded into its columns (one product with ``L * p`` columns); otherwise the items run one
    after another. The results are typed for ``shard_map`` like the inputs.

    Example:
        >>> out = jax.ShapeDtypeStruct((n + 1,), rows.dtype)
        >>> crow = torch_call(_crow_kernel, out, rows, core_ndims=(1,), n_rows=n)
    """
    from bridge import jax_kernel

    kernel = _Vectorized(fn, core_ndims, n_matrix, fold, tuple(sorted(static.items())))
    out = jax_kernel(kernel, out_shapes, vmap_method="expand_dims")(*args)
    return varying_like(out, args)


def matrix_call(fn, out_shapes, p, values, D, **static):
    """``fn(crow, col, values, D, csr_shape=..., **static)``: a torch kernel on the pattern's
    matrix and one dense ``(rows, k)`` block, which is the only argument a ``vmap`` over
    right-hand sides maps (folded into the block's columns: one call, ``L * k`` columns)."""
    return torch_call(
        fn,
        out_shapes,
        p.crow,
        p.col,
        values,
        D,
        core_ndims=(1, 1, 1, 2),
        n_matrix=3,
        fold=True,
        csr_shape=p.csr_shape,
        **static,
    )


@dataclass(frozen=True)
class _Vectorized:
    """``fn`` as :func:`torch_call` runs it: hashable and equal for equal ``fn`` and static
    arguments, so that repeated calls share JAX's compiled programs (see ``bridge.jax_kernel``).
    """

    fn: Callable
    core_ndims: tuple[int, ...]
    n_matrix: int
    fold: bool
    static: tuple  # sorted (name, value) pairs, all hashable

    def __call__(self, *args):
        return _vectorized(self.fn, self.core_ndims, self.n_matrix, self.fold,
                           dict(self.static), *args)


def _vectorized(fn, core_ndims, n_matrix, fold, static, *args):
    import torch

    lead = args[0].dim() - core_ndims[0]
    if lead == 0:
        return fn(*args, **static)
    bshape = tuple(torch.broadcast_shapes(*(tuple(a.shape[:lead]) for a in args)))
    size = int(np.prod(bshape))
    if fold and all(a.shape[:lead].numel() == 1 for a in args[:n_matrix]):
        (D,) = args[n_matrix:]
        D = D.expand(*bshape, *D.shape[lead:]).reshape(size, *D.shape[lead:])
        _, m, p = D.shape
        mats = (a.reshape(a.shape[lead:]) for a in args[:n_matrix])
        Y = fn(*mats, D.permute(1, 0, 2).reshape(m, size * p), **static)
        return Y.reshape(Y.shape[0], size, p).permute(1, 0, 2).reshape(*bshape, Y.shape[0], p)

    def item(a, index):
        return a[tuple(0 if s == 1 else j for s, j in zip(a.shape[:lead], index, strict=True))]

    outs = [fn(*(item(a, index) for a in args), **static) for index in np.ndindex(*bshape)]
    if isinstance(outs[0], tuple):
        stacked = (torch.stack(xs) for xs in zip(*outs, strict=True))
        return tuple(x.reshape(*bshape, *x.shape[1:]) for x in stacked)
    return torch.stack(outs).reshape(*bshape, *outs[0].shape)


# ------------------------------------------------------------------ the pattern's kernels
def crow_from_rows(rows: jax.Array, n_rows: int) -> jax.Array:
    """CSR pointers of sorted row indices, padding rows ``n_rows`` not counted (torch's bincount:
    2.4 ms for 1.7M entries where XLA's searchsorted takes 8 ms)."""
    out = jax.ShapeDtypeStruct((n_rows + 1,), rows.dtype)
    return torch_call(_crow_kernel, out, rows, core_ndims=(1,), n_rows=n_rows)


def spmm(p, values, B):
    """``A @ B`` for ``B (csr_shape[1], k)``."""
    out = jax.ShapeDtypeStruct((p.csr_shape[0], B.shape[1]), B.dtype)
    return matrix_call(_spmm_kernel, out, p, values, B)


def sddmm(p, G, X):
    """Flat values of ``G @ X^T`` at the pattern (zero at padding)."""
    out = jax.ShapeDtypeStruct((p.nnz,), G.dtype)
    return torch_call(
        _sddmm_kernel, out, p.crow, p.col, G, X, core_ndims=(1, 1, 2, 2), shape=p.csr_shape
    )


def transpose(p):
    """``(crow_T, col_T, perm)`` of the transposed pattern."""
    m = p.csr_shape[1]
    out = (
        jax.ShapeDtypeStruct((m + 1,), p.crow.dtype),
        jax.ShapeDtypeStruct((p.nnz,), p.col.dtype),
        jax.ShapeDtypeStruct((p.nnz,), p.col.dtype),
    )
    return torch_call(_transpose_kernel, out, p.crow, p.col, core_ndims=(1, 1), shape=p.csr_shape)


def rmatmul(p, values, G):
    """``A^T @ G`` for ``G (csr_shape[0], k)``."""
    out = jax.ShapeDtypeStruct((p.csr_shape[1], G.shape[1]), G.dtype)
    return matrix_call(_rmatmul_kernel, out, p, values, G)
