"""sparse_generic_lstsq: values and sparse gradients against dense least-squares autograd."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from tests.helpers import (
    check_against_dense,
    check_operand_errors,
    gradcheck_in_values,
    to_sparse,
    tol,
)
from torch_api import sparse_generic_lstsq

M, N = 20, 12


def tall(m=M, n=N, dtype=torch.float64, seed=0):
    """A tall, full-column-rank, well-conditioned matrix with a random sparse pattern."""
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(m, n, generator=g, dtype=torch.float64) * (torch.rand(m, n, generator=g) < 0.3)
    R[:n] += 3 * torch.eye(n, dtype=torch.float64)
    return R.to(dtype)


def dense_lstsq(D, B):
    """``X = D^+ B`` by torch.linalg.lstsq (B a vector or a block), the dense reference."""
    X = torch.linalg.lstsq(D, B if B.dim() == 2 else B[:, None]).solution
    return X if B.dim() == 2 else X[:, 0]


def direct(A, B):
    """Dense least squares (minimum norm for a wide matrix) in the solver signature."""
    D = A.to_dense()
    X = torch.linalg.pinv(D) @ B
    return X


@pytest.mark.parametrize("k", [0, 3], ids=["vector", "block"])
def test_lsmr_default_matches_dense(layout, index_dtype, dtype, k):
    D = tall(dtype=dtype)
    g = torch.Generator().manual_seed(1)
    B = torch.randn(M, max(k, 1), generator=g, dtype=torch.float64).to(dtype)
    G = torch.randn(N, max(k, 1), generator=g, dtype=torch.float64).to(dtype)
    if k == 0:
        B, G = B[:, 0], G[:, 0]
    A = to_sparse(D, layout, index_dtype).requires_grad_()
    eps = 1e-14 if dtype == torch.float64 else 1e-7
    lsmr = partial(sparse_generic_lstsq, atol=eps, btol=eps, maxiter=200)
    check_against_dense(lsmr, dense_lstsq, A, B.clone().requires_grad_(), G=G,
                        **tol(dtype, "iterative"))
    if layout == torch.sparse_csr:
        assert A.grad.crow_indices().dtype == index_dtype


def test_square_system_with_direct_solver(layout):
    D = tall(N, N)
    B = torch.randn(N, 2, dtype=torch.float64)
    G = torch.randn(N, 2, dtype=torch.float64)
    A = to_sparse(D, layout).requires_grad_()
    check_against_dense(partial(sparse_generic_lstsq, lstsq=direct), dense_lstsq, A,
                        B.requires_grad_(), G=G)


@pytest.mark.parametrize("given", ["lstsq", "both"])
def test_transpose_lstsq_contract(layout, index_dtype, given):
    """Only ``lstsq`` given: the backward calls it with ``A^T``. Both given (torchsparsegradutils'
    contract): ``transpose_lstsq`` receives ``A`` and solves ``A^T z = G`` itself."""
    D = tall()
    seen = []

    def recording(name, transpose=False):
        def lstsq(Mx, R, **kw):
            seen.append((name, Mx, kw))
            return torch.linalg.pinv(Mx.to_dense().mT if transpose else Mx.to_dense()) @ R

        return lstsq

    A = to_sparse(D, layout, index_dtype).requires_grad_()
    B = torch.randn(M, dtype=torch.float64)
    G = torch.randn(N, dtype=torch.float64)
    kw = dict(lstsq=recording("fwd"), flag=1)
    if given == "both":
        kw["transpose_lstsq"] = recording("bwd", transpose=True)
    check_against_dense(partial(sparse_generic_lstsq, **kw), dense_lstsq, A, B.requires_grad_(),
                        G=G)
    names = [s[0] for s in seen]
    # X; then z = A^{+T} G; then Y = A^+ z for dA
    assert names == ["fwd", "bwd" if given == "both" else "fwd", "fwd"]
    assert all(s[2] == {"flag": 1} for s in seen)
    assert all(s[1].layout == layout for s in seen)
    torch.testing.assert_close(seen[1][1].to_dense(), D if given == "both" else D.T)


@pytest.mark.parametrize("solver", ["direct", "lsmr"])
def test_gradcheck(layout, solver):
    m, n = 8, 5
    S = to_sparse(tall(m, n, seed=3), layout)
    kw = {"lstsq": direct} if solver == "direct" else {"atol": 1e-15, "btol": 1e-15, "maxiter": 100}
    B = torch.randn(m, 2, dtype=torch.float64)
    assert gradcheck_in_values(partial(sparse_generic_lstsq, **kw), S, B)


def test_lsmr_nonconvergence_reaches_the_caller():
    from torch_api.utils import ConvergenceError, ConvergenceWarning

    A = to_sparse(tall(), torch.sparse_csr)
    B = torch.randn(M, dtype=torch.float64)
    with pytest.warns(ConvergenceWarning, match="lsmr"):
        sparse_generic_lstsq(A, B, maxiter=1)
    with pytest.raises(ConvergenceError, match="lsmr"):
        sparse_generic_lstsq(A, B, maxiter=1, raise_on_failure=True)


def test_bad_inputs():
    D = tall()
    A = to_sparse(D, torch.sparse_csr)
    b = torch.ones(M, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"A: expected a tall matrix \(m >= n"):
        sparse_generic_lstsq(
            to_sparse(D.T.contiguous(), torch.sparse_csr), torch.ones(N, dtype=torch.float64)
        )
    with pytest.raises(ValueError, match="B: expected a first dimension"):
        sparse_generic_lstsq(A, torch.ones(N, dtype=torch.float64))
    with pytest.raises(ValueError, match="B: expected a 1 or 2-D tensor"):
        sparse_generic_lstsq(A, torch.ones(1, M, 1, dtype=torch.float64))
    # A not a tensor, dense, CSC, integer; B sparse, a row short, float32, 3-D
    for B in (b, torch.ones(M, 2, dtype=torch.float64)):
        check_operand_errors(sparse_generic_lstsq, D, B, rows_match="B: expected a first dim")
    with pytest.raises(TypeError, match="lstsq: expected a callable"):
        sparse_generic_lstsq(A, b, lstsq=3)
    with pytest.raises(ValueError, match="lstsq: expected the solver to return shape"):
        sparse_generic_lstsq(A, b, lstsq=lambda Mx, R: R)
