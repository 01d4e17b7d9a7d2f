"""Dense conversions between torch, JAX and NumPy: zero-copy proven by data pointers, exact values,
dtypes kept, ``copy`` semantics, and the errors for wrong input."""

from __future__ import annotations

import importlib.util
import itertools

import numpy as np
import pytest
import torch

import bridge
from tests.helpers import aligned_numpy, data_ptr, dense_of

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

CONVERT = {"torch": bridge.to_torch, "jax": bridge.to_jax, "numpy": bridge.to_numpy}
TYPES = {"torch": torch.Tensor, "jax": jax.Array, "numpy": np.ndarray}
DTYPES = ["float32", "float64", "int32", "int64"]


def make_dense(framework: str, reference: np.ndarray):
    """A fresh, 64-byte-aligned array of ``framework`` holding ``reference``."""
    if framework == "torch":
        return torch.from_numpy(reference).clone()
    if framework == "jax":
        return jnp.asarray(reference)
    return aligned_numpy(reference)


def reference(dtype: str, shape=(4, 5), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray((rng.standard_normal(shape) * 100).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("src,dst", list(itertools.permutations(CONVERT, 2)))
def test_zero_copy_and_exact(src, dst, dtype, x64):
    ref = reference(dtype)
    x = make_dense(src, ref)
    for copy in (None, False):
        out = CONVERT[dst](x, copy=copy)
        assert isinstance(out, TYPES[dst])
        assert data_ptr(out) == data_ptr(x)
        assert str(out.dtype).removeprefix("torch.") == dtype
        np.testing.assert_array_equal(dense_of(out), ref)
    copied = CONVERT[dst](x, copy=True)
    assert data_ptr(copied) != data_ptr(x)
    np.testing.assert_array_equal(dense_of(copied), ref)
    back = CONVERT[src](out)
    assert data_ptr(back) == data_ptr(x)
    np.testing.assert_array_equal(dense_of(back), ref)


@pytest.mark.parametrize("framework", list(CONVERT))
def test_same_framework_is_identity_unless_copied(framework, x64):
    x = make_dense(framework, reference("float64"))
    assert data_ptr(CONVERT[framework](x)) == data_ptr(x)
    assert data_ptr(CONVERT[framework](x, copy=False)) == data_ptr(x)
    c = CONVERT[framework](x, copy=True)
    assert data_ptr(c) != data_ptr(x)
    np.testing.assert_array_equal(dense_of(c), dense_of(x))


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool", "complex64", "uint8", "int8"])
@pytest.mark.parametrize("src,dst", list(itertools.permutations(CONVERT, 2)))
def test_32_bit_and_small_dtypes_need_no_x64(src, dst, dtype):
    ref = (reference("float32") > 0).astype(dtype) if dtype == "bool" else reference(dtype)
    x = make_dense(src, ref)
    out = CONVERT[dst](x, copy=False)
    assert data_ptr(out) == data_ptr(x)
    np.testing.assert_array_equal(dense_of(out), ref)


@pytest.mark.parametrize("shape", [(), (1,), (7,), (2, 3, 4), (1, 1, 5)])
@pytest.mark.parametrize("src,dst", list(itertools.permutations(CONVERT, 2)))
def test_shapes(src, dst, shape):
    ref = reference("float32", shape)
    out = CONVERT[dst](make_dense(src, ref))
    assert tuple(out.shape) == shape
    np.testing.assert_array_equal(dense_of(out), ref)


@pytest.mark.parametrize("fn", [bridge.to_torch, bridge.to_jax, bridge.to_numpy, bridge.to_scipy])
def test_unknown_input_is_a_type_error(fn):
    with pytest.raises(TypeError, match="list"):
        fn([1.0, 2.0])


def test_to_scipy_rejects_dense():
    with pytest.raises(TypeError, match="sparse tensors only.*to_numpy"):
        bridge.to_scipy(torch.ones(3))


def test_to_numpy_rejects_sparse():
    with pytest.raises(TypeError, match="dense arrays only.*to_scipy"):
        bridge.to_numpy(torch.eye(3).to_sparse_csr())


@pytest.mark.parametrize("copy", ["yes", 0, 1])
def test_copy_must_be_none_or_bool(copy):
    with pytest.raises(TypeError, match="copy: expected None, True or False, got"):
        bridge.to_numpy(torch.ones(2), copy=copy)


def test_non_strided_torch_layout_is_rejected():
    with pytest.raises(TypeError, match="to_numpy"):
        bridge.to_numpy(torch.eye(3).to_sparse_csc())


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_to_cupy_without_cupy_names_the_extra():
    with pytest.raises(ImportError, match=r"sparsegradutils\[cupy\]"):
        bridge.to_cupy(torch.ones(2))


# ---------------------------------------------------------------- GPU (skipped without CUDA)
@pytest.mark.gpu
def test_cuda_torch_to_jax_same_gpu_zero_copy(x64):
    t = torch.arange(12.0, device="cuda:0", dtype=torch.float64).reshape(3, 4)
    a = bridge.to_jax(t, copy=False)
    (device,) = a.devices()
    assert device.platform == "gpu" and device.id == t.device.index
    assert data_ptr(a) == data_ptr(t)
    back = bridge.to_torch(a, copy=False)
    assert back.device == t.device and data_ptr(back) == data_ptr(t)


@pytest.mark.gpu
def test_cuda_torch_to_cupy_and_back_zero_copy():
    cupy = pytest.importorskip("cupy")
    t = torch.arange(12.0, device="cuda:0").reshape(3, 4)
    c = bridge.to_cupy(t, copy=False)
    assert isinstance(c, cupy.ndarray) and int(c.data.ptr) == data_ptr(t)
    assert data_ptr(bridge.to_torch(c, copy=False)) == data_ptr(t)


@pytest.mark.gpu
def test_cuda_to_numpy_copies_to_host_only_when_allowed():
    t = torch.arange(4.0, device="cuda:0")
    np.testing.assert_array_equal(bridge.to_numpy(t), np.arange(4.0))
    with pytest.raises(ValueError, match="GPU memory"):
        bridge.to_numpy(t, copy=False)
