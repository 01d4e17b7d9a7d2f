"""PairwiseEncoder against a slow entry-by-entry reference written from the contract text."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from tests.helpers import tol
from tests.references import pairwise_dense, pairwise_entries, pairwise_mask
from torch_api import sparse_mm
from torch_api.encoders import PairwiseEncoder, pairwise_indices, pairwise_offsets

# ------------------------------------------------------------------- contract reference


def ref_offsets(radius, nsp, C, relation, upper, diag):
    """Offsets exactly as the contract words them (brute force, then its sort key)."""
    r = int(math.ceil(radius))
    ball = [
        s
        for s in itertools.product(range(-r, r + 1), repeat=nsp)
        if any(x != 0 for x in s) and sum(x * x for x in s) <= radius**2
    ]
    out = [(0,) + s for s in ball]
    if relation in ("intra", "inter"):
        out += [(c,) + (0,) * nsp for c in range(1, C)]
    if relation == "inter":
        out += [(c,) + s for c in range(1, C) for s in ball]
    firsts = [[x for x in o if x != 0][0] for o in out]
    if upper is False:
        out = [o for o, f in zip(out, firsts, strict=True) if f > 0]
    if upper is True:
        out = [o for o, f in zip(out, firsts, strict=True) if f < 0]
    out.sort(
        key=lambda o: (
            (10 * o[0]) ** 2 + sum(x * x for x in o[1:]),
            tuple(abs(x) for x in o),
            tuple(x >= 0 for x in o),
        )
    )
    return ([(0,) * (nsp + 1)] if diag else []) + out


def ref_dense(values, volume_shape, offsets):
    """Dense ``(S, S)`` matrix of ``values`` (K, C, *spatial) and its stored-entry mask, from the
    contract entry by entry (tests/references.py)."""
    D = torch.from_numpy(pairwise_dense(values, volume_shape, offsets))
    return D, torch.from_numpy(pairwise_mask(volume_shape, offsets))


def ref_dense_differentiable(values, volume_shape, offsets):
    """The same matrix as a differentiable function of ``values`` (for gradient references)."""
    rows, cols, src = (torch.from_numpy(x) for x in pairwise_entries(volume_shape, offsets))
    S = math.prod(volume_shape)
    flat = values.reshape(-1)[src.to(values.device)]
    return torch.zeros(S, S, dtype=values.dtype, device=values.device).index_put(
        (rows.to(values.device), cols.to(values.device)), flat
    )


# ------------------------------------------------------------------------------ offsets


def test_offsets_known_lists():
    assert pairwise_offsets(2, 1) == [(0, -1), (0, 1), (0, -2), (0, 2)]
    assert pairwise_offsets(2, 1, upper=False) == [(0, 1), (0, 2)]
    assert pairwise_offsets(2, 1, upper=True, diag=True) == [(0, 0), (0, -1), (0, -2)]
    assert pairwise_offsets(1, 2) == [(0, 0, -1), (0, 0, 1), (0, -1, 0), (0, 1, 0)]
    assert pairwise_offsets(1, 2, channels=3, relation="intra", upper=False) == [
        (0, 0, 1),
        (0, 1, 0),
        (1, 0, 0),
        (2, 0, 0),
    ]
    # sqrt(2) reaches the diagonal neighbours in 2-D, 1.4 does not
    assert len(pairwise_offsets(math.sqrt(2), 2)) == 8
    assert len(pairwise_offsets(1.4, 2)) == 4
    assert len(pairwise_offsets(2, 3)) == 32


@pytest.mark.parametrize("nsp", [1, 2, 3])
@pytest.mark.parametrize("radius", [1, 1.5, 2, 2.5])
@pytest.mark.parametrize("relation", ["indep", "intra", "inter"])
@pytest.mark.parametrize("upper", [None, False, True])
@pytest.mark.parametrize("diag", [False, True])
def test_offsets_match_contract(nsp, radius, relation, upper, diag):
    got = pairwise_offsets(radius, nsp, 3, relation, upper, diag)
    assert got == ref_offsets(radius, nsp, 3, relation, upper, diag)


# ---------------------------------------------------------------------------- forward

CASES = [
    # (radius, volume_shape, relation)
    (1, (1, 7), "indep"),
    (2, (2, 6), "inter"),
    (1.5, (1, 4, 5), "indep"),
    (2, (3, 3, 4), "intra"),
    (1, (2, 4, 3), "inter"),
    (1, (2, 3, 3, 3), "indep"),
    (1.5, (2, 3, 2, 3), "inter"),
    (1.8, (1, 3, 4, 3), "indep"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"r{c[0]}-{'x'.join(map(str, c[1]))}-{c[2]}")
@pytest.mark.parametrize("upper", [None, False, True])
@pytest.mark.parametrize("diag", [False, True])
def test_forward_matches_reference(case, upper, diag, layout):
    radius, shape, relation = case
    enc = PairwiseEncoder(radius, shape, diag, upper, relation, layout=layout)
    assert enc.offsets == ref_offsets(radius, len(shape) - 1, shape[0], relation, upper, diag)
    assert enc.volume_numel == math.prod(shape) and enc.spatial_dims == len(shape) - 1
    g = torch.Generator().manual_seed(1)
    values = torch.rand(len(enc.offsets), *shape, generator=g, dtype=torch.float64) + 0.5
    A = enc(values)
    assert A.layout == layout and A.shape == (enc.volume_numel,) * 2
    D, mask = ref_dense(values, shape, enc.offsets)
    assert A._nnz() == int(mask.sum())
    torch.testing.assert_close(A.to_dense(), D, rtol=0, atol=0)
    if layout == torch.sparse_coo:
        assert A.is_coalesced()
        idx = A._indices()
        key = idx[0] * enc.volume_numel + idx[1]
        assert bool((key[1:] > key[:-1]).all())  # sorted, no duplicates
    if upper is False:
        assert not D.triu(1).any()
    if upper is True:
        assert not D.tril(-1).any()


@pytest.mark.parametrize("case", CASES[1::2], ids=lambda c: "x".join(map(str, c[1])))
def test_batched_matches_unbatched(case, layout, index_dtype, dtype):
    radius, shape, relation = case
    enc = PairwiseEncoder(radius, shape, True, False, relation, layout, index_dtype)
    values = torch.randn(3, len(enc.offsets), *shape, dtype=dtype)
    A = enc(values)
    assert A.shape == (3, enc.volume_numel, enc.volume_numel) and A.dtype == dtype
    for b in range(3):
        D, _ = ref_dense(values[b], shape, enc.offsets)
        torch.testing.assert_close(A.to_dense()[b], D, rtol=0, atol=0)
    if layout == torch.sparse_csr:
        assert A.crow_indices().dtype == index_dtype and A.col_indices().dtype == index_dtype
    else:
        assert A.is_coalesced()


def test_index_dtypes_and_buffers(layout, index_dtype):
    enc = PairwiseEncoder(1.5, (2, 4, 4), layout=layout, indices_dtype=index_dtype)
    names = dict(enc.named_buffers())
    if layout == torch.sparse_coo:
        assert names["indices"].dtype == index_dtype and names["indices"].shape[0] == 2
    else:
        assert enc.crow_indices.dtype == index_dtype and enc.col_indices.dtype == index_dtype
        assert {"crow_indices", "col_indices", "csr_permutation"} <= set(names)
        A = enc(torch.randn(len(enc.offsets), 2, 4, 4))
        assert A.crow_indices().dtype == index_dtype


def test_csr_permutation_orders_offset_major_values():
    shape = (2, 3, 4)
    enc = PairwiseEncoder(
        1.5, shape, diag=True, channel_voxel_relation="inter", layout=torch.sparse_csr
    )
    values = torch.randn(len(enc.offsets), *shape, dtype=torch.float64)
    offset_major = []  # offset by offset, valid voxels in C order (the original's concatenation)
    for k, o in enumerate(enc.offsets):
        for p in itertools.product(*(range(n) for n in shape)):
            if all(0 <= a - b < n for a, b, n in zip(p, o, shape, strict=True)):
                offset_major.append(values[(k, *p)])
    offset_major = torch.stack(offset_major)
    A = enc(values)
    torch.testing.assert_close(A.values(), offset_major[enc.csr_permutation], rtol=0, atol=0)


def test_pairwise_indices_numpy():
    ix = pairwise_indices((1, 4), [(0, 1), (0, 0)])
    np.testing.assert_array_equal(ix.rows, [0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(ix.cols, [0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(ix.crow, [0, 1, 3, 5, 7])
    np.testing.assert_array_equal(ix.value_index, [4, 1, 5, 2, 6, 3, 7])
    np.testing.assert_array_equal(ix.permutation, [3, 0, 4, 1, 5, 2, 6])


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[6]], ids=["1d", "2d", "3d"])
def test_gradient_matches_dense(case, layout):
    radius, shape, relation = case
    enc = PairwiseEncoder(radius, shape, True, None, relation, layout)
    g = torch.Generator().manual_seed(3)
    v = torch.randn(len(enc.offsets), *shape, generator=g, dtype=torch.float64)
    S = enc.volume_numel
    X = torch.randn(S, 2, generator=g, dtype=torch.float64)
    W = torch.randn(S, 2, generator=g, dtype=torch.float64)

    v1 = v.clone().requires_grad_()
    (sparse_mm(enc(v1), X) * W).sum().backward()
    v2 = v.clone().requires_grad_()
    (ref_dense_differentiable(v2, shape, enc.offsets) @ X * W).sum().backward()
    torch.testing.assert_close(v1.grad, v2.grad, **tol(torch.float64))
    assert v1.grad.abs().sum() > 0


def test_gradient_of_two_uses(layout):
    # a sparse gradient and a dense one (to_dense) are summed before reaching the encoder
    shape = (2, 3, 3)
    enc = PairwiseEncoder(1, shape, True, False, "intra", layout)
    v = torch.randn(len(enc.offsets), *shape, dtype=torch.float64)
    X = torch.randn(enc.volume_numel, 3, dtype=torch.float64)
    v1 = v.clone().requires_grad_()
    A = enc(v1)
    (sparse_mm(A, X).pow(2).sum() + A.to_dense().sin().sum()).backward()
    v2 = v.clone().requires_grad_()
    D = ref_dense_differentiable(v2, shape, enc.offsets)
    ((D @ X).pow(2).sum() + (D.sin() * (D != 0)).sum()).backward()
    torch.testing.assert_close(v1.grad, v2.grad, **tol(torch.float64))


def test_gradient_batched(layout):
    # COO: two sparse products, whose summed gradient is uncoalesced. Batched CSR is used once:
    # torch 2.13 adds two batched CSR gradients into a malformed tensor (a torch bug).
    shape = (2, 3, 3)
    enc = PairwiseEncoder(1.5, shape, True, None, "inter", layout)
    v = torch.randn(2, len(enc.offsets), *shape, dtype=torch.float64)
    X = torch.randn(2, enc.volume_numel, 3, dtype=torch.float64)
    v1 = v.clone().requires_grad_()
    A = enc(v1)
    twice = layout == torch.sparse_coo
    loss = sparse_mm(A, X).pow(2).sum()
    (loss + sparse_mm(A, X.cos()).sum() if twice else loss).backward()
    v2 = v.clone().requires_grad_()
    Ds = torch.stack([ref_dense_differentiable(v2[b], shape, enc.offsets) for b in range(2)])
    ref = (Ds @ X).pow(2).sum()
    (ref + (Ds @ X.cos()).sum() if twice else ref).backward()
    torch.testing.assert_close(v1.grad, v2.grad, **tol(torch.float64))


def test_gradcheck(layout):
    enc = PairwiseEncoder(1, (2, 3), True, None, "inter", layout)
    v = torch.randn(len(enc.offsets), 2, 3, dtype=torch.float64, requires_grad=True)
    X = torch.randn(6, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: sparse_mm(enc(v), X), (v,))


# -------------------------------------------------------------------------- devices


def test_to_moves_cached_indices(layout):
    enc = PairwiseEncoder(1, (1, 4, 4), layout=layout)
    moved = enc.to("meta")
    assert moved is enc
    assert all(b.device.type == "meta" for b in enc.buffers())
    assert enc.device.type == "meta"


@pytest.mark.gpu
def test_cuda_forward_backward(layout):
    enc = PairwiseEncoder(1.5, (2, 4, 4), True, False, layout=layout).to("cuda")
    v = torch.randn(len(enc.offsets), 2, 4, 4, device="cuda", dtype=torch.float64)
    v.requires_grad_()
    A = enc(v)
    assert A.device.type == "cuda"
    D, _ = ref_dense(v.detach().cpu(), (2, 4, 4), enc.offsets)
    torch.testing.assert_close(A.to_dense().cpu(), D, rtol=0, atol=0)
    sparse_mm(A, torch.ones(32, 1, device="cuda", dtype=torch.float64)).sum().backward()
    assert v.grad.device.type == "cuda"


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(radius=0.5, volume_shape=(1, 4)), "radius"),
        (dict(radius=0, volume_shape=(1, 4)), "radius"),
        (dict(radius=1, volume_shape=(1, 4), channel_voxel_relation="intra"), "channel"),
        (dict(radius=1, volume_shape=(1, 4, 4), channel_voxel_relation="inter"), "channel"),
        (dict(radius=1, volume_shape=(2, 4), channel_voxel_relation="cross"), "channel_voxel"),
        (dict(radius=1, volume_shape=(2, 4), indices_dtype=torch.int16), "indices_dtype"),
        (dict(radius=1, volume_shape=(2, 4), indices_dtype=torch.float32), "indices_dtype"),
        (dict(radius=1, volume_shape=(4,)), "volume_shape"),
        (dict(radius=1, volume_shape=(2, 0)), "volume_shape"),
        (dict(radius=1, volume_shape=(2, 4), layout=torch.sparse_csc), "layout"),
        (dict(radius=1, volume_shape=(2, 4), upper="yes"), "upper"),
    ],
)
def test_bad_constructor_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PairwiseEncoder(**kwargs)


def test_bad_values():
    enc = PairwiseEncoder(1, (2, 3, 3))
    K = len(enc.offsets)
    with pytest.raises(ValueError, match=r"values: expected shape \(len\(offsets\)"):
        enc(torch.randn(K + 1, 2, 3, 3))
    with pytest.raises(ValueError, match="values: expected shape"):
        enc(torch.randn(K, 2, 3, 4))
    with pytest.raises(ValueError, match="values: expected a 4 or 5-D tensor"):
        enc(torch.randn(K, 6, 3))
    with pytest.raises(ValueError, match="values: expected float32 or float64"):
        enc(torch.ones(K, 2, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="values: expected float32 or float64"):
        enc(torch.ones(K, 2, 3, 3, dtype=torch.float16))
    with pytest.raises(TypeError, match="values: expected a torch.Tensor"):
        enc(np.ones((K, 2, 3, 3)))
    with pytest.raises(TypeError, match="values: expected a dense"):
        enc(torch.ones(K, 2, 3, 3).to_sparse())
    with pytest.raises(ValueError, match="values: expected a tensor on the encoder's device"):
        enc(torch.ones(K, 2, 3, 3, device="meta"))


# --------------------------------------------------------------- sparse_with_values helper


@pytest.mark.parametrize("batched", [False, True])
def test_sparse_with_values_samples_any_gradient_at_the_pattern(layout, batched):
    # batch items with different patterns (equal nnz), gradients of another layout or pattern
    from torch_api._encoders import _index_tensors, _values_at
    from torch_api._pattern import sparse_with_values

    g = torch.Generator().manual_seed(0)
    n = 5
    masks = [torch.randperm(n * n, generator=g)[:9] for _ in range(2 if batched else 1)]
    D = torch.zeros(len(masks), n * n, dtype=torch.float64)
    for b, m in enumerate(masks):
        D[b, m] = torch.randn(9, generator=g, dtype=torch.float64)
    D = D.reshape(-1, n, n) if batched else D.reshape(n, n)
    A = D.to_sparse_coo().coalesce() if layout == torch.sparse_coo else D.to_sparse_csr()
    where = tuple(A.to_sparse_coo().coalesce().indices())  # A's entries in A's value order
    G = torch.randn(D.shape, generator=g, dtype=torch.float64)
    expected = G[where].reshape(A.values().shape)
    for grad in (G, G.to_sparse_coo(), G.to_sparse_coo() * 1.0 + A.to_sparse_coo() * 0.0):
        got = _values_at(grad, _index_tensors(A), A.shape)
        torch.testing.assert_close(got.reshape(expected.shape), expected, rtol=0, atol=0)
    v = A.values().clone().requires_grad_()
    B = sparse_with_values(A, v)
    assert B.layout == layout and B.shape == A.shape
    torch.testing.assert_close(B.to_dense(), D, rtol=0, atol=0)
    X = torch.randn(*D.shape[:-1], 3, dtype=torch.float64)
    sparse_mm(B, X).sum().backward()
    Dd = D.clone().requires_grad_()
    (Dd @ X).sum().backward()
    torch.testing.assert_close(v.grad, Dd.grad[where].reshape(v.shape), **tol(torch.float64))
