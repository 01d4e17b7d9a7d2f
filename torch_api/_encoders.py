"""``PairwiseEncoder``: per-offset voxel values -> a sparse ``(S, S)`` matrix over a volume.

The volume ``(C, *spatial)`` is numbered in C order; the k-th offset ``o`` puts ``values[k][p]``
at ``(row = p, col = p - o)`` for every voxel ``p`` with ``p - o`` inside the volume.

Everything that does not depend on the values (the offsets, the stored entries in row-major
order, their positions in ``values``) comes from the NumPy builders in
:mod:`bridge.internal.pairwise`, which ``jax_api`` uses too, so both frontends build the
identical matrix. ``forward`` is a single gather ``values.reshape(-1)[value_index]`` (COO and
CSR alike), whose backward is a scatter of the same size; the sparse result is built around
index tensors cached on the module (the same tensors on every call, so the per-pattern caches
of the library's operations hit), never sorted.
"""

from __future__ import annotations

import math
import warnings

import torch

from bridge.internal.pairwise import (
    check_volume_shape,
    pairwise_indices,
    pairwise_nnz,
    pairwise_offsets,
)

from ._pattern import csr_rows
from ._validate import FLOATS, INDEX_DTYPES, check_dense, value_error

_INT32_MAX = 2**31 - 1


class _Assemble(torch.autograd.Function):
    """Flat values ``(b?, K*S)`` -> the sparse matrix; backward scatters the gradient's values.

    With ``value_index=None`` the values are used as they are (no gather).
    """

    @staticmethod
    def forward(ctx, flat, value_index, make):
        out = make(flat if value_index is None else flat.index_select(-1, value_index))
        ctx.value_index, ctx.flat_shape = value_index, flat.shape
        ctx.index_tensors, ctx.out_shape = _index_tensors(out), out.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        g = _values_at(grad, ctx.index_tensors, ctx.out_shape)
        if ctx.value_index is None:
            return g.reshape(ctx.flat_shape), None, None
        dflat = g.new_zeros(ctx.flat_shape).index_copy_(-1, ctx.value_index, g)
        return dflat, None, None


def _index_tensors(A: torch.Tensor) -> tuple[torch.Tensor, ...]:
    if A.layout == torch.sparse_coo:
        return (A._indices(),)
    return (A.crow_indices(), A.col_indices())


