"""``sparse_generic_solve``: ``X = A^{-1} B`` with any solver, a gradient on A's pattern.

The solver is a black box ``solve(A, B, **kwargs) -> X``; differentiation is implicit
(:mod:`torch_api._solve`): ``dB = A^{-T} G`` and ``dA = -dB X^T`` at A's nonzeros. ``dB`` comes
from ``transpose_solve(A, G)``, which solves with ``A^T`` itself (torchsparsegradutils'
contract), or, when no ``transpose_solve`` is given, from ``solve(A^T, G)``: ``A^T`` comes from
the cached transposed CSR pattern, in the caller's layout.

torchsparsegradutils 0.2.7 calls ``solve(A, G)`` when ``transpose_solve`` is omitted, so its
gradients are wrong for non-symmetric ``A``; here ``solve`` then receives ``A^T``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bridge.internal.options import resolve_solvers

from ._pattern import Pattern, csr_rows
from ._pattern_cache import operation
from ._sddmm import sparse_scope
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse, describe


def transposed_matrix(pattern: Pattern, values: torch.Tensor) -> torch.Tensor:
    """``A^T`` of a 2-D pattern as a sparse tensor in the caller's layout (COO coalesced)."""
    if pattern.layout == torch.sparse_csr:
        return pattern.csr_t(values)
    crow_t, col_t, perm = pattern.transpose()
    n, m = pattern.csr_shape
    idx = torch.stack([csr_rows(crow_t), col_t]).long()
    return torch.sparse_coo_tensor(idx, values[perm], (m, n), is_coalesced=True)


def call_solver(
    name: str, fn: Callable, M: torch.Tensor, R: torch.Tensor, vector: bool, rows: int, kwargs: dict
) -> torch.Tensor:
    """``fn(M, R, **kwargs)`` on the caller's form of ``R`` (a vector if the caller gave one),
    checked and returned as a ``(rows, p)`` block."""
    X = fn(M, R[:, 0] if vector else R, **kwargs)
    want = (rows,) if vector else (rows, R.shape[1])
    if not isinstance(X, torch.Tensor):
        raise TypeError(
            f"{name}: expected the solver to return a tensor of shape {want}, got {describe(X)}."
        )
    if tuple(X.shape) != want or X.dtype != R.dtype or X.device != R.device:
        raise ValueError(
            f"{name}: expected the solver to return shape {want}, dtype {R.dtype} on {R.device}, "
            f"got {describe(X)}."
        )
    return X.reshape(rows, 1) if vector else X  # (rows, -1) is ambiguous for rows = 0


@operation
def sparse_generic_solve(
    A: torch.Tensor,
    B: torch.Tensor,
    solve: Callable | None = None,
    transpose_solve: Callable | None = None,
    **kwargs,
) -> torch.Tensor:
    """Solve ``A X = B`` with a pluggable solver; ``A.grad`` keeps A's pattern.

    Args:
        A: sparse COO or CSR ``(n, n)``, float32/float64.
        B: dense ``(n,)`` or ``(n, k)``, same dtype and device.
        solve: ``solve(A, B, **kwargs) -> X`` with ``A`` in the caller's layout (default
            :func:`~torch_api.utils.minres`; e.g. ``linear_cg`` for SPD, ``bicgstab`` otherwise).
        transpose_solve: ``transpose_solve(A, G, **kwargs) -> Y`` solving ``A^T Y = G`` (it gets
            ``A`` and transposes itself, as in torchsparsegradutils). Omitted: the backward calls
            ``solve(A^T, G)``. Given alone, it serves both passes, called with ``A`` and ``A^T``.
        **kwargs: passed to both, e.g. ``settings=LinearCGSettings(cg_tolerance=1e-8)``.

    Returns:
        ``X`` shaped like ``B``. ``A.grad`` has A's layout, indices and nnz.

    Example:
        >>> A = (4 * torch.eye(3)).to_sparse_csr().requires_grad_()
        >>> sparse_generic_solve(A, torch.ones(3), solve=linear_cg).sum().backward()
    """
    with sparse_scope():
        A = check_sparse("A", A, ndims=(2,), square=True)
    B = check_rhs("B", B, A)
    from ._solvers import minres

    own_transpose = solve is not None and transpose_solve is not None  # it solves with A^T
    solve, transpose_solve = resolve_solvers(
        solve, transpose_solve, minres, what="a callable f(A, B, **kwargs) -> X"
    )
    vector = B.dim() == 1
    n = A.shape[0]
    # a vector stays a vector unless vmap has folded a batch of them into columns
    single = lambda R: vector and R.shape[1] == 1

    def forward(pattern: Pattern, values: torch.Tensor, Bf: torch.Tensor) -> torch.Tensor:
        return call_solver("solve", solve, pattern.wrap(values), Bf, single(Bf), n, kwargs)

    def backward(pattern: Pattern, values: torch.Tensor, Gf: torch.Tensor) -> torch.Tensor:
        M = pattern.wrap(values) if own_transpose else transposed_matrix(pattern, values)
        return call_solver("transpose_solve", transpose_solve, M, Gf, single(Gf), n, kwargs)

    return implicit_solve(A, B, forward, backward)
