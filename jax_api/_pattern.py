"""A sparse matrix's pattern, and the gradient on it: the shared core of every jax_api op.

Every operation turns its BCOO/BCSR argument into a :class:`Pattern` once (:meth:`Pattern.of`):
the pattern of one 2-D matrix in CSR order (a batched ``(b, n, m)`` matrix becomes the
block-diagonal ``(b*n, b*m)`` matrix) plus the flat ``(nnz,)`` values in that order. The values
are taken from ``A.data`` with ordinary differentiable JAX operations (reshape, gather by a sort
permutation, masking), so a gradient computed on the flat values flows back to ``A.data`` in the
caller's own layout, through ``jax.grad`` and ``eqx.filter_grad`` alike.

Padding: BCOO marks unused entries with an index equal to the shape, BCSR keeps them after
``indptr[-1]``. They become entries of row ``n_rows`` (one past the last row) sorted after every
real entry, with value 0; ``crow`` counts only real entries, so the first ``crow[-1]`` entries are
a valid CSR matrix and padding receives a zero gradient.

The gradient with respect to the values in ``Y = f(A) ...`` is always a sampled dense-dense
product (SDDMM): ``dA[i, j] = sum_k G[i, k] X[j, k]`` at A's nonzeros (:meth:`Pattern.sddmm`).
It never forms an ``n x m`` matrix nor an ``nnz x p`` temporary: on CPU it runs
``torch.sparse.sampled_addmm`` on JAX's buffers through :func:`bridge.jax_kernel`; elsewhere a
loop over column blocks of ``G`` and ``X`` keeps the temporaries at ``O(nnz * block)``.
Products (:meth:`Pattern.matmul`, :meth:`Pattern.rmatmul`) likewise use torch's MKL CSR kernels on
CPU and XLA gather/scatter elsewhere; the choice is made when the program is lowered
(``jax.lax.platform_dependent``), so it is static and free under ``jit``. ``A^T`` products
transpose with a counting sort (SciPy's CSR -> CSC, O(nnz)) inside the kernel, never torch's
slow CSC path; :meth:`Pattern.transpose` gives the transposed pattern for repeated use.

Kernels run under ``vmap`` once per call with the mapped axes in front (a shared matrix with
mapped right-hand sides becomes one product with all columns), and inside ``shard_map`` their
results are typed as varying like their inputs (:func:`_varying_like`), so they compose with
``jit``, ``vmap``, ``grad`` and ``shard_map``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

_INT32_MAX = 2**31 - 1
_SDDMM_BLOCK_ELEMS = 1 << 22  # XLA path: at most nnz * block elements live at once


def _index_dtype(*sizes: int):
    return jnp.int32 if max(sizes) < _INT32_MAX else jnp.int64


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["rows", "cols", "crow"],
    meta_fields=["shape", "csr_shape", "layout"],
)
@dataclass(frozen=True)
class Pattern:
    """The pattern of a 2-D or batched BCOO/BCSR matrix as one row-sorted 2-D pattern.

    ``rows``/``cols`` (``(nnz,)``) list the entries of the (block-diagonal) ``csr_shape`` matrix
    sorted by row; padding entries come last with row ``csr_shape[0]`` and column 0. ``crow``
    (``(csr_shape[0] + 1,)``) are the CSR row pointers of the real entries. ``shape`` is the
    caller's shape, ``(n, m)`` or ``(b, n, m)``, and ``layout`` its type (``"bcoo"`` or
    ``"bcsr"``). A pytree: it crosses ``jit``/``vmap``/``custom_vjp`` boundaries like an array.
    """

    rows: jax.Array
    cols: jax.Array
    crow: jax.Array
    shape: tuple[int, ...]
    csr_shape: tuple[int, int]
    layout: str = "bcoo"

    # ----------------------------------------------------------------------------- facts
    @property
    def batch(self) -> int | None:
        return self.shape[0] if len(self.shape) == 3 else None

    @property
    def nnz(self) -> int:
        """Stored entries, padding included (a static number)."""
        return self.cols.shape[0]

    @property
    def valid(self) -> jax.Array:
        """``(nnz,)`` mask of the real (non-padding) entries."""
        return self.rows < self.csr_shape[0]

    # ----------------------------------------------------------------------------- building
    @staticmethod
    def of(A: BCOO | BCSR) -> tuple[Pattern, jax.Array]:
        """The pattern of a validated ``A`` and its flat values in the pattern's order.

        The values are computed from ``A.data`` with differentiable JAX operations; padding
        values are replaced by zeros.
        """
        if isinstance(A, BCSR):
            return _of_bcsr(A)
        return _of_bcoo(A)

    # ----------------------------------------------------------------------------- products
    def matmul(self, values: jax.Array, B: jax.Array) -> jax.Array:
        """``A @ B`` for flat ``B (csr_shape[1], p)`` -> ``(csr_shape[0], p)`` (no grad rule)."""
        return _by_platform((self, values, B), cpu=_spmm_torch, default=_spmm_xla)

    def rmatmul(self, values: jax.Array, G: jax.Array) -> jax.Array:
        """``A^T @ G`` for flat ``G (csr_shape[0], p)`` -> ``(csr_shape[1], p)``.

        One product: on CPU the kernel transposes the CSR matrix itself (a counting sort that
        carries the values along) and multiplies; elsewhere a scatter over A's columns. To
        multiply by ``A^T`` many times, build :meth:`transpose` once and use its ``matmul``.
        """
        return _by_platform((self, values, G), cpu=_rmatmul_torch, default=_rmatmul_xla)

    def sddmm(self, G: jax.Array, X: jax.Array) -> jax.Array:
        """Flat values of ``G @ X^T`` at the pattern: ``G (N, p)``, ``X (M, p)`` -> ``(nnz,)``.

        Zero at padding entries; no ``N x M`` matrix and no ``nnz x p`` temporary.
        """
        if self.nnz == 0:
            return jnp.zeros((0,), G.dtype)
        if G.shape[-1] == 0:
            return jnp.zeros((self.nnz,), G.dtype)
        return _by_platform((self, G, X), cpu=_sddmm_torch, default=_sddmm_xla)

    def transpose(self) -> tuple[Pattern, jax.Array]:
        """``(pattern_T, perm)``: the pattern of ``A^T``, whose values are ``values[perm]``."""
        if self.nnz == 0:
            n, m = self.csr_shape
            empty = jnp.zeros((0,), self.cols.dtype)
            crow = jnp.zeros((m + 1,), self.crow.dtype)
            return Pattern(empty, empty, crow, _t_shape(self.shape), (m, n), self.layout), empty
        crow_t, cols_t, perm = _by_platform((self,), cpu=_transpose_torch, default=_transpose_xla)
        n, m = self.csr_shape
        pos = jnp.arange(self.nnz, dtype=self.cols.dtype)
        rows_t = jnp.where(pos < crow_t[-1], self.cols[perm], m)
        t_pattern = Pattern(rows_t, cols_t, crow_t, _t_shape(self.shape), (m, n), self.layout)
        return t_pattern, perm

    # ----------------------------------------------------------------------------- helpers
    def todense(self, values: jax.Array) -> jax.Array:
        """The dense ``csr_shape`` matrix (for references and small problems only)."""
        return (
            jnp.zeros(self.csr_shape, values.dtype)
            .at[self.rows, self.cols]
            .add(values, mode="drop")
        )

    def to_bcoo(self, values: jax.Array) -> BCOO:
        """The 2-D (block-diagonal) matrix as a BCOO (padding indices equal to the shape)."""
        n, m = self.csr_shape
        cols = jnp.where(self.valid, self.cols, m)
        return BCOO(
            (values, jnp.stack([self.rows, cols], axis=1)),
            shape=self.csr_shape,
            indices_sorted=True,
        )

    def to_bcsr(self, values: jax.Array) -> BCSR:
        """The 2-D (block-diagonal) matrix as a BCSR (padding after ``indptr[-1]``)."""
        return BCSR((values, self.cols, self.crow), shape=self.csr_shape)

    def matrix(self, values: jax.Array) -> BCOO | BCSR:
        """The 2-D (block-diagonal) matrix in the caller's layout (BCOO or BCSR)."""
        return self.to_bcsr(values) if self.layout == "bcsr" else self.to_bcoo(values)

    def flat_rhs(self, B: jax.Array) -> tuple[jax.Array, bool]:
        """A dense ``(r,)``, ``(r, p)``, ``(b, r)`` or ``(b, r, p)`` operand as ``(b*r, p)``.

        Returns the 2-D matrix and whether the caller gave a vector (no trailing ``p``).
        """
        vector = B.ndim == (2 if self.batch is not None else 1)
        if vector:
            B = B[..., None]
        return B.reshape(-1, B.shape[-1]), vector

    def unflat(self, Y: jax.Array, vector: bool, rows: int) -> jax.Array:
        """Inverse of :meth:`flat_rhs` for a result with ``rows`` rows per batch item."""
        if self.batch is not None:
            Y = Y.reshape(self.batch, rows, Y.shape[-1])
        return Y[..., 0] if vector else Y


