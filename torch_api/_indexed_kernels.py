"""Segment-product kernels of ``segment_mm`` / ``gather_mm`` (see :mod:`torch_api._indexed_mm`).

Kernels. When the segments are of similar lengths (padding every segment to the longest adds at
most ``N`` rows, or 64 per segment: less work than the per-segment call it saves), the rows are
gathered into a zero-padded ``(R, L, K)`` block and all three products are one ``torch.bmm``
each (any dtype and device): the padded rows of ``G`` are zeroed so they add nothing to ``db``,
and the padded rows of the results are never read back. ``gather_mm`` takes this path whenever
the lengths allow (the gather replaces its sort-and-unsort copies); ``segment_mm``, whose rows
are in place already, only where ``grouped_mm`` is unavailable. Otherwise
``torch.nn.functional.grouped_mm`` (int32 cumulative offsets) where it exists for the
dtype and device: float32 and bfloat16 on CPU, bfloat16 on CUDA devices of compute capability
8.0 or newer. It needs the leading stride of every operand to be a multiple of 16 bytes, so a
contraction or output width that is not is zero-padded (exact: padded rows/columns contribute
nothing and are sliced off). Everything else (float64, float16, other devices) runs one
``torch.mm`` per non-empty segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Plan:
    lens: tuple[int, ...]  # segment lengths (host copy), one per matrix of b
    offs: torch.Tensor | None  # int32 cumulative offsets for grouped_mm, or None (loop)
    pad: Padded | None = None  # the padded-bmm layout, or None (segment kernels)


@dataclass(frozen=True)
class Padded:
    """Row ``i`` of the (unsorted) operand sits at row ``slots[i]`` of the ``(R * L, K)`` padded
    block, which is ``x.index_select(0, src)``; ``empty`` lists the padding rows."""

    L: int
    slots: torch.Tensor
    src: torch.Tensor
    empty: torch.Tensor


def use_padded(R: int, L: int, N: int) -> bool:
    """Pad every segment to the longest (length ``L``) when it adds little work."""
    return N > 0 and R * L - N <= max(N, 64 * R)


def stable_order(idx: torch.Tensor, R: int) -> torch.Tensor:
    """``argsort(idx, stable=True)`` for indices in ``[0, R)``; NumPy's radix sort on the CPU."""
    if idx.device.type == "cpu" and R <= 2**16:
        order = np.argsort(idx.numpy().astype(np.uint16), kind="stable")
        return torch.from_numpy(order.astype(np.int64, copy=False))
    return torch.argsort(idx, stable=True)


def padded_layout(idx: torch.Tensor, perm: torch.Tensor | None, counts: torch.Tensor, L: int):
    """The padded layout of rows with segment indices ``idx`` (``perm`` sorts them, or None)."""
    R, N, dev = counts.shape[0], idx.shape[0], idx.device
    sidx = idx if perm is None else idx[perm]
    starts = torch.cumsum(counts, 0) - counts
    sorted_slots = sidx * L + torch.arange(N, device=dev) - starts[sidx]
    rows = torch.arange(N, device=dev) if perm is None else perm
    src = torch.zeros(R * L, dtype=torch.int64, device=dev).index_copy_(0, sorted_slots, rows)
    slots = sorted_slots if perm is None else torch.empty_like(perm).index_copy_(
        0, perm, sorted_slots)
    used = torch.zeros(R * L, dtype=torch.bool, device=dev).index_fill_(0, sorted_slots, True)
    return Padded(L, slots, src, torch.nonzero(~used).reshape(-1))


def grouped_available(x: torch.Tensor) -> bool:
    if not hasattr(F, "grouped_mm"):
        return False
    if x.device.type == "cpu":
        return x.dtype in (torch.float32, torch.bfloat16)
    if x.device.type == "cuda":
        return x.dtype == torch.bfloat16 and torch.cuda.get_device_capability(x.device) >= (8, 0)
    return False


