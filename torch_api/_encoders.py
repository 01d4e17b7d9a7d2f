"""``PairwiseEncoder``: per-offset voxel values -> a sparse ``(S, S)`` matrix over a volume.

The contract (torch-api-signatures.md) in short: the volume ``(C, *spatial)`` is numbered in C
order; the k-th offset ``o`` puts ``values[k][p]`` at ``(row = p, col = p - o)`` for every voxel
``p`` with ``p - o`` inside the volume.

Two pure NumPy functions hold everything that does not depend on the values, so that
``jax_api`` builds the identical matrix from the same code:

- :func:`pairwise_offsets` -- the ordered offset list.
- :func:`pairwise_indices` -- rows, columns, CSR row pointers, and for every stored entry its
  flat position in ``values`` (``value_index``) and its position in the offset-major list
  (``permutation``, the original's ``csr_permutation``).

Stored entries are produced directly in row-major (CSR = coalesced COO) order without a sort:
within one row ``p`` the column ``p - lin(o)`` increases as the linear offset ``lin(o)``
decreases, and at most one offset of a given ``lin(o)`` is valid per row, so one fixed ordering
of the offsets sorts every row. ``forward`` is then a single gather
``values.reshape(-1)[value_index]`` (COO and CSR alike), whose backward is a scatter of the
same size; the sparse result is built around the precomputed indices, never sorted.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import NamedTuple

import numpy as np
import torch

from ._pattern import csr_rows
from ._validate import FLOATS, INDEX_DTYPES, check_dense, value_error

RELATIONS = ("indep", "intra", "inter")


def pairwise_offsets(
    radius: float,
    spatial_dims: int,
    channels: int = 1,
    relation: str = "indep",
    upper: bool | None = None,
    diag: bool = False,
) -> list[tuple[int, ...]]:
    """The encoder's ordered offsets ``(dc, ds_1, ..., ds_N)`` (pure Python).

    Args:
        radius: spatial radius, ``>= 1``; spatial offsets are the integer points of the closed
            ball of that radius, origin excluded.
        spatial_dims: number of spatial dimensions ``N >= 1``.
        channels: number of channels ``C``.
        relation: ``"indep"``, ``"intra"`` (adds ``(c, 0, ..., 0)``) or ``"inter"`` (adds
            ``(c, s)`` too), for ``c = 1..C-1``; the last two need ``C > 1``.
        upper: ``False`` keeps offsets whose first non-zero component is positive (lower
            triangle), ``True`` those whose first non-zero is negative, ``None`` all.
        diag: put the zero offset first.

    Returns:
        Sorted by (squared length with the channel component scaled by 10, absolute values,
        signs ``>= 0``); the zero offset (if ``diag``) first.

    Example:
        >>> pairwise_offsets(1, 1, upper=False)
        [(0, 1)]
    """
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not radius >= 1:
        raise ValueError(f"radius: expected a number >= 1, got {radius!r}.")
    if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, int) or spatial_dims < 1:
        raise ValueError(f"spatial_dims: expected an integer >= 1, got {spatial_dims!r}.")
    if relation not in RELATIONS:
        raise ValueError(f"channel_voxel_relation: expected one of {RELATIONS}, got {relation!r}.")
    if relation != "indep" and channels < 2:
        raise ValueError(
            f"channel_voxel_relation: {relation!r} needs more than one channel, got C={channels}; "
            f"use 'indep'."
        )
    if upper not in (True, False, None):
        raise ValueError(f"upper: expected True, False or None, got {upper!r}.")

    r = math.floor(radius)
    spatial = [
        s
        for s in itertools.product(range(-r, r + 1), repeat=spatial_dims)
        if any(s) and sum(x * x for x in s) <= radius * radius
    ]
    zero = (0,) * spatial_dims
    offsets = [(0, *s) for s in spatial]
    if relation != "indep":
        offsets += [(c, *zero) for c in range(1, channels)]
    if relation == "inter":
        offsets += [(c, *s) for c in range(1, channels) for s in spatial]

    def first_nonzero(o):
        return next(x for x in o if x != 0)

    if upper is False:
        offsets = [o for o in offsets if first_nonzero(o) > 0]
    elif upper is True:
        offsets = [o for o in offsets if first_nonzero(o) < 0]
    offsets.sort(
        key=lambda o: (
            100 * o[0] * o[0] + sum(x * x for x in o[1:]),
            tuple(abs(x) for x in o),
            tuple(x >= 0 for x in o),
        )
    )
    return ([(0, *zero)] if diag else []) + offsets


class PairwiseIndices(NamedTuple):
    """The value-independent part of the encoder, in CSR (= coalesced COO) order; NumPy int64."""

    rows: np.ndarray  # (nnz,) row of each stored entry
    cols: np.ndarray  # (nnz,) column of each stored entry
    crow: np.ndarray  # (S + 1,) CSR row pointers
    value_index: np.ndarray  # (nnz,) flat position in values (K, C, *spatial) of each entry
    permutation: np.ndarray  # (nnz,) offset-major position of each entry (csr_permutation)


def pairwise_indices(
    volume_shape: tuple[int, ...], offsets: list[tuple[int, ...]]
) -> PairwiseIndices:
    """Indices of the encoder's matrix for ``offsets`` on a ``(C, *spatial)`` volume (NumPy).

    Entry ``e`` is ``(rows[e], cols[e]) = values.reshape(-1)[value_index[e]]`` for values of
    shape ``(len(offsets), C, *spatial)``. The offset-major order (offset by offset, voxels in C
    order) is the order of the original's concatenated values; ``permutation[e]`` is entry
    ``e``'s place in it. Cost O(S * len(offsets)), no sort.

    Example:
        >>> pairwise_indices((1, 3), [(0, 1)]).cols
        array([0, 1])
    """
    ints = (int, np.integer)
    if not isinstance(volume_shape, (tuple, list)) or not all(
        isinstance(n, ints) and not isinstance(n, bool) and n > 0 for n in volume_shape
    ):
        raise ValueError(
            f"volume_shape: expected a tuple of positive integers, got {volume_shape!r}."
        )
    for o in offsets:
        if len(tuple(o)) != len(volume_shape) or not all(isinstance(x, ints) for x in o):
            raise ValueError(
                f"offsets: expected integer tuples of length {len(volume_shape)} (one component "
                f"per axis of volume_shape), got {o!r}."
            )
    shape = np.asarray(volume_shape, dtype=np.int64)
    off = np.asarray(offsets, dtype=np.int64).reshape(len(offsets), len(volume_shape))
    S, K = int(np.prod(shape)), len(offsets)
    strides = np.ones(len(shape), dtype=np.int64)
    strides[:-1] = np.cumprod(shape[::-1])[::-1][1:]
    lin = off @ strides
    order = np.argsort(-lin, kind="stable")  # columns ascend within every row

    valid = np.ones((*volume_shape, K), dtype=bool)
    for d, n in enumerate(volume_shape):
        p = np.arange(n)[:, None] - off[order, d][None, :]  # (n, K): coordinate of p - o
        ok = (p >= 0) & (p < n)
        valid &= ok.reshape((1,) * d + (n,) + (1,) * (len(volume_shape) - d - 1) + (K,))
    rows, kk = np.nonzero(valid.reshape(S, K))
    k = order[kk]
    cols = rows - lin[k]
    value_index = k * S + rows
    counts = np.bincount(rows, minlength=S)
    crow = np.zeros(S + 1, dtype=np.int64)
    np.cumsum(counts, out=crow[1:])

    # offset-major position: the valid voxels of offset o form the box lo <= p < hi
    lo = np.maximum(off, 0)
    box = shape[None, :] - np.abs(off)  # (K, ndim) extent of each box
    box_strides = np.ones_like(box)
    box_strides[:, :-1] = np.cumprod(box[:, ::-1], axis=1)[:, ::-1][:, 1:]
    start = np.concatenate([[0], np.cumsum(np.prod(box, axis=1))[:-1]])
    coords = np.stack(np.unravel_index(rows, volume_shape), axis=1)  # (nnz, ndim)
    permutation = start[k] + np.sum((coords - lo[k]) * box_strides[k], axis=1)
    return PairwiseIndices(rows, cols, crow, value_index, permutation)


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


def sparse_with_values(A: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A sparse tensor with A's layout, shape and indices holding ``values``.

    ``values`` is ``A.values()``-shaped (COO: ``(nnz,)``, A coalesced; CSR: ``(nnz,)`` or
    ``(b, nnz)``). Its gradient is the incoming gradient sampled at A's pattern, whatever that
    gradient's layout, so one ``values`` tensor can feed several sparse uses whose gradients then
    add up densely (torch 2.13 mis-adds two batched CSR gradients).
    """
    if A.layout == torch.sparse_coo:
        idx = A._indices()
        make = lambda v: torch.sparse_coo_tensor(idx, v, A.shape, is_coalesced=True)
    else:
        crow, col = A.crow_indices(), A.col_indices()
        make = lambda v: torch.sparse_csr_tensor(crow, col, v, A.shape)
    return _Assemble.apply(values, None, make)


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
        volume_shape = tuple(volume_shape) if isinstance(volume_shape, (tuple, list)) else None
        if (
            volume_shape is None
            or len(volume_shape) < 2
            or not all(
                isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in volume_shape
            )
        ):
            raise ValueError(
                "volume_shape: expected a tuple (C, *spatial) of at least 2 positive integers, "
                f"got {volume_shape!r}."
            )
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
        if self.volume_numel >= 2**31 and indices_dtype == torch.int32:
            raise ValueError(
                f"indices_dtype: int32 cannot index {self.volume_numel} voxels; use torch.int64."
            )
        ix = pairwise_indices(volume_shape, self.offsets)

        def buf(name, array, dtype):
            self.register_buffer(
                name, torch.as_tensor(array).to(device=device, dtype=dtype), persistent=False
            )

        buf("value_index", ix.value_index, torch.int64)
        if layout == torch.sparse_coo:
            buf("indices", np.stack([ix.rows, ix.cols]), indices_dtype)
        else:
            buf("crow_indices", ix.crow, indices_dtype)
            buf("col_indices", ix.cols, indices_dtype)
            buf("csr_permutation", ix.permutation, torch.int64)

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
        S, nnz = self.volume_numel, self.value_index.numel()
        if self.layout == torch.sparse_coo:
            if batch is None:
                idx, shape = self.indices, (S, S)
            else:
                b = torch.arange(batch, device=self.device).repeat_interleave(nnz)
                idx = torch.cat([b[None], self.indices.long().repeat(1, batch)])
                shape = (batch, S, S)
            return lambda v: torch.sparse_coo_tensor(idx, v.reshape(-1), shape, is_coalesced=True)
        crow, col = self.crow_indices, self.col_indices
        if batch is None:
            return lambda v: torch.sparse_csr_tensor(crow, col, v, (S, S))
        crow, col = crow.repeat(batch, 1), col.repeat(batch, 1)
        return lambda v: torch.sparse_csr_tensor(crow, col, v, (batch, S, S))