def _by_platform(args: tuple, *, cpu, default):
    """``cpu(*args)`` on CPU, ``default(*args)`` elsewhere, chosen when lowering. Both results
    are typed as varying over every ``shard_map`` axis an input varies over, so they agree."""
    leaves = tuple(jax.tree_util.tree_leaves(args))
    wrap = lambda f: lambda *a: _varying_like(f(*a), leaves)
    return jax.lax.platform_dependent(*args, cpu=wrap(cpu), default=wrap(default))


def _t_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:-2], shape[-1], shape[-2])


# ------------------------------------------------------------------------------ building
def _crow_from_rows(rows: jax.Array, n_rows: int, dtype) -> jax.Array:
    """CSR pointers of sorted row indices (padding rows ``n_rows`` are not counted). On CPU
    torch's bincount (2.4 ms for 1.7M entries where XLA's searchsorted takes 8 ms)."""

    def xla(r):
        return jnp.searchsorted(r, jnp.arange(n_rows + 1, dtype=r.dtype), side="left")

    def cpu(r):
        out = jax.ShapeDtypeStruct((n_rows + 1,), r.dtype)
        return torch_call(_crow_kernel, out, r, core_ndims=(1,), n_rows=n_rows)

    return _by_platform((rows,), cpu=cpu, default=xla).astype(dtype)


