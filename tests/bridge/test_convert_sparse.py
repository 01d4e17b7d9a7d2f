"""Sparse conversions: every CPU pairing of torch / JAX / SciPy, COO and CSR, 2-D and batched,
float32/float64, int32/int64; zero-copy proven by data pointers, round trips exact."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import bridge
from tests.helpers import data_ptr, dense_of, make_sparse, random_dense, sparse_parts

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jsparse = pytest.importorskip("jax.experimental.sparse")
sp = pytest.importorskip("scipy.sparse")

CONVERT = {"torch": bridge.to_torch, "jax": bridge.to_jax, "scipy": bridge.to_scipy}
COO, CSR = torch.sparse_coo, torch.sparse_csr


def _cases():
    for (src, dst), layout, batch, dtype, idx in itertools.product(
        itertools.permutations(CONVERT, 2),
        (COO, CSR),
        (None, 3),
        (torch.float32, torch.float64),
        (torch.int32, torch.int64),
    ):
        if src == "torch" and layout == COO and idx == torch.int32:
            continue  # torch COO indices are always int64
        if src == "scipy" and layout == COO and batch and idx == torch.int32:
            continue  # SciPy's n-D COO has int64 coordinates only
        if layout == CSR and batch and "scipy" in (src, dst):
            continue  # SciPy has no batched CSR: see test_batched_csr_to_scipy_is_an_error
        name = f"{src}-{dst}-{'coo' if layout == COO else 'csr'}-b{batch}-{dtype}-{idx}"
        yield pytest.param(src, dst, layout, batch, dtype, idx, id=name.replace("torch.", ""))


def _dense(batch, dtype, seed=0):
    return random_dense((batch, 5, 6) if batch else (5, 6), density=0.4, dtype=dtype, seed=seed)


def _expected_type(dst, layout):
    return {
        ("jax", COO): jsparse.BCOO,
        ("jax", CSR): jsparse.BCSR,
        ("scipy", COO): sp.coo_array,
        ("scipy", CSR): sp.csr_array,
    }.get((dst, layout), torch.Tensor)


def _index_dtype(x) -> str:
    parts = sparse_parts(x)
    return str(parts.get("indices", parts.get("col_indices")).dtype).removeprefix("torch.")


@pytest.mark.parametrize("src,dst,layout,batch,dtype,idx", list(_cases()))
def test_zero_copy_and_exact(src, dst, layout, batch, dtype, idx, x64):
    D = _dense(batch, dtype)
    x = make_sparse(src, D, layout, idx)
    # torch COO (and SciPy n-D COO) indices are int64 only: int32 ones are widened, a copy
    widened = layout == COO and idx == torch.int32 and (dst == "torch" or dst == "scipy" and batch)
    out = CONVERT[dst](x)

    assert isinstance(out, _expected_type(dst, layout))
    if dst == "torch":
        assert out.layout == layout
    np.testing.assert_array_equal(dense_of(out), D.numpy())
    assert _index_dtype(out) == ("int64" if widened else str(idx).removeprefix("torch."))
    assert str(dense_of(out).dtype) == str(dtype).removeprefix("torch.")

    before, after = sparse_parts(x), sparse_parts(out)
    assert before.keys() == after.keys()
    for name in before:
        shared = data_ptr(after[name]) == data_ptr(before[name])
        assert shared != (widened and name == "indices"), name

    if widened:
        with pytest.raises(ValueError, match="indices.*int64"):
            CONVERT[dst](x, copy=False)
    else:
        strict = CONVERT[dst](x, copy=False)
        for name, part in sparse_parts(strict).items():
            assert data_ptr(part) == data_ptr(before[name]), name

    copied = CONVERT[dst](x, copy=True)
    np.testing.assert_array_equal(dense_of(copied), D.numpy())
    for name, part in sparse_parts(copied).items():
        assert data_ptr(part) != data_ptr(before[name]), name

    back = CONVERT[src](out)
    np.testing.assert_array_equal(dense_of(back), D.numpy())
    assert _index_dtype(back) == _index_dtype(out)


@pytest.mark.parametrize("dst", ["jax", "scipy"])
def test_thirty_two_bit_csr_needs_no_x64(dst):
    D = _dense(None, torch.float32)
    x = make_sparse("torch", D, CSR, torch.int32)
    out = CONVERT[dst](x, copy=False)
    np.testing.assert_array_equal(dense_of(out), D.numpy())
    assert out.indices.dtype == np.int32 and out.data.dtype == np.float32


def test_batched_csr_is_bcsr_with_one_batch_dim(x64):
    D = _dense(3, torch.float64)
    out = bridge.to_jax(make_sparse("torch", D, CSR), copy=False)
    assert out.n_batch == 1 and out.indptr.shape == (3, 6) and out.shape == (3, 5, 6)
    back = bridge.to_torch(out, copy=False)
    assert back.crow_indices().shape == (3, 6)


def test_batched_coo_is_three_sparse_dims(x64):
    D = _dense(3, torch.float64)
    out = bridge.to_jax(make_sparse("torch", D, COO), copy=False)
    assert out.n_batch == 0 and out.n_sparse == 3 and out.indices.shape[1] == 3
    S = bridge.to_scipy(out, copy=False)
    assert S.shape == (3, 5, 6) and len(S.coords) == 3


@pytest.mark.parametrize("src", ["torch", "jax"])
def test_batched_csr_to_scipy_is_an_error(src, x64):
    x = make_sparse(src, _dense(3, torch.float64), CSR)
    with pytest.raises(ValueError, match="batched CSR"):
        bridge.to_scipy(x)


@pytest.mark.parametrize("kind", ["coo_matrix", "csr_matrix"])
def test_scipy_matrix_forms_are_accepted(kind, x64):
    D = _dense(None, torch.float64)
    M = getattr(sp, kind)(D.numpy())
    T = bridge.to_torch(M)
    assert T.layout == (COO if kind.startswith("coo") else CSR)
    np.testing.assert_array_equal(T.to_dense().numpy(), D.numpy())
    J = bridge.to_jax(M)
    np.testing.assert_array_equal(np.asarray(J.todense()), D.numpy())
    assert isinstance(bridge.to_scipy(T), sp.coo_array if kind.startswith("coo") else sp.csr_array)


def test_scipy_to_scipy_is_identity_unless_copied():
    S = make_sparse("scipy", _dense(None, torch.float64), CSR)
    assert bridge.to_scipy(S) is S
    C = bridge.to_scipy(S, copy=True)
    assert C is not S and data_ptr(C.data) != data_ptr(S.data)


def test_torch_to_torch_detaches_and_shares():
    x = make_sparse("torch", _dense(None, torch.float64), COO).requires_grad_()
    out = bridge.to_torch(x)
    assert not out.requires_grad and data_ptr(out._values()) == data_ptr(x._values())
    assert data_ptr(bridge.to_torch(x, copy=True)._values()) != data_ptr(x._values())


def test_jax_to_jax_keeps_flags_when_copied(x64):
    x = make_sparse("jax", _dense(None, torch.float64), COO)
    assert bridge.to_jax(x) is x
    c = bridge.to_jax(x, copy=True)
    assert c.indices_sorted == x.indices_sorted and c.unique_indices == x.unique_indices
    assert data_ptr(c.data) != data_ptr(x.data)


def test_hybrid_coo_keeps_dense_dims(x64):
    values = torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
    x = torch.sparse_coo_tensor(torch.tensor([[0, 1, 2], [1, 0, 2]]), values, (3, 3, 2))
    out = bridge.to_jax(x, copy=False)
    assert out.n_dense == 1
    np.testing.assert_array_equal(np.asarray(out.todense()), x.to_dense().numpy())
    with pytest.raises(ValueError, match="scalars per entry"):
        bridge.to_scipy(x)


@pytest.mark.gpu
@pytest.mark.parametrize("layout", [COO, CSR])
def test_cuda_sparse_stays_on_device(layout, x64):
    D = _dense(None, torch.float64).cuda()
    x = make_sparse("torch", D.cpu(), layout)
    x = x.cuda()
    out = bridge.to_jax(x, copy=False)
    assert next(iter(out.data.devices())).platform == "gpu"
    assert data_ptr(out.data) == data_ptr(sparse_parts(x)["values"])
    back = bridge.to_torch(out, copy=False)
    assert back.device == x.device
    torch.testing.assert_close(back.to_dense(), x.to_dense())


@pytest.mark.gpu
@pytest.mark.parametrize("layout", [COO, CSR])
def test_cuda_sparse_to_cupyx(layout):
    cupy = pytest.importorskip("cupy")
    D = _dense(None, torch.float64)
    x = make_sparse("torch", D, layout, torch.int32 if layout == CSR else torch.int64).cuda()
    out = bridge.to_cupy(x)
    np.testing.assert_array_equal(cupy.asnumpy(out.toarray()), D.numpy())
    back = bridge.to_torch(out)
    assert back.is_cuda and back.layout == layout
    torch.testing.assert_close(back.to_dense().cpu(), D)
