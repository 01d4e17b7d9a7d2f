"""Property-based round trips (hypothesis): random shapes, dtypes, layouts, sparsity and paths
through the frameworks come back exactly (values, dtypes, pattern), and dense ones zero-copy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bridge
from tests.helpers import data_ptr, dense_of, make_sparse, sparse_parts

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALUE_DTYPES = [torch.float32, torch.float64, torch.int32, torch.int64]
SPARSE_TO = {"torch": bridge.to_torch, "jax": bridge.to_jax, "scipy": bridge.to_scipy}
DENSE_TO = {"torch": bridge.to_torch, "jax": bridge.to_jax, "numpy": bridge.to_numpy}


def random_sparse_dense(shape, density, dtype, seed):
    """A dense tensor with nonzero integer-valued entries on a random pattern, the same number of
    entries in every batch (torch's batched CSR needs that)."""
    g = torch.Generator().manual_seed(seed)
    *batch, n, m = shape
    k = round(density * n * m)
    mask = torch.zeros(int(np.prod(batch or [1])), n * m, dtype=torch.bool)
    for row in mask:
        row[torch.randperm(n * m, generator=g)[:k]] = True
    signs = 1 - 2 * (torch.rand(mask.shape, generator=g) < 0.5).long()
    values = torch.randint(1, 50, mask.shape, generator=g) * signs
    if dtype.is_floating_point:
        values = values / 8  # exact in binary floating point
    return (values * mask).to(dtype).reshape(shape)


@st.composite
def sparse_cases(draw):
    layout = draw(st.sampled_from([torch.sparse_coo, torch.sparse_csr]))
    batch = draw(st.sampled_from([(), (1,), (3,)]))
    shape = (*batch, draw(st.integers(0, 7)), draw(st.integers(0, 7)))
    dtype = draw(st.sampled_from(VALUE_DTYPES))
    idx = draw(st.sampled_from([torch.int32, torch.int64]))
    src = draw(st.sampled_from(list(SPARSE_TO)))
    path = draw(st.lists(st.sampled_from(list(SPARSE_TO)), min_size=1, max_size=3))
    D = random_sparse_dense(shape, draw(st.floats(0, 1)), dtype, draw(st.integers(0, 2**16)))
    return layout, D, idx, src, path


@SETTINGS
@given(sparse_cases())
def test_sparse_round_trips_are_exact(case):
    layout, D, idx, src, path = case
    coo, batched = layout == torch.sparse_coo, D.ndim == 3
    frameworks = {src, *path}
    assume(not (coo and idx == torch.int32 and src == "torch"))  # torch COO is int64 only
    assume(not (batched and "scipy" in frameworks and not coo))  # SciPy has no batched CSR
    assume(not (batched and coo and idx == torch.int32 and src == "scipy"))  # n-D: int64 only
    with jax.enable_x64(True):
        x = make_sparse(src, D, layout, idx)
        y = x
        for fw in [*path, src]:
            y = SPARSE_TO[fw](y)
        np.testing.assert_array_equal(dense_of(y), D.numpy())
        assert dense_of(y).dtype == D.numpy().dtype
        # int32 COO indices widen to int64 in torch COO and in SciPy's n-D COO
        widening = "torch" in frameworks or (batched and "scipy" in frameworks)
        widened = coo and idx == torch.int32 and widening
        before, after = sparse_parts(x), sparse_parts(y)
        index = "indices" if coo else "col_indices"
        expected_idx = "int64" if widened else str(idx).removeprefix("torch.")
        assert str(after[index].dtype).removeprefix("torch.") == expected_idx
        assert after["values"].shape == before["values"].shape  # no entry lost or invented


@st.composite
def dense_cases(draw):
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=4)))
    dtype = draw(st.sampled_from(["float32", "float64", "int32", "int64", "bool", "complex64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    ref = np.asarray(rng.standard_normal(shape) * 100).astype(dtype)
    src = draw(st.sampled_from(list(DENSE_TO)))
    path = draw(st.lists(st.sampled_from(list(DENSE_TO)), min_size=1, max_size=4))
    return ref, src, path


def _fresh(framework: str, ref: np.ndarray):
    if framework == "torch":
        return torch.from_numpy(ref).clone()
    if framework == "jax":
        return jnp.asarray(ref)
    return torch.from_numpy(ref).clone().numpy()  # 64-byte aligned, like torch's allocations


@SETTINGS
@given(dense_cases())
def test_dense_round_trips_are_exact_and_zero_copy(case):
    ref, src, path = case
    with jax.enable_x64(True):
        x = _fresh(src, ref)
        y = x
        for fw in [*path, src]:
            y = DENSE_TO[fw](y, copy=False)
        np.testing.assert_array_equal(dense_of(y), ref)
        assert dense_of(y).dtype == ref.dtype
        if ref.size:
            assert data_ptr(y) == data_ptr(x)
