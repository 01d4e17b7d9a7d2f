"""The differentiable building blocks of torch_api: every derivative is made of these.

An operation on a sparse ``A`` works on its :class:`~torch_api._pattern.Pattern` (fixed, not
differentiated) and its flat values ``v (nnz,)``, which is what gets differentiated. The blocks:

- :class:`ToValues` ``A -> v`` and :class:`FromValues` ``v -> A``: the boundary between the
  caller's sparse tensor and its values. Each is the other's adjoint (sampling at the pattern and
  embedding into it), so each one's backward is the other one.
- :class:`PatternMM` ``(v, B) -> op(A) @ B`` (``op(A) = A`` or ``A^T``). Bilinear: its
  derivative in ``B`` is a :class:`PatternMM` with the other ``op``, in ``v`` an SDDMM.
- :class:`SDDMM` ``(G, X) -> (G @ X^T)`` at the pattern. Bilinear: its derivative in ``G`` is
  ``A_w @ X`` and in ``X`` is ``A_w^T @ G`` (:class:`PatternMM` with the upstream values ``w``).

So each backward (and ``jvp``) is built from the same blocks and can be differentiated again, to
any order. When autograd does not record the backward (``create_graph=False``) the blocks call
the fused kernels directly (:meth:`Pattern.sddmm`, a CSR product): first-order speed is that of
the kernels. Every block has a ``vmap`` rule for a batch of dense operands (a mapped axis of
``B`` becomes extra columns of one product); a mapped ``v`` runs one product per batch element.
"""

from __future__ import annotations

import contextlib

import torch

from ._pattern import Pattern


def recording() -> bool:
    return torch.is_grad_enabled()


def sparse_scope():
    """A context for code that reads only the sparse argument (validation, its pattern): under
    ``torch.func`` transforms it runs with the transforms switched off, since functorch cannot
    look at sparse tensors (a sparse ``A`` is never transformed: ``B``'s tangents, batches and
    gradients are). A no-op otherwise."""
    if torch._C._functorch.peek_interpreter_stack() is None:
        return contextlib.nullcontext()
    return torch._C._DisableFuncTorch()


# --------------------------------------------------------------------- dispatching helpers
def pattern_mm(pattern: Pattern, values, B, transpose: bool = False) -> torch.Tensor:
    """``op(A) @ B`` for flat ``B (rows, p)``: the fused product unless autograd records."""
    if recording() or _is_dual(values, B):
        return PatternMM.apply(values, B, pattern, transpose)
    return _product(pattern, values, B, transpose)


def sddmm(pattern: Pattern, G, X) -> torch.Tensor:
    """Flat values of ``G @ X^T`` at the pattern; differentiable when autograd records."""
    if recording() or _is_dual(G, X):
        return SDDMM.apply(G, X, pattern)
    return pattern.sddmm(G, X)


def to_values(A: torch.Tensor, pattern: Pattern, values: torch.Tensor) -> torch.Tensor:
    """A's flat ``values`` (from ``Pattern.of(A)``) connected to ``A`` in the autograd graph."""
    if A.requires_grad and recording():
        return ToValues.apply(A, pattern, values)
    return values


def from_values(pattern: Pattern, values: torch.Tensor) -> torch.Tensor:
    """The sparse tensor (caller's layout) holding ``values``; differentiable when recording."""
    if recording() and values.requires_grad:
        return FromValues.apply(values, pattern)
    return pattern.wrap(values)


def _is_dual(*tensors) -> bool:
    from torch.autograd.forward_ad import _current_level, unpack_dual

    if _current_level < 0:
        return False
    return any(t is not None and unpack_dual(t).tangent is not None for t in tensors)


def _product(pattern: Pattern, values, B, transpose: bool) -> torch.Tensor:
    return (pattern.csr_t(values) if transpose else pattern.csr(values)) @ B


