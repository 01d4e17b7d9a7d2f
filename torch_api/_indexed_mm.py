"""``segment_mm`` and ``gather_mm``: grouped products with a weight matrix per segment / per row.

Both reduce to one *segment product*: rows ``a[s_r : s_{r+1}]`` of a row-sorted ``a (N, K)``
times ``b[r] (K, M)``. With upstream gradient ``G (N, M)``:

    da[segment r] = G[segment r] @ b[r]^T          (a segment product with b transposed)
    db[r]         = a[segment r]^T @ G[segment r]  (a grouped "weight gradient"; zero if empty)

``gather_mm`` (``out[i] = a[i] @ b[idx[i]]``) sorts the rows by ``idx`` (stably; skipped when
``idx`` is already sorted; a radix sort through NumPy on the CPU), runs the segment product, and
scatters the rows back. This never copies ``b`` per row as ``bmm(a[:, None], b[idx])`` does.

The kernels (padded ``bmm``, ``grouped_mm``, per-segment ``mm``) are in
:mod:`torch_api._indexed_kernels`.
"""

from __future__ import annotations

import torch

from bridge.internal.options import check_grouped_operands

from ._indexed_kernels import Padded, Plan, make_plan, segment_fwd, segment_wgrad, stable_order
from ._pattern_cache import dense_operation
from ._validate import check_dense, check_index, check_match, value_error

__all__ = ["segment_mm", "gather_mm"]


# ---------------------------------------------------------------------------- padded bmm
class PaddedMM(torch.autograd.Function):
    """``out[i] = a[i] @ b[segment of i]`` through the padded layout (both operations)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, pad: Padded) -> torch.Tensor:
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
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, plan: Plan) -> torch.Tensor:
        ctx.plan = plan
        ctx.save_for_backward(a, b)
        return segment_fwd(a, b, plan)

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
    def forward(ctx, x: torch.Tensor, g: torch.Tensor, plan: Plan) -> torch.Tensor:
        ctx.plan = plan
        ctx.save_for_backward(x, g)
        return segment_wgrad(x, g, plan)

    @staticmethod
    def backward(ctx, H: torch.Tensor):
        x, g = ctx.saved_tensors
        dx = _mm(g, H.transpose(1, 2), ctx.plan) if ctx.needs_input_grad[0] else None
        dg = _mm(x, H, ctx.plan) if ctx.needs_input_grad[1] else None
        return dx, dg, None


def _mm(x, w, plan):
    return SegmentMM.apply(x, w, plan) if torch.is_grad_enabled() else segment_fwd(x, w, plan)


def _wgrad(x, g, plan):
    return SegmentWGrad.apply(x, g, plan) if torch.is_grad_enabled() else segment_wgrad(x, g, plan)


class GatherMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, perm: torch.Tensor | None, plan: Plan):
        ctx.plan = plan
        ctx.save_for_backward(a, b, perm)
        if perm is None:  # idx already sorted
            return segment_fwd(a, b, plan)
        out_sorted = segment_fwd(a.index_select(0, perm), b, plan)
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
    check_grouped_operands(a.shape, b.shape)
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
    plan = make_plan(lens, a)
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
        perm = stable_order(idx, R)
    counts = torch.bincount(idx, minlength=R)
    plan = make_plan(counts, a, idx, perm)
    if plan.pad is not None:
        return PaddedMM.apply(a, b, plan.pad)
    return GatherMM.apply(a, b, perm, plan)
