"""Block-diagonal assembly/splitting, sparse identities, CSR stacking and COO -> CSR conversion."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import random_dense, to_sparse
from torch_api.utils import (
    convert_coo_to_csr,
    convert_coo_to_csr_indices_values,
    sparse_block_diag,
    sparse_block_diag_split,
    sparse_eye,
    stack_csr,
)

SHAPES = [(3, 4), (2, 2), (5, 1)]


def blocks(layout, index_dtype=torch.int64, seed=0):
    return [
        to_sparse(random_dense(s, density=0.5, seed=seed + i), layout, index_dtype)
        for i, s in enumerate(SHAPES)
    ]


def test_block_diag_matches_dense(layout, index_dtype):
    parts = blocks(layout, index_dtype)
    D = sparse_block_diag(*parts)
    assert D.layout == layout and D.shape == (10, 7)
    assert torch.equal(D.to_dense(), torch.block_diag(*(p.to_dense() for p in parts)))
    assert D._nnz() == sum(p._nnz() for p in parts)
    if layout == torch.sparse_csr:
        assert D.col_indices().dtype == index_dtype
    else:
        assert D.is_coalesced()


def test_block_diag_mixed_index_dtypes_promote():
    a = to_sparse(random_dense((3, 3), seed=1), torch.sparse_csr, torch.int32)
    b = to_sparse(random_dense((2, 2), seed=2), torch.sparse_csr, torch.int64)
    D = sparse_block_diag(a, b)
    assert D.col_indices().dtype == torch.int64
    assert torch.equal(D.to_dense(), torch.block_diag(a.to_dense(), b.to_dense()))


def test_block_diag_single_and_empty_blocks(layout):
    a = blocks(layout)[0]
    assert sparse_block_diag(a) is a
    z = to_sparse(torch.zeros(2, 3, dtype=torch.float64), layout)
    D = sparse_block_diag(z, a, z)
    assert torch.equal(D.to_dense(), torch.block_diag(z.to_dense(), a.to_dense(), z.to_dense()))


def test_split_round_trip(layout, index_dtype):
    parts = blocks(layout, index_dtype, seed=5)
    out = sparse_block_diag_split(sparse_block_diag(*parts), *SHAPES)
    assert len(out) == len(parts)
    for got, want in zip(out, parts, strict=True):
        assert got.layout == layout and got.shape == want.shape
        assert torch.equal(got.to_dense(), want.to_dense())
        assert got._nnz() == want._nnz()
        if layout == torch.sparse_csr:
            assert got.col_indices().dtype == index_dtype


def test_split_rejects_off_block_entries_and_bad_shapes(layout):
    D = torch.block_diag(torch.ones(2, 2), torch.ones(3, 3))
    D[0, 4] = 5.0
    S = to_sparse(D, layout)
    with pytest.raises(ValueError, match=r"outside the diagonal blocks.*\(0, 4\)"):
        sparse_block_diag_split(S, (2, 2), (3, 3))
    with pytest.raises(ValueError, match="shapes: expected block shapes summing to"):
        sparse_block_diag_split(S, (2, 2), (2, 2))
    with pytest.raises(ValueError, match="shapes: expected at least one"):
        sparse_block_diag_split(S)
    with pytest.raises(TypeError, match="sparse_block_diag_tensor: expected a sparse COO or CSR"):
        sparse_block_diag_split(D, (2, 2), (3, 3))


def test_block_diag_bad_inputs():
    a, b = blocks(torch.sparse_coo)[:2]
    with pytest.raises(ValueError, match="at least one sparse tensor"):
        sparse_block_diag()
    with pytest.raises(TypeError, match=r"sparse_tensors\[1\]: expected the layout"):
        sparse_block_diag(a, b.to_sparse_csr())
    with pytest.raises(TypeError, match=r"sparse_tensors\[1\]: expected a sparse COO or CSR"):
        sparse_block_diag(a, b.to_dense())
    with pytest.raises(ValueError, match=r"sparse_tensors\[1\]: expected a 2-D sparse matrix"):
        sparse_block_diag(a, torch.ones(2, 2, 2).to_sparse())
    with pytest.raises(ValueError, match=r"sparse_tensors\[1\]: expected dtype torch.float64"):
        sparse_block_diag(a, b.float())


@pytest.mark.parametrize("size", [(4, 4), (3, 4, 4), (0, 0)])
def test_sparse_eye(size, layout, index_dtype, dtype):
    I = sparse_eye(size, layout=layout, values_dtype=dtype, indices_dtype=index_dtype)
    assert I.layout == layout and I.dtype == dtype and I.shape == size
    assert torch.equal(I.to_dense(), torch.eye(size[-1], dtype=dtype).expand(size))
    if layout == torch.sparse_csr:
        assert I.col_indices().dtype == index_dtype
    else:
        assert I.is_coalesced()
    assert not I.requires_grad


def test_sparse_eye_defaults_and_grad():
    I = sparse_eye((3, 3), requires_grad=True)
    assert I.layout == torch.sparse_coo and I.dtype == torch.float64
    assert I.requires_grad and I.is_leaf


def test_sparse_eye_bad_inputs():
    with pytest.raises(ValueError, match="size: expected a square"):
        sparse_eye((3, 4))
    with pytest.raises(ValueError, match="size: expected"):
        sparse_eye((3,))
    with pytest.raises(TypeError, match="layout: expected"):
        sparse_eye((3, 3), layout=torch.sparse_csc)
    with pytest.raises(ValueError, match="values_dtype: expected"):
        sparse_eye((3, 3), values_dtype=torch.int64)
    with pytest.raises(ValueError, match="indices_dtype: expected"):
        sparse_eye((3, 3), indices_dtype=torch.int16)


def test_stack_csr(index_dtype):
    mats = [
        to_sparse(random_dense((2, 5, 4), seed=9)[i], torch.sparse_csr, index_dtype)
        for i in range(2)
    ]
    S = stack_csr(mats)
    assert S.shape == (2, 5, 4) and S.layout == torch.sparse_csr
    assert S.col_indices().dtype == index_dtype
    assert torch.equal(S.to_dense(), torch.stack([m.to_dense() for m in mats]))
    assert torch.equal(stack_csr(tuple(mats), dim=-3).to_dense(), S.to_dense())


def test_stack_csr_bad_inputs():
    a = to_sparse(random_dense((2, 5, 4), seed=10)[0], torch.sparse_csr)
    b = to_sparse(random_dense((2, 5, 4), seed=10)[1], torch.sparse_csr)
    c = to_sparse(random_dense((5, 4), density=0.9, seed=11), torch.sparse_csr)
    with pytest.raises(ValueError, match=r"tensors\[1\]: expected .* stored entries"):
        stack_csr([a, c])
    with pytest.raises(ValueError, match=r"tensors\[1\]: expected shape \(5, 4\)"):
        stack_csr([a, to_sparse(random_dense((4, 4)), torch.sparse_csr)])
    with pytest.raises(TypeError, match=r"tensors\[1\]: expected a sparse CSR"):
        stack_csr([a, b.to_sparse_coo()])
    with pytest.raises(TypeError, match="tensors: expected a list or tuple"):
        stack_csr(a)
    with pytest.raises(ValueError, match="dim: expected 0"):
        stack_csr([a, b], dim=1)
    with pytest.raises(ValueError, match="tensors: expected at least one"):
        stack_csr([])


# ------------------------------------------------------------------------- COO -> CSR
@pytest.mark.parametrize("batched", [False, True])
def test_convert_indices_values_any_order(batched, index_dtype):
    shape = (3, 6, 5) if batched else (6, 5)
    D = random_dense(shape, density=0.4, seed=12)
    C = D.to_sparse_coo().coalesce()
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(C._nnz(), generator=g)
    idx, vals = C.indices()[:, perm].to(index_dtype), C.values()[perm]
    crow, col, v = convert_coo_to_csr_indices_values(idx, shape[-2], vals)
    assert crow.dtype == col.dtype == index_dtype
    assert torch.equal(torch.sparse_csr_tensor(crow, col, v, shape).to_dense(), D)
    crow2, col2, order = convert_coo_to_csr_indices_values(idx, shape[-2])  # values=None
    assert torch.equal(crow2, crow) and torch.equal(col2, col)
    assert torch.equal(vals[order.reshape(-1)].reshape(v.shape), v)


def test_convert_indices_values_bad_inputs():
    idx = torch.tensor([[0, 1, 1], [2, 0, 2]])
    with pytest.raises(ValueError, match=r"unique indices.*\(1, 2\) twice"):
        convert_coo_to_csr_indices_values(torch.tensor([[0, 1, 1], [2, 2, 2]]), 2)
    with pytest.raises(ValueError, match="row indices below num_rows=1"):
        convert_coo_to_csr_indices_values(idx, 1)
    with pytest.raises(ValueError, match="coo_indices: expected non-negative"):
        convert_coo_to_csr_indices_values(-idx, 2)
    with pytest.raises(ValueError, match=r"coo_indices: expected shape \(2, nnz\)"):
        convert_coo_to_csr_indices_values(idx[:1], 2)
    with pytest.raises(TypeError, match="coo_indices: expected a dense int32 or int64"):
        convert_coo_to_csr_indices_values(idx.float(), 2)
    with pytest.raises(ValueError, match="values: expected a dense 1-D tensor of 3 values"):
        convert_coo_to_csr_indices_values(idx, 2, torch.ones(4))
    with pytest.raises(ValueError, match="same number of entries in every batch item"):
        convert_coo_to_csr_indices_values(torch.tensor([[0, 0, 1], [0, 1, 0], [0, 0, 0]]), 2)
    with pytest.raises(TypeError, match="num_rows: expected an int"):
        convert_coo_to_csr_indices_values(idx, 2.0)


@pytest.mark.parametrize("shape", [(7, 5), (3, 7, 5)])
def test_convert_coo_to_csr(shape, dtype):
    D = random_dense(shape, density=0.4, dtype=dtype, seed=13)
    C = D.to_sparse_coo().coalesce()
    # the same matrix, uncoalesced: every entry split in two halves, shuffled
    idx, vals = torch.cat([C.indices()] * 2, 1), torch.cat([C.values()] * 2) / 2
    perm = torch.randperm(idx.shape[1])
    U = torch.sparse_coo_tensor(idx[:, perm], vals[perm], shape)
    for A in (C, U):
        R = convert_coo_to_csr(A)
        assert R.layout == torch.sparse_csr and R.shape == shape and R.dtype == dtype
        assert R._nnz() == C._nnz() // (shape[0] if len(shape) == 3 else 1)
        torch.testing.assert_close(R.to_dense(), D)


def test_convert_coo_to_csr_bad_inputs():
    with pytest.raises(TypeError, match="sparse_coo_tensor: expected a sparse COO"):
        convert_coo_to_csr(torch.eye(3).to_sparse_csr())
    with pytest.raises(ValueError, match="same number of entries in every batch item"):
        convert_coo_to_csr(torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]]).to_sparse())
    with pytest.raises(ValueError, match="sparse_coo_tensor: expected a 2-D or 3-D"):
        convert_coo_to_csr(torch.ones(3).to_sparse())
