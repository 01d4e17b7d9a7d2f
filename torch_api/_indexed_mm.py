"""``segment_mm`` and ``gather_mm``: grouped products with a weight matrix per segment / per row.

Both reduce to one *segment product*: rows ``a[s_r : s_{r+1}]`` of a row-sorted ``a (N, K)``
times ``b[r] (K, M)``. With upstream gradient ``G (N, M)``:

    da[segment r] = G[segment r] @ b[r]^T          (a segment product with b transposed)
    db[r]         = a[segment r]^T @ G[segment r]  (a grouped "weight gradient"; zero if empty)

``gather_mm`` (``out[i] = a[i] @ b[idx[i]]``) sorts the rows by ``idx`` (stably; skipped when
``idx`` is already sorted; a radix sort through NumPy on the CPU), runs the segment product, and
scatters the rows back. This never copies ``b`` per row as ``bmm(a[:, None], b[idx])`` does.

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

from ._pattern_cache import dense_operation
from ._validate import check_dense, check_index, check_match, value_error

__all__ = ["segment_mm", "gather_mm"]


# ------------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class _Plan:
    lens: tuple[int, ...]  # segment lengths (host copy), one per matrix of b
    offs: torch.Tensor | None  # int32 cumulative offsets for grouped_mm, or None (loop)
    pad: _Padded | None = None  # the padded-bmm layout, or None (segment kernels)


@dataclass(frozen=True)
class _Padded:
    """Row ``i`` of the (unsorted) operand sits at row ``slots[i]`` of the ``(R * L, K)`` padded
    block, which is ``x.index_select(0, src)``; ``empty`` lists the padding rows."""

    L: int
    slots: torch.Tensor
    src: torch.Tensor
    empty: torch.Tensor


def _use_padded(R: int, L: int, N: int) -> bool:
    """Pad every segment to the longest (length ``L``) when it adds little work."""
    return N > 0 and R * L - N <= max(N, 64 * R)


def _stable_order(idx: torch.Tensor, R: int) -> torch.Tensor:
    """``argsort(idx, stable=True)`` for indices in ``[0, R)``; NumPy's radix sort on the CPU."""
    if idx.device.type == "cpu" and R <= 2**16:
        order = np.argsort(idx.numpy().astype(np.uint16), kind="stable")
        return torch.from_numpy(order.astype(np.int64, copy=False))
    return torch.argsort(idx, stable=True)


def _padded(idx: torch.Tensor, perm: torch.Tensor | None, counts: torch.Tensor, L: int):
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
    return _Padded(L, slots, src, torch.nonzero(~used).reshape(-1))


def _grouped_available(x: torch.Tensor) -> bool:
    if not hasattr(F, "grouped_mm"):
        return False
    if x.device.type == "cpu":
        return x.dtype in (torch.float32, torch.bfloat16)
    if x.device.type == "cuda":
        return x.dtype == torch.bfloat16 and torch.cuda.get_device_capability(x.device) >= (8, 0)
    return False


def _plan(lens_t: torch.Tensor, like: torch.Tensor, idx=None, perm=None) -> _Plan:
    """Kernel choice for segment lengths ``lens_t``; ``idx`` gives each row's segment (gather_mm,
    with ``perm`` sorting the rows or None) or is None (segment_mm: rows in segment order)."""
    lens = tuple(int(v) for v in lens_t.tolist())
    N, R = sum(lens), len(lens)
    L = max(lens, default=0)
    grouped = _grouped_available(like)
    # segment_mm's rows are in place for grouped_mm already: pad only where it would loop
    if _use_padded(R, L, N) and (idx is not None or not grouped):
        counts = lens_t.to(device=like.device, dtype=torch.int64)
        if idx is None:
            idx = torch.repeat_interleave(torch.arange(R, device=like.device), counts,
                                          output_size=N)
        return _Plan(lens, None, _padded(idx.to(like.device, torch.int64), perm, counts, L))
    offs = None
    if grouped and N > 0 and N < 2**31:
        offs = torch.cumsum(lens_t.to(device=like.device, dtype=torch.int64), 0).to(torch.int32)
    return _Plan(lens, offs)


def _pad_last(x: torch.Tensor, dims: tuple[int, ...], align: int) -> torch.Tensor:
    """Zero-pad each of ``dims`` (negative, counted from the end) up to a multiple of ``align``."""
    pad = [0] * (2 * x.dim())
    for d in dims:
        pad[2 * (-d - 1) + 1] = -x.shape[d] % align
    return F.pad(x, pad) if any(pad) else x


def _gemm_ready(w: torch.Tensor, align: int) -> bool:
    """Row- or column-major in the last two dimensions with a 16-byte-aligned leading stride."""
    (s0, s1), (d0, d1) = w.stride()[-2:], w.shape[-2:]
    if s1 == 1 and s0 >= d1:
        return s0 % align == 0
    if s0 == 1 and s1 >= d0:
        return s1 % align == 0
    return False


