"""Random sparse constructors: exact nnz, structure, value ranges, conditioning, bad inputs."""

from __future__ import annotations

import pytest
import torch

from torch_api.utils import make_spd_sparse, rand_sparse, rand_sparse_tri


def batches(A):
    """Dense ``(b, n, m)`` view of a 2-D or batched sparse tensor."""
    D = A.to_dense()
    return D[None] if D.dim() == 2 else D


def stored_mask(A):
    """Dense mask of stored entries (stored zeros included)."""
    if A.layout == torch.sparse_coo:
        ones = torch.sparse_coo_tensor(A.indices(), torch.ones(A._nnz()), A.shape)
    else:
        ones = torch.sparse_csr_tensor(
            A.crow_indices(),
            A.col_indices(),
            torch.ones_like(A.values(), dtype=torch.float32),
            A.shape,
        )
    return batches(ones) != 0


def check_layout(A, layout, index_dtype):
    assert A.layout == layout
    if layout == torch.sparse_coo:
        assert A.is_coalesced()
    else:
        assert A.col_indices().dtype == index_dtype and A.crow_indices().dtype == index_dtype


def assert_dominant(A, margin):
    """Every row's diagonal is at least ``margin`` plus the row's absolute off-diagonal sum."""
    D = batches(A)
    diag = D.diagonal(dim1=-2, dim2=-1)
    off = D.abs().sum(-1) - diag.abs()
    assert bool((diag >= margin + off).all())


@pytest.mark.parametrize("size", [(6, 9), (3, 6, 9), (8, 8)])
def test_rand_sparse(size, layout, index_dtype, dtype):
    torch.manual_seed(0)
    A = rand_sparse(size, 17, layout, indices_dtype=index_dtype, values_dtype=dtype)
    check_layout(A, layout, index_dtype)
    assert A.shape == size and A.dtype == dtype
    mask = stored_mask(A)
    assert mask.flatten(1).sum(1).tolist() == [17] * mask.shape[0]  # exact nnz, unique positions
    vals = A.values()
    assert bool(((vals >= 0) & (vals < 1)).all())


def test_rand_sparse_reproducible_and_uniform():
    torch.manual_seed(1)
    a = rand_sparse((5, 5), 10)
    torch.manual_seed(1)
    b = rand_sparse((5, 5), 10)
    assert torch.equal(a.indices(), b.indices()) and torch.equal(a.values(), b.values())
    # every position equally likely: 2000 draws of 3 of 25 positions, 240 expected per position
    counts = torch.zeros(25)
    for _ in range(2000):
        idx = rand_sparse((5, 5), 3).indices()
        counts[idx[0] * 5 + idx[1]] += 1
    assert counts.sum() == 6000
    assert float(counts.min()) > 180 and float(counts.max()) < 300


def test_rand_sparse_dense_draw():
    """nnz close to n*m takes the permutation path: still exact and unique."""
    A = rand_sparse((2, 4, 5), 19, torch.sparse_csr)
    assert stored_mask(A).flatten(1).sum(1).tolist() == [19, 19]
    assert stored_mask(rand_sparse((4, 5), 20)).all()


@pytest.mark.parametrize("size", [(10, 10), (2, 10, 10)])
def test_rand_sparse_well_conditioned(size, layout):
    torch.manual_seed(2)
    A = rand_sparse(
        size, 30, layout, values_dtype=torch.float64, well_conditioned=True, min_diag_value=2.0
    )
    mask = stored_mask(A)
    assert mask.flatten(1).sum(1).tolist() == [30] * mask.shape[0]
    assert bool(mask.diagonal(dim1=-2, dim2=-1).all())
    assert_dominant(A, 2.0)
    inv = torch.linalg.inv(batches(A))
    assert float(inv.abs().sum(-1).max()) <= 1 / 2.0 + 1e-12  # ||A^-1||_inf <= 1/margin


def test_rand_sparse_well_conditioned_rectangular_is_plain():
    A = rand_sparse((4, 6), 5, well_conditioned=True)
    assert A._nnz() == 5


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("size", [(9, 9), (3, 9, 9)])
def test_rand_sparse_tri(upper, strict, size, layout, index_dtype):
    torch.manual_seed(3)
    A = rand_sparse_tri(
        size,
        20,
        layout,
        upper=upper,
        strict=strict,
        indices_dtype=index_dtype,
        values_dtype=torch.float64,
        value_range=(-2.0, -1.0),
    )
    check_layout(A, layout, index_dtype)
    mask = stored_mask(A)
    assert mask.flatten(1).sum(1).tolist() == [20] * mask.shape[0]
    outside = mask.tril(-1) if upper else mask.triu(1)
    assert not bool(outside.any())
    diag = mask.diagonal(dim1=-2, dim2=-1)
    assert not bool(diag.any()) if strict else bool(diag.all())
    vals = A.values()
    assert bool(((vals >= -2.0) & (vals < -1.0)).all())


@pytest.mark.parametrize("upper", [True, False])
def test_rand_sparse_tri_well_conditioned(upper, layout):
    torch.manual_seed(4)
    A = rand_sparse_tri(
        (2, 12, 12),
        40,
        layout,
        upper=upper,
        values_dtype=torch.float64,
        well_conditioned=True,
        min_diag_value=1.5,
    )
    assert_dominant(A, 1.5)
    D = batches(A)
    off = D - torch.diag_embed(D.diagonal(dim1=-2, dim2=-1))
    assert bool(((off >= 0) & (off < 1)).all())  # default value_range off the diagonal