def _crow_kernel(rows, *, n_rows: int):
    import torch

    crow = torch.zeros(n_rows + 1, dtype=rows.dtype)
    counts = torch.bincount(rows, minlength=n_rows + 1)[:n_rows]  # row n_rows is padding
    crow[1:] = torch.cumsum(counts, 0)
    return crow


def _csr_rows(indptr: jax.Array, nse: int, dtype) -> jax.Array:
    """Row of every position of a 2-D CSR (positions after ``indptr[-1]`` get row ``n``)."""
    marks = jnp.zeros((nse,), dtype).at[indptr[1:]].add(1, mode="drop")
    return jnp.cumsum(marks).astype(dtype)


def _of_bcsr(A: BCSR) -> tuple[Pattern, jax.Array]:
    n, m = A.shape[-2:]
    nse = A.indices.shape[-1]
    if A.n_batch == 0:
        dt = _index_dtype(n + 1, m + 1, nse + 1)
        crow = A.indptr.astype(dt)
        pos = jnp.arange(nse, dtype=dt)
        real = pos < crow[-1]
        rows = jnp.where(real, _csr_rows(crow, nse, dt), n)
        cols = jnp.where(real, A.indices.astype(dt), 0)
        values = jnp.where(real, A.data, 0)
        return Pattern(rows, cols, crow, tuple(A.shape), (n, m), "bcsr"), values
    b = A.shape[0]
    N, M = b * n, b * m
    dt = _index_dtype(N + 1, M + 1, b * nse + 1)
    indptr = jnp.broadcast_to(A.indptr, (b, n + 1)).astype(dt)
    indices = jnp.broadcast_to(A.indices, (b, nse)).astype(dt)
    data = jnp.broadcast_to(A.data, (b, nse))
    pos = jnp.arange(nse, dtype=dt)
    real = pos[None, :] < indptr[:, -1:]
    local_rows = jax.vmap(lambda p: _csr_rows(p, nse, dt))(indptr)
    off = jnp.arange(b, dtype=dt)[:, None]
    rows = jnp.where(real, local_rows + off * n, N).reshape(-1)
    cols = jnp.where(real, indices + off * m, 0).reshape(-1)
    values = jnp.where(real, data, 0).reshape(-1)
    # Each item's padding sits after its own entries: move every real entry to the front.
    perm = _stable_partition(real.reshape(-1))
    rows, cols, values = rows[perm], cols[perm], values[perm]
    crow = _crow_from_rows(rows, N, dt)
    return Pattern(rows, cols, crow, tuple(A.shape), (N, M), "bcsr"), values


def _stable_partition(keep: jax.Array) -> jax.Array:
    """Permutation listing the ``keep`` positions first, then the others, each in order."""
    keep_i = keep.astype(jnp.int32)
    n_keep = jnp.sum(keep_i)
    dest = jnp.where(keep, jnp.cumsum(keep_i) - 1, n_keep + jnp.cumsum(1 - keep_i) - 1)
    return jnp.zeros_like(dest).at[dest].set(jnp.arange(keep.shape[0], dtype=dest.dtype))