def _segment_fwd(x: torch.Tensor, w: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """Segment product: rows of segment r of ``x (N, K)`` times ``w[r] (K, M)`` -> ``(N, M)``."""
    N, M = x.shape[0], w.shape[-1]
    if plan.offs is not None:
        align = 16 // x.element_size()
        xp = _pad_last(x, (-1,), align).contiguous()
        wp = _pad_last(w, (-2, -1), align)
        if not _gemm_ready(wp, align):
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


def _segment_wgrad(x: torch.Tensor, g: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """``out[r] = x[segment r]^T @ g[segment r]``: ``x (N, K)``, ``g (N, M)`` -> ``(R, K, M)``."""
    R, K, M = len(plan.lens), x.shape[1], g.shape[1]
    if plan.offs is not None:
        align = 16 // x.element_size()
        xp = _pad_last(x, (-1,), align).contiguous()
        gp = _pad_last(g, (-1,), align).contiguous()
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


# ---------------------------------------------------------------------------- padded bmm
class PaddedMM(torch.autograd.Function):
    """``out[i] = a[i] @ b[segment of i]`` through the padded layout (both operations)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, pad: _Padded) -> torch.Tensor:
        ctx.pad = pad
        ctx.save_for_backward(a, b)
        R, K = b.shape[0], a.shape[1]
        Ap = a.index_select(0, pad.src).view(R, pad.L, K)
        return torch.bmm(Ap, b).view(R * pad.L, -1).index_select(0, pad.slots)

    @staticmethod
    def backward(ctx, G: torch.Tensor):  # torch ops only: differentiable again (create_graph)
        a, b = ctx.saved_tensors
        pad = ctx.pad
        R, K, M = b.shape[0], a.shape[1], G.shape[1]
        Gp = G.index_select(0, pad.src).index_fill_(0, pad.empty, 0).view(R, pad.L, M)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = torch.bmm(Gp, b.transpose(1, 2)).view(R * pad.L, K).index_select(0, pad.slots)
        if ctx.needs_input_grad[1]:
            Ap = a.index_select(0, pad.src).view(R, pad.L, K)  # recomputed: a's size, not saved
            db = torch.bmm(Ap.transpose(1, 2), Gp)
        return da, db, None


# ------------------------------------------------------------------------ autograd Functions
class SegmentMM(torch.autograd.Function):
    """``out[segment r] = a[segment r] @ b[r]``; its backward is SegmentMM and SegmentWGrad
    (differentiable again when autograd records, the fused kernels otherwise)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, plan: _Plan) -> torch.Tensor:
        ctx.plan = plan
        ctx.save_for_backward(a, b)
        return _segment_fwd(a, b, plan)

    @staticmethod
    def backward(ctx, G: torch.Tensor):
        a, b = ctx.saved_tensors
        G = G.contiguous()  # upstream gradients can be stride-0 expansions (e.g. from .sum())
        da = _mm(G, b.transpose(1, 2), ctx.plan) if ctx.needs_input_grad[0] else None
        db = _wgrad(a, G, ctx.plan) if ctx.needs_input_grad[1] else None
        return da, db, None


class SegmentWGrad(torch.autograd.Function):
    """``out[r] = x[segment r]^T @ g[segment r]`` ``(R, K, M)``: bilinear, its derivatives are
    segment products."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, g: torch.Tensor, plan: _Plan) -> torch.Tensor:
        ctx.plan = plan
        ctx.save_for_backward(x, g)
        return _segment_wgrad(x, g, plan)

    @staticmethod
    def backward(ctx, H: torch.Tensor):
        x, g = ctx.saved_tensors
        dx = _mm(g, H.transpose(1, 2), ctx.plan) if ctx.needs_input_grad[0] else None
        dg = _mm(x, H, ctx.plan) if ctx.needs_input_grad[1] else None
        return dx, dg, None


def _mm(x, w, plan):
    return SegmentMM.apply(x, w, plan) if torch.is_grad_enabled() else _segment_fwd(x, w, plan)


def _wgrad(x, g, plan):
    return SegmentWGrad.apply(x, g, plan) if torch.is_grad_enabled() else _segment_wgrad(x, g, plan)


class GatherMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, perm: torch.Tensor | None, plan: _Plan):
        ctx.plan = plan
        ctx.save_for_backward(a, b, perm)
        if perm is None:  # idx already sorted
            return _segment_fwd(a, b, plan)
        out_sorted = _segment_fwd(a.index_select(0, perm), b, plan)
        return torch.empty_like(out_sorted).index_copy_(0, perm, out_sorted)

    @staticmethod
    def backward(ctx, G: torch.Tensor):
        a, b, perm = ctx.saved_tensors
        plan = ctx.plan
        Gs = G.contiguous() if perm is None else G.index_select(0, perm)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = _mm(Gs, b.transpose(1, 2), plan)
            if perm is not None:
                da = torch.empty_like(da).index_copy_(0, perm, da)
        if ctx.needs_input_grad[1]:
            a_sorted = a if perm is None else a.index_select(0, perm)
            db = _wgrad(a_sorted, Gs, plan)
        return da, db, None, None


# ------------------------------------------------------------------------------ wrappers
def _check_operands(a: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    a = check_dense("a", a, ndims=(2,), floating=False)
    b = check_dense("b", b, ndims=(3,), floating=False)
    if not a.dtype.is_floating_point:
        raise value_error("a", a, "a floating-point tensor")
    check_match("a", a, "b", b)
    if b.shape[1] != a.shape[1]:
        raise ValueError(
            f"b: expected shape (R, {a.shape[1]}, D2) to match a's {a.shape[1]} columns, "
            f"got shape {tuple(b.shape)}."
        )
    return a, b


@dense_operation
def segment_mm(a: torch.Tensor, b: torch.Tensor, seglen_a: torch.Tensor) -> torch.Tensor:
    """Segmented product: consecutive row segments of ``a`` times one matrix of ``b`` each.

    As ``dgl.ops.segment_mm``: rows ``[s_r, s_r + seglen_a[r])`` of ``a`` are multiplied by
    ``b[r]``, with ``s_r = seglen_a[:r].sum()``. Empty segments are allowed.

    Args:
        a: dense ``(N, D1)``, floating point.
        b: dense ``(R, D1, D2)``, same dtype and device as ``a``.
        seglen_a: integer ``(R,)``, non-negative, summing to ``N`` (any device; read on the host).

    Returns:
        Dense ``(N, D2)``; differentiable with respect to ``a`` and ``b``.

    Example:
        >>> a, b = torch.randn(5, 3), torch.randn(2, 3, 4)
        >>> segment_mm(a, b, torch.tensor([2, 3])).shape
        torch.Size([5, 4])
    """
    a, b = _check_operands(a, b)
    seglen_a = check_index("seglen_a", seglen_a)
    R, N = b.shape[0], a.shape[0]
    if seglen_a.shape[0] != R:
        raise value_error("seglen_a", seglen_a, f"one length per matrix of b, shape ({R},)")
    if seglen_a.device.type == "meta":
        raise value_error("seglen_a", seglen_a, "lengths with values (a CPU or CUDA tensor)")
    lens = seglen_a.detach().to("cpu", torch.int64)
    if R and int(lens.min()) < 0:
        raise value_error("seglen_a", f"a negative length {int(lens.min())}", "lengths >= 0")
    if int(lens.sum()) != N:
        raise value_error("seglen_a", f"lengths summing to {int(lens.sum())}",
                          f"lengths summing to a's {N} rows")
    plan = _plan(lens, a)
    if plan.pad is not None:
        return PaddedMM.apply(a, b, plan.pad)
    return SegmentMM.apply(a, b, plan)


@dense_operation
def gather_mm(a: torch.Tensor, b: torch.Tensor, idx_b: torch.Tensor) -> torch.Tensor:
    """Gathered product ``out[i] = a[i] @ b[idx_b[i]]`` (as ``dgl.ops.gather_mm``).

    Rows are sorted by ``idx_b`` and multiplied segment by segment (one grouped product), never
    materialising ``b[idx_b]``.

    Args:
        a: dense ``(N, D1)``, floating point.
        b: dense ``(R, D1, D2)``, same dtype and device as ``a``.
        idx_b: integer ``(N,)`` on ``a``'s device, values in ``[0, R)``.

    Returns:
        Dense ``(N, D2)``; differentiable with respect to ``a`` and ``b``.

    Example:
        >>> a, b = torch.randn(4, 3), torch.randn(2, 3, 5)
        >>> gather_mm(a, b, torch.tensor([1, 0, 1, 1])).shape
        torch.Size([4, 5])
    """
    a, b = _check_operands(a, b)
    idx_b = check_index("idx_b", idx_b)
    R, N = b.shape[0], a.shape[0]
    if idx_b.shape[0] != N:
        raise value_error("idx_b", idx_b, f"one index per row of a, shape ({N},)")
    if idx_b.device != a.device:
        raise value_error("idx_b", idx_b, f"an index tensor on a's device {a.device}")
    idx = idx_b.detach().long()
    if N:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= R:
            raise value_error("idx_b", f"indices in [{lo}, {hi}]", f"indices in [0, {R})")
    perm = None
    if N > 1 and not bool((idx[1:] >= idx[:-1]).all()):
        perm = _stable_order(idx, R)
    counts = torch.bincount(idx, minlength=R)
    plan = _plan(counts, a, idx, perm)
    if plan.pad is not None:
        return PaddedMM.apply(a, b, plan.pad)
    return GatherMM.apply(a, b, perm, plan)
