"""``sparse_generic_lstsq``: ``X = A^+ B`` for a tall sparse ``A``, a gradient on A's pattern.

For ``A (m, n)``, ``m >= n``, of full column rank, ``X = (A^T A)^{-1} A^T B``. With upstream
``G (n, p)`` and ``r = B - A X``, differentiating ``A^T A X = A^T B``:

    dX = (A^T A)^{-1} (dA^T r - A^T dA X)
    <G, dX> = <Y, dA^T r> - <A Y, dA X>         with Y = (A^T A)^{-1} G
            = <dA, r Y^T - z X^T>                with z = A Y = (A^+)^T G
    <G, dX/dB . dB> = <A Y, dB> = <z, dB>

so ``dB = z`` and ``dA = r Y^T - z X^T`` at A's nonzeros (one SDDMM of ``[r, -z]`` with
``[Y, X]``). ``z`` is the minimum-norm solution of ``A^T z = G`` (underdetermined; it lies in
the range of ``A``), found by ``transpose_lstsq`` called with ``A^T``; then ``Y`` is the
least-squares solution of ``A Y = z``, found by ``lstsq`` (exact, as ``z`` is in A's range).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._generic_solve import call_solver, transposed_matrix
from ._pattern import Pattern
from ._validate import check_dense, check_dim_match, check_match, check_sparse, type_error


class SparseGenericLstsq(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, lstsq, transpose_lstsq, kwargs):
        pattern, values = Pattern.of(A)
        Bf, vector = pattern.flat_rhs(B)
        n = A.shape[1]
        with torch.no_grad():
            X = call_solver("lstsq", lstsq, pattern.wrap(values), Bf, vector, n, kwargs)
        ctx.pattern, ctx.vector = pattern, vector
        ctx.solvers = (lstsq, transpose_lstsq, kwargs)
        ctx.save_for_backward(values, Bf, X)
        return pattern.unflat(X, vector, n)

    @staticmethod
    def backward(ctx, G):
        pattern: Pattern = ctx.pattern
        values, Bf, X = ctx.saved_tensors
        lstsq, transpose_lstsq, kwargs = ctx.solvers
        m, n = pattern.shape
        Gf, _ = pattern.flat_rhs(G.contiguous())
        dA = dB = None
        with torch.no_grad():
            At = transposed_matrix(pattern, values)
            z = call_solver("transpose_lstsq", transpose_lstsq, At, Gf, ctx.vector, m, kwargs)
            if ctx.needs_input_grad[0]:
                Y = call_solver("lstsq", lstsq, pattern.wrap(values), z, ctx.vector, n, kwargs)
                r = Bf - pattern.csr(values) @ X
                dA = pattern.wrap(pattern.sddmm(torch.cat([r, -z], 1), torch.cat([Y, X], 1)))
            if ctx.needs_input_grad[1]:
                dB = pattern.unflat(z, ctx.vector, m)
        return dA, dB, None, None, None


def _lsmr_solution(M: torch.Tensor, R: torch.Tensor, **kwargs) -> torch.Tensor:
    from ._solvers import lsmr

    return lsmr(M, R, **kwargs)[0]


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
        transpose_lstsq: ``transpose_lstsq(A^T, G, **kwargs) -> Z``, the *minimum-norm*
            solution of the underdetermined ``A^T Z = G``, called with the transpose of ``A``;
            defaults to ``lstsq`` (LSMR from zero gives the minimum-norm solution).
        **kwargs: passed to both, e.g. ``atol=1e-10, btol=1e-10, maxiter=500`` for LSMR.

    Returns:
        ``X (n,)`` or ``(n, k)``. ``A.grad`` has A's layout, indices and nnz.

    Example:
        >>> A = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]).to_sparse_csr().requires_grad_()
        >>> sparse_generic_lstsq(A, torch.ones(3)).sum().backward()
    """
    A = check_sparse("A", A, ndims=(2,))
    if A.shape[0] < A.shape[1]:
        raise ValueError(
            f"A: expected a tall matrix (m >= n, full column rank), got shape {tuple(A.shape)}."
        )
    B = check_dense("B", B, ndims=(1, 2))
    check_match("A", A, "B", B)
    check_dim_match("B", B.shape[0], A.shape[0], "a first dimension (A's rows)")
    for name, fn in (("lstsq", lstsq), ("transpose_lstsq", transpose_lstsq)):
        if fn is not None and not callable(fn):
            raise type_error(name, fn, "a callable f(A, B, **kwargs) -> X")
    if lstsq is None and transpose_lstsq is None:
        lstsq = transpose_lstsq = _lsmr_solution
    elif lstsq is None:
        lstsq = transpose_lstsq
    elif transpose_lstsq is None:
        transpose_lstsq = lstsq
    return SparseGenericLstsq.apply(A, B, lstsq, transpose_lstsq, kwargs)