def values_at(S: torch.Tensor, pattern: Pattern) -> torch.Tensor:
    """The entries of ``S`` (dense, or sparse of any pattern) at the pattern, flat ``(nnz,)``."""
    S = getattr(S, "_plain", S)  # a BatchedCSRGrad
    if pattern.layout == torch.sparse_csc:  # the pattern is the CSR one of S^T
        S = S.transpose(-2, -1)
    if S.layout == torch.sparse_csr and pattern.layout in (torch.sparse_csr, torch.sparse_csc):
        if _same((S.crow_indices(), S.col_indices()), pattern.source):
            return S.values().reshape(-1)
    if S.layout == torch.sparse_coo and pattern.layout == torch.sparse_coo and S.is_coalesced():
        if _same((S._indices(),), pattern.source):
            return S._values()
    rows, cols = pattern.rows(), pattern.col
    n, m = pattern.shape[-2:]
    batch = torch.div(rows, n, rounding_mode="floor")
    if S.layout == torch.strided:
        return S.reshape(-1)[rows * m + cols - batch * m]  # block-diagonal -> (b, n, m)
    # another pattern (e.g. a sum of two gradients): sample it at ours
    idx = torch.stack([rows, cols] if len(pattern.shape) == 2 else
                      [batch, rows - batch * n, cols - batch * m]).long()
    S = S.to_sparse_coo().coalesce()
    mask = torch.sparse_coo_tensor(idx, S.new_zeros(idx.shape[1]), S.shape, is_coalesced=True)
    return S.sparse_mask(mask)._values()


def _same(a, b) -> bool:
    return all(
        x.shape == y.shape and (x.data_ptr() == y.data_ptr() or torch.equal(x, y.to(x.dtype)))
        for x, y in zip(a, b, strict=True)
    )


def fold_columns(B: torch.Tensor, bdim: int) -> tuple[torch.Tensor, int]:
    """A mapped 2-D ``B`` (mapped axis ``bdim``) as one ``(rows, p*k)`` matrix, and ``k``."""
    B = B.movedim(bdim, -1)
    return B.reshape(B.shape[0], -1), B.shape[-1]


def unfold_columns(Y: torch.Tensor, k: int) -> tuple[torch.Tensor, int]:
    """Inverse of :func:`fold_columns`: ``(rows, p*k)`` -> ``(rows, p, k)`` mapped on axis 2."""
    return Y.reshape(Y.shape[0], -1, k), 2


def per_sample(fn, info, in_dims, args):
    """A vmap rule's fallback: ``fn`` on every batch element, stacked on axis 0."""
    pairs = list(zip(args, in_dims, strict=True))
    outs = [fn(*(a if d is None else a.select(d, i) for a, d in pairs))
            for i in range(info.batch_size)]
    return torch.stack(outs), 0


def columns_vmap(apply, info, in_dims, values, B, folded=None):
    """The vmap rule of a Function of ``(values, B (N, p), ...)`` that treats B's columns
    independently: a mapped ``B`` alone is more columns of one call (``folded(values, Bc)``,
    default ``apply``), mapped values one ``apply(v, b)`` per batch element."""
    vd, bd = in_dims[:2]
    if vd is None and bd is not None:
        Bc, k = fold_columns(B, bd)
        return unfold_columns((folded or apply)(values, Bc), k)
    return per_sample(apply, info, (vd, bd), (values, B))


def save_both(ctx, *tensors: torch.Tensor) -> None:
    """Save ``tensors`` for the backward and for the forward-mode (jvp) rule."""
    ctx.save_for_backward(*tensors)
    ctx.save_for_forward(*tensors)


# ------------------------------------------------------------------------------ the blocks
class ToValues(torch.autograd.Function):
    """``A -> values``: the flat values of sparse ``A`` at its pattern."""

    @staticmethod
    def forward(A, pattern, values):
        return values.view_as(values)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.pattern = inputs[1]

    @staticmethod
    def backward(ctx, dv):
        return from_values(ctx.pattern, dv), None, None


