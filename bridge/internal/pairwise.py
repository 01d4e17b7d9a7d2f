"""The pairwise encoder's value-independent part in NumPy, shared by ``torch_api`` and ``jax_api``.

The contract: the volume ``(C, *spatial)`` is numbered in C order; the k-th offset ``o`` puts
``values[k][p]`` at ``(row = p, col = p - o)`` for every voxel ``p`` with ``p - o`` inside the
volume.

- :func:`pairwise_offsets` -- the ordered offset list.
- :func:`pairwise_nnz` -- the number of stored entries, without building anything (for index
  dtype guards before allocation).
- :func:`pairwise_indices` -- rows, columns, CSR row pointers, and for every stored entry its
  flat position in ``values`` (``value_index``) and its position in the offset-major list
  (``permutation``, the original's ``csr_permutation``).

Stored entries are produced directly in row-major (CSR = coalesced COO) order without a sort:
within one row ``p`` the column ``p - lin(o)`` increases as the linear offset ``lin(o)``
decreases, and at most one offset of a given ``lin(o)`` is valid per row, so one fixed ordering
of the offsets sorts every row. A frontend's forward is then a single gather
``values.reshape(-1)[value_index]`` whose backward is a scatter of the same size.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import NamedTuple

import numpy as np

__all__ = ["RELATIONS", "PairwiseIndices", "pairwise_indices", "pairwise_nnz", "pairwise_offsets"]

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
    coo: np.ndarray | None = None  # (2, nnz): rows and cols are its two rows (when rows given)


def check_volume_shape(volume_shape, ndim=None) -> tuple[int, ...]:
    """``volume_shape`` as a tuple ``(C, *spatial)`` of positive ints (``ndim`` of them if
    given, else at least 2); ValueError otherwise
    (the encoders' check, both frontends)."""
    shape = tuple(volume_shape) if isinstance(volume_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) < 2
        or (ndim is not None and len(shape) != ndim)
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    ):
        what = f"{ndim} positive integers (C, H, D, W)" if ndim else (
            "a tuple (C, *spatial) of at least 2 positive integers")
        raise ValueError(f"volume_shape: expected {what}, got {volume_shape!r}.")
    return shape


def _check_volume_and_offsets(volume_shape, offsets) -> None:
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


def pairwise_nnz(volume_shape: tuple[int, ...], offsets: list[tuple[int, ...]]) -> int:
    """The number of entries :func:`pairwise_indices` stores, in O(len(offsets) * ndim).

    Offset ``o`` is valid at the voxels of the box ``max(o, 0) <= p < shape + min(o, 0)``, of
    ``prod(shape - |o|)`` voxels, each one stored entry. Exact Python integers, so the count
    cannot overflow.

    Example:
        >>> pairwise_nnz((1, 4), [(0, 1), (0, 0)])
        7
    """
    _check_volume_and_offsets(volume_shape, offsets)
    return sum(
        math.prod(max(int(n) - abs(int(x)), 0) for n, x in zip(volume_shape, o, strict=True))
        for o in offsets
    )


