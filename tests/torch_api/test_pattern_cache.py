"""The per-pattern cache (torch_api/_pattern_cache.py): hits, capacity, bytes, lifetime."""

from __future__ import annotations

import gc

import pytest
import torch

import torch_api
from tests.helpers import random_dense, to_sparse
from torch_api import _pattern, _pattern_cache, sparse_mm, sparse_triangular_solve


@pytest.fixture(autouse=True)
def _empty_cache():
    torch_api.clear_caches()
    yield
    torch_api.clear_caches()


def _count_transposes(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = _pattern._transpose

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(_pattern, "_transpose", counting)
    return calls


def _step(A: torch.Tensor) -> None:
    B = torch.ones(A.shape[-1], 2, dtype=A.dtype, requires_grad=True)
    sparse_mm(A, B).sum().backward()


def test_sixteen_patterns_used_in_turn_stay_cached(monkeypatch, layout):
    mats = [to_sparse(random_dense((9, 9), seed=s), layout) for s in range(16)]
    lower = [to_sparse(random_dense((9, 9), seed=s).tril() + 3 * torch.eye(9, dtype=torch.float64),
                       layout) for s in range(16)]
    calls = _count_transposes(monkeypatch)
    for A, L in zip(mats, lower, strict=True):  # every kind of entry of 32 sources
        _step(A)
        sparse_triangular_solve(L, torch.ones(9, 1, dtype=torch.float64), upper=False)
    first = len(calls)
    for _ in range(3):
        for A, L in zip(mats, lower, strict=True):
            _step(A)
            sparse_triangular_solve(L, torch.ones(9, 1, dtype=torch.float64), upper=False)
    assert first >= 16 and len(calls) == first  # no pattern was transposed twice
    assert _pattern_cache.stats()["groups"] == 32


def test_a_new_matrix_on_the_same_indices_hits(monkeypatch, layout):
    A = to_sparse(random_dense((6, 6), seed=1), layout)
    calls = _count_transposes(monkeypatch)
    _step(A)
    if layout == torch.sparse_coo:
        A2 = torch.sparse_coo_tensor(A._indices(), -A._values(), A.shape, is_coalesced=True)
    else:
        A2 = torch.sparse_csr_tensor(A.crow_indices(), A.col_indices(), -A.values(), A.shape)
    B = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    (sparse_mm(A2, B) ** 2).sum().backward()
    torch.testing.assert_close(B.grad, A2.to_dense().T @ (2 * (A2.to_dense() @ B)))
    assert len(calls) == 1


def test_bytes_are_capped_and_groups_evicted_whole(monkeypatch):
    mats = [random_dense((40, 40), seed=s).to_sparse_csr() for s in range(6)]
    _step(mats[0])
    one = _pattern_cache.stats()["bytes"]
    monkeypatch.setattr(_pattern_cache, "MAX_BYTES", int(2.5 * one))
    for A in mats:
        _step(A)
        held = _pattern_cache.stats()
        assert held["bytes"] <= 2.5 * one and held["groups"] <= 2
    assert _pattern_cache.stats()["groups"] == 2  # whole groups: the two newest patterns


def test_group_count_is_capped(monkeypatch):
    monkeypatch.setattr(_pattern_cache, "MAX_GROUPS", 3)
    mats = [random_dense((5, 5), seed=s).to_sparse_csr() for s in range(5)]
    for A in mats:
        _step(A)
    assert _pattern_cache.stats()["groups"] == 3


def test_results_viewing_the_callers_memory_are_not_kept():
    idx = torch.arange(6)
    _pattern_cache.cached("probe", (idx,), (6,), lambda: idx[1:])
    gc.collect()
    group = _pattern_cache._table[_pattern_cache._key((idx,), (6,))]
    assert "probe" not in group.results  # it would keep idx's storage alive
    r = _pattern_cache.cached("probe2", (idx,), (6,), lambda: idx + 1)
    assert _pattern_cache.cached("probe2", (idx,), (6,), lambda: None) is r


def test_a_failing_computation_is_not_cached():
    idx = torch.arange(3)

    def fail():
        raise ValueError("x: expected a pass, got a failure.")

    for _ in range(2):
        with pytest.raises(ValueError, match="x: expected"):
            _pattern_cache.cached("check", (idx,), (3,), fail)
    assert _pattern_cache.cached("check", (idx,), (3,), lambda: True) is True


def test_entries_die_with_the_index_storage():
    A = random_dense((30, 30), seed=3).to_sparse_csr()
    _step(A)
    assert _pattern_cache.stats()["groups"] == 1
    del A
    gc.collect()
    assert _pattern_cache.stats() == {"groups": 0, "bytes": 0}


def test_meta_tensors_are_not_cached():
    idx = torch.empty(2, 4, dtype=torch.int64, device="meta")
    assert _pattern_cache.cached("x", (idx,), (3, 3), lambda: 7) == 7
    assert _pattern_cache.stats()["groups"] == 0


def test_clear_caches_is_public():
    assert "clear_caches" in torch_api.__all__
    _step(torch.eye(3, dtype=torch.float64).to_sparse_csr())
    torch_api.clear_caches()
    assert _pattern_cache.stats() == {"groups": 0, "bytes": 0}


def test_every_operation_says_what_it_caches():
    ops = [torch_api.sparse_mm, torch_api.sparse_triangular_solve, torch_api.sparse_generic_solve,
           torch_api.sparse_generic_lstsq, torch_api.sparse_logsumexp,
           torch_api.sparse_solve_c4t, torch_api.sparse_solve_j4t]
    for op in ops:
        assert _pattern_cache.CACHE_NOTE in op.__doc__, op.__name__
