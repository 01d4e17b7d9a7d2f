"""``sparse_logsumexp`` and ``sparse_bidir_logsumexp`` over BCOO / BCSR matrices.

The result equals ``jax.nn.logsumexp`` of the densified matrix along ``dim`` where the implicit
entries are either ignored (``include_zeros=False``: an empty line gives ``-inf``) or counted as
values ``0`` (``include_zeros=True``: ``z`` implicit zeros add ``z * exp(0)`` to the sum).

Every stored entry belongs to one output slot (its coordinates without ``dim``). With the slot's
maximum ``m`` (including ``0`` when it has implicit zeros; held constant for differentiation, the
result does not depend on it):

    out = m + log(sum_j exp(v_j - m) + z * exp(-m))

computed with segment reductions over the stored entries, O(nnz + number of slots), never
densified. Differentiating this expression gives ``d out / d v_j = exp(v_j - out)``, the softmax
over the slot, on the stored entries only: ``jax.grad`` with respect to the matrix's ``data``
returns an array of ``data``'s shape. BCOO padding (out-of-range indices) and BCSR padding
(positions past ``indptr[-1]``) are ignored and get zero gradients; duplicate BCOO indices are
summed first (as densifying does) unless the matrix declares ``unique_indices``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse

from ._validate import check_sparse, value_error

__all__ = ["sparse_logsumexp", "sparse_bidir_logsumexp"]

_OUTPUT_LAYOUTS = ("tuple", "padded")


def coo_entries(A) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Every stored entry of a BCOO/BCSR as ``(values (E,), coords (E, ndim), valid (E,))``.

    Batch dimensions become coordinates; ``valid`` is False on padding. Duplicate BCOO entries
    are kept as they are.
    """
    nb = A.n_batch
    batch_shape = A.shape[:nb]
    if isinstance(A, jsparse.BCSR):
        n_rows = A.shape[nb]
        nse = A.indices.shape[-1]
        indptr = jnp.broadcast_to(A.indptr, (*batch_shape, n_rows + 1))
        pos = jnp.arange(nse, dtype=indptr.dtype)
        rows = jax.vmap(lambda p: jnp.searchsorted(p[1:], pos, side="right"))(
            indptr.reshape(-1, n_rows + 1)
        ).reshape(*batch_shape, nse)
        cols = jnp.broadcast_to(A.indices, (*batch_shape, nse))
        sparse_idx = jnp.stack([rows.astype(cols.dtype), cols], axis=-1)
        valid = pos < indptr[..., -1:]
    else:
        nse = A.indices.shape[-2]
        sparse_idx = jnp.broadcast_to(A.indices, (*batch_shape, nse, A.n_sparse))
        bounds = jnp.asarray(A.shape[nb:], dtype=sparse_idx.dtype)
        valid = jnp.all((sparse_idx >= 0) & (sparse_idx < bounds), axis=-1)
    data = jnp.broadcast_to(A.data, (*batch_shape, nse))
    if nb:
        grids = jnp.meshgrid(
            *[jnp.arange(n, dtype=sparse_idx.dtype) for n in batch_shape], indexing="ij"
        )
        bcoords = jnp.stack(
            [jnp.broadcast_to(g[..., None], (*batch_shape, nse)) for g in grids], axis=-1
        )
        sparse_idx = jnp.concatenate([bcoords, sparse_idx], axis=-1)
    return data.reshape(-1), sparse_idx.reshape(-1, A.ndim), valid.reshape(-1)


def _unique(A):
    if isinstance(A, jsparse.BCOO) and not A.unique_indices:
        return A.sum_duplicates(nse=A.nse, remove_zeros=False)
    return A


def _reduce(values, coords, valid, shape, dims: tuple[int, ...], include_zeros: bool):
    """logsumexp over ``dims`` of the entries; returns the reduced array (``dims`` removed)."""
    keep = [d for d in range(len(shape)) if d not in dims]
    out_shape = tuple(shape[d] for d in keep)
    n_slots = int(np.prod(out_shape))
    full = int(np.prod([shape[d] for d in dims]))  # entries per slot when dense
    slot = jnp.zeros(values.shape, jnp.int32)
    for d in keep:
        slot = slot * shape[d] + coords[:, d].astype(jnp.int32)
    slot = jnp.where(valid, slot, 0)  # padding adds exact zeros to slot 0, and is masked below
    v = jnp.where(valid, values, -jnp.inf)
    m = jax.ops.segment_max(v, slot, num_segments=n_slots)
    if include_zeros:
        count = jax.ops.segment_sum(valid.astype(jnp.int32), slot, num_segments=n_slots)
        zeros = (full - count).astype(values.dtype)
        m = jnp.where(zeros > 0, jnp.maximum(m, 0), m)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0))
    s = jax.ops.segment_sum(jnp.exp(v - m[slot]), slot, num_segments=n_slots)
    if include_zeros:
        s = s + zeros * jnp.exp(-m)
    return (jnp.log(s) + m).reshape(out_shape)


