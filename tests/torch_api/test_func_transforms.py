"""Forward mode (``forward_ad``, ``torch.func.jvp``/``jacfwd``), ``vmap`` and ``torch.func.grad``
through torch_api's operations, against dense equivalents in float64.

Tangents, batches and gradients are those of the dense arguments (``B``): torch has no sparse
tangents, so ``A`` enters as a constant. Tangents of A's values are supported by the
value-level blocks every operation is made of (checked at the end).
"""

from __future__ import annotations

import torch
from torch.autograd import forward_ad as fwAD
from torch.func import grad, jacfwd, jvp, vmap

from tests.helpers import random_dense, solve_matrix, to_sparse
from torch_api import (
    sparse_generic_lstsq,
    sparse_generic_solve,
    sparse_mm,
    sparse_triangular_solve,
)
from torch_api._pattern import Pattern
from torch_api._sddmm import PatternMM
from torch_api._solve import PatternSolve
from torch_api._triangular_solve import _flat_solve
from torch_api.utils import LinearCGSettings, linear_cg

F64 = torch.float64
CG = {"solve": linear_cg, "settings": LinearCGSettings(cg_tolerance=1e-14)}


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _cases(layout):
    """(name, op(B), dense linear map B -> D op B as a function, rhs shape)."""
    D = random_dense((4, 5), density=0.5, seed=1)
    Db = random_dense((2, 4, 5), density=0.5, seed=2)
    L = solve_matrix(5, "lower", seed=4)
    Sp = solve_matrix(5, "spd", seed=5)
    T = random_dense((7, 4), density=0.5, seed=6) + 3 * torch.eye(7, 4, dtype=F64)
    A, Ab, Al, As, At = (to_sparse(M, layout) for M in (D, Db, L, Sp, T))
    return [
        ("mm", lambda b: sparse_mm(A, b), lambda b: D @ b, (5, 3)),
        ("mm batched", lambda b: sparse_mm(Ab, b),
         lambda b: Db @ b if b.dim() == 3 else (Db @ b[..., None])[..., 0], (2, 5, 3)),
        ("triangular", lambda b: sparse_triangular_solve(Al, b, upper=False),
         lambda b: torch.linalg.solve(L, b), (5, 2)),
        ("triangular T", lambda b: sparse_triangular_solve(Al, b, upper=False, transpose=True),
         lambda b: torch.linalg.solve(L.T, b), (5, 2)),
        ("cg", lambda b: sparse_generic_solve(As, b, **CG), lambda b: torch.linalg.solve(Sp, b),
         (5, 2)),
        ("lstsq", lambda b: sparse_generic_lstsq(At, b, atol=1e-14, btol=1e-14, maxiter=500),
         lambda b: torch.linalg.pinv(T) @ b, (7, 2)),
    ]


def test_forward_ad_and_func_jvp(layout):
    for name, op, dense, shape in _cases(layout):
        B, dB = _randn(*shape, seed=7), _randn(*shape, seed=8)
        with fwAD.dual_level():
            Y = op(fwAD.make_dual(B, dB))
            primal, tangent = fwAD.unpack_dual(Y)
        torch.testing.assert_close(primal, dense(B), rtol=1e-9, atol=1e-10, msg=name)
        torch.testing.assert_close(tangent, dense(dB), rtol=1e-9, atol=1e-10, msg=name)
        _, t2 = jvp(op, (B,), (dB,))
        torch.testing.assert_close(t2, dense(dB), rtol=1e-9, atol=1e-10, msg=name)


def test_jacfwd_and_grad(layout):
    for name, op, dense, shape in _cases(layout):
        B = _randn(*shape, seed=9)
        torch.testing.assert_close(jacfwd(op)(B), jacfwd(dense)(B), rtol=1e-8, atol=1e-9,
                                   msg=name)
        loss = lambda b, f: (f(b) * torch.sin(f(b))).sum()
        torch.testing.assert_close(grad(loss)(B, op), grad(loss)(B, dense), rtol=1e-8,
                                   atol=1e-9, msg=name)


def test_hessian_forward_over_reverse(layout):
    """jacfwd(grad(.)): the jvp rules of the backward's blocks (SDDMM, transposed products)."""
    for name, op, dense, shape in _cases(layout)[:3]:
        B = _randn(*shape, seed=10)[..., 0]
        loss = lambda b, f: f(b).pow(3).sum()
        torch.testing.assert_close(jacfwd(grad(loss))(B, op), jacfwd(grad(loss))(B, dense),
                                   rtol=1e-8, atol=1e-9, msg=name)


def test_vmap_over_b(layout):
    for name, op, dense, shape in _cases(layout):
        Bs = _randn(3, *shape, seed=11)
        want = torch.stack([dense(b) for b in Bs])
        torch.testing.assert_close(vmap(op)(Bs), want, rtol=1e-9, atol=1e-10, msg=name)
        # mapped axis last, and a vector per batch element
        torch.testing.assert_close(vmap(op, in_dims=-1, out_dims=-1)(Bs.movedim(0, -1)),
                                   want.movedim(0, -1), rtol=1e-9, atol=1e-10, msg=name)
        vecs = Bs[..., 0]
        torch.testing.assert_close(vmap(op)(vecs), torch.stack([dense(b) for b in vecs]),
                                   rtol=1e-9, atol=1e-10, msg=name)


def test_vmap_of_grad():
    """Per-example gradients: vmap(grad(loss)) over a batch of right-hand sides."""
    D = random_dense((4, 5), density=0.5, seed=12)
    A = to_sparse(D, torch.sparse_csr)
    Bs = _randn(3, 5, seed=13)
    got = vmap(grad(lambda b: sparse_mm(A, b).square().sum()))(Bs)
    torch.testing.assert_close(got, 2 * Bs @ (D.T @ D).T)


def test_value_tangents_of_the_blocks(layout):
    """Tangents of A's values through the value-level product and solve: dY = dA B and
    dX = A^{-1} (dB - dA X)."""
    L = solve_matrix(5, "lower", seed=14)
    pattern, values = Pattern.of(to_sparse(L, layout))
    rows, cols = pattern.rows(), pattern.col
    dv = _randn(pattern.nnz, seed=15)
    dL = torch.zeros_like(L).index_put((rows, cols), dv)
    B, dB = _randn(5, 2, seed=16), _randn(5, 2, seed=17)
    fwd = lambda p, v, b: _flat_solve(p, v, b, upper=False, unitriangular=False, transpose=False)
    bwd = lambda p, v, b: _flat_solve(p, v, b, upper=False, unitriangular=False, transpose=True)
    with fwAD.dual_level():
        v, b = fwAD.make_dual(values, dv), fwAD.make_dual(B, dB)
        dY = fwAD.unpack_dual(PatternMM.apply(v, b, pattern, True)).tangent
        X = PatternSolve.apply(v, b, fwd, bwd, pattern, False)
        dX = fwAD.unpack_dual(X).tangent
    torch.testing.assert_close(dY, dL.T @ B + L.T @ dB)
    Xd = torch.linalg.solve(L, B)
    torch.testing.assert_close(dX, torch.linalg.solve(L, dB - dL @ Xd))
