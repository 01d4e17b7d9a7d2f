"""torchsparsegradutils' per-layout random generators and the encoders' index helpers, as
torch_api names (against dense references and the original's documented behaviour)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import torch_api
from bridge.internal.pairwise import pairwise_indices, pairwise_offsets
from torch_api.encoders import (
    PairwiseEncoder,
    PairwiseVoxelEncoder,
    calc_pairwise_coo_indices,
    calc_pairwise_coo_indices_nd,
)
from torch_api.utils import (
    generate_random_sparse_coo_matrix,
    generate_random_sparse_csr_matrix,
    generate_random_sparse_strictly_triangular_coo_matrix,
    generate_random_sparse_strictly_triangular_csr_matrix,
    generate_random_sparse_triangular_coo_matrix,
    generate_random_sparse_triangular_csr_matrix,
    make_spd_sparse,
)

GENERAL = [(generate_random_sparse_coo_matrix, torch.sparse_coo),
           (generate_random_sparse_csr_matrix, torch.sparse_csr)]
STRICT = [(generate_random_sparse_strictly_triangular_coo_matrix, torch.sparse_coo),
          (generate_random_sparse_strictly_triangular_csr_matrix, torch.sparse_csr)]
TRI = [(generate_random_sparse_triangular_coo_matrix, torch.sparse_coo),
       (generate_random_sparse_triangular_csr_matrix, torch.sparse_csr)]
HALVES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _ones_like(A):
    """``A``'s pattern holding ones."""
    if A.layout == torch.sparse_coo:
        A = A.coalesce()
        return torch.sparse_coo_tensor(A.indices(), torch.ones(A._nnz()), A.shape)
    return torch.sparse_csr_tensor(A.crow_indices(), A.col_indices(),
                                   torch.ones(A.values().shape), A.shape)


@pytest.mark.parametrize("gen, layout", GENERAL)
@pytest.mark.parametrize("size", [(6, 9), (3, 6, 9)])
@pytest.mark.parametrize("dtype", HALVES)
def test_general_generators(gen, layout, size, dtype):
    A = gen(size, 11, values_dtype=dtype)
    assert A.layout == layout and A.shape == size and A.dtype == dtype
    D = A.to_dense().float()
    stored = _ones_like(A).to_dense()  # the stored positions (a value may round to 0 in 16 bits)
    per_item = stored.reshape(-1, *size[-2:]).sum((-1, -2))
    assert (per_item == 11).all()
    assert ((D >= 0) & (D <= 1)).all() and not D[stored == 0].any()


@pytest.mark.parametrize("gen, layout", STRICT + TRI)
@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("size", [(7, 7), (2, 7, 7)])
def test_triangular_generators(gen, layout, upper, size):
    strict = (gen, layout) in STRICT
    A = gen(size, 12, upper=upper, values_dtype=torch.float64, value_range=(2.0, 3.0))
    assert A.layout == layout and A.shape == size
    D = A.to_dense()
    keep = D.triu(1 if strict else 0) if upper else D.tril(-1 if strict else 0)
    torch.testing.assert_close(D, keep)
    diagonal = D.diagonal(dim1=-2, dim2=-1)
    assert (diagonal == 0).all() if strict else (diagonal != 0).all()
    stored = D[D != 0]
    assert ((stored >= 2) & (stored < 3)).all() and stored.numel() == 12 * D[..., 0, 0].numel()


def test_csr_generators_keep_int32_indices():
    for gen in (generate_random_sparse_csr_matrix,
                generate_random_sparse_strictly_triangular_csr_matrix,
                generate_random_sparse_triangular_csr_matrix):
        A = gen((5, 5), 5, indices_dtype=torch.int32)
        assert A.crow_indices().dtype == A.col_indices().dtype == torch.int32


@pytest.mark.parametrize("gen", [g for g, _ in GENERAL + STRICT + TRI])
def test_generators_reject_bad_index_dtypes(gen):
    with pytest.raises(ValueError, match="indices_dtype: expected torch.int32 or torch.int64"):
        gen((4, 4), 4, indices_dtype=torch.int16)
    with pytest.raises(ValueError, match="values_dtype: expected"):
        gen((4, 4), 4, values_dtype=torch.int64)


def test_rand_sparse_keeps_to_float32_and_float64():
    with pytest.raises(ValueError, match="values_dtype: expected torch.float32 or"):
        torch_api.utils.rand_sparse((4, 4), 4, values_dtype=torch.float16)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_make_spd_sparse_half_values(dtype):
    A, D = make_spd_sparse(12, torch.sparse_csr, dtype, torch.int32, "cpu", 0.5)
    assert A.dtype == D.dtype == dtype
    torch.testing.assert_close(A.to_dense(), D)
    torch.testing.assert_close(D, D.T)
    assert torch.linalg.eigvalsh(D.double()).min() > 0


# ------------------------------------------------------------------------------- encoders
@pytest.mark.parametrize("shape, relation", [((2, 3, 4), "inter"), ((1, 5, 4, 3), "indep"),
                                             ((3, 6), "intra")])
