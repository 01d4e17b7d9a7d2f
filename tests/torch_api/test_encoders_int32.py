"""PairwiseEncoder with int32 indices: the overflow guard and index tensors reused across calls."""

from __future__ import annotations

import tracemalloc

import pytest
import torch

import torch_api._encoders as encoders
from bridge.internal.pairwise import pairwise_indices, pairwise_nnz, pairwise_offsets
from torch_api.encoders import PairwiseEncoder


@pytest.mark.parametrize(
    "radius, shape, relation",
    [(1, (1, 5), "indep"), (1.5, (2, 3, 4), "inter"), (2, (3, 4, 3, 2), "intra")],
)
@pytest.mark.parametrize("upper", [None, False])
def test_pairwise_nnz_counts_the_stored_entries(radius, shape, relation, upper):
    offsets = pairwise_offsets(radius, len(shape) - 1, shape[0], relation, upper, True)
    assert pairwise_nnz(shape, offsets) == pairwise_indices(shape, offsets).rows.size


def _never_built(*args):
    raise AssertionError("the indices were built before the int32 check")


def test_csr_int32_refuses_more_than_2_31_entries_before_allocating(monkeypatch):
    monkeypatch.setattr(encoders, "pairwise_indices", _never_built)
    shape = (4, 256, 256, 256)  # 6.7e7 voxels fit int32, the 3.2e9 entries do not
    offsets = pairwise_offsets(1.5, 3, 4, "inter")
    nnz = pairwise_nnz(shape, offsets)
    assert 3.1e9 < nnz < 3.3e9
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError,
            match=rf"indices_dtype: expected torch.int64 .*{nnz}.*"
            r"got torch.int32",
        ):
            PairwiseEncoder(
                1.5,
                shape,
                channel_voxel_relation="inter",
                layout=torch.sparse_csr,
                indices_dtype=torch.int32,
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**24  # nothing of the matrix's size was built


def test_int32_refuses_a_volume_beyond_int32_in_either_layout():
    shape = (1, 2**16, 2**15 + 1)  # 2^31 + 2^16 voxels: the largest column index overflows
    for lay in (torch.sparse_coo, torch.sparse_csr):
        with pytest.raises(ValueError, match=r"indices_dtype: expected torch.int64 for a volume"):
            PairwiseEncoder(1, shape, layout=lay, indices_dtype=torch.int32)


def test_csr_int32_guard_is_exact_at_the_limit(monkeypatch):
    shape, kwargs = (2, 3, 4), dict(channel_voxel_relation="inter", layout=torch.sparse_csr)
    enc = PairwiseEncoder(1.5, shape, **kwargs)
    nnz = enc.col_indices.numel()
    monkeypatch.setattr(encoders, "_INT32_MAX", nnz)  # crow[-1] == nnz is the largest index
    enc32 = PairwiseEncoder(1.5, shape, indices_dtype=torch.int32, **kwargs)
    assert int(enc32.crow_indices[-1]) == nnz
    monkeypatch.setattr(encoders, "_INT32_MAX", nnz - 1)
    with pytest.raises(ValueError, match=rf"{nnz} stored entries"):
        PairwiseEncoder(1.5, shape, indices_dtype=torch.int32, **kwargs)
    # COO stores no row pointers: only the voxel count matters there
    PairwiseEncoder(1.5, shape, channel_voxel_relation="inter", indices_dtype=torch.int32)


def _index_storage(A):
    if A.layout == torch.sparse_coo:
        return (A._indices().data_ptr(),)
    return (A.crow_indices().data_ptr(), A.col_indices().data_ptr())


@pytest.mark.parametrize("batch", [None, 3])
def test_every_call_reuses_the_same_index_tensors(layout, index_dtype, batch):
    shape = (2, 3, 4)
    enc = PairwiseEncoder(1.5, shape, True, False, "inter", layout, index_dtype)
    ref = PairwiseEncoder(1.5, shape, True, False, "inter", layout, torch.int64)
    lead = () if batch is None else (batch,)
    values = torch.randn(*lead, len(enc.offsets), *shape, dtype=torch.float64)
    A, B = enc(values), enc(values * 2)
    assert _index_storage(A) == _index_storage(B)
    if layout == torch.sparse_coo:
        assert A._indices().dtype == torch.int64 and enc.indices.dtype == index_dtype
    else:
        assert A.crow_indices().dtype == A.col_indices().dtype == index_dtype
    torch.testing.assert_close(A.to_dense(), ref(values).to_dense(), rtol=0, atol=0)
    torch.testing.assert_close(B.to_dense(), 2 * A.to_dense(), rtol=0, atol=0)
    if batch is not None:  # another batch size builds (and keeps) its own indices
        other = values[:2]
        C = enc(other)
        assert C.shape[0] == 2 and _index_storage(enc(other)) == _index_storage(C)
        torch.testing.assert_close(C.to_dense(), A.to_dense()[:2], rtol=0, atol=0)