def _same(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return all(
        x.shape == y.shape and (x.data_ptr() == y.data_ptr() or torch.equal(x, y.to(x.dtype)))
        for x, y in zip(a, b, strict=True)
    )


def _coo_index(index_tensors: tuple[torch.Tensor, ...], shape) -> torch.Tensor:
    """The ``(ndim, nnz_total)`` int64 COO indices of a COO/CSR (batched) pattern."""
    if len(index_tensors) == 1:
        return index_tensors[0].long()
    crow, col = index_tensors
    if crow.dim() == 1:
        return torch.stack([csr_rows(crow.long()), col.long()])
    nb, n = crow.shape[0], crow.shape[1] - 1
    b = torch.arange(nb, device=col.device).repeat_interleave(col.shape[-1])
    counts = crow.diff(dim=-1).reshape(-1).long()
    rows = torch.arange(n, device=col.device).repeat(nb).repeat_interleave(counts)
    return torch.stack([b, rows, col.reshape(-1).long()])


def _values_at(grad, index_tensors, shape) -> torch.Tensor:
    """The gradient's values at the encoder's entries, in the encoder's order: ``(b?, nnz)``."""
    lead = (-1,) if len(shape) == 2 else (shape[0], -1)
    if grad.layout == torch.sparse_csr and len(index_tensors) == 2:
        if _same(index_tensors, (grad.crow_indices(), grad.col_indices())):
            return grad.values()
    if grad.layout == torch.sparse_coo and len(index_tensors) == 1 and grad.is_coalesced():
        if _same(index_tensors, (grad._indices(),)):
            return grad._values().reshape(lead)
    idx = _coo_index(index_tensors, shape)
    if grad.layout == torch.strided:
        return grad[tuple(idx)].reshape(lead)
    # Another pattern (e.g. a sum of two gradients): sample it at ours.
    g = grad.to_sparse_coo().coalesce()
    zeros = torch.zeros(idx.shape[1], dtype=g.dtype, device=g.device)
    mask = torch.sparse_coo_tensor(idx, zeros, shape, is_coalesced=True)
    return g.sparse_mask(mask)._values().reshape(lead)


class PairwiseEncoder(torch.nn.Module):
    """Sparse ``(S, S)`` matrices whose entries are per-offset voxel values of a volume.

    Args:
        radius: spatial neighbourhood radius, ``>= 1``.
        volume_shape: ``(C, *spatial)``, at least one spatial dimension.
        diag: include the zero offset (first).
        upper: ``False`` lower triangle, ``True`` upper triangle, ``None`` both.
        channel_voxel_relation: ``"indep"``, ``"intra"`` or ``"inter"`` (see
            :func:`pairwise_offsets`).
        layout: ``torch.sparse_coo`` or ``torch.sparse_csr``.
        indices_dtype: ``torch.int32`` or ``torch.int64`` for the cached indices (torch always
            stores COO indices as int64, so a COO result has int64 indices either way).
        device: where the cached indices live; ``.to(device)`` moves them.

    Attributes: ``offsets``, ``volume_numel``, ``spatial_dims``, and the buffers ``indices``
    (COO) or ``crow_indices``, ``col_indices``, ``csr_permutation`` (CSR), plus ``value_index``
    (flat position in ``values`` of every stored entry).

    Example:
        >>> enc = PairwiseEncoder(1, (2, 4, 4), diag=True, upper=False)
        >>> A = enc(torch.rand(len(enc.offsets), 2, 4, 4))  # (32, 32) lower triangular
    """

    def __init__(
        self,
        radius,
        volume_shape,
        diag=False,
        upper=None,
        channel_voxel_relation="indep",
        layout=torch.sparse_coo,
        indices_dtype=torch.int64,
        device="cpu",
    ):
        super().__init__()
        volume_shape = check_volume_shape(volume_shape)
        if layout not in (torch.sparse_coo, torch.sparse_csr):
            raise ValueError(
                f"layout: expected torch.sparse_coo or torch.sparse_csr, got {layout!r}."
            )
        if indices_dtype not in INDEX_DTYPES:
            raise ValueError(
                f"indices_dtype: expected torch.int32 or torch.int64, got {indices_dtype!r}."
            )
        self.radius, self.volume_shape, self.diag, self.upper = radius, volume_shape, diag, upper
        self.channel_voxel_relation, self.layout = channel_voxel_relation, layout
        self.indices_dtype = indices_dtype
        self.spatial_dims = len(volume_shape) - 1
        self.volume_numel = math.prod(volume_shape)
        self.offsets = pairwise_offsets(
            radius, self.spatial_dims, volume_shape[0], channel_voxel_relation, upper, bool(diag)
        )
        if indices_dtype == torch.int32:
            _check_int32(volume_shape, self.offsets, layout)
        coo = layout == torch.sparse_coo
        ix = pairwise_indices(volume_shape, self.offsets, rows=coo, permutation=not coo)
        self._batched = None  # (key, index tensors) of the last batched call
        # the NumPy arrays are shared, not copied, where the dtype and device allow
        self._buffer("value_index", ix.value_index, torch.int64, device)
        if coo:
            indices = torch.from_numpy(ix.coo)  # rows and cols, one buffer (shared)
            del ix
            self._buffer("indices", indices, indices_dtype, device)
            if indices_dtype != torch.int64:  # torch holds COO indices as int64
                self._buffer("_indices_int64", indices, torch.int64, device)
        else:
            self._buffer("crow_indices", ix.crow, indices_dtype, device)
            self._buffer("col_indices", ix.cols, indices_dtype, device)
            self._buffer("csr_permutation", ix.permutation, torch.int64, device)

    def _buffer(self, name, array, dtype, device) -> None:
        tensor = torch.as_tensor(array).to(device=device, dtype=dtype)
        self.register_buffer(name, tensor, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.value_index.device

    def extra_repr(self) -> str:
        return (
            f"radius={self.radius}, volume_shape={self.volume_shape}, diag={self.diag}, "
            f"upper={self.upper}, channel_voxel_relation={self.channel_voxel_relation!r}, "
            f"layout={self.layout}, offsets={len(self.offsets)}"
        )

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """``values (K, C, *spatial)`` or ``(B, K, C, *spatial)`` -> ``(S, S)`` or ``(B, S, S)``."""
        nd = len(self.volume_shape) + 1
        values = check_dense("values", values, ndims=(nd, nd + 1), floating=False)
        expected = (len(self.offsets), *self.volume_shape)
        if tuple(values.shape[-nd:]) != expected:
            raise value_error(
                "values",
                values,
                f"shape (len(offsets), C, *spatial) = {expected}, or (B, *{expected})",
            )
        if values.dtype not in FLOATS:
            raise value_error("values", values, "float32 or float64 values")
        if values.device != self.device:
            raise value_error(
                "values", values, f"a tensor on the encoder's device {self.device} (use .to())"
            )
        batch = values.shape[0] if values.dim() == nd + 1 else None
        flat = values.reshape(-1) if batch is None else values.reshape(batch, -1)
        return _Assemble.apply(flat, self.value_index, self._maker(batch))

    def _maker(self, batch):
        """The sparse constructor, on index tensors that are the same objects on every call."""
        S = self.volume_numel
        if self.layout == torch.sparse_coo:
            idx = getattr(self, "_indices_int64", self.indices)
            if batch is not None:
                idx = self._batched_indices(batch, idx)
            shape = (S, S) if batch is None else (batch, S, S)
            return lambda v: torch.sparse_coo_tensor(idx, v.reshape(-1), shape, is_coalesced=True)
        crow, col = self.crow_indices, self.col_indices
        if batch is None:
            return lambda v: torch.sparse_csr_tensor(crow, col, v, (S, S))
        crow, col = self._batched_indices(batch, crow, col)
        return lambda v: torch.sparse_csr_tensor(crow, col, v, (batch, S, S))

    def _batched_indices(self, batch: int, *index: torch.Tensor):
        """The indices of a ``batch``-item result, kept for the next call of the same size."""
        key = (batch, *((t.device, t.data_ptr()) for t in index))
        if self._batched is not None and self._batched[0] == key:
            return self._batched[1]
        if len(index) == 2:  # CSR: every item has the same row pointers and columns
            out = (index[0].repeat(batch, 1), index[1].repeat(batch, 1))
        else:
            nnz = index[0].shape[1]
            b = torch.arange(batch, device=index[0].device).repeat_interleave(nnz)
            out = torch.cat([b[None], index[0].repeat(1, batch)])
        self._batched = (key, out)
        return out


def calc_pairwise_coo_indices_nd(
    radius,
    volume_shape,
    diag=False,
    upper=None,
    channel_voxel_relation="indep",
    dtype=torch.int64,
    device="cpu",
) -> dict[tuple[int, ...], torch.Tensor]:
    """The encoder's stored entries, offset by offset: ``{offset: (2, M_o) [rows; cols]}``.

    The k-th offset ``o`` holds the pairs ``(p, p - o)`` for every voxel ``p`` (numbered in C
    order) with ``p - o`` inside the volume, voxels in C order; the keys are
    :attr:`PairwiseEncoder.offsets` in their order (the zero offset first when ``diag``).

    Args:
        radius, volume_shape, diag, upper, channel_voxel_relation: as for
            :class:`PairwiseEncoder`.
        dtype: integer dtype of the index tensors.
        device: where to allocate them.

    Example:
        >>> pairs = calc_pairwise_coo_indices_nd(1.0, (1, 3, 3), diag=True)
        >>> pairs[(0, 0, 0)].shape
        torch.Size([2, 9])
    """
    volume_shape = check_volume_shape(volume_shape)
    offsets = pairwise_offsets(radius, len(volume_shape) - 1, volume_shape[0],
                               channel_voxel_relation, upper, bool(diag))
    idx = torch.arange(math.prod(volume_shape), device=device).reshape(volume_shape)
    strides = idx.stride()
    out = {}
    for o in offsets:
        box = zip(o, volume_shape, strict=True)
        rows = idx[tuple(slice(max(x, 0), max(n + min(x, 0), 0)) for x, n in box)].reshape(-1)
        lin = sum(x * s for x, s in zip(o, strides, strict=True))
        out[tuple(o)] = torch.stack([rows, rows - lin]).to(dtype)
    return out


def calc_pairwise_coo_indices(
    radius,
    volume_shape,
    diag=False,
    upper=None,
    channel_voxel_relation="indep",
    dtype=torch.int64,
    device="cpu",
) -> dict[tuple[int, ...], torch.Tensor]:
    """Deprecated (DeprecationWarning): :func:`calc_pairwise_coo_indices_nd` for a 4-D
    ``(C, H, D, W)`` volume only.

    Example:
        >>> pairs = calc_pairwise_coo_indices(1.0, (1, 2, 2, 2))  # doctest: +SKIP
    """
    warnings.warn("calc_pairwise_coo_indices is deprecated; use calc_pairwise_coo_indices_nd "
                  "(any number of spatial dimensions).", DeprecationWarning, stacklevel=2)
    volume_shape = check_volume_shape(volume_shape, ndim=4)
    return calc_pairwise_coo_indices_nd(radius, volume_shape, diag, upper,
                                        channel_voxel_relation, dtype, device)


class PairwiseVoxelEncoder(PairwiseEncoder):
    """Deprecated (DeprecationWarning when built): :class:`PairwiseEncoder` for a 4-D
    ``(C, H, D, W)`` volume only, with the same arguments.

    Example:
        >>> enc = PairwiseVoxelEncoder(1.0, (2, 3, 3, 3))  # doctest: +SKIP
    """

    def __init__(self, radius, volume_shape, diag=False, upper=None,
                 channel_voxel_relation="indep", layout=torch.sparse_coo,
                 indices_dtype=torch.int64, device="cpu"):
        warnings.warn("PairwiseVoxelEncoder is deprecated; use PairwiseEncoder (any number of "
                      "spatial dimensions, same arguments).", DeprecationWarning, stacklevel=2)
        volume_shape = check_volume_shape(volume_shape, ndim=4)
        super().__init__(radius, volume_shape, diag, upper, channel_voxel_relation, layout,
                         indices_dtype, device)


def _check_int32(volume_shape, offsets, layout) -> None:
    """ValueError unless every index an int32 encoder stores fits in int32 (before building)."""
    S = math.prod(volume_shape)
    if S - 1 > _INT32_MAX:
        raise ValueError(
            f"indices_dtype: expected torch.int64 for a volume of {S} voxels (int32 indices "
            f"reach {_INT32_MAX}), got torch.int32."
        )
    if layout == torch.sparse_csr:
        nnz = pairwise_nnz(volume_shape, offsets)
        if nnz > _INT32_MAX:
            raise ValueError(
                f"indices_dtype: expected torch.int64 for a CSR matrix of {nnz} stored entries "
                f"(int32 row pointers reach {_INT32_MAX}), got torch.int32."
            )