def _of_bcoo(A: BCOO) -> tuple[Pattern, jax.Array]:
    shape = tuple(A.shape)
    n, m = shape[-2:]
    nse = A.indices.shape[-2]
    if len(shape) == 2:
        dt = _index_dtype(n + 1, m + 1, nse + 1)
        idx = A.indices.astype(dt)
        r, c = idx[:, 0], idx[:, 1]
        real = (r < n) & (c < m)
        rows, cols, data = jnp.where(real, r, n), jnp.where(real, c, 0), A.data
        N, M = n, m
        known_sorted = A.indices_sorted
    elif A.n_batch == 1:
        b = shape[0]
        N, M = b * n, b * m
        dt = _index_dtype(N + 1, M + 1, b * nse + 1)
        idx = jnp.broadcast_to(A.indices, (b, nse, 2)).astype(dt)
        data = jnp.broadcast_to(A.data, (b, nse)).reshape(-1)
        r, c = idx[..., 0], idx[..., 1]
        real = (r < n) & (c < m)
        off = jnp.arange(b, dtype=dt)[:, None]
        rows = jnp.where(real, r + off * n, N).reshape(-1)
        cols = jnp.where(real, c + off * m, 0).reshape(-1)
        real = real.reshape(-1)
        known_sorted = False  # per-item padding may sit between items
    else:  # torch-style batched COO: three sparse dimensions (batch, row, col)
        b = shape[0]
        N, M = b * n, b * m
        dt = _index_dtype(N + 1, M + 1, nse + 1)
        idx = A.indices.astype(dt)
        i, r, c = idx[:, 0], idx[:, 1], idx[:, 2]
        real = (i < b) & (r < n) & (c < m)
        rows, cols, data = jnp.where(real, i * n + r, N), jnp.where(real, i * m + c, 0), A.data
        known_sorted = A.indices_sorted
    values = jnp.where(real, data, 0)
    if not known_sorted:
        perm = _row_sort_permutation(rows, cols)
        rows, cols, values = rows[perm], cols[perm], values[perm]
    return Pattern(rows, cols, _crow_from_rows(rows, N, dt), shape, (N, M), "bcoo"), values


