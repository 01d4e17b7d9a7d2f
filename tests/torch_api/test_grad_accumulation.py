"""Accumulated gradients of a sparse A (two backwards, retain_graph, reuse in one graph,
optimizer steps) for COO and CSR, 2-D and batched, against dense references.

torch 2.13 adds two batched CSR tensors wrongly; torch_api returns batched CSR gradients as
``BatchedCSRGrad`` so that every addition autograd and SGD make is correct.
"""

from __future__ import annotations

import pytest
import torch

from tests.helpers import assert_sparse_grad, pattern_mask, random_dense, to_sparse
from torch_api import sparse_mm, sparse_triangular_solve
from torch_api._csr_grad import BatchedCSRGrad

N, M, P = 5, 4, 3


def _problem(layout, batch, seed=0):
    shape = (N, M) if batch is None else (batch, N, M)
    D = random_dense(shape, density=0.4, seed=seed)
    g = torch.Generator().manual_seed(1)
    B = torch.randn(*shape[:-2], M, P, dtype=torch.float64, generator=g)
    return D, to_sparse(D, layout).requires_grad_(), B


def _dense_grad(D, B, uses=1):
    Dd = D.clone().requires_grad_()
    (uses * (Dd @ B)).pow(2).sum().backward()
    return Dd.grad


def _loss(A, B):
    return sparse_mm(A, B).pow(2).sum()


def test_two_backwards_with_retain_graph(layout, batch):
    D, A, B = _problem(layout, batch)
    loss = _loss(A, B)
    loss.backward(retain_graph=True)
    loss.backward()
    assert_sparse_grad(A.grad.coalesce() if layout == torch.sparse_coo else A.grad, A,
                       2 * _dense_grad(D, B))
    if layout == torch.sparse_csr:
        assert A.grad.values().shape == A.values().shape


def test_two_separate_graphs(layout, batch):
    D, A, B = _problem(layout, batch)
    _loss(A, B).backward()
    _loss(A, B).backward()
    grad = A.grad.coalesce() if layout == torch.sparse_coo else A.grad
    assert_sparse_grad(grad, A, 2 * _dense_grad(D, B))


def test_reuse_in_one_graph(layout, batch):
    # autograd sums the two incoming gradients of A with ``+`` before AccumulateGrad
    D, A, B = _problem(layout, batch)
    (sparse_mm(A, B) + sparse_mm(A, B)).pow(2).sum().backward()
    grad = A.grad.coalesce() if layout == torch.sparse_coo else A.grad
    assert_sparse_grad(grad, A, _dense_grad(D, B, uses=2))


def test_reuse_of_a_non_leaf_in_two_operations(batch):
    # a CSR built from a values leaf, used by two different operations: the buffer sum happens
    # on the non-leaf, then torch's constructor backward reads the values
    shape = (N, N) if batch is None else (batch, N, N)
    L = torch.tril(random_dense(shape, density=1.0, seed=3), -1) + 4 * torch.eye(N).double()
    S = L.to_sparse_csr()
    values = S.values().clone().requires_grad_()
    A = torch.sparse_csr_tensor(S.crow_indices(), S.col_indices(), values, S.shape)
    B = torch.randn(*shape[:-1], 2, dtype=torch.float64)
    (sparse_mm(A, B) + sparse_triangular_solve(A, B, upper=False)).sum().backward()
    Ld = L.clone().requires_grad_()
    (Ld @ B + torch.linalg.solve_triangular(Ld, B, upper=False)).sum().backward()
    mask = pattern_mask(S)
    torch.testing.assert_close(values.grad, Ld.grad[mask].reshape(values.shape))


def _sgd_reference(D, B, steps, lr, momentum):
    mask = D != 0
    X = D.clone().requires_grad_()
    opt = torch.optim.SGD([X], lr=lr, momentum=momentum)
    for _ in range(steps):
        opt.zero_grad()
        (X * mask @ B).pow(2).sum().backward()
        opt.step()
    return (X * mask).detach()


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_steps_on_a_sparse_leaf(layout, batch, foreach, momentum):
    D, A, B = _problem(layout, batch)
    opt = torch.optim.SGD([A], lr=0.01, momentum=momentum, foreach=foreach)
    for _ in range(3):
        opt.zero_grad()
        loss = _loss(A, B)
        loss.backward(retain_graph=True)
        loss.backward()  # accumulated: twice the gradient
        opt.step()
    want = _sgd_reference(D, B, 3, 0.02, momentum)
    assert A.layout == layout and A._nnz() == to_sparse(D, layout)._nnz()
    torch.testing.assert_close(A.detach().to_dense(), want)


def test_adam_steps_on_batched_csr_values(batch):
    # torch's Adam refuses sparse parameters (COO: "does not support sparse gradients"; CSR:
    # "unsupported tensor layout"), so the values are the leaf, rebuilt into A at each step;
    # A is used twice per step, which adds two (batched) CSR gradients
    D, A0, B = _problem(torch.sparse_csr, batch)
    A0 = A0.detach()
    values = A0.values().clone().requires_grad_()
    opt = torch.optim.Adam([values], lr=0.05)
    mask = D != 0
    X = D.clone().requires_grad_()
    ref = torch.optim.Adam([X], lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        A = torch.sparse_csr_tensor(A0.crow_indices(), A0.col_indices(), values, A0.shape)
        (sparse_mm(A, B) + sparse_mm(A, B)).pow(2).sum().backward()
        opt.step()
        ref.zero_grad()
        (2 * (X * mask) @ B).pow(2).sum().backward()
        ref.step()
    got = torch.sparse_csr_tensor(A0.crow_indices(), A0.col_indices(), values.detach(), A0.shape)
    torch.testing.assert_close(got.to_dense(), (X * mask).detach())


def test_batched_csr_grad_is_a_plain_csr_tensor_in_use():
    D, A, B = _problem(torch.sparse_csr, 2)
    _loss(A, B).backward()
    g = A.grad
    assert isinstance(g, BatchedCSRGrad) and g.layout == torch.sparse_csr
    torch.testing.assert_close(g.to_dense(), _dense_grad(D, B) * (D != 0))
    torch.testing.assert_close((g * 2).to_dense(), 2 * g.to_dense())
    assert g.mul_(0.5) is g
    torch.testing.assert_close((g + g.clone()).to_dense(), _dense_grad(D, B) * (D != 0))
    other = to_sparse(random_dense((2, N, M), density=0.4, seed=7), torch.sparse_csr)
    torch.testing.assert_close((g + other).to_dense(), g.to_dense() + other.to_dense())
    with pytest.raises(ValueError, match="other: expected the same sparsity pattern"):
        g.add_(other)
    assert repr(g).startswith("tensor(crow_indices=")
