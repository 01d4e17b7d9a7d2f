"""Adversarial sweep of the per-pattern cache (issue 14, parts 3 and 4).

Each test is one numbered case of the issue and failed on the cache keyed by data pointer,
length and version counter: in-place refills through ``copy_``, ``.data``, NumPy and another view
(3a), out-of-range indices after such a refill (3b), threads (3c), inference mode (3d), memory
held after deleting the matrix (3e), and ``torch.compile`` on CSR (4).
"""

from __future__ import annotations

import gc
import sys
import threading

import pytest
import torch

import torch_api
from torch_api import _pattern_cache, sparse_mm, sparse_triangular_solve

N = 4
LAYOUTS = [torch.sparse_coo, torch.sparse_csr]


def _buffers(index_dtype=torch.int64):
    """Preallocated CSR index buffers (one entry per row) and their first pattern (column 0..3
    reversed), as a training loop that refills them in place would hold."""
    crow = torch.arange(N + 1, dtype=index_dtype)
    col = torch.arange(N - 1, -1, -1, dtype=index_dtype)
    return crow, col


def _check(A: torch.Tensor, B: torch.Tensor, G: torch.Tensor) -> None:
    """Y and dB of ``sparse_mm`` against the dense matrix the indices describe now."""
    Bv = B.clone().requires_grad_()
    Y = sparse_mm(A, Bv)
    (Y * G).sum().backward()
    D = A.to_dense()
    torch.testing.assert_close(Y, D @ B, rtol=0, atol=1e-12)
    torch.testing.assert_close(Bv.grad, D.T @ G, rtol=0, atol=1e-12)


def _refill(how: str, col: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Write ``new`` into ``col``'s memory as a user might; returns the tensor to build on."""
    if how == "copy_":
        col.copy_(new)
        return col
    if how == "data":
        col.data[:] = new
        return col
    if how == "numpy":
        col.numpy()[:] = new.numpy()
        return col
    # another view of the same buffer with the same start and length
    other = col.view(col.shape)
    other.copy_(new)
    return other


@pytest.mark.parametrize("how", ["copy_", "data", "numpy", "view"])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["coo", "csr"])
def test_3a_refilled_index_buffers_are_not_a_stale_hit(how, layout):
    g = torch.Generator().manual_seed(0)
    B = torch.randn(N, 3, generator=g, dtype=torch.float64)
    G = torch.randn(N, 3, generator=g, dtype=torch.float64)
    values = torch.arange(1.0, N + 1, dtype=torch.float64)
    crow, col = _buffers()
    if layout == torch.sparse_coo:
        idx = torch.stack([torch.arange(N), col])
        A = torch.sparse_coo_tensor(idx, values, (N, N), is_coalesced=True)
        _check(A, B, G)
        cols = _refill(how, idx[1], torch.tensor([1, 2, 3, 0]))
        A = torch.sparse_coo_tensor(torch.stack([idx[0], cols]) if how == "view" else idx,
                                    values, (N, N), is_coalesced=True)
    else:
        A = torch.sparse_csr_tensor(crow, col, values, (N, N))
        _check(A, B, G)
        A = torch.sparse_csr_tensor(crow, _refill(how, col, torch.tensor([1, 2, 3, 0])),
                                    values, (N, N))
    _check(A, B, G)


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("how", ["copy_", "data", "numpy"])
def test_3b_out_of_range_after_an_in_place_change_is_refused(how, index_dtype):
    crow, col = _buffers(index_dtype)
    values = torch.ones(N, dtype=torch.float64)
    B = torch.randn(N, 2, dtype=torch.float64)
    sparse_mm(torch.sparse_csr_tensor(crow, col, values, (N, N)), B)
    bad = torch.tensor([0, 1, 10**9, 2], dtype=index_dtype)
    A = torch.sparse_csr_tensor(crow, _refill(how, col, bad), values, (N, N))
    with pytest.raises(ValueError, match="A: expected"):
        sparse_mm(A, B)


def test_3b_triangular_structure_is_checked_again_after_a_refill():
    crow = torch.tensor([0, 1, 3, 5])
    col = torch.tensor([0, 0, 1, 1, 2])  # lower triangular with a diagonal
    values = torch.tensor([2.0, 1.0, 3.0, 1.0, 4.0], dtype=torch.float64)
    B = torch.ones(3, 1, dtype=torch.float64)
    A = torch.sparse_csr_tensor(crow, col, values, (3, 3))
    torch.testing.assert_close(sparse_triangular_solve(A, B, upper=False),
                               torch.linalg.solve(A.to_dense(), B))
    col.numpy()[1] = 2  # row 1 now has an entry above the diagonal
    with pytest.raises(ValueError, match="A: expected"):
        sparse_triangular_solve(torch.sparse_csr_tensor(crow, col, values, (3, 3)), B,
                                upper=False)


