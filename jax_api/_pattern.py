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
CPU (:mod:`jax_api._cpu_kernels`) and XLA gather/scatter elsewhere (:mod:`jax_api._xla_kernels`);
the choice is made when the program is lowered (``jax.lax.platform_dependent``), so it is static
and free under ``jit``. :meth:`Pattern.transposed` gives the transposed pattern for repeated use.

Kernels run under ``vmap`` once per call with the mapped axes in front (a shared matrix with
mapped right-hand sides becomes one product with all columns), and inside ``shard_map`` their
results are typed as varying like their inputs (:mod:`jax_api._sharding`), so they compose with
``jit``, ``vmap``, ``grad`` and ``shard_map``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental.sparse import BCOO, BCSR

from . import _cpu_kernels as cpu
from . import _xla_kernels as xla
from ._sharding import varying_like

_INT32_MAX = 2**31 - 1


def _index_dtype(*sizes: int):
    return jnp.int32 if max(sizes) < _INT32_MAX else jnp.int64


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["crow", "col", "rows"],
    meta_fields=["shape", "layout"],
)
@dataclass(frozen=True)
class Pattern:
    """The pattern of a 2-D or batched BCOO/BCSR matrix as one row-sorted 2-D pattern.

    ``crow`` (``(csr_shape[0] + 1,)``) are the CSR row pointers of the real entries of the
    (block-diagonal) ``csr_shape`` matrix; ``col`` and ``rows`` (``(nnz,)``) are the column and
    row of every entry, sorted by row, padding last with row ``csr_shape[0]`` and column 0.
    ``shape`` is the caller's shape, ``(n, m)`` or ``(b, n, m)``, and ``layout`` its type
    (``"bcoo"`` or ``"bcsr"``). A pytree: it crosses ``jit``/``vmap``/``custom_vjp`` boundaries
    like an array.
    """

    crow: jax.Array
    col: jax.Array
    rows: jax.Array
    shape: tuple[int, ...]  # the caller's shape: (n, m) or (b, n, m)
    layout: str = "bcoo"

    # ----------------------------------------------------------------------------- facts
    @property
    def batch(self) -> int | None:
        return self.shape[0] if len(self.shape) == 3 else None

    @property
    def csr_shape(self) -> tuple[int, int]:
        """The shape of the flat (block-diagonal) 2-D matrix: ``(b*n, b*m)``."""
        nb = self.shape[0] if len(self.shape) == 3 else 1
        return (nb * self.shape[-2], nb * self.shape[-1])

    @property
    def nnz(self) -> int:
        """Stored entries, padding included (a static number)."""
        return self.col.shape[0]

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
        return _by_platform((self, values, B), cpu=cpu.spmm, default=xla.spmm)

    def rmatmul(self, values: jax.Array, G: jax.Array) -> jax.Array:
        """``A^T @ G`` for flat ``G (csr_shape[0], p)`` -> ``(csr_shape[1], p)``.

        One product: on CPU the kernel transposes the CSR matrix itself (a counting sort that
        carries the values along) and multiplies; elsewhere a scatter over A's columns. To
        multiply by ``A^T`` many times, build :meth:`transposed` once and use its ``matmul``.
        """
        return _by_platform((self, values, G), cpu=cpu.rmatmul, default=xla.rmatmul)

    def sddmm(self, G: jax.Array, X: jax.Array) -> jax.Array:
        """Flat values of ``G @ X^T`` at the pattern: ``G (N, p)``, ``X (M, p)`` -> ``(nnz,)``.

        Zero at padding entries; no ``N x M`` matrix and no ``nnz x p`` temporary.
        """
        if self.nnz == 0:
            return jnp.zeros((0,), G.dtype)
        if G.shape[-1] == 0:
            return jnp.zeros((self.nnz,), G.dtype)
        return _by_platform((self, G, X), cpu=cpu.sddmm, default=xla.sddmm)

    def transpose(self) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(crow_T, col_T, perm)``: the CSR pattern of ``A^T``; its values are ``values[perm]``.

        Padding stays last (``col_T`` 0 there). Example: ``crow_t, col_t, perm = p.transpose()``.
        """
        if self.nnz == 0:
            empty = jnp.zeros((0,), self.col.dtype)
            return jnp.zeros((self.csr_shape[1] + 1,), self.crow.dtype), empty, empty
        return _by_platform((self,), cpu=cpu.transpose, default=xla.transpose)

    def transposed(self) -> tuple[Pattern, jax.Array]:
        """``(pattern_T, perm)``: :meth:`transpose` as the :class:`Pattern` of ``A^T``."""
        crow_t, col_t, perm = self.transpose()
        pos = jnp.arange(self.nnz, dtype=self.col.dtype)
        rows_t = jnp.where(pos < crow_t[-1], self.col[perm], self.csr_shape[1])
        return Pattern(crow_t, col_t, rows_t, _t_shape(self.shape), self.layout), perm

    # ----------------------------------------------------------------------------- helpers
    def todense(self, values: jax.Array) -> jax.Array:
        """The dense ``csr_shape`` matrix (for references and small problems only)."""
        return (
            jnp.zeros(self.csr_shape, values.dtype)
            .at[self.rows, self.col]
            .add(values, mode="drop")
        )

    def to_bcoo(self, values: jax.Array) -> BCOO:
        """The 2-D (block-diagonal) matrix as a BCOO (padding indices equal to the shape)."""
        n, m = self.csr_shape
        cols = jnp.where(self.valid, self.col, m)
        return BCOO(
            (values, jnp.stack([self.rows, cols], axis=1)),
            shape=self.csr_shape,
            indices_sorted=True,
        )

    def to_bcsr(self, values: jax.Array) -> BCSR:
        """The 2-D (block-diagonal) matrix as a BCSR (padding after ``indptr[-1]``)."""
        return BCSR((values, self.col, self.crow), shape=self.csr_shape)

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
    wrap = lambda f: lambda *a: varying_like(f(*a), leaves)
    return jax.lax.platform_dependent(*args, cpu=wrap(cpu), default=wrap(default))


def _t_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[:-2], shape[-1], shape[-2])


# ------------------------------------------------------------------------------ building
def _crow_from_rows(rows: jax.Array, n_rows: int, dtype) -> jax.Array:
    """CSR pointers of sorted row indices (padding rows ``n_rows`` are not counted)."""
    return _by_platform(
        (rows,),
        cpu=partial(cpu.crow_from_rows, n_rows=n_rows),
        default=partial(xla.crow_from_rows, n_rows=n_rows),
    ).astype(dtype)


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
        return Pattern(crow, cols, rows, tuple(A.shape), "bcsr"), values
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
    return Pattern(crow, cols, rows, tuple(A.shape), "bcsr"), values


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
        N = n
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
    else:  # torch-style batched COO: three sparse dimensions (batch, row, col)
        b = shape[0]
        N, M = b * n, b * m
        dt = _index_dtype(N + 1, M + 1, nse + 1)
        idx = A.indices.astype(dt)
        i, r, c = idx[:, 0], idx[:, 1], idx[:, 2]
        real = (i < b) & (r < n) & (c < m)
        rows, cols, data = jnp.where(real, i * n + r, N), jnp.where(real, i * m + c, 0), A.data
    values = jnp.where(real, data, 0)
    # A's indices_sorted flag is not trusted (a false one would give wrong products): the
    # order is checked in O(nnz), and sorted only when it is wrong.
    perm = _row_sort_permutation(rows, cols)
    rows, cols, values = rows[perm], cols[perm], values[perm]
    return Pattern(_crow_from_rows(rows, N, dt), cols, rows, shape, "bcoo"), values


def _row_sort_permutation(rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Permutation sorting entries by (row, col); skips the sort when already sorted."""
    if rows.shape[0] < 2:
        return jnp.arange(rows.shape[0], dtype=rows.dtype)
    r0, r1, c0, c1 = rows[:-1], rows[1:], cols[:-1], cols[1:]
    in_order = jnp.all((r1 > r0) | ((r1 == r0) & (c1 >= c0)))
    # Both branches derive from the operands (so they vary alike over shard_map's axes).
    return jax.lax.cond(in_order, _identity_permutation, _sorting_permutation, rows, cols)


# Module-level branches (never fresh lambdas): equal functions let JAX reuse the compiled
# ``cond`` across eager calls.
def _identity_permutation(r, c):
    return r * 0 + jnp.arange(r.shape[0], dtype=r.dtype)


def _sorting_permutation(r, c):
    return jnp.lexsort((c, r)).astype(r.dtype)