def test_rand_sparse_tri_extremes():
    full = rand_sparse_tri((5, 5), 15, upper=False)
    assert stored_mask(full)[0].equal(torch.ones(5, 5, dtype=torch.bool).tril())
    assert rand_sparse_tri((5, 5), 0, strict=True)._nnz() == 0
    assert rand_sparse_tri((5, 5), 5)._nnz() == 5  # the diagonal only


@pytest.mark.parametrize("n", [1, 2, 9, 30])
def test_make_spd_sparse(n, layout, index_dtype, dtype):
    torch.manual_seed(5)
    A, D = make_spd_sparse(n, layout, dtype, index_dtype, torch.device("cpu"), sparsity_ratio=0.6)
    check_layout(A, layout, index_dtype)
    assert A.dtype == D.dtype == dtype and A.shape == D.shape == (n, n)
    assert torch.equal(A.to_dense(), D)
    assert torch.equal(D, D.T)
    assert float(torch.linalg.eigvalsh(D.double()).min()) > 0
    pairs = n * (n - 1) // 2
    assert A._nnz() == n * n - 2 * int(0.6 * pairs)
    assert int((D != 0).sum()) == A._nnz()


def test_make_spd_sparse_nz_and_extremes():
    A, D = make_spd_sparse(10, torch.sparse_coo, torch.float64, torch.int64, "cpu", nz=14)
    assert A._nnz() == 100 - 14
    A, D = make_spd_sparse(10, torch.sparse_coo, torch.float64, torch.int64, "cpu", nz=15)
    assert A._nnz() == 100 - 14  # 7 symmetric pairs
    A, D = make_spd_sparse(6, torch.sparse_csr, torch.float64, torch.int32, "cpu", 1.0)
    assert torch.equal(D, torch.diag(D.diagonal()))
    A, D = make_spd_sparse(6, torch.sparse_csr, torch.float64, torch.int32, "cpu", 0.0)
    assert A._nnz() == 36


# ---------------------------------------------------------------------------- bad inputs
def test_bad_inputs():
    with pytest.raises(ValueError, match="nnz: expected 0 <= nnz <= 12"):
        rand_sparse((3, 4), 13)
    with pytest.raises(ValueError, match="nnz: expected 0 <= nnz"):
        rand_sparse((3, 4), -1)
    with pytest.raises(TypeError, match="nnz: expected an int"):
        rand_sparse((3, 4), 2.5)
    with pytest.raises(ValueError, match="size: expected"):
        rand_sparse((3,), 1)
    with pytest.raises(ValueError, match="size: expected"):
        rand_sparse((1, 2, 3, 4), 1)
    with pytest.raises(TypeError, match="size: expected a tuple of ints"):
        rand_sparse(5, 1)
    with pytest.raises(TypeError, match="layout: expected"):
        rand_sparse((3, 4), 2, torch.sparse_csc)
    with pytest.raises(ValueError, match="indices_dtype: expected"):
        rand_sparse((3, 4), 2, indices_dtype=torch.int16)
    with pytest.raises(ValueError, match="values_dtype: expected"):
        rand_sparse((3, 4), 2, values_dtype=torch.float16)
    with pytest.raises(ValueError, match="nnz: expected 4 <= nnz"):
        rand_sparse((4, 4), 3, well_conditioned=True)
    with pytest.raises(ValueError, match="min_diag_value: expected a positive"):
        rand_sparse((4, 4), 5, well_conditioned=True, min_diag_value=0.0)
    with pytest.raises(ValueError, match="size: expected a square"):
        rand_sparse_tri((3, 4), 3)
    with pytest.raises(ValueError, match="nnz: expected 4 <= nnz <= 10"):
        rand_sparse_tri((4, 4), 3)
    with pytest.raises(ValueError, match="nnz: expected 0 <= nnz <= 6"):
        rand_sparse_tri((4, 4), 7, strict=True)
    with pytest.raises(ValueError, match="value_range: expected low <= high"):
        rand_sparse_tri((4, 4), 5, value_range=(1, 0))
    with pytest.raises(TypeError, match="value_range: expected a pair"):
        rand_sparse_tri((4, 4), 5, value_range=1.0)
    with pytest.raises(ValueError, match="n: expected a positive int"):
        make_spd_sparse(0, torch.sparse_coo, torch.float64, torch.int64, "cpu")
    with pytest.raises(TypeError, match="layout: expected"):
        make_spd_sparse(3, torch.strided, torch.float64, torch.int64, "cpu")
    with pytest.raises(ValueError, match="sparsity_ratio: expected a number in"):
        make_spd_sparse(3, torch.sparse_coo, torch.float64, torch.int64, "cpu", 1.5)
    with pytest.raises(ValueError, match="nz: expected an int in"):
        make_spd_sparse(3, torch.sparse_coo, torch.float64, torch.int64, "cpu", nz=8)
    with pytest.raises(ValueError, match="value_dtype: expected"):
        make_spd_sparse(3, torch.sparse_coo, torch.int64, torch.int64, "cpu")