def test_3c_eight_threads_and_a_hundred_patterns():
    g = torch.Generator().manual_seed(1)
    mats = []
    for k in range(100):
        D = torch.randn(6, 6, generator=g, dtype=torch.float64)
        D = D * (torch.rand(6, 6, generator=g) < 0.5)
        mats.append(D.to_sparse_csr() if k % 2 else D.to_sparse_coo().coalesce())
    B = torch.randn(6, 2, generator=g, dtype=torch.float64)
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for step in range(300):
                A = mats[(offset * 13 + step) % len(mats)]
                Bv = B.clone().requires_grad_()
                sparse_mm(A, Bv).sum().backward()
                expected = A.to_dense().T @ torch.ones(6, 2, dtype=torch.float64)
                torch.testing.assert_close(Bv.grad, expected)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            failures.append(e)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not failures, failures[0]


@pytest.mark.parametrize("layout", LAYOUTS, ids=["coo", "csr"])
def test_3d_inputs_created_under_inference_mode(layout):
    D = torch.tensor([[2.0, 0, 0], [1.0, 3.0, 0], [0, 1.0, 4.0]], dtype=torch.float64)
    B = torch.ones(3, 2, dtype=torch.float64)
    make = (lambda M: M.to_sparse_csr()) if layout == torch.sparse_csr else (
        lambda M: M.to_sparse_coo().coalesce())
    lse = torch_api.sparse_logsumexp(make(D), dim=1).to_dense()  # made outside inference mode
    with torch.inference_mode():
        A = make(D)
        Bi = B.clone()
        Y = sparse_mm(A, Bi)
        X = sparse_triangular_solve(A, Bi, upper=False)
        torch.testing.assert_close(Y, D @ B)
        torch.testing.assert_close(X, torch.linalg.solve(D, B))
        torch.testing.assert_close(torch_api.sparse_logsumexp(A, dim=1).to_dense(), lse)
        # inference tensors have no version counter: an in-place change is still seen
        cols = A._indices()[1] if layout == torch.sparse_coo else A.col_indices()
        cols.copy_(cols.flip(0))
        torch.testing.assert_close(sparse_mm(A, Bi), A.to_dense() @ B)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["coo", "csr"])
def test_3e_deleting_the_matrix_frees_its_entries(layout):
    torch_api.clear_caches()
    n = 2000
    g = torch.Generator().manual_seed(2)
    D = torch.randn(n, n, generator=g, dtype=torch.float64) * (torch.rand(n, n, generator=g) < 0.01)
    A = D.to_sparse_csr() if layout == torch.sparse_csr else D.to_sparse_coo().coalesce()
    del D
    Bv = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    sparse_mm(A, Bv).sum().backward()
    held = _pattern_cache.stats()
    assert held["groups"] == 1 and held["bytes"] > A._nnz() * 8  # copies, int32, transpose
    del A, Bv
    gc.collect()
    assert _pattern_cache.stats() == {"groups": 0, "bytes": 0}


def test_3e_clear_caches_releases_everything():
    A = torch.eye(5, dtype=torch.float64).to_sparse_csr()
    sparse_mm(A, torch.ones(5, 1, dtype=torch.float64))
    assert _pattern_cache.stats()["groups"] >= 1
    torch_api.clear_caches()
    assert _pattern_cache.stats() == {"groups": 0, "bytes": 0}
    torch.testing.assert_close(sparse_mm(A, torch.ones(5, 1, dtype=torch.float64)),
                               torch.ones(5, 1, dtype=torch.float64))


@pytest.mark.parametrize("layout", LAYOUTS, ids=["coo", "csr"])
def test_4_compile_of_a_module_calling_sparse_mm(layout):
    class Net(torch.nn.Module):
        def forward(self, A, B):
            return torch.tanh(sparse_mm(A, B))

    D = torch.tensor([[2.0, 0, 1.0], [0, 3.0, 0], [1.0, 0, 4.0]], dtype=torch.float64)
    A = (D.to_sparse_csr() if layout == torch.sparse_csr else D.to_sparse_coo()).requires_grad_()
    B = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    Y = torch.compile(Net(), backend="eager", fullgraph=False)(A, B)
    Y.sum().backward()
    Dd, Bd = D.clone().requires_grad_(), B.detach().clone().requires_grad_()
    Yd = torch.tanh(Dd @ Bd)
    Yd.sum().backward()
    torch.testing.assert_close(Y, Yd)
    torch.testing.assert_close(A.grad.to_dense(), Dd.grad * (D != 0))
    assert A.grad.layout == layout
    torch.testing.assert_close(B.grad, Bd.grad)
