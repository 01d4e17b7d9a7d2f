"""``PairwiseEncoder`` for JAX: per-offset voxel values -> a BCOO / BCSR ``(S, S)`` matrix.

The same contract and the same NumPy index builders (:mod:`bridge.internal.pairwise`:
``pairwise_offsets``, ``pairwise_indices``) as torch_api's encoder: the ``k``-th offset ``o``
puts ``values[k][p]`` at ``(row = p, col = p - o)`` for every voxel ``p`` of the C-ordered
``(C, *spatial)`` volume with ``p - o`` inside it. The entries come in row-major order (sorted,
unique), so the matrix is built around precomputed indices and the call is one gather
``values.reshape(-1)[value_index]``; its gradient is a scatter of the same size, so
``jax.grad`` with respect to ``values`` never touches an ``(S, S)`` array.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

from bridge.internal.pairwise import check_volume_shape, pairwise_indices, pairwise_offsets

from ._validate import check_dense, check_dtype_arg, value_error

__all__ = ["PairwiseEncoder"]

_LAYOUTS = {"coo": BCOO, "csr": BCSR, BCOO: BCOO, BCSR: BCSR}


def _index_dtype(name: str, dtype):
    return check_dtype_arg(
        name, dtype, ("int32", "int64"),
        "use int32 or create the encoder inside `with jax.enable_x64(True):`.",
    )


class PairwiseEncoder(eqx.Module):
    """Sparse ``(S, S)`` matrices whose entries are per-offset voxel values of a volume.

    Args:
        radius: spatial neighbourhood radius, ``>= 1``.
        volume_shape: ``(C, *spatial)``, at least one spatial dimension.
        diag: include the zero offset (first).
        upper: ``False`` lower triangle, ``True`` upper triangle, ``None`` both.
        channel_voxel_relation: ``"indep"``, ``"intra"`` or ``"inter"``.
        layout: ``"coo"``/``BCOO`` or ``"csr"``/``BCSR``.
        indices_dtype: ``int32`` (default) or ``int64`` (needs JAX's x64 mode).

    Attributes: ``offsets`` (the ordered offset tuples), ``volume_numel`` (``S``),
    ``spatial_dims``, ``value_index`` (flat position in ``values`` of every stored entry), and
    ``indices`` (COO, ``(nnz, 2)``) or ``crow_indices``, ``col_indices``, ``csr_permutation``
    (CSR) as ``jax.Array``; non-array attributes are static fields of the module.

    Example:
        >>> enc = PairwiseEncoder(1, (2, 4, 4), diag=True, upper=False, layout="csr")
        >>> L = enc(jnp.ones((len(enc.offsets), 2, 4, 4)))  # BCSR (32, 32), lower triangular
    """

    radius: float = eqx.field(static=True)
    volume_shape: tuple[int, ...] = eqx.field(static=True)
    diag: bool = eqx.field(static=True)
    upper: bool | None = eqx.field(static=True)
    channel_voxel_relation: str = eqx.field(static=True)
    layout: type = eqx.field(static=True)
    indices_dtype: np.dtype = eqx.field(static=True)
    offsets: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    volume_numel: int = eqx.field(static=True)
    spatial_dims: int = eqx.field(static=True)
    value_index: jax.Array
    indices: jax.Array | None
    crow_indices: jax.Array | None
    col_indices: jax.Array | None
    csr_permutation: jax.Array | None

    def __init__(
        self,
        radius,
        volume_shape,
        diag=False,
        upper=None,
        channel_voxel_relation="indep",
        layout="coo",
        indices_dtype=jnp.int32,
    ):
        shape = check_volume_shape(volume_shape)
        try:
            cls = _LAYOUTS[layout]
        except (KeyError, TypeError):
            raise TypeError(
                f"layout: expected 'coo', 'csr', BCOO or BCSR, got {layout!r}."
            ) from None
        idt = _index_dtype("indices_dtype", indices_dtype)
        offsets = pairwise_offsets(
            radius, len(shape) - 1, shape[0], channel_voxel_relation, upper, bool(diag)
        )
        S = math.prod(shape)
        if max(S + 1, len(offsets) * S) > np.iinfo(idt).max:
            raise ValueError(
                f"indices_dtype: {idt.name} cannot index {len(offsets)} offsets of a volume of "
                f"{S} voxels; use int64."
            )
        ix = pairwise_indices(shape, offsets)
        self.radius, self.volume_shape, self.diag, self.upper = radius, shape, bool(diag), upper
        self.channel_voxel_relation, self.layout, self.indices_dtype = (
            channel_voxel_relation,
            cls,
            idt,
        )
        self.offsets = tuple(tuple(int(x) for x in o) for o in offsets)
        self.volume_numel, self.spatial_dims = S, len(shape) - 1
        self.value_index = jnp.asarray(ix.value_index, idt)
        if cls is BCOO:
            self.indices = jnp.asarray(np.stack([ix.rows, ix.cols], axis=1), idt)
            self.crow_indices = self.col_indices = self.csr_permutation = None
        else:
            self.indices = None
            self.crow_indices = jnp.asarray(ix.crow, idt)
            self.col_indices = jnp.asarray(ix.cols, idt)
            self.csr_permutation = jnp.asarray(ix.permutation, idt)

    def __call__(self, values: jax.Array) -> BCOO | BCSR:
        """``values (K, C, *spatial)`` or ``(B, K, C, *spatial)`` -> ``(S, S)`` or ``(B, S, S)``.

        A batched result has one batch dimension (``n_batch=1``) sharing the pattern.
        """
        nd = len(self.volume_shape) + 1
        values = check_dense("values", values, ndims=(nd, nd + 1))
        expected = (len(self.offsets), *self.volume_shape)
        if tuple(values.shape[-nd:]) != expected:
            raise value_error(
                "values",
                values,
                f"shape {expected} or (B, *{expected}) (len(offsets), C, *spatial)",
            )
        S, nnz = self.volume_numel, self.value_index.shape[0]
        if values.ndim == nd:
            data, lead = values.reshape(-1)[self.value_index], ()
        else:
            b = values.shape[0]
            data, lead = values.reshape(b, -1)[:, self.value_index], (b,)
        shape = (*lead, S, S)
        if self.layout is BCOO:
            indices = jnp.broadcast_to(self.indices, (*lead, nnz, 2))
            return BCOO((data, indices), shape=shape, indices_sorted=True, unique_indices=True)
        cols = jnp.broadcast_to(self.col_indices, (*lead, nnz))
        crow = jnp.broadcast_to(self.crow_indices, (*lead, S + 1))
        return BCSR((data, cols, crow), shape=shape, indices_sorted=True, unique_indices=True)
