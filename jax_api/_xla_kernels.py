"""The XLA kernels of :class:`~jax_api._pattern.Pattern` (GPU, TPU): gather, scatter and sort.

The same functions as :mod:`jax_api._cpu_kernels`. Padding entries (row ``csr_shape[0]``,
value 0) are clamped onto the last row or column, where their zero values change nothing. The
SDDMM loops over blocks of columns of ``G`` and ``X`` so that at most
``_SDDMM_BLOCK_ELEMS`` (``nnz * block``) elements live at once, never ``nnz x p``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._sharding import varying_like

_SDDMM_BLOCK_ELEMS = 1 << 22  # at most nnz * block elements live at once


def crow_from_rows(rows: jax.Array, n_rows: int) -> jax.Array:
    """CSR pointers of sorted row indices (padding rows ``n_rows`` are not counted)."""
    return jnp.searchsorted(rows, jnp.arange(n_rows + 1, dtype=rows.dtype), side="left")


def spmm(p, values, B):
    """``A @ B`` for ``B (csr_shape[1], k)``."""
    cols = jnp.minimum(p.col, p.csr_shape[1] - 1)
    return jax.ops.segment_sum(
        values[:, None] * B[cols], p.rows, p.csr_shape[0], indices_are_sorted=True
    )


def sddmm(p, G, X):
    """Flat values of ``G @ X^T`` at the pattern (zero at padding)."""
    n_p = G.shape[1]
    block = int(max(1, min(n_p, _SDDMM_BLOCK_ELEMS // max(p.nnz, 1))))
    n_blocks = -(-n_p // block)
    pad = n_blocks * block - n_p
    Gt = jnp.pad(G, ((0, 0), (0, pad))).T.reshape(n_blocks, block, -1)
    Xt = jnp.pad(X, ((0, 0), (0, pad))).T.reshape(n_blocks, block, -1)
    rows = jnp.minimum(p.rows, p.csr_shape[0] - 1)
    cols = jnp.minimum(p.col, p.csr_shape[1] - 1)

    def step(acc, gx):
        g, x = gx
        return acc + jnp.sum(g[:, rows] * x[:, cols], axis=0), None

    init = varying_like(jnp.zeros((p.nnz,), G.dtype), (p.rows, p.col, G, X))
    acc, _ = jax.lax.scan(step, init, (Gt, Xt))
    return jnp.where(p.valid, acc, 0)


def transpose(p):
    """``(crow_T, col_T, perm)`` of the transposed pattern (a stable sort by column)."""
    m = p.csr_shape[1]
    key = jnp.where(p.valid, p.col, m)
    perm = jnp.lexsort((p.rows, key)).astype(p.col.dtype)
    crow_t = crow_from_rows(key[perm], m).astype(p.crow.dtype)
    real = jnp.arange(p.nnz, dtype=p.col.dtype) < crow_t[-1]
    return crow_t, jnp.where(real, p.rows[perm], 0), perm


def rmatmul(p, values, G):
    """``A^T @ G`` for ``G (csr_shape[0], k)``."""
    rows = jnp.minimum(p.rows, p.csr_shape[0] - 1)  # padding values are zero
    return jax.ops.segment_sum(values[:, None] * G[rows], p.col, p.csr_shape[1])