@partial(jax.jit, static_argnames=("reductions", "include_zeros"))
def _logsumexps(A, reductions: tuple[tuple[int, ...], ...], include_zeros: bool):
    """One logsumexp per tuple of reduced dimensions, sharing one pass over the entries."""
    values, coords, valid = coo_entries(_unique(A))
    return tuple(_reduce(values, coords, valid, A.shape, d, include_zeros) for d in reductions)


def _normalise_dims(dim, ndim: int) -> tuple[int, ...]:
    dims = [dim] if isinstance(dim, (int, np.integer)) else dim
    bad = TypeError(f"dim: expected an int or a non-empty sequence of ints, got {dim!r}.")
    if not isinstance(dims, (list, tuple)) or len(dims) == 0:
        raise bad
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise bad
        if not -ndim <= d < ndim:
            raise value_error("dim", f"{dim!r}", f"dimensions in [{-ndim}, {ndim - 1}]")
        out.append(int(d) % ndim)
    if len(set(out)) != len(out):
        raise value_error("dim", f"{dim!r}", "each dimension at most once")
    return tuple(sorted(out))


def sparse_logsumexp(input, dim, keepdim: bool = False, include_zeros: bool = True):
    """``logsumexp`` of a sparse matrix along ``dim``, never densified.

    Args:
        input: BCOO or BCSR, ``(n, m)`` or batched ``(b, n, m)``, float32/float64.
        dim: the dimension(s) to reduce (static int or sequence of ints; negative ones count
            from the end).
        keepdim: keep the reduced dimensions with size 1.
        include_zeros: count the implicit entries as values 0, matching ``logsumexp`` of the
            densified matrix; if False only stored values count (an empty slot gives ``-inf``).

    Returns:
        A dense array of ``input``'s shape without ``dim``. Differentiable with respect to
        ``input.data`` (the softmax of each slot, on the stored entries).

    Example:
        >>> A = BCOO.fromdense(jnp.array([[1.0, 0.0], [0.0, 2.0]]))
        >>> sparse_logsumexp(A, dim=1, include_zeros=False)  # [1., 2.]
    """
    A = check_sparse("input", input)
    dims = _normalise_dims(dim, A.ndim)
    (out,) = _logsumexps(A, (dims,), bool(include_zeros))
    return jnp.expand_dims(out, dims) if keepdim else out


def sparse_bidir_logsumexp(
    input, keepdim: bool = False, include_zeros: bool = True, output_layout: str = "tuple"
):
    """Column- and row-wise ``logsumexp`` of a sparse matrix at once, as torch_api's.

    ``cols`` reduces dim -2 (one value per column, ``(.., m)``) and ``rows`` dim -1 (one value
    per row, ``(.., n)``), in that order.

    Args:
        input: BCOO or BCSR, ``(n, m)`` or batched ``(b, n, m)``, float32/float64.
        keepdim: keep the reduced dimension: ``cols (.., 1, m)``, ``rows (.., n, 1)``
            (``"tuple"`` only).
        include_zeros: as in :func:`sparse_logsumexp`.
        output_layout: ``"tuple"``: ``(cols, rows)``; ``"padded"``: one array ``(2, G)`` or
            ``(2, b, G)``, ``G = max(n, m)``, ``[0]`` = cols, ``[1]`` = rows, each padded at the
            end with ``-inf``. torch_api's ``"nested"`` is refused: JAX has no nested arrays.

    Example:
        >>> cols, rows = sparse_bidir_logsumexp(BCOO.fromdense(jnp.eye(3)))
    """
    A = check_sparse("input", input)
    if output_layout not in _OUTPUT_LAYOUTS:
        raise value_error(
            "output_layout",
            f"{output_layout!r}",
            f"one of {_OUTPUT_LAYOUTS} (JAX has no nested arrays: use 'tuple')",
        )
    if keepdim and output_layout != "tuple":
        raise value_error(
            "keepdim",
            f"keepdim=True with output_layout={output_layout!r}",
            "keepdim=True only with output_layout='tuple'",
        )
    nd = A.ndim
    cols, rows = _logsumexps(A, ((nd - 2,), (nd - 1,)), bool(include_zeros))
    if output_layout == "tuple":
        if keepdim:
            cols, rows = cols[..., None, :], rows[..., :, None]
        return cols, rows
    width = max(A.shape[-2:])
    pad = lambda x: jnp.pad(
        x, [(0, 0)] * (x.ndim - 1) + [(0, width - x.shape[-1])], constant_values=-jnp.inf
    )
    return jnp.stack([pad(cols), pad(rows)])
