"""sparse_generic_solve: values and sparse gradients against dense torch.linalg.solve autograd."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from tests.helpers import (
    check_against_dense,
    check_operand_errors,
    gradcheck_in_values,
    solve_matrix,
    to_sparse,
    tol,
)
from torch_api import sparse_generic_solve
from torch_api.utils import BICGSTABSettings, LinearCGSettings, MINRESSettings, bicgstab, linear_cg

N = 16


def direct(A, B):
    """A direct dense solve in the solver signature (the matrix it is handed is what it solves)."""
    return torch.linalg.solve(A.to_dense(), B)


def make(D, layout, index_dtype):
    return to_sparse(D, layout, index_dtype).requires_grad_()


def check(A, B, G, tolerances=None, **kw):
    """``sparse_generic_solve(A, B, **kw)`` and the gradients of ``sum(G * X)`` for A (sparse)
    and B against dense torch.linalg.solve autograd (``tolerances``: default :func:`tol`)."""
    solve = partial(sparse_generic_solve, **kw)
    check_against_dense(solve, torch.linalg.solve, A, B.requires_grad_(), G=G,
                        **(tolerances or {}))
    return B.grad


@pytest.mark.parametrize("k", [0, 3], ids=["vector", "block"])
def test_nonsymmetric_bicgstab_matches_dense(layout, index_dtype, dtype, k):
    D = solve_matrix(N, "general", dtype)
    g = torch.Generator().manual_seed(1)
    B = torch.randn(N, max(k, 1), generator=g, dtype=torch.float64).to(dtype)
    B = B[:, 0].clone() if k == 0 else B
    G = torch.randn(B.shape, generator=g, dtype=torch.float64).to(dtype)
    A = make(D, layout, index_dtype)
    eps = 1e-13 if dtype == torch.float64 else 1e-5
    settings = BICGSTABSettings(abstol=0.0, reltol=eps)
    check(A, B, G, tol(dtype, "iterative"), solve=bicgstab, settings=settings)
    if layout == torch.sparse_csr:
        assert A.grad.col_indices().dtype == index_dtype


def test_transpose_solve_uses_the_transpose(layout):
    """The backward must solve with A^T. Solving with A (torchsparsegradutils 0.2.7's default)
    gives a different dB for this non-symmetric A, so this test catches that bug."""
    D = solve_matrix(N, "general")
    assert not torch.allclose(D, D.T)
    B = torch.randn(N, 2, dtype=torch.float64)
    G = torch.randn(N, 2, dtype=torch.float64)
    A = make(D, layout, torch.int64)
    dB = check(A, B, G, solve=direct)  # transpose_solve defaults to solve, with A^T
    wrong = torch.linalg.solve(D, G)  # what passing A instead of A^T would give
    assert (wrong - dB).abs().max() > 1e-2


@pytest.mark.parametrize("given", ["solve", "both"])
def test_solvers_receive_caller_layout_and_transpose(layout, index_dtype, given):
    """Only ``solve`` given: the backward calls it with ``A^T``. Both given (torchsparsegradutils'
    contract): ``transpose_solve`` receives ``A`` and solves ``A^T Y = G`` itself."""
    D = solve_matrix(N, "general")
    seen = []

    def recording(name, transpose=False):
        def solve(M, R, **kw):
            seen.append((name, M, kw))
            return torch.linalg.solve(M.to_dense().mT if transpose else M.to_dense(), R)

        return solve

    A = make(D, layout, index_dtype)
    B = torch.randn(N, dtype=torch.float64)
    G = torch.randn(N, dtype=torch.float64)
    kw = dict(solve=recording("fwd"), flag=7)
    if given == "both":
        kw["transpose_solve"] = recording("bwd", transpose=True)
    check(A, B, G, **kw)
    (f, Mf, kwf), (b, Mb, kwb) = seen
    assert (f, b) == ("fwd", "bwd" if given == "both" else "fwd")
    assert kwf == kwb == {"flag": 7}
    assert Mf.layout == Mb.layout == layout and not Mf.requires_grad
    torch.testing.assert_close(Mf.to_dense(), D)
    torch.testing.assert_close(Mb.to_dense(), D if given == "both" else D.T)


def test_default_minres_symmetric_indefinite(layout):
    D = solve_matrix(N, "spd")
    D.diagonal()[::2] *= -1  # symmetric indefinite
    B = torch.randn(N, 2, dtype=torch.float64)
    G = torch.randn(N, 2, dtype=torch.float64)
    A = make(D, layout, torch.int64)
    check(A, B, G, tol(torch.float64, "iterative"), settings=MINRESSettings(minres_tolerance=1e-13))


def test_linear_cg_spd(layout):
    D = solve_matrix(N, "spd")
    B = torch.randn(N, 4, dtype=torch.float64)
    G = torch.randn(N, 4, dtype=torch.float64)
    A = make(D, layout, torch.int32)
    settings = LinearCGSettings(cg_tolerance=1e-13)
    check(A, B, G, tol(torch.float64, "iterative"), solve=linear_cg, settings=settings)


@pytest.mark.parametrize("solver", ["direct", "bicgstab"])
def test_gradcheck(layout, solver):
    n = 6
    D = solve_matrix(n, "general", seed=2)
    S = to_sparse(D, layout)
    kw = (
        {"solve": direct}
        if solver == "direct"
        else {
            "solve": bicgstab,
            "settings": BICGSTABSettings(matvec_max=200, abstol=0.0, reltol=1e-14),
        }
    )
    B = torch.randn(n, 2, dtype=torch.float64)
    assert gradcheck_in_values(partial(sparse_generic_solve, **kw), S, B)


def test_uncoalesced_coo_is_accepted():
    D = solve_matrix(N, "general")
    S = to_sparse(D, torch.sparse_coo)
    idx, val = S.indices(), S.values()
    A = torch.sparse_coo_tensor(
        torch.cat([idx, idx], 1), torch.cat([0.5 * val, 0.5 * val]), S.shape
    )
    assert not A.is_coalesced()
    B = torch.randn(N, dtype=torch.float64)
    torch.testing.assert_close(sparse_generic_solve(A, B, solve=direct), torch.linalg.solve(D, B))


def test_solver_nonconvergence_reaches_the_caller():
    from torch_api.utils import ConvergenceError, ConvergenceWarning

    A = make(solve_matrix(N, "general"), torch.sparse_csr, torch.int64)
    B = torch.randn(N, dtype=torch.float64)
    with pytest.warns(ConvergenceWarning, match="bicgstab did not converge"):
        sparse_generic_solve(A, B, solve=bicgstab, settings=BICGSTABSettings(matvec_max=2))
    with pytest.raises(ConvergenceError, match="bicgstab"):
        sparse_generic_solve(
            A, B, solve=bicgstab, settings=BICGSTABSettings(matvec_max=2), raise_on_failure=True
        )


def test_bad_inputs():
    D = solve_matrix(6, "general")
    A = to_sparse(D, torch.sparse_csr)
    b = torch.ones(6, dtype=torch.float64)
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        sparse_generic_solve(to_sparse(D[:, :5], torch.sparse_csr), b[:5])
    # A not a tensor, dense, CSC, integer; B sparse, a row short, float32, 3-D
    for B in (b, torch.ones(6, 2, dtype=torch.float64)):
        check_operand_errors(sparse_generic_solve, D, B)
    with pytest.raises(ValueError, match="A: expected a 2-D sparse tensor"):
        sparse_generic_solve(torch.stack([D, D]).to_sparse(), torch.ones(2, 6, dtype=torch.float64))
    with pytest.raises(TypeError, match="B: expected a dense"):
        sparse_generic_solve(A, A)
    with pytest.raises(TypeError, match="solve: expected a callable"):
        sparse_generic_solve(A, b, solve="cg")
    with pytest.raises(ValueError, match="solve: expected the solver to return shape"):
        sparse_generic_solve(A, b, solve=lambda M, R: R[:3])
    with pytest.raises(TypeError, match="solve: expected the solver to return a tensor"):
        sparse_generic_solve(A, b, solve=lambda M, R: (R, 0))