@pytest.mark.parametrize("diag, upper", [(True, None), (False, False), (True, True)])
def test_pairwise_indices_nd_match_the_encoder(shape, relation, diag, upper):
    """Offset k's pairs (p, p - o) carry values[k][p] in the encoder's matrix; together they
    are exactly its stored entries."""
    pairs = calc_pairwise_coo_indices_nd(1.5, shape, diag, upper, relation, dtype=torch.int32)
    enc = PairwiseEncoder(1.5, shape, diag, upper, relation)
    assert list(pairs) == enc.offsets
    values = torch.randn(len(enc.offsets), *shape, dtype=torch.float64)
    dense = enc(values).to_dense()
    flat = values.reshape(len(enc.offsets), -1)
    seen = torch.zeros_like(dense, dtype=torch.bool)
    for k, (offset, ij) in enumerate(pairs.items()):
        assert ij.dtype == torch.int32 and ij.shape[0] == 2
        rows, cols = ij.long()
        torch.testing.assert_close(dense[rows, cols], flat[k, rows])
        shift = sum(o * s for o, s in zip(offset, torch.empty(shape).stride(), strict=True))
        assert (rows - cols == shift).all()
        seen[rows, cols] = True
    assert torch.equal(seen, dense != 0)


def test_pairwise_indices_reject_bad_input():
    with pytest.raises(ValueError, match="volume_shape: expected"):
        calc_pairwise_coo_indices_nd(1.0, (3,))
    with pytest.raises(ValueError, match="radius: expected a number >= 1"):
        calc_pairwise_coo_indices_nd(0.5, (1, 3))
    with pytest.raises(ValueError, match="channel_voxel_relation"):
        calc_pairwise_coo_indices_nd(1.0, (1, 3), channel_voxel_relation="intra")


def test_deprecated_4d_names_warn_and_delegate():
    with pytest.warns(DeprecationWarning, match="calc_pairwise_coo_indices is deprecated"):
        old = calc_pairwise_coo_indices(1.0, (2, 2, 3, 3), diag=True)
    new = calc_pairwise_coo_indices_nd(1.0, (2, 2, 3, 3), diag=True)
    assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in new)
    with pytest.warns(DeprecationWarning, match="PairwiseVoxelEncoder is deprecated"):
        enc = PairwiseVoxelEncoder(1.0, (2, 3, 3, 3), layout=torch.sparse_csr)
    values = torch.randn(len(enc.offsets), 2, 3, 3, 3)
    ref = PairwiseEncoder(1.0, (2, 3, 3, 3), layout=torch.sparse_csr)
    torch.testing.assert_close(enc(values).to_dense(), ref(values).to_dense())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for bad in [(2, 3, 3), (2, 3, 3, 3, 3)]:
            with pytest.raises(ValueError, match="volume_shape: expected 4 positive"):
                PairwiseVoxelEncoder(1.0, bad)
            with pytest.raises(ValueError, match="volume_shape: expected 4 positive"):
                calc_pairwise_coo_indices(1.0, bad)


@pytest.mark.parametrize("shape, offsets", [
    ((2, 3, 4), [(0, 1, 0), (1, -1, 2), (0, 0, 5), (1, -4, 0), (0, 2, -3)]),  # some past the edge
    ((1, 5, 5, 3), pairwise_offsets(2, 3, 1, "indep", None, True)),
    ((3, 4), pairwise_offsets(1.5, 1, 3, "inter", False, False)),
])
def test_pairwise_indices_against_per_offset_pairs(shape, offsets):
    """CSR order, row pointers, value positions and the offset-major permutation, from the
    per-offset pairs of an independent torch construction (slices of the voxel grid)."""
    S = math.prod(shape)
    grid = torch.arange(S).reshape(shape)
    strides = grid.stride()
    pairs, positions = [], []
    for k, o in enumerate(offsets):
        box = tuple(slice(max(x, 0), max(n + min(x, 0), 0)) for x, n in zip(o, shape, strict=True))
        r = grid[box].reshape(-1)
        pairs.append(torch.stack([r, r - sum(x * s for x, s in zip(o, strides, strict=True))]))
        positions.append(k * S + r)
    major = torch.cat(pairs, 1)  # offset-major: offset by offset, voxels in C order
    order = torch.argsort(major[0] * S + major[1])
    full = pairwise_indices(shape, offsets)
    assert np.array_equal(full.rows, major[0, order].numpy())
    assert np.array_equal(full.cols, major[1, order].numpy())
    assert np.array_equal(full.value_index, torch.cat(positions)[order].numpy())
    assert np.array_equal(full.permutation, order.numpy())
    assert np.array_equal(full.crow, np.concatenate([[0], np.cumsum(np.bincount(
        full.rows, minlength=S))]))
    lean = pairwise_indices(shape, offsets, rows=False, permutation=False)
    assert lean.rows is None and lean.permutation is None
    assert np.array_equal(lean.cols, full.cols) and np.array_equal(lean.crow, full.crow)
    assert np.array_equal(lean.value_index, full.value_index)