def pairwise_indices(
    volume_shape: tuple[int, ...],
    offsets: list[tuple[int, ...]],
    *,
    rows: bool = True,
    permutation: bool = True,
) -> PairwiseIndices:
    """Indices of the encoder's matrix for ``offsets`` on a ``(C, *spatial)`` volume (NumPy).

    Entry ``e`` is ``(rows[e], cols[e]) = values.reshape(-1)[value_index[e]]`` for values of
    shape ``(len(offsets), C, *spatial)``. The offset-major order (offset by offset, voxels in C
    order) is the order of the original's concatenated values; ``permutation[e]`` is entry
    ``e``'s place in it. ``rows=False`` / ``permutation=False`` leave those fields ``None``
    (a CSR matrix needs no rows, a COO one no permutation), saving their memory; with rows,
    ``rows`` and ``cols`` are the two rows of one ``(2, nnz)`` array ``coo`` (COO indices to
    share, not to stack).

    Cost O(S * len(offsets)) time, no sort; memory: the outputs, an ``(S, len(offsets))``
    byte mask (and, for the permutation, its running count and one offset's voxels at a time).

    Example:
        >>> pairwise_indices((1, 3), [(0, 1)]).cols
        array([0, 1])
    """
    _check_volume_and_offsets(volume_shape, offsets)
    shape = np.asarray(volume_shape, dtype=np.int64)
    off = np.asarray(offsets, dtype=np.int64).reshape(len(offsets), len(volume_shape))
    S, K = int(np.prod(shape)), len(offsets)
    strides = np.ones(len(shape), dtype=np.int64)
    strides[:-1] = np.cumprod(shape[::-1])[::-1][1:]
    lin = off @ strides
    order = np.argsort(-lin, kind="stable")  # columns ascend within every row

    valid = np.ones((*volume_shape, K), dtype=bool)  # valid[p, c]: offset order[c] at voxel p
    for d, n in enumerate(volume_shape):
        p = np.arange(n)[:, None] - off[order, d][None, :]  # (n, K): coordinate of p - o
        ok = (p >= 0) & (p < n)
        valid &= ok.reshape((1,) * d + (n,) + (1,) * (len(volume_shape) - d - 1) + (K,))
    valid = valid.reshape(S, K)
    crow = np.zeros(S + 1, dtype=np.int64)
    np.cumsum(valid.sum(1), out=crow[1:])
    return _entries(shape, off, lin, order, valid, crow, rows, permutation)


_BLOCK = 1 << 21  # entries per block of rows: the temporaries' size


def _entries(shape, off, lin, order, valid, crow, rows: bool, permutation: bool):
    """Fill the outputs block of rows by block of rows, in row-major (CSR) order: an entry at
    (row p, mask column c) has offset ``o = off[order[c]]``, ``col = p - lin(o)``,
    ``value_index = order[c] * S + p`` and offset-major position ``start(o) + (index of p in
    o's box of valid voxels, C order)``. Temporaries are one block's."""
    S, K = valid.shape
    nnz = int(crow[-1])
    coo = np.empty((2, nnz), dtype=np.int64) if rows else None
    cols = coo[1] if rows else np.empty(nnz, dtype=np.int64)
    value_index = np.empty(nnz, dtype=np.int64)
    perm = np.empty(nnz, dtype=np.int64) if permutation else None
    lin_c, base_c = lin[order], order * S
    if permutation:  # per mask column: the offset's box (start, lower corner, C strides)
        box = np.maximum(shape[None, :] - np.abs(off[order]), 0)
        box_strides = np.ones_like(box)
        box_strides[:, :-1] = np.cumprod(box[:, ::-1], axis=1)[:, ::-1][:, 1:]
        sizes = np.prod(np.maximum(shape[None, :] - np.abs(off), 0), axis=1)
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]])[order]
        # index in the box = sum_d (p_d - lo_d) box_strides_d: the constant part per column
        start_c = start - np.sum(np.maximum(off[order], 0) * box_strides, axis=1)
        box_strides_d = [np.ascontiguousarray(box_strides[:, d]) for d in range(len(shape))]
    step = max(1, _BLOCK // max(K, 1))
    for r0 in range(0, S, step):
        r1 = min(S, r0 + step)
        a, b = int(crow[r0]), int(crow[r1])
        if a == b:
            continue
        c = np.flatnonzero(valid[r0:r1])  # (row - r0) * K + column
        row = c // K
        row += r0
        np.remainder(c, K, out=c)
        if rows:
            coo[0, a:b] = row
        out = cols[a:b]
        np.take(lin_c, c, out=out, mode="clip")
        np.subtract(row, out, out=out)
        out = value_index[a:b]
        np.take(base_c, c, out=out, mode="clip")
        out += row
        if permutation:
            out = perm[a:b]
            np.take(start_c, c, out=out, mode="clip")
            local = row - r0  # the entry's row within the block
            coords = np.unravel_index(np.arange(r0, r1), tuple(shape))  # per row, not entry
            term = np.empty_like(out)
            for coord, strides_d in zip(coords, box_strides_d, strict=True):
                np.take(strides_d, c, out=term, mode="clip")
                term *= np.take(coord, local, mode="clip")
                out += term
    return PairwiseIndices(coo[0] if rows else None, cols, crow, value_index, perm, coo)