def _row_sort_permutation(rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Permutation sorting entries by (row, col); skips the sort when already sorted."""
    if rows.shape[0] < 2:
        return jnp.arange(rows.shape[0], dtype=rows.dtype)
    r0, r1, c0, c1 = rows[:-1], rows[1:], cols[:-1], cols[1:]
    in_order = jnp.all((r1 > r0) | ((r1 == r0) & (c1 >= c0)))
    # Both branches derive from the operands (so they vary alike over shard_map's axes).
    return jax.lax.cond(
        in_order,
        lambda r, c: r * 0 + jnp.arange(r.shape[0], dtype=r.dtype),
        lambda r, c: jnp.lexsort((c, r)).astype(r.dtype),
        rows,
        cols,
    )


# --------------------------------------------------------------------- torch kernels (CPU)
def _torch_csr(crow, col, values, shape):
    import torch

    nv = int(crow[-1])
    with warnings.catch_warnings():  # torch's "CSR support is in beta" notice
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col[:nv], values[:nv], shape, check_invariants=False)


def _spmm_kernel(crow, col, values, B, *, shape):
    return _torch_csr(crow, col, values, shape) @ B


def _sddmm_kernel(crow, col, G, X, *, shape):
    import torch

    out = torch.zeros(col.shape[0], dtype=G.dtype, device=G.device)
    if int(crow[-1]):
        # out=M fills ``out`` in place (as torch_api's Pattern.sddmm): the out-of-place call
        # would copy the indices (as int64 on CPU) and the values
        M = _torch_csr(crow, col, out, shape)
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


def _rmatmul_kernel(crow, col, values, G, *, shape):
    """``A^T @ G``: the CSR of ``A^T`` (values carried through the counting sort), then MKL."""
    import torch

    n, m = shape
    if not int(crow[-1]):
        return G.new_zeros(m, G.shape[1])
    crow_t, col_t, values_t = _to_csc(crow, col, values[: int(crow[-1])].numpy(), shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        At = torch.sparse_csr_tensor(crow_t, col_t, values_t, (m, n), check_invariants=False)
    return At @ G


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
    after another.
    """
    from bridge import jax_kernel

    kernel = partial(_vectorized, fn, core_ndims, n_matrix, fold, static)
    out = jax_kernel(kernel, out_shapes, vmap_method="expand_dims")(*args)
    return _varying_like(out, args)


def _varying_like(out, args):
    """Inside ``shard_map`` a callback's results are typed as identical on every device; they
    vary along the mesh axes their inputs vary along. Adding a zero computed from the inputs
    (a select, never ``0 * x``, so an inf or NaN input cannot leak in) gives the results that
    type through JAX's own rules, under ``vmap`` too. Outside ``shard_map``: unchanged."""
    anchors = [a for a in args if a.size and _varying_axes(a)]
    if not anchors:
        return out
    zero = sum(jnp.where(False, a.reshape(-1)[0], 0).astype(jnp.float32) for a in anchors)
    return jax.tree_util.tree_map(lambda x: x + zero.astype(x.dtype), out)


def _varying_axes(x) -> frozenset:
    """The mesh axes along which ``x`` varies inside ``shard_map`` (empty outside)."""
    aval = jax.typeof(x)
    vma = getattr(aval, "vma", None)  # JAX <= 0.8
    if vma is None:
        mat = getattr(aval, "manual_axis_type", None)
        vma = getattr(mat, "varying", None)
    return frozenset(vma or ())


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


def _spmm_torch(p: Pattern, values, B):
    out = jax.ShapeDtypeStruct((p.csr_shape[0], B.shape[1]), B.dtype)
    return torch_call(
        _spmm_kernel,
        out,
        p.crow,
        p.cols,
        values,
        B,
        core_ndims=(1, 1, 1, 2),
        n_matrix=3,
        fold=True,
        shape=p.csr_shape,
    )


def _sddmm_torch(p: Pattern, G, X):
    out = jax.ShapeDtypeStruct((p.nnz,), G.dtype)
    return torch_call(
        _sddmm_kernel, out, p.crow, p.cols, G, X, core_ndims=(1, 1, 2, 2), shape=p.csr_shape
    )


def _transpose_torch(p: Pattern):
    m = p.csr_shape[1]
    out = (
        jax.ShapeDtypeStruct((m + 1,), p.crow.dtype),
        jax.ShapeDtypeStruct((p.nnz,), p.cols.dtype),
        jax.ShapeDtypeStruct((p.nnz,), p.cols.dtype),
    )
    return torch_call(_transpose_kernel, out, p.crow, p.cols, core_ndims=(1, 1), shape=p.csr_shape)


def _rmatmul_torch(p: Pattern, values, G):
    out = jax.ShapeDtypeStruct((p.csr_shape[1], G.shape[1]), G.dtype)
    return torch_call(
        _rmatmul_kernel,
        out,
        p.crow,
        p.cols,
        values,
        G,
        core_ndims=(1, 1, 1, 2),
        n_matrix=3,
        fold=True,
        shape=p.csr_shape,
    )


# ------------------------------------------------------------------------ XLA (GPU, TPU)
def _spmm_xla(p: Pattern, values, B):
    cols = jnp.minimum(p.cols, p.csr_shape[1] - 1)
    return jax.ops.segment_sum(
        values[:, None] * B[cols], p.rows, p.csr_shape[0], indices_are_sorted=True
    )


def _sddmm_xla(p: Pattern, G, X):
    n_p = G.shape[1]
    block = int(max(1, min(n_p, _SDDMM_BLOCK_ELEMS // max(p.nnz, 1))))
    n_blocks = -(-n_p // block)
    pad = n_blocks * block - n_p
    Gt = jnp.pad(G, ((0, 0), (0, pad))).T.reshape(n_blocks, block, -1)
    Xt = jnp.pad(X, ((0, 0), (0, pad))).T.reshape(n_blocks, block, -1)
    rows = jnp.minimum(p.rows, p.csr_shape[0] - 1)
    cols = jnp.minimum(p.cols, p.csr_shape[1] - 1)

    def step(acc, gx):
        g, x = gx
        return acc + jnp.sum(g[:, rows] * x[:, cols], axis=0), None

    init = _varying_like(jnp.zeros((p.nnz,), G.dtype), (p.rows, p.cols, G, X))
    acc, _ = jax.lax.scan(step, init, (Gt, Xt))
    return jnp.where(p.valid, acc, 0)


def _transpose_xla(p: Pattern):
    m = p.csr_shape[1]
    key = jnp.where(p.valid, p.cols, m)
    perm = jnp.lexsort((p.rows, key)).astype(p.cols.dtype)
    crow_t = _crow_from_rows(key[perm], m, p.crow.dtype)
    real = jnp.arange(p.nnz, dtype=p.cols.dtype) < crow_t[-1]
    return crow_t, jnp.where(real, p.rows[perm], 0), perm


def _rmatmul_xla(p: Pattern, values, G):
    rows = jnp.minimum(p.rows, p.csr_shape[0] - 1)  # padding values are zero
    return jax.ops.segment_sum(values[:, None] * G[rows], p.cols, p.csr_shape[1])
