"""``shard_map`` typing of results computed outside JAX's own rules.

Inside ``shard_map`` every value carries the set of mesh axes along which it varies. A
``bridge.jax_kernel`` callback's results, and the branches of ``lax.platform_dependent``, are
typed as identical on every device unless told otherwise; :func:`varying_like` gives them the
union of their inputs' axes, so the two platform branches agree and the results compose with
the caller's sharded values. Outside ``shard_map`` both functions change nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def varying_like(out, args):
    """``out`` (a pytree of arrays) typed as varying along every mesh axis ``args`` vary along.

    Adds a zero computed from the inputs (a select, never ``0 * x``, so an inf or NaN input
    cannot leak in), which types the result through JAX's own rules, under ``vmap`` too.

    Example:
        >>> Y = varying_like(kernel_result, (crow, col, B))
    """
    anchors = [a for a in args if a.size and varying_axes(a)]
    if not anchors:
        return out
    zero = sum(jnp.where(False, a.reshape(-1)[0], 0).astype(jnp.float32) for a in anchors)
    return jax.tree_util.tree_map(lambda x: x + zero.astype(x.dtype), out)


def varying_axes(x) -> frozenset:
    """The mesh axes along which ``x`` varies inside ``shard_map`` (empty outside)."""
    aval = jax.typeof(x)
    vma = getattr(aval, "vma", None)  # JAX <= 0.8
    if vma is None:
        mat = getattr(aval, "manual_axis_type", None)
        vma = getattr(mat, "varying", None)
    return frozenset(vma or ())