def make_plan(lens_t: torch.Tensor, like: torch.Tensor, idx=None, perm=None) -> Plan:
    """Kernel choice for segment lengths ``lens_t``; ``idx`` gives each row's segment (gather_mm,
    with ``perm`` sorting the rows or None) or is None (segment_mm: rows in segment order)."""
    lens = tuple(int(v) for v in lens_t.tolist())
    N, R = sum(lens), len(lens)
    L = max(lens, default=0)
    grouped = grouped_available(like)
    # segment_mm's rows are in place for grouped_mm already: pad only where it would loop
    if use_padded(R, L, N) and (idx is not None or not grouped):
        counts = lens_t.to(device=like.device, dtype=torch.int64)
        if idx is None:
            idx = torch.repeat_interleave(torch.arange(R, device=like.device), counts,
                                          output_size=N)
        return Plan(lens, None, padded_layout(idx.to(like.device, torch.int64), perm, counts, L))
    offs = None
    if grouped and N > 0 and N < 2**31:
        offs = torch.cumsum(lens_t.to(device=like.device, dtype=torch.int64), 0).to(torch.int32)
    return Plan(lens, offs)


def pad_last(x: torch.Tensor, dims: tuple[int, ...], align: int) -> torch.Tensor:
    """Zero-pad each of ``dims`` (negative, counted from the end) up to a multiple of ``align``."""
    pad = [0] * (2 * x.dim())
    for d in dims:
        pad[2 * (-d - 1) + 1] = -x.shape[d] % align
    return F.pad(x, pad) if any(pad) else x


def gemm_ready(w: torch.Tensor, align: int) -> bool:
    """Row- or column-major in the last two dimensions with a 16-byte-aligned leading stride."""
    (s0, s1), (d0, d1) = w.stride()[-2:], w.shape[-2:]
    if s1 == 1 and s0 >= d1:
        return s0 % align == 0
    if s0 == 1 and s1 >= d0:
        return s1 % align == 0
    return False


def segment_fwd(x: torch.Tensor, w: torch.Tensor, plan: Plan) -> torch.Tensor:
    """Segment product: rows of segment r of ``x (N, K)`` times ``w[r] (K, M)`` -> ``(N, M)``."""
    N, M = x.shape[0], w.shape[-1]
    if plan.offs is not None:
        align = 16 // x.element_size()
        xp = pad_last(x, (-1,), align).contiguous()
        wp = pad_last(w, (-2, -1), align)
        if not gemm_ready(wp, align):
            wp = wp.contiguous()
        out = F.grouped_mm(xp, wp, offs=plan.offs)
        return out[:, :M].contiguous() if out.shape[-1] != M or not out.is_contiguous() else out
    out = x.new_zeros(N, M)
    start = 0
    for r, length in enumerate(plan.lens):
        if length:
            torch.mm(x[start : start + length], w[r], out=out[start : start + length])
        start += length
    return out


def segment_wgrad(x: torch.Tensor, g: torch.Tensor, plan: Plan) -> torch.Tensor:
    """``out[r] = x[segment r]^T @ g[segment r]``: ``x (N, K)``, ``g (N, M)`` -> ``(R, K, M)``."""
    R, K, M = len(plan.lens), x.shape[1], g.shape[1]
    if plan.offs is not None:
        align = 16 // x.element_size()
        xp = pad_last(x, (-1,), align).contiguous()
        gp = pad_last(g, (-1,), align).contiguous()
        out = F.grouped_mm(xp.t(), gp, offs=plan.offs)
        return out[:, :K, :M].contiguous() if out.shape[1:] != (K, M) else out
    out = x.new_zeros(R, K, M)
    start = 0
    for r, length in enumerate(plan.lens):
        if length:
            xs, gs = x[start : start + length], g[start : start + length]
            torch.mm(xs.t(), gs, out=out[r])
        start += length
    return out
