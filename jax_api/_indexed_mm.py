"""``segment_mm`` and ``gather_mm``: grouped matrix products (``dgl.ops`` semantics) for JAX.

``segment_mm(a, b, seglen_a)`` multiplies the ``r``-th run of ``seglen_a[r]`` consecutive rows of
``a`` by ``b[r]``; ``gather_mm(a, b, idx_b)`` multiplies row ``i`` by ``b[idx_b[i]]``, which is a
segment product after a stable sort of the rows by ``idx_b``.

The product is the bilinear primitive :func:`jax_api._grouped.seg_mm` (its kernels: XLA's
``ragged_dot`` on GPU/TPU, group-aligned chunks and one batched product on CPU), whose JVP,
transpose and batching rules make ``grad`` and ``jvp`` of every order, ``hessian``,
``linear_transpose`` and ``vmap`` work (in ``a`` and ``b``; the integer arguments get none).
Shapes are static as always in JAX: ``N``, ``D1``, ``D2`` and the number of groups ``R`` fix
the compiled program; the *values* of ``seglen_a`` / ``idx_b`` may be traced. Their
consistency (segment lengths non-negative and summing to ``N``, indices in ``[0, R)``) is
checked in Python when they are concrete (``ValueError``) and by the compiled program
otherwise, which raises at run time with the same message
(:func:`~jax_api._checks.runtime_check`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bridge.internal.options import check_grouped_operands

from ._checks import runtime_check
from ._grouped import seg_mm
from ._validate import check_dense, check_match, is_concrete, value_error

__all__ = ["segment_mm", "gather_mm"]


def _check_operands(a, b):
    a = check_dense("a", a, ndims=(2,), floating=False)
    b = check_dense("b", b, ndims=(3,), floating=False)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise value_error("a", a, "a floating dtype")
    check_match("a", a, "b", b)
    check_grouped_operands(a.shape, b.shape)
    return a, b


def _operands(a, b, name: str, x, per_matrix: bool, what: str):
    """Checked ``(a, b, x)`` and the NumPy value of the index array ``x`` when it is concrete
    (``None`` when traced); ``x (R,)`` has one entry per matrix of ``b`` if ``per_matrix``, else
    ``(N,)`` one per row of ``a`` (``what`` says which)."""
    a, b = _check_operands(a, b)
    x = check_dense(name, x, ndims=(1,), floating=False)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise value_error(name, x, "an integer array")
    length = b.shape[0] if per_matrix else a.shape[0]
    if x.shape != (length,):
        raise value_error(name, x, f"shape ({length},) ({what})")
    return a, b, x, (np.asarray(x) if is_concrete(x) else None)


def _segment_mm(a, b, seglen):
    return seg_mm(a, b, seglen)


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
    a, b, seglen_a, lengths = _operands(
        a, b, "seglen_a", seglen_a, True, "one length per matrix of b"
    )
    n = a.shape[0]
    if lengths is not None:
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
    a, b, idx_b, idx = _operands(a, b, "idx_b", idx_b, False, "one index per row of a")
    r = b.shape[0]
    if idx is not None:
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
