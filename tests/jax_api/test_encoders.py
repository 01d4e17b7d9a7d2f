"""jax_api.PairwiseEncoder: the contract's entries, torch_api's output, gradients, jit/vmap."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import PairwiseEncoder  # noqa: E402
from tests.references import pairwise_dense  # noqa: E402

CASES = {
    "1d_indep": dict(radius=2, volume_shape=(1, 7)),
    "2d_intra": dict(radius=1, volume_shape=(2, 3, 4), channel_voxel_relation="intra"),
    "3d_inter": dict(radius=1.5, volume_shape=(2, 3, 2, 3), channel_voxel_relation="inter"),
}


def _values(enc, batch=None, seed=0, dtype=np.float32):
    shape = (len(enc.offsets), *enc.volume_shape)
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, shape if batch is None else (batch, *shape)).astype(dtype)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("upper", [None, True, False])
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_matches_contract(case, upper, layout):
    enc = PairwiseEncoder(**CASES[case], upper=upper, diag=upper is not None, layout=layout)
    v = _values(enc)
    A = enc(jnp.asarray(v))
    assert isinstance(A, BCOO if layout == "coo" else BCSR)
    S = enc.volume_numel
    assert A.shape == (S, S) and A.dtype == jnp.float32
    np.testing.assert_array_equal(A.todense(), pairwise_dense(v, enc.volume_shape, enc.offsets))
    if upper is not None:
        D = np.asarray(A.todense())
        np.testing.assert_array_equal(D, np.triu(D) if upper else np.tril(D))
        assert enc.offsets[0] == (0,) * len(enc.volume_shape)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_identical_to_torch_api(case, layout):
    torch = pytest.importorskip("torch")
    from torch_api.encoders import PairwiseEncoder as TorchEncoder

    kw = dict(CASES[case], upper=False, diag=True)
    enc = PairwiseEncoder(**kw, layout=layout)
    tenc = TorchEncoder(**kw, layout=torch.sparse_coo if layout == "coo" else torch.sparse_csr)
    assert list(enc.offsets) == [tuple(o) for o in tenc.offsets]
    np.testing.assert_array_equal(enc.value_index, tenc.value_index.numpy())
    v = _values(enc, batch=2)
    T = tenc(torch.from_numpy(v))
    A = enc(jnp.asarray(v))
    np.testing.assert_array_equal(A.todense(), T.to_dense().numpy())
    if layout == "coo":
        np.testing.assert_array_equal(enc.indices.T, tenc.indices.numpy())
        np.testing.assert_array_equal(A.data, T._values().numpy().reshape(2, -1))
    else:
        np.testing.assert_array_equal(enc.crow_indices, tenc.crow_indices.numpy())
        np.testing.assert_array_equal(enc.col_indices, tenc.col_indices.numpy())
        np.testing.assert_array_equal(enc.csr_permutation, tenc.csr_permutation.numpy())
        np.testing.assert_array_equal(A.data, T.values().numpy())


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_batched_layout(layout):
    enc = PairwiseEncoder(1, (2, 3, 3), layout=layout)
    v = _values(enc, batch=3)
    A = enc(jnp.asarray(v))
    assert A.shape == (3, 18, 18) and A.n_batch == 1
    for b in range(3):
        np.testing.assert_array_equal(A.todense()[b], enc(jnp.asarray(v[b])).todense())


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_gradient_matches_dense(x64, layout):
    enc = PairwiseEncoder(**CASES["2d_intra"], layout=layout)
    v = jnp.asarray(_values(enc, batch=2, dtype=np.float64))
    W = jnp.asarray(np.random.default_rng(1).standard_normal((2, enc.volume_numel, 3)))

    loss = lambda v: jnp.sum(jnp.sin(enc(v).todense() @ W))
    # the dense reference: the same entries scattered by index arithmetic from the contract
    dense = pairwise_dense(
        np.arange(v[0].size).reshape(v[0].shape) + 1.0, enc.volume_shape, enc.offsets
    )
    src = jnp.asarray(dense.astype(np.int64) - 1)
    ref = lambda v: jnp.sum(
        jnp.sin(jnp.where(src >= 0, v.reshape(2, -1)[:, jnp.maximum(src, 0)], 0.0) @ W)
    )
    np.testing.assert_allclose(jax.grad(loss)(v), jax.grad(ref)(v), rtol=1e-12, atol=1e-12)
    check_grads(lambda v: enc(v).data, (v,), order=1, modes=["rev"])


def test_jit_vmap_and_module_pytree():
    enc = PairwiseEncoder(1, (1, 4, 4), diag=True, upper=False, layout="csr")
    v = jnp.asarray(_values(enc, batch=3))
    f = eqx.filter_jit(lambda e, v: e(v).todense())
    np.testing.assert_array_equal(f(enc, v[0]), enc(v[0]).todense())
    out = jax.vmap(lambda x: enc(x).todense())(v)
    np.testing.assert_array_equal(out, enc(v).todense())
    # the module's only leaves are integer index arrays: nothing to differentiate in it
    floats = eqx.filter(enc, eqx.is_inexact_array)
    assert jax.tree_util.tree_leaves(floats) == []


def test_index_dtypes(x64):
    enc = PairwiseEncoder(1, (1, 3, 3), layout="csr", indices_dtype=jnp.int64)
    A = enc(jnp.ones((len(enc.offsets), 1, 3, 3)))
    assert A.indices.dtype == A.indptr.dtype == jnp.int64 and A.dtype == jnp.float64
    enc = PairwiseEncoder(1, (1, 3, 3), layout=BCOO)
    assert enc.indices.dtype == jnp.int32


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(radius=0.5, volume_shape=(1, 4)), ValueError, "radius: expected a number >= 1"),
        (dict(radius=1, volume_shape=(4,)), ValueError, "volume_shape: expected a tuple"),
        (dict(radius=1, volume_shape=(1, 0)), ValueError, "volume_shape: expected a tuple"),
        (
            dict(radius=1, volume_shape=(1, 4), channel_voxel_relation="intra"),
            ValueError,
            "channel_voxel_relation: 'intra' needs more than one channel",
        ),
        (
            dict(radius=1, volume_shape=(2, 4), channel_voxel_relation="x"),
            ValueError,
            "channel_voxel_relation: expected one of",
        ),
        (
            dict(radius=1, volume_shape=(1, 4), layout="csc"),
            TypeError,
            "layout: expected 'coo', 'csr', BCOO or BCSR",
        ),
        (
            dict(radius=1, volume_shape=(1, 4), indices_dtype=jnp.float32),
            ValueError,
            "indices_dtype: expected int32 or int64",
        ),
        (
            dict(radius=1, volume_shape=(1, 4), upper="yes"),
            ValueError,
            "upper: expected True, False or None",
        ),
    ],
)
def test_bad_constructor_args(kwargs, err, match):
    with pytest.raises(err, match=match):
        PairwiseEncoder(**kwargs)


def test_bad_values_and_int64_without_x64():
    enc = PairwiseEncoder(1, (1, 4))
    with pytest.raises(ValueError, match=r"values: expected shape \(2, 1, 4\)"):
        enc(jnp.ones((3, 1, 4)))
    with pytest.raises(ValueError, match="values: expected a 3 or 4-D array"):
        enc(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="values: expected float32 or float64 values"):
        enc(jnp.ones((2, 1, 4), jnp.int32))
    with pytest.raises(TypeError, match="values: expected a dense jax.Array"):
        enc(BCOO.fromdense(jnp.ones((2, 1, 4))))
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match="indices_dtype: expected a dtype JAX can hold now"):
            PairwiseEncoder(1, (1, 4), indices_dtype=np.int64)
