"""sparse_logsumexp / sparse_bidir_logsumexp against torch.logsumexp on the densified tensor."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import (
    assert_sparse_grad,
    check_logsumexp_argument_errors,
    random_dense,
    to_sparse,
    tol,
)
from torch_api import sparse_bidir_logsumexp, sparse_logsumexp

LAYOUTS = {"coo": torch.sparse_coo, "csr": torch.sparse_csr, "csc": torch.sparse_csc}


def _sparse(D, layout, index_dtype=torch.int64):
    if layout == torch.sparse_csc:
        S = D.to_sparse_csc()
        return torch.sparse_csc_tensor(
            S.ccol_indices().to(index_dtype), S.row_indices().to(index_dtype), S.values(), S.shape
        )
    return to_sparse(D, layout, index_dtype)


def _dense_reference(D, dims, include_zeros, keepdim=False):
    """torch.logsumexp of the dense tensor; implicit entries become -inf when not counted."""
    X = D if include_zeros else D.masked_fill(D == 0, float("-inf"))
    return torch.logsumexp(X, dims, keepdim=keepdim)


def _dense_grad(D, dims, include_zeros, G):
    X = (D if include_zeros else D.masked_fill(D == 0, float("-inf"))).clone().requires_grad_()
    (dX,) = torch.autograd.grad(torch.logsumexp(X, dims), X, G)
    return torch.nan_to_num(dX) * (D != 0)


def _covering(shape, seed):
    """Random values on a pattern (shared by the batch) with a stored entry in every row and
    column, so that no output is -inf (finite differences of -inf are NaN)."""
    g = torch.Generator().manual_seed(seed)
    n, m = shape[-2:]
    mask = torch.rand(n, m, generator=g) < 0.4
    for k in range(max(n, m)):
        mask[k % n, k % m] = True
    return torch.randn(shape, generator=g, dtype=torch.float64) * mask


def _dims_cases(ndim):
    if ndim == 2:
        return [0, 1, -1, (0, 1)]
    return [1, 2, -2, (1, 2), 0, (0, 2), (0, 1, 2)]


@pytest.fixture(params=list(LAYOUTS.values()), ids=list(LAYOUTS.keys()))
def any_layout(request):
    return request.param


@pytest.mark.parametrize("include_zeros", [True, False], ids=["zeros", "stored"])
def test_matches_dense(any_layout, batch, dtype, include_zeros):
    shape = (5, 7) if batch is None else (batch, 5, 7)
    D = random_dense(shape, density=0.3, dtype=dtype, seed=1)
    A = _sparse(D, any_layout)
    for dims in _dims_cases(D.dim()):
        for keepdim in (False, True):
            got = sparse_logsumexp(A, dims, keepdim=keepdim, include_zeros=include_zeros)
            want = _dense_reference(D, dims, include_zeros, keepdim)
            assert got.shape == want.shape, dims
            torch.testing.assert_close(got, want, **tol(dtype))


def test_empty_rows_and_columns(any_layout):
    D = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, -2.0]], dtype=torch.float64)
    A = _sparse(D, any_layout)
    rows = sparse_logsumexp(A, 1, include_zeros=False)
    assert rows[0] == float("-inf")
    assert torch.isclose(rows[1], torch.logsumexp(torch.tensor([1.0, -2.0], dtype=D.dtype), 0))
    cols = sparse_logsumexp(A, 0, include_zeros=False)
    assert cols[1] == float("-inf")
    # counted zeros: an all-implicit row of length 3 gives log(3)
    rows = sparse_logsumexp(A, 1, include_zeros=True)
    assert torch.isclose(rows[0], torch.tensor(math.log(3.0), dtype=D.dtype))
    # no stored entries at all
    E = _sparse(torch.zeros(2, 3, dtype=torch.float64), any_layout)
    assert torch.all(sparse_logsumexp(E, 1, include_zeros=False) == float("-inf"))
    torch.testing.assert_close(
        sparse_logsumexp(E, (0, 1)), torch.tensor(math.log(6.0), dtype=torch.float64)
    )


def test_numerically_stable_float32(any_layout):
    D = torch.tensor([[1000.0, 0.0, 999.0], [-1000.0, 0.0, -1001.0], [0.0, 88.0, 0.0]])
    A = _sparse(D, any_layout)
    for include_zeros in (True, False):
        for dim in (0, 1):
            got = sparse_logsumexp(A, dim, include_zeros=include_zeros)
            assert torch.isfinite(got).all()
            want = _dense_reference(D.double(), dim, include_zeros).float()
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize("include_zeros", [True, False], ids=["zeros", "stored"])
def test_sparse_gradient(layout, batch, index_dtype, include_zeros):
    shape = (6, 5) if batch is None else (batch, 6, 5)
    D = random_dense(shape, density=0.4, dtype=torch.float64, seed=2)
    dims = D.dim() - 1
    G = torch.randn(D.shape[:-1], dtype=torch.float64)
    A = to_sparse(D, layout, index_dtype).requires_grad_()
    sparse_logsumexp(A, dims, include_zeros=include_zeros).backward(G)
    want = _dense_grad(D, dims, include_zeros, G)
    assert_sparse_grad(A.grad, A, want, **tol(torch.float64))


def test_sparse_gradient_csc(batch):
    shape = (6, 5) if batch is None else (batch, 6, 5)
    D = random_dense(shape, density=0.4, dtype=torch.float64, seed=3)
    A = _sparse(D, torch.sparse_csc).requires_grad_()
    dims = D.dim() - 2
    G = torch.randn(D.shape[:-2] + D.shape[-1:], dtype=torch.float64)
    # torch cannot accumulate into a CSC leaf's .grad (its own ops fail too): use autograd.grad
    (g,) = torch.autograd.grad(sparse_logsumexp(A, dims), A, G)
    assert g.layout == torch.sparse_csc and g.shape == A.shape
    assert torch.equal(g.row_indices(), A.row_indices())
    assert torch.equal(g.ccol_indices(), A.ccol_indices())
    torch.testing.assert_close(g.to_dense(), _dense_grad(D, dims, True, G))


def test_uncoalesced_coo_duplicates_are_summed():
    i = torch.tensor([[0, 0, 1, 0], [2, 0, 1, 2]])
    v = torch.tensor([1.0, 1.5, 3.0, 0.5], dtype=torch.float64, requires_grad=True)
    A = torch.sparse_coo_tensor(i, v, (2, 3))
    out = sparse_logsumexp(A, 1)
    D = A.detach().to_dense()
    torch.testing.assert_close(out, torch.logsumexp(D, 1))
    (dv,) = torch.autograd.grad(out.sum(), v)
    soft = torch.softmax(D, 1)
    torch.testing.assert_close(dv, soft[i[0], i[1]])


@pytest.mark.parametrize("include_zeros", [True, False], ids=["zeros", "stored"])
def test_gradcheck_through_values(any_layout, batch, include_zeros):
    shape = (4, 3) if batch is None else (2, 4, 3)
    D = _covering(shape, seed=4)
    S = _sparse(D, any_layout)
    if any_layout == torch.sparse_coo:
        build = lambda v: torch.sparse_coo_tensor(S.indices(), v, S.shape)
    elif any_layout == torch.sparse_csr:
        build = lambda v: torch.sparse_csr_tensor(S.crow_indices(), S.col_indices(), v, S.shape)
    else:
        build = lambda v: torch.sparse_csc_tensor(S.ccol_indices(), S.row_indices(), v, S.shape)
    v = S.values().detach().clone().requires_grad_()
    nd = D.dim()
    for dims in (nd - 1, nd - 2, (nd - 2, nd - 1)):
        f = lambda v, dims=dims: sparse_logsumexp(build(v), dims, include_zeros=include_zeros)
        assert torch.autograd.gradcheck(f, (v,))
    f = lambda v: sparse_bidir_logsumexp(build(v), include_zeros=include_zeros)
    assert torch.autograd.gradcheck(f, (v,))


@pytest.mark.parametrize("include_zeros", [True, False], ids=["zeros", "stored"])
def test_bidir_matches_two_reductions(any_layout, batch, include_zeros):
    shape = (5, 8) if batch is None else (batch, 5, 8)
    D = random_dense(shape, density=0.3, dtype=torch.float64, seed=5)
    A = _sparse(D, any_layout)
    nd = D.dim()
    cols_ref = _dense_reference(D, nd - 2, include_zeros)
    rows_ref = _dense_reference(D, nd - 1, include_zeros)
    cols, rows = sparse_bidir_logsumexp(A, include_zeros=include_zeros)
    torch.testing.assert_close(cols, cols_ref)
    torch.testing.assert_close(rows, rows_ref)
    cols, rows = sparse_bidir_logsumexp(A, keepdim=True, include_zeros=include_zeros)
    assert cols.shape == _dense_reference(D, nd - 2, include_zeros, keepdim=True).shape
    assert rows.shape == _dense_reference(D, nd - 1, include_zeros, keepdim=True).shape

    padded = sparse_bidir_logsumexp(A, include_zeros=include_zeros, output_layout="padded")
    assert padded.shape == (2, *D.shape[:-2], 8)
    torch.testing.assert_close(padded[0], cols_ref)
    torch.testing.assert_close(padded[1][..., :5], rows_ref)
    assert torch.all(padded[1][..., 5:] == float("-inf"))

    nested = sparse_bidir_logsumexp(A, include_zeros=include_zeros, output_layout="nested")
    assert nested.is_nested
    c, r = nested.unbind()
    torch.testing.assert_close(c, cols_ref)
    torch.testing.assert_close(r, rows_ref)


def test_bidir_gradient_is_sum_of_both(layout, batch):
    shape = (5, 4) if batch is None else (batch, 5, 4)
    D = random_dense(shape, density=0.4, dtype=torch.float64, seed=6)
    nd = D.dim()
    Gc = torch.randn(D.shape[:-2] + D.shape[-1:], dtype=torch.float64)
    Gr = torch.randn(D.shape[:-1], dtype=torch.float64)
    want = _dense_grad(D, nd - 2, True, Gc) + _dense_grad(D, nd - 1, True, Gr)
    A = to_sparse(D, layout).requires_grad_()
    cols, rows = sparse_bidir_logsumexp(A)
    torch.autograd.backward((cols, rows), (Gc, Gr))
    assert_sparse_grad(A.grad, A, want, **tol(torch.float64))
    # through the padded layout (padding gets no gradient)
    A.grad = None
    padded = sparse_bidir_logsumexp(A, output_layout="padded")
    (padded[0][..., :4] * Gc).sum().backward()
    assert_sparse_grad(A.grad, A, _dense_grad(D, nd - 2, True, Gc), **tol(torch.float64))


def test_bad_inputs():
    A = random_dense((4, 3), seed=7).to_sparse()
    with pytest.raises(TypeError, match="input: expected a sparse COO or sparse CSR or sparse CSC"):
        sparse_logsumexp(A.to_dense(), 0)
    with pytest.raises(TypeError, match="input: expected a sparse COO or sparse CSR or sparse CSC"):
        sparse_logsumexp(A.to_dense().to_sparse_bsr((1, 1)), 0)
    with pytest.raises(TypeError, match="input: expected a torch.Tensor"):
        sparse_logsumexp([[1.0]], 0)
    with pytest.raises(ValueError, match="input: expected a 2 or 3-D sparse tensor"):
        sparse_logsumexp(torch.ones(3).to_sparse(), 0)
    with pytest.raises(ValueError, match="input: expected float32 or float64 values"):
        sparse_logsumexp(A.long(), 0)
    check_logsumexp_argument_errors(sparse_logsumexp, sparse_bidir_logsumexp, A, "dense")


def test_empty_slot_masked_out_gives_finite_gradient(any_layout):
    """A row without stored entries is -inf (include_zeros=False); masking it out of the loss
    leaves a finite gradient (no 0 * inf), equal to the dense one, also at second order."""
    D = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=torch.float64)
    A = _sparse(D, any_layout).requires_grad_()
    out = sparse_logsumexp(A, 1, include_zeros=False)
    assert out[1] == float("-inf")
    loss = torch.where(torch.isfinite(out), out, 0.0).square().sum()
    (dA,) = torch.autograd.grad(loss, A, create_graph=True)
    assert torch.isfinite(dA.to_dense()).all()
    G = torch.tensor([2 * math.log(math.e + math.e**2), 0.0, 6.0], dtype=torch.float64)
    torch.testing.assert_close(dA.to_dense(), _dense_grad(D, 1, False, G))
    (d2,) = torch.autograd.grad(dA.to_dense().sum(), A)
    assert torch.isfinite(d2.to_dense()).all()