class FromValues(torch.autograd.Function):
    """``values -> A``: the sparse tensor with the pattern's layout, indices and these values
    (``make(values)`` if given, else :meth:`Pattern.wrap`); ``values`` of any shape with nnz
    elements."""

    @staticmethod
    def forward(values, pattern, make=None):
        return pattern.wrap(values.reshape(-1)) if make is None else make(values)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.pattern, ctx.shape = inputs[1], inputs[0].shape

    @staticmethod
    def backward(ctx, dA):
        if recording() and dA.requires_grad:
            return SampleAt.apply(dA, ctx.pattern).reshape(ctx.shape), None, None
        return values_at(dA, ctx.pattern).reshape(ctx.shape), None, None

    @staticmethod
    def jvp(ctx, dv, *_):
        raise RuntimeError(
            "values: expected no forward-mode tangent for a sparse result (torch has no sparse "
            "tangents), got one; pass the values' tangent to the operation's values instead."
        )


class SampleAt(torch.autograd.Function):
    """``S -> S`` at the pattern, flat (S dense or sparse of any pattern); adjoint of FromValues."""

    @staticmethod
    def forward(S, pattern):
        return values_at(S, pattern)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.pattern = inputs[1]

    @staticmethod
    def backward(ctx, dv):
        return from_values(ctx.pattern, dv), None


class PatternMM(torch.autograd.Function):
    """``(values, B) -> op(A) @ B`` for flat ``B``; ``op(A) = A^T`` if ``transpose``."""

    @staticmethod
    def forward(values, B, pattern, transpose):
        return _product(pattern, values, B, transpose)

    @staticmethod
    def setup_context(ctx, inputs, output):
        values, B, ctx.pattern, ctx.transpose = inputs
        save_both(ctx, values, B)

    @staticmethod
    def backward(ctx, G):
        values, B = ctx.saved_tensors
        pattern, transpose = ctx.pattern, ctx.transpose
        G = G.contiguous()
        dv = dB = None
        if ctx.needs_input_grad[0]:
            dv = sddmm(pattern, B, G) if transpose else sddmm(pattern, G, B)
        if ctx.needs_input_grad[1]:
            dB = pattern_mm(pattern, values, G, not transpose)
        return dv, dB, None, None

    @staticmethod
    def jvp(ctx, dv, dB, *_):
        values, B = ctx.saved_tensors
        out = None
        if dv is not None:
            out = PatternMM.apply(dv, B, ctx.pattern, ctx.transpose)
        if dB is not None:
            term = PatternMM.apply(values, dB, ctx.pattern, ctx.transpose)
            out = term if out is None else out + term
        return out

    @staticmethod
    def vmap(info, in_dims, values, B, pattern, transpose):
        apply = lambda v, b: PatternMM.apply(v, b, pattern, transpose)
        return columns_vmap(apply, info, in_dims, values, B)


class SDDMM(torch.autograd.Function):
    """``(G (N, p), X (M, p)) -> (G @ X^T)`` at the pattern, flat ``(nnz,)``."""

    @staticmethod
    def forward(G, X, pattern):
        return pattern.sddmm(G, X)

    @staticmethod
    def setup_context(ctx, inputs, output):
        G, X, ctx.pattern = inputs
        save_both(ctx, G, X)

    @staticmethod
    def backward(ctx, dv):
        G, X = ctx.saved_tensors
        dG = pattern_mm(ctx.pattern, dv, X) if ctx.needs_input_grad[0] else None
        dX = pattern_mm(ctx.pattern, dv, G, True) if ctx.needs_input_grad[1] else None
        return dG, dX, None

    @staticmethod
    def jvp(ctx, dG, dX, _):
        G, X = ctx.saved_tensors
        out = None
        if dG is not None:
            out = SDDMM.apply(dG, X, ctx.pattern)
        if dX is not None:
            term = SDDMM.apply(G, dX, ctx.pattern)
            out = term if out is None else out + term
        return out

    @staticmethod
    def vmap(info, in_dims, G, X, pattern):
        return per_sample(lambda g, x: SDDMM.apply(g, x, pattern), info, in_dims[:2], (G, X))
