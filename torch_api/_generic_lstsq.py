"""``sparse_generic_lstsq``: ``X = A^+ B`` for a tall sparse ``A``, a gradient on A's pattern.

For ``A (m, n)``, ``m >= n``, of full column rank, ``X = (A^T A)^{-1} A^T B``. With upstream
``G (n, p)`` and ``r = B - A X``, differentiating ``A^T A X = A^T B``:

    dX = (A^T A)^{-1} (dA^T r - A^T dA X)
    <G, dX> = <Y, dA^T r> - <A Y, dA X>         with Y = (A^T A)^{-1} G
            = <dA, r Y^T - z X^T>                with z = A Y = (A^+)^T G
    <G, dX/dB . dB> = <A Y, dB> = <z, dB>

so ``dB = z`` and ``dA = r Y^T - z X^T`` at A's nonzeros (one SDDMM of ``[r, -z]`` with
``[Y, X]``). ``z`` is the minimum-norm solution of ``A^T z = G`` (underdetermined; it lies in
the range of ``A``), found by ``transpose_lstsq(A, G)`` (which solves with ``A^T`` itself, as in
torchsparsegradutils) or, when it is omitted, by ``lstsq(A^T, G)``; then ``Y`` is the
least-squares solution of ``A Y = z``, found by ``lstsq`` (exact, as ``z`` is in A's range).

Higher order: ``Y = (A^T A)^{-1} G`` is :class:`NormalSolve` (the same two solver calls, a
self-adjoint Function with its own derivative) and ``z = A Y``, so with ``create_graph=True`` the
backward is made of differentiable ops only. Forward mode:
``dX = (A^T A)^{-1} (dA^T r + A^T (dB - dA X))``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bridge.internal.options import resolve_solvers

from ._generic_solve import call_solver, transposed_matrix
from ._pattern import Pattern
from ._pattern_cache import operation
from ._sddmm import (
    PatternMM,
    columns_vmap,
    pattern_mm,
    recording,
    save_both,
    sddmm,
    sparse_scope,
    to_values,
)
from ._validate import check_dense, check_dim_match, check_match, check_sparse


class SparseGenericLstsq(torch.autograd.Function):
    """``(values, B) -> A^+ B`` on flat ``B``;
    ``solvers = (lstsq, transpose_lstsq, kwargs, own_transpose)``."""

    @staticmethod
    def forward(values, B, pattern, vector, solvers):
        lstsq, _, kwargs, _ = solvers
        with torch.no_grad():
            return call_solver("lstsq", lstsq, pattern.wrap(values), B, vector, pattern.shape[1],
                               kwargs)

    @staticmethod
    def setup_context(ctx, inputs, output):
        values, B, ctx.pattern, ctx.vector, ctx.solvers = inputs
        save_both(ctx, values, B, output)

    @staticmethod
    def backward(ctx, G):
        pattern: Pattern = ctx.pattern
        values, B, X = ctx.saved_tensors
        lstsq, _, kwargs, _ = ctx.solvers
        m, n = pattern.shape
        G = G.contiguous()
        dv = None
        if recording():  # create_graph: every piece is a differentiable op
            Y = NormalSolve.apply(values, G, pattern, ctx.vector, ctx.solvers)
            z = PatternMM.apply(values, Y, pattern, False)
            if ctx.needs_input_grad[0]:
                r = B - PatternMM.apply(values, X, pattern, False)
                dv = sddmm(pattern, r, Y) - sddmm(pattern, z, X)
            return dv, z if ctx.needs_input_grad[1] else None, None, None, None
        z = _min_norm(pattern, values, G, ctx.vector, ctx.solvers)
        if ctx.needs_input_grad[0]:
            Y = call_solver("lstsq", lstsq, pattern.wrap(values), z, ctx.vector, n, kwargs)
            r = B - pattern.csr(values) @ X
            dv = pattern.sddmm(torch.cat([r, -z], 1), torch.cat([Y, X], 1))
        return dv, z if ctx.needs_input_grad[1] else None, None, None, None

    @staticmethod
    def jvp(ctx, dv, dB, *_):
        # dX = (A^T A)^{-1} (dA^T r + A^T (dB - dA X))
        values, B, X = ctx.saved_tensors
        p, mm = ctx.pattern, PatternMM.apply
        rhs = 0
        if dv is not None:
            r = B - mm(values, X, p, False)
            rhs = mm(dv, r, p, True) - mm(values, mm(dv, X, p, False), p, True)
        if dB is not None:
            rhs = rhs + mm(values, dB, p, True)
        return NormalSolve.apply(values, rhs, p, ctx.vector, ctx.solvers)

    @staticmethod
    def vmap(info, in_dims, values, B, pattern, vector, solvers):
        return _columns_vmap(SparseGenericLstsq, info, in_dims, values, B, pattern, vector,
                             solvers)


def _min_norm(pattern: Pattern, values, G, vector: bool, solvers) -> torch.Tensor:
    """The minimum-norm ``z`` of ``A^T z = G``: ``transpose_lstsq(A, G)`` when the caller gave
    it (it solves with ``A^T`` itself), else ``lstsq(A^T, G)``."""
    _, transpose_lstsq, kwargs, own_transpose = solvers
    M = pattern.wrap(values) if own_transpose else transposed_matrix(pattern, values)
    return call_solver("transpose_lstsq", transpose_lstsq, M, G, vector, pattern.shape[0], kwargs)


class NormalSolve(torch.autograd.Function):
    """``(values, G) -> (A^T A)^{-1} G`` by ``Y = A^+ z`` with ``z = A^{+T} G`` (minimum norm).

    Self-adjoint in ``G``; for ``H`` upstream and ``W = (A^T A)^{-1} H``:
    ``dA = -(A Y) W^T - (A W) Y^T`` at the pattern.
    """

    @staticmethod
    def forward(values, G, pattern, vector, solvers):
        lstsq, _, kwargs, _ = solvers
        n = pattern.shape[1]
        with torch.no_grad():
            z = _min_norm(pattern, values, G, vector, solvers)
            return call_solver("lstsq", lstsq, pattern.wrap(values), z, vector, n, kwargs)

    @staticmethod
    def setup_context(ctx, inputs, output):
        values, _, ctx.pattern, ctx.vector, ctx.solvers = inputs
        save_both(ctx, values, output)

    @staticmethod
    def backward(ctx, H):
        values, Y = ctx.saved_tensors
        p = ctx.pattern
        W = NormalSolve.apply(values, H.contiguous(), p, ctx.vector, ctx.solvers)
        dv = None
        if ctx.needs_input_grad[0]:
            AY, AW = pattern_mm(p, values, Y), pattern_mm(p, values, W)
            dv = -(sddmm(p, AY, W) + sddmm(p, AW, Y))
        return dv, W if ctx.needs_input_grad[1] else None, None, None, None

    @staticmethod
    def jvp(ctx, dv, dG, *_):
        # dY = (A^T A)^{-1} (dG - dA^T A Y - A^T dA Y)
        values, Y = ctx.saved_tensors
        p, mm = ctx.pattern, PatternMM.apply
        rhs = 0 if dG is None else dG
        if dv is not None:
            rhs = rhs - mm(dv, mm(values, Y, p, False), p, True)
            rhs = rhs - mm(values, mm(dv, Y, p, False), p, True)
        return NormalSolve.apply(values, rhs, p, ctx.vector, ctx.solvers)

    @staticmethod
    def vmap(info, in_dims, values, B, pattern, vector, solvers):
        return _columns_vmap(NormalSolve, info, in_dims, values, B, pattern, vector, solvers)


def _columns_vmap(fn, info, in_dims, values, B, pattern, vector, solvers):
    """vmap rule: a mapped ``B`` is more columns of one solve (the solvers treat columns
    independently); mapped values run one solve per batch element."""
    return columns_vmap(lambda v, b: fn.apply(v, b, pattern, vector, solvers), info, in_dims,
                        values, B, lambda v, b: fn.apply(v, b, pattern, False, solvers))


def _lsmr_solution(M: torch.Tensor, R: torch.Tensor, **kwargs) -> torch.Tensor:
    from ._solvers import lsmr

    return lsmr(M, R, **kwargs)[0]


@operation
def sparse_generic_lstsq(
    A: torch.Tensor,
    B: torch.Tensor,
    lstsq: Callable | None = None,
    transpose_lstsq: Callable | None = None,
    **kwargs,
) -> torch.Tensor:
    """Least-squares solution ``X = argmin ||A X - B||`` with ``A.grad`` on A's pattern.

    Args:
        A: sparse COO or CSR ``(m, n)``, ``m >= n``, full column rank, float32/float64.
        B: dense ``(m,)`` or ``(m, k)``, same dtype and device.
        lstsq: ``lstsq(A, B, **kwargs) -> X`` (default :func:`~torch_api.utils.lsmr`).
        transpose_lstsq: ``transpose_lstsq(A, G, **kwargs) -> Z``, the *minimum-norm*
            solution of the underdetermined ``A^T Z = G`` (it gets ``A``, as in
            torchsparsegradutils). Omitted: ``lstsq(A^T, G)`` (LSMR from zero gives the
            minimum-norm solution).
        **kwargs: passed to both, e.g. ``atol=1e-10, btol=1e-10, maxiter=500`` for LSMR.

    Returns:
        ``X (n,)`` or ``(n, k)``. ``A.grad`` has A's layout, indices and nnz.

    Example:
        >>> A = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]).to_sparse_csr().requires_grad_()
        >>> sparse_generic_lstsq(A, torch.ones(3)).sum().backward()
    """
    with sparse_scope():
        A = check_sparse("A", A, ndims=(2,))
        pattern, values = Pattern.of(A)
    if A.shape[0] < A.shape[1]:
        raise ValueError(
            f"A: expected a tall matrix (m >= n, full column rank), got shape {tuple(A.shape)}."
        )
    B = check_dense("B", B, ndims=(1, 2))
    check_match("A", A, "B", B)
    check_dim_match("B", B.shape[0], A.shape[0], "a first dimension (A's rows)")
    own_transpose = lstsq is not None and transpose_lstsq is not None  # it solves with A^T
    lstsq, transpose_lstsq = resolve_solvers(
        lstsq, transpose_lstsq, _lsmr_solution, args=("lstsq", "transpose_lstsq"),
        what="a callable f(A, B, **kwargs) -> X",
    )
    Bf, vector = pattern.flat_rhs(B)
    v = to_values(A, pattern, values)
    solvers = (lstsq, transpose_lstsq, kwargs, own_transpose)
    X = SparseGenericLstsq.apply(v, Bf, pattern, vector, solvers)
    return pattern.unflat(X, vector, A.shape[1])
