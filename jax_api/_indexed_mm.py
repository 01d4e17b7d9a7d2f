"""``segment_mm`` and ``gather_mm``: grouped matrix products (``dgl.ops`` semantics) for JAX.

``segment_mm(a, b, seglen_a)`` multiplies the ``r``-th run of ``seglen_a[r]`` consecutive rows of
``a`` by ``b[r]``; ``gather_mm(a, b, idx_b)`` multiplies row ``i`` by ``b[idx_b[i]]``, which is a
segment product after a stable sort of the rows by ``idx_b``.

The backend is chosen when the computation is lowered (``jax.lax.platform_dependent``), so the
choice is static and free under ``jit``:

- GPU/TPU: ``jax.lax.ragged_dot``, XLA's grouped product.
- CPU: ``ragged_dot`` lowers to a dense masked product per group there (its cost grows with the
  number of groups), so the rows are cut into fixed-size chunks that never straddle two groups
  (each group padded to a multiple of the chunk size ``c``), and one batched product
  ``(K, c, D1) @ (K, D1, D2)`` runs over the ``K <= N // c + R`` chunks. With ``c`` close to
  ``N / R`` the padding costs at most about ``N`` extra rows and ``N // c + R`` copies of a
  ``(D1, D2)`` block.

Both paths are compositions of differentiable JAX operations, so ``grad``, ``vmap`` and ``jit``
work through them (gradients for ``a`` and ``b``; the integer arguments get none). Shapes are
static as always in JAX: ``N``, ``D1``, ``D2`` and the number of groups ``R`` fix the compiled
program; the *values* of ``seglen_a`` / ``idx_b`` may be traced. Their consistency (segment lengths
non-negative and summing to ``N``, indices in ``[0, R)``) is checked in Python when they are
concrete (``ValueError``) and by the compiled program otherwise, which raises at run time with
the same message (:func:`~jax_api._checks.runtime_check`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import runtime_check
from ._validate import check_dense, check_match, is_concrete, value_error

__all__ = ["segment_mm", "gather_mm"]

_MAX_CHUNK = 256


def _check_operands(a, b):
    a = check_dense("a", a, ndims=(2,), floating=False)
    b = check_dense("b", b, ndims=(3,), floating=False)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise value_error("a", a, "a floating dtype")
    check_match("a", a, "b", b)
    if b.shape[1] != a.shape[1]:
        raise ValueError(
            f"b: expected shape (R, {a.shape[1]}, D2) to match a's {a.shape[1]} columns, "
            f"got shape {tuple(b.shape)}."
        )
    return a, b


def _check_index(name: str, x, length: int, what: str):
    x = check_dense(name, x, ndims=(1,), floating=False)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise value_error(name, x, "an integer array")
    if x.shape != (length,):
        raise value_error(name, x, f"shape ({length},) ({what})")
    return x


def chunk_size(n_rows: int, n_groups: int) -> int:
    """The CPU chunk length: the power of two nearest above ``n_rows / n_groups`` (1..256)."""
    target = max(1, -(-n_rows // max(n_groups, 1)))
    return int(min(_MAX_CHUNK, 1 << (target - 1).bit_length()))


def _segment_mm_chunked(a, b, seglen):
    """CPU path: group-aligned fixed-size chunks and one batched product."""
    n, r = a.shape[0], b.shape[0]
    c = chunk_size(n, r)
    k = n // c + r  # static bound on the number of chunks
    seglen = seglen.astype(jnp.int32)
    seg_end = jnp.cumsum(seglen)
    seg_start = seg_end - seglen
    n_chunks = (seglen + c - 1) // c
    chunk_end = jnp.cumsum(n_chunks)
    chunk_start = chunk_end - n_chunks

    # chunk -> group, and the rows of a each chunk holds
    chunk = jnp.arange(k, dtype=jnp.int32)
    group = jnp.searchsorted(chunk_end, chunk, side="right").astype(jnp.int32)
    group_c = jnp.minimum(group, r - 1)
    local = (chunk - chunk_start[group_c])[:, None] * c + jnp.arange(c, dtype=jnp.int32)
    live = (group < r)[:, None] & (local < seglen[group_c][:, None])
    rows = jnp.where(live, seg_start[group_c][:, None] + local, 0)
    a_chunks = jnp.where(live[..., None], a[rows], jnp.zeros((), a.dtype))
    out_chunks = jnp.einsum("kcd,kde->kce", a_chunks, b[group_c]).reshape(k * c, b.shape[2])

    # row -> its slot among the chunks
    row = jnp.arange(n, dtype=jnp.int32)
    row_group = jnp.searchsorted(seg_end, row, side="right").astype(jnp.int32)
    rg = jnp.minimum(row_group, r - 1)
    pos = row - seg_start[rg]
    slot = (chunk_start[rg] + pos // c) * c + pos % c
    out = out_chunks[jnp.where(row_group < r, slot, 0)]
    return jnp.where((row_group < r)[:, None], out, jnp.zeros((), out.dtype))


def _mapped_together(f):
    """``f`` that ``vmap`` runs with every argument mapped along axis 0 (unmapped ones are
    broadcast): ``ragged_dot`` batches over a leading axis of all its operands only."""
    g = jax.custom_batching.custom_vmap(f)

    @g.def_vmap
    def _rule(axis_size, in_batched, *args):
        args = [x if mapped else jnp.broadcast_to(x, (axis_size, *x.shape))
                for x, mapped in zip(args, in_batched, strict=True)]
        out = jax.vmap(f)(*args)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    return g


def _ragged(a, b, seglen):
    return jax.lax.ragged_dot(a, b, seglen)


def _ragged_vjp(a, b, seglen, g):
    return jax.vjp(lambda a, b: _ragged(a, b, seglen), a, b)[1](g)


_ragged_fwd_mapped = _mapped_together(_ragged)
_ragged_vjp_mapped = _mapped_together(_ragged_vjp)


@jax.custom_vjp
def _ragged_dot(a, b, seglen):
    return _ragged_fwd_mapped(a, b, seglen)


def _ragged_dot_fwd(a, b, seglen):
    return _ragged_fwd_mapped(a, b, seglen), (a, b, seglen)


def _ragged_dot_bwd(res, g):
    a, b, seglen = res
    da, db = _ragged_vjp_mapped(a, b, seglen, g)
    return da, db, None


_ragged_dot.defvjp(_ragged_dot_fwd, _ragged_dot_bwd)


def _segment_mm_ragged(a, b, seglen):
    # every platform's branch is traced and batched everywhere (platform_dependent), so the
    # ragged_dot branch must batch with shared operands too, also on CPU
    return _ragged_dot(a, b, seglen.astype(jnp.int32))


def _segment_mm(a, b, seglen):
    if a.shape[0] == 0 or b.shape[0] == 0:
        return jnp.zeros((a.shape[0], b.shape[2]), a.dtype)
    return jax.lax.platform_dependent(
        a, b, seglen, cpu=_segment_mm_chunked, default=_segment_mm_ragged
    )


def segment_mm(a: jax.Array, b: jax.Array, seglen_a: jax.Array) -> jax.Array:
    """Segmented product: the r-th run of ``seglen_a[r]`` rows of ``a`` times ``b[r]``.

    Args:
        a: ``(N, D1)`` floating array.
        b: ``(R, D1, D2)`` array of ``a``'s dtype.
        seglen_a: ``(R,)`` integer segment lengths (zeros allowed) summing to ``N``; may be
            traced under ``jit`` (only its shape is static).

    Returns:
        ``(N, D2)``; differentiable with respect to ``a`` and ``b``.

    Example:
        >>> segment_mm(jnp.ones((5, 3)), jnp.ones((2, 3, 4)), jnp.array([2, 3])).shape
        (5, 4)
    """
    a, b = _check_operands(a, b)
    seglen_a = _check_index("seglen_a", seglen_a, b.shape[0], "one length per matrix of b")
    n = a.shape[0]
    if is_concrete(seglen_a):
        lengths = np.asarray(seglen_a)
        if (lengths < 0).any():
            raise ValueError(_NEGATIVE.format(got=lengths.tolist()))
        if int(lengths.sum()) != n:
            raise ValueError(_SUM.format(n=n, got=f"a sum of {int(lengths.sum())}"))
        return _segment_mm_jit(a, b, seglen_a)
    seglen_a = runtime_check(seglen_a, seglen_a < 0, _NEGATIVE.format(got="a negative one"))
    total = jnp.sum(seglen_a)
    seglen_a = runtime_check(seglen_a, total != n, _SUM.format(n=n, got="another sum"))
    return _segment_mm(a, b, seglen_a)


_NEGATIVE = "seglen_a: expected non-negative lengths, got {got}."
_SUM = "seglen_a: expected lengths summing to a's {n} rows, got {got}."
_IDX = "idx_b: expected indices in [0, {r}) for b of shape {shape}, got {got}."


def gather_mm(a: jax.Array, b: jax.Array, idx_b: jax.Array) -> jax.Array:
    """Gathered product ``out[i] = a[i] @ b[idx_b[i]]`` (``dgl.ops.gather_mm``).

    Rows are stably sorted by ``idx_b``, multiplied group by group (as :func:`segment_mm`) and put
    back in order: no ``(N, D1, D2)`` copy of ``b`` is made.

    Args:
        a: ``(N, D1)`` floating array.
        b: ``(R, D1, D2)`` array of ``a``'s dtype.
        idx_b: ``(N,)`` integer indices into ``b``'s first axis; may be traced under ``jit``.

    Returns:
        ``(N, D2)``; differentiable with respect to ``a`` and ``b``.

    Example:
        >>> gather_mm(jnp.ones((3, 2)), jnp.ones((4, 2, 5)), jnp.array([3, 0, 3])).shape
        (3, 5)
    """
    a, b = _check_operands(a, b)
    idx_b = _check_index("idx_b", idx_b, a.shape[0], "one index per row of a")
    r = b.shape[0]
    if is_concrete(idx_b):
        idx = np.asarray(idx_b)
        if idx.size and (idx.min() < 0 or idx.max() >= r):
            got = f"values in [{idx.min()}, {idx.max()}]"
            raise ValueError(_IDX.format(r=r, shape=tuple(b.shape), got=got))
        return _gather_mm_jit(a, b, idx_b)
    bad = (idx_b < 0) | (idx_b >= r)
    idx_b = runtime_check(idx_b, bad, _IDX.format(r=r, shape=tuple(b.shape), got="one outside"))
    return _gather_mm(a, b, idx_b)


def _gather_mm(a, b, idx_b):
    r = b.shape[0]
    key = jnp.where((idx_b >= 0) & (idx_b < r), idx_b, r).astype(jnp.int32)
    perm = jnp.argsort(key, stable=True)
    seglen = jnp.bincount(key, length=r + 1)[:r].astype(jnp.int32)
    out_sorted = _segment_mm(a[perm], b, seglen)
    return jnp.zeros_like(out_sorted).at[perm].set(out_sorted, unique_indices=True)


# eager calls (checked in Python) run one program compiled per shapes and dtypes
_segment_mm_jit = jax.jit(_segment_mm)
_gather_mm_jit = jax.jit(_gather_mm)
