"""The one place that differentiates linear solves in torch_api.

Every solve op (triangular, generic iterative, JAX-, CuPy- and SciPy-backed) supplies only a
forward solve and a transposed solve on the flat form of :class:`~torch_api._pattern.Pattern`
(block-diagonal 2-D CSR pattern, flat values, right-hand sides ``(b*n, p)``). For
``X = A^{-1} B`` with upstream gradient ``G``:

    dB = A^{-T} G            (one transposed solve)
    dA = -dB X^T             (sampled at A's nonzeros only: Pattern.sddmm)

The solver is never differentiated through its iterations. An op that solves with the
transpose, ``X = A^{-T} B`` (``transposed=True``), gets ``dB = A^{-1} G`` from the same pair of
flat solves (the roles swap) and ``dA = -X dB^T`` at the pattern.

Higher order: the transposed solve of the backward is the same :class:`PatternSolve` with the
two flat solves swapped (itself differentiable), and the SDDMM is :mod:`torch_api._sddmm`'s, so
``create_graph=True`` differentiates the backward again; without it the flat solve and the fused
SDDMM run directly. Forward mode: ``dX = op(A)^{-1} (dB - op(dA) X)``, one more solve.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._pattern import Pattern
from ._sddmm import (
    PatternMM,
    columns_vmap,
    recording,
    save_both,
    sddmm,
    sparse_scope,
    to_values,
)

# solve(pattern, values, B2d) -> X2d, for the block-diagonal system A X = B
FlatSolve = Callable[[Pattern, torch.Tensor, torch.Tensor], torch.Tensor]


class PatternSolve(torch.autograd.Function):
    """``(values, B) -> op(A)^{-1} B`` on flat ``B``; ``op(A) = A^T`` if ``transposed``."""

    @staticmethod
    def forward(values, B, solve: FlatSolve, transpose_solve: FlatSolve, pattern, transposed):
        with torch.no_grad():
            return solve(pattern, values, B)

    @staticmethod
    def setup_context(ctx, inputs, output):
        values, _, ctx.solve, ctx.transpose_solve, ctx.pattern, ctx.transposed = inputs
        save_both(ctx, values, output)

    @staticmethod
    def backward(ctx, G):
        values, X = ctx.saved_tensors
        pattern = ctx.pattern
        G = G.contiguous()
        if recording():  # create_graph: the transposed solve is this Function, roles swapped
            dB = PatternSolve.apply(values, G, ctx.transpose_solve, ctx.solve, pattern,
                                    not ctx.transposed)
        else:
            dB = ctx.transpose_solve(pattern, values, G)
        dv = None
        if ctx.needs_input_grad[0]:
            dv = -(sddmm(pattern, X, dB) if ctx.transposed else sddmm(pattern, dB, X))
        return dv, dB if ctx.needs_input_grad[1] else None, None, None, None, None

    @staticmethod
    def jvp(ctx, dv, dB, *_):
        values, X = ctx.saved_tensors
        rhs = dB
        if dv is not None:
            dAX = PatternMM.apply(dv, X, ctx.pattern, ctx.transposed)
            rhs = -dAX if rhs is None else rhs - dAX
        return PatternSolve.apply(values, rhs, ctx.solve, ctx.transpose_solve, ctx.pattern,
                                  ctx.transposed)

    @staticmethod
    def vmap(info, in_dims, values, B, solve, transpose_solve, pattern, transposed):
        args = (solve, transpose_solve, pattern, transposed)
        return columns_vmap(lambda v, b: PatternSolve.apply(v, b, *args), info, in_dims, values, B)


def implicit_solve(
    A: torch.Tensor, B: torch.Tensor, solve: FlatSolve, transpose_solve: FlatSolve,
    transposed: bool = False,
) -> torch.Tensor:
    """Solve ``A X = B`` with ``solve`` and differentiate implicitly with ``transpose_solve``.

    ``A`` and ``B`` must already be validated (square ``A``; ``B`` of ``A.shape[-1]`` rows).
    With ``transposed=True`` the op is ``X = A^{-T} B``: ``solve`` solves with ``A^T`` and
    ``transpose_solve`` with ``A``.
    """
    with sparse_scope():
        pattern, values = Pattern.of(A)
    Bf, vector = pattern.flat_rhs(B)
    v = to_values(A, pattern, values)
    if torch.is_grad_enabled():
        Xf = PatternSolve.apply(v, Bf, solve, transpose_solve, pattern, transposed)
    else:
        Xf = solve(pattern, v, Bf)
    return pattern.unflat(Xf, vector, A.shape[-1])
