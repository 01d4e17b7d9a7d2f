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
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._pattern import Pattern

# solve(pattern, values, B2d) -> X2d, for the block-diagonal system A X = B
FlatSolve = Callable[[Pattern, torch.Tensor, torch.Tensor], torch.Tensor]


class ImplicitSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, solve: FlatSolve, transpose_solve: FlatSolve, transposed=False):
        pattern, values = Pattern.of(A)
        Bf, vector = pattern.flat_rhs(B)
        with torch.no_grad():
            Xf = solve(pattern, values, Bf)
        ctx.pattern, ctx.vector, ctx.transpose_solve = pattern, vector, transpose_solve
        ctx.transposed = transposed
        ctx.save_for_backward(values, Xf)
        return pattern.unflat(Xf, vector, A.shape[-1])

    @staticmethod
    def backward(ctx, G):
        pattern: Pattern = ctx.pattern
        values, Xf = ctx.saved_tensors
        Gf, _ = pattern.flat_rhs(G.contiguous())
        with torch.no_grad():
            dBf = ctx.transpose_solve(pattern, values, Gf)
        dA = None
        if ctx.needs_input_grad[0]:
            dAv = pattern.sddmm(Xf, dBf) if ctx.transposed else pattern.sddmm(dBf, Xf)
            dA = pattern.wrap(-dAv)
        dB = pattern.unflat(dBf, ctx.vector, pattern.shape[-2]) if ctx.needs_input_grad[1] else None
        return dA, dB, None, None, None


def implicit_solve(
    A: torch.Tensor, B: torch.Tensor, solve: FlatSolve, transpose_solve: FlatSolve,
    transposed: bool = False,
) -> torch.Tensor:
    """Solve ``A X = B`` with ``solve`` and differentiate implicitly with ``transpose_solve``.

    ``A`` and ``B`` must already be validated (square ``A``; ``B`` of ``A.shape[-1]`` rows).
    With ``transposed=True`` the op is ``X = A^{-T} B``: ``solve`` solves with ``A^T`` and
    ``transpose_solve`` with ``A``.
    """
    return ImplicitSolve.apply(A, B, solve, transpose_solve, transposed)
