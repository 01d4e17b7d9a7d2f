"""The grouped products behind ``segment_mm`` and ``gather_mm``: two bilinear primitives.

Rows of ``a`` are split into ``R`` consecutive groups of ``seglen[r]`` rows:

- ``seg_mm(a, b, seglen)``: ``out[rows of r] = a[rows of r] @ b[r]``,
  ``a (N, D1)``, ``b (R, D1, D2)`` -> ``(N, D2)``;
- ``seg_outer(x, y, seglen)``: ``out[r] = x[rows of r]^T @ y[rows of r]``,
  ``x (N, D1)``, ``y (N, D2)`` -> ``(R, D1, D2)``.

Both are bilinear, so their JVP is ``f(dx, y) + f(x, dy)`` and their transposes are each other:
``seg_mm`` transposes to ``seg_mm(ct, b^T)`` in ``a`` and ``seg_outer(a, ct)`` in ``b``;
``seg_outer`` to ``seg_mm(y, ct^T)`` in ``x`` and ``seg_mm(x, ct)`` in ``y``. As primitives
with these rules (the same construction as :mod:`jax_api._linear`) every order and mode of
differentiation, ``linear_transpose`` and ``vmap`` compose through them without ever entering
a kernel. A ``vmap`` adds a leading batch axis to every operand (``batch`` counts them); the
kernel is then run under ``jax.vmap`` when lowered.

Kernels, chosen when lowered (``lax.platform_dependent``): ``lax.ragged_dot`` on GPU/TPU; on
CPU, where ``ragged_dot`` is a dense masked product per group, rows are cut into chunks of
``c`` rows that never straddle two groups (each group padded to a multiple of ``c``) and one
batched product runs over the ``K <= N // c + R`` chunks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.interpreters import ad

from ._linear import _bilinear_jvp, _primitive, _zero

__all__ = ["seg_mm", "seg_outer", "chunk_size"]

_MAX_CHUNK = 256


def chunk_size(n_rows: int, n_groups: int) -> int:
    """The CPU chunk length: the power of two nearest above ``n_rows / n_groups`` (1..256)."""
    target = max(1, -(-n_rows // max(n_groups, 1)))
    return int(min(_MAX_CHUNK, 1 << (target - 1).bit_length()))


# -------------------------------------------------------------------------------- kernels
def _chunks(n: int, r: int, seglen):
    """Chunk layout: the ``(k, c)`` rows each chunk holds (``live`` marks real ones), each
    chunk's group (``r`` past the last) and each row's slot among the ``k * c`` chunk rows."""
    c = chunk_size(n, r)
    k = n // c + r  # static bound on the number of chunks
    seglen = seglen.astype(jnp.int32)
    seg_end = jnp.cumsum(seglen)
    seg_start = seg_end - seglen
    n_chunks = (seglen + c - 1) // c
    chunk_end = jnp.cumsum(n_chunks)
    chunk_start = chunk_end - n_chunks
    chunk = jnp.arange(k, dtype=jnp.int32)
    group = jnp.searchsorted(chunk_end, chunk, side="right").astype(jnp.int32)
    group_c = jnp.minimum(group, r - 1)
    local = (chunk - chunk_start[group_c])[:, None] * c + jnp.arange(c, dtype=jnp.int32)
    live = (group < r)[:, None] & (local < seglen[group_c][:, None])
    rows = jnp.where(live, seg_start[group_c][:, None] + local, 0)
    row = jnp.arange(n, dtype=jnp.int32)
    row_group = jnp.searchsorted(seg_end, row, side="right").astype(jnp.int32)
    rg = jnp.minimum(row_group, r - 1)
    pos = row - seg_start[rg]
    slot = jnp.where(row_group < r, (chunk_start[rg] + pos // c) * c + pos % c, -1)
    return rows, live, group, slot


def _gather_chunks(x, rows, live):
    return jnp.where(live[..., None], x[rows], jnp.zeros((), x.dtype))


def _seg_mm_cpu(a, b, seglen):
    rows, live, group, slot = _chunks(a.shape[0], b.shape[0], seglen)
    group_c = jnp.minimum(group, b.shape[0] - 1)
    out = jnp.einsum("kcd,kde->kce", _gather_chunks(a, rows, live), b[group_c])
    out = out.reshape(-1, b.shape[2])
    return jnp.where((slot >= 0)[:, None], out[jnp.maximum(slot, 0)], jnp.zeros((), out.dtype))


def _seg_outer_cpu(x, y, seglen):
    r = seglen.shape[0]
    rows, live, group, _ = _chunks(x.shape[0], r, seglen)
    per = jnp.einsum("kcd,kce->kde", _gather_chunks(x, rows, live), _gather_chunks(y, rows, live))
    return jax.ops.segment_sum(per, group, num_segments=r)  # group r (past the end): dropped


def _seg_mm_ragged(a, b, seglen):
    return jax.lax.ragged_dot(a, b, seglen.astype(jnp.int32))


def _seg_outer_ragged(x, y, seglen):
    shape = jax.ShapeDtypeStruct((seglen.shape[0], x.shape[1], y.shape[1]), x.dtype)
    f = lambda b: jax.lax.ragged_dot(x, b, seglen.astype(jnp.int32))
    return jax.linear_transpose(f, shape)(y)[0]


def _seg_mm_kernel(a, b, seglen):
    if a.shape[0] == 0 or b.shape[0] == 0:
        return jnp.zeros((a.shape[0], b.shape[2]), a.dtype)
    return jax.lax.platform_dependent(a, b, seglen, cpu=_seg_mm_cpu, default=_seg_mm_ragged)


def _seg_outer_kernel(x, y, seglen):
    if x.shape[0] == 0 or seglen.shape[0] == 0:
        return jnp.zeros((seglen.shape[0], x.shape[1], y.shape[1]), x.dtype)
    return jax.lax.platform_dependent(x, y, seglen, cpu=_seg_outer_cpu,
                                      default=_seg_outer_ragged)


def _batched(kernel, batch: int):
    for _ in range(batch):
        kernel = jax.vmap(kernel)
    return kernel


# ----------------------------------------------------------------------------- primitives
def seg_mm(a, b, seglen, batch: int = 0):
    """``a (..., N, D1)`` times ``b[r] (..., R, D1, D2)`` group by group: ``(..., N, D2)``."""
    return _seg_mm_p.bind(a, b, seglen, batch=batch)


def seg_outer(x, y, seglen, batch: int = 0):
    """``x[rows of r]^T @ y[rows of r]`` per group: ``(..., R, D1, D2)``."""
    return _seg_outer_p.bind(x, y, seglen, batch=batch)


def _swap(m):
    return jnp.swapaxes(m, -1, -2)


def _bilinear_transpose(name, first, second):
    """Transpose rule of a bilinear ``f(x, y, seglen)``: ``first(ct, y)`` in ``x``,
    ``second(ct, x)`` in ``y`` (cotangents of the operand's shape)."""

    def rule(ct, x, y, seglen, *, batch):
        if ad.is_undefined_primal(x) == ad.is_undefined_primal(y):
            raise NotImplementedError(f"{name} is bilinear: transpose it in one operand")
        zero = type(ct) is ad.Zero
        if ad.is_undefined_primal(x):
            return (_zero(x) if zero else first(ct, y, seglen, batch)), None, None
        return None, (_zero(y) if zero else second(ct, x, seglen, batch)), None

    return rule


# seg_mm: da = seg_mm(ct, b^T), db = seg_outer(a, ct); seg_outer: dx = seg_mm(y, ct^T),
# dy = seg_mm(x, ct)
_seg_mm_transpose = _bilinear_transpose(
    "seg_mm", lambda ct, b, s, k: seg_mm(ct, _swap(b), s, k),
    lambda ct, a, s, k: seg_outer(a, ct, s, k))
_seg_outer_transpose = _bilinear_transpose(
    "seg_outer", lambda ct, y, s, k: seg_mm(y, _swap(ct), s, k),
    lambda ct, x, s, k: seg_mm(x, ct, s, k))


def _leading_batch(p, args, dims, batch):
    """Batching rule: every operand mapped along a new leading axis (unmapped ones broadcast)."""
    size = next(x.shape[d] for x, d in zip(args, dims, strict=True) if d is not None)
    moved = [jnp.broadcast_to(x, (size, *x.shape)) if d is None else jnp.moveaxis(x, d, 0)
             for x, d in zip(args, dims, strict=True)]
    return p.bind(*moved, batch=batch + 1), 0


def _jvp_rule(f):
    def rule(primals, tangents, *, batch):
        return _bilinear_jvp(lambda x, y: f(x, y, primals[2], batch), primals[:2], tangents[:2])

    return rule


_seg_mm_p = _primitive(
    "sparsegradutils_segment_mm",
    lambda a, b, seglen, *, batch: _batched(_seg_mm_kernel, batch)(a, b, seglen),
    lambda a, b, seglen, *, batch: a.update(shape=(*a.shape[:-1], b.shape[-1]), weak_type=False),
    _jvp_rule(seg_mm),
    _seg_mm_transpose,
    lambda args, dims, *, batch: _leading_batch(_seg_mm_p, args, dims, batch),
)
_seg_outer_p = _primitive(
    "sparsegradutils_segment_outer",
    lambda x, y, seglen, *, batch: _batched(_seg_outer_kernel, batch)(x, y, seglen),
    lambda x, y, seglen, *, batch: x.update(
        shape=(*x.shape[:-2], seglen.shape[-1], x.shape[-1], y.shape[-1]), weak_type=False),
    _jvp_rule(seg_outer),
    _seg_outer_transpose,
    lambda args, dims, *, batch: _leading_batch(_seg_outer_p, args, dims, batch),
)
