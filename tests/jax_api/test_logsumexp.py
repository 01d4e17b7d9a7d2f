"""jax_api.sparse_logsumexp / sparse_bidir_logsumexp against dense references and torch_api."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import sparse_bidir_logsumexp, sparse_logsumexp  # noqa: E402
from tests.helpers import check_logsumexp_argument_errors  # noqa: E402


def _dense(shape, seed=0, density=0.4, scale=1.0):
    """Random matrix with an all-implicit row and column in every batch item."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal(shape) * scale * (rng.random(shape) < density)
    D[..., 1, :] = 0.0
    D[..., :, 2] = 0.0
    return D


def _sparse(D, kind, nse=None):
    n_batch = D.ndim - 2 if kind in ("bcoo_batched", "bcsr") else 0
    cls = BCSR if kind == "bcsr" else BCOO
    return cls.fromdense(jnp.asarray(D), n_batch=n_batch, nse=nse)


def _ref(D, dims, include_zeros):
    D = jnp.asarray(D)
    x = D if include_zeros else jnp.where(D != 0, D, -jnp.inf)
    return logsumexp(x, axis=dims)


KINDS = ["bcoo", "bcoo_batched", "bcsr"]
DIMS_2D = [0, 1, -1, (0, 1)]
DIMS_3D = [0, 1, -1, (0, 2)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("include_zeros", [True, False], ids=["zeros", "stored"])
def test_matches_dense_2d_and_batched(kind, include_zeros):
    for shape, all_dims in (((5, 6), DIMS_2D), ((3, 5, 6), DIMS_3D)):
        D = _dense(shape).astype(np.float32)
        A = _sparse(D, kind)
        for dims in all_dims:
            got = sparse_logsumexp(A, dims, include_zeros=include_zeros)
            want = _ref(D, dims, include_zeros)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
            assert got.dtype == jnp.float32
            kept = sparse_logsumexp(A, dims, keepdim=True, include_zeros=include_zeros)
            assert kept.shape == jnp.expand_dims(want, dims).shape


def test_empty_line_without_zeros_is_minus_inf():
    D = _dense((4, 5))
    out = sparse_logsumexp(_sparse(D.astype(np.float32), "bcsr"), 1, include_zeros=False)
    assert out[1] == -np.inf
    assert np.isfinite(np.asarray(out)[[0, 2, 3]]).all()


def test_padding_duplicates_and_stored_zeros():
    D = _dense((5, 6), seed=1).astype(np.float32)
    for kind in KINDS[::2]:  # BCOO and BCSR, with extra padded slots
        A = _sparse(D, kind, nse=int((D != 0).sum()) + 4)
        for z in (True, False):
            np.testing.assert_allclose(
                sparse_logsumexp(A, 1, include_zeros=z), _ref(D, 1, z), rtol=1e-6, atol=1e-6
            )
    # duplicate indices are summed (as densifying does); a stored zero counts as a stored value
    idx = jnp.array([[0, 0], [0, 0], [1, 1], [2, 0]])
    data = jnp.array([1.0, 2.0, 0.0, 5.0])
    A = BCOO((data, idx), shape=(3, 2))
    np.testing.assert_allclose(
        sparse_logsumexp(A, 1, include_zeros=False), [3.0, 0.0, 5.0], rtol=1e-6
    )
    np.testing.assert_allclose(sparse_logsumexp(A, 1), logsumexp(A.todense(), axis=1), rtol=1e-6)


def test_large_values_are_stable():
    D = _dense((4, 5), seed=2, scale=1000.0).astype(np.float32)
    for z in (True, False):
        got = sparse_logsumexp(_sparse(D, "bcoo"), 0, include_zeros=z)
        np.testing.assert_allclose(got, _ref(D, 0, z), rtol=1e-6)
        assert not np.isnan(np.asarray(got)).any()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("include_zeros", [True, False], ids=["zeros", "stored"])
def test_grad_on_data_matches_dense(x64, kind, include_zeros):
    D = _dense((2, 5, 6), seed=3) if kind != "bcoo" else _dense((5, 6), seed=3)
    A = _sparse(D, kind, nse=None)
    mask = jnp.asarray(D != 0)
    if kind == "bcsr":
        rebuild = lambda data: BCSR((data, A.indices, A.indptr), shape=A.shape)
    else:
        rebuild = lambda data: BCOO((data, A.indices), shape=A.shape)

    def loss(data):
        outs = sparse_bidir_logsumexp(rebuild(data), include_zeros=include_zeros)
        return sum(jnp.sum(jnp.sin(o) * jnp.isfinite(o)) for o in outs)

    def dense_loss(data):
        X = rebuild(data).todense()
        X = X if include_zeros else jnp.where(mask, X, -jnp.inf)
        outs = logsumexp(X, axis=-2), logsumexp(X, axis=-1)
        return sum(jnp.sum(jnp.where(jnp.isfinite(o), jnp.sin(o), 0.0)) for o in outs)

    got = jax.jit(jax.grad(loss))(A.data)
    np.testing.assert_allclose(got, jax.grad(dense_loss)(A.data), rtol=1e-10, atol=1e-12)
    f = lambda data: sparse_logsumexp(rebuild(data), -1, include_zeros=include_zeros)[..., 0]
    check_grads(f, (A.data,), order=1, modes=["rev"])


def test_padding_gets_zero_gradient(x64):
    D = _dense((4, 5), seed=4)
    A = BCOO.fromdense(jnp.asarray(D), nse=int((D != 0).sum()) + 3)
    g = jax.grad(lambda d: sparse_logsumexp(BCOO((d, A.indices), shape=A.shape), 0).sum())(A.data)
    np.testing.assert_array_equal(g[-3:], 0.0)
    assert np.isfinite(np.asarray(g)).all()


def test_vmap_shared_and_distinct_patterns():
    D = _dense((3, 5, 6), seed=5).astype(np.float32)
    As = [BCOO.fromdense(jnp.asarray(d), nse=12) for d in D]
    data = jnp.stack([A.data for A in As])
    indices = jnp.stack([A.indices for A in As])
    f = lambda d, i: sparse_logsumexp(BCOO((d, i), shape=(5, 6)), 1)
    got = jax.jit(jax.vmap(f))(data, indices)  # a different pattern per item
    np.testing.assert_allclose(got, _ref(D, 2, True), rtol=1e-6, atol=1e-6)
    got = jax.vmap(f, in_axes=(0, None))(data * 0 + As[0].data, As[0].indices)  # shared
    np.testing.assert_allclose(got[2], _ref(D[0], 1, True), rtol=1e-6, atol=1e-6)


def test_bidir_layouts():
    D = _dense((2, 4, 6), seed=6).astype(np.float32)
    A = _sparse(D, "bcsr")
    cols, rows = sparse_bidir_logsumexp(A, include_zeros=False)
    np.testing.assert_allclose(cols, _ref(D, 1, False), rtol=1e-6)
    np.testing.assert_allclose(rows, _ref(D, 2, False), rtol=1e-6)
    kc, kr = sparse_bidir_logsumexp(A, keepdim=True)
    assert kc.shape == (2, 1, 6) and kr.shape == (2, 4, 1)
    padded = sparse_bidir_logsumexp(A, output_layout="padded")
    assert padded.shape == (2, 2, 6)
    np.testing.assert_allclose(padded[0], _ref(D, 1, True), rtol=1e-6)
    np.testing.assert_allclose(padded[1, :, :4], _ref(D, 2, True), rtol=1e-6)
    np.testing.assert_array_equal(padded[1, :, 4:], -np.inf)


def test_matches_torch_api(x64):
    torch = pytest.importorskip("torch")
    import torch_api

    D = _dense((3, 5, 6), seed=7)
    T = torch.from_numpy(D).to_sparse_coo()
    for kind in ("bcoo", "bcsr"):
        A = _sparse(D, kind)
        for z in (True, False):
            for dims in (0, 2, (1, 2)):
                want = torch_api.sparse_logsumexp(T, dims, include_zeros=z).numpy()
                np.testing.assert_allclose(
                    sparse_logsumexp(A, dims, include_zeros=z), want, rtol=1e-12, atol=1e-12
                )
            want = torch_api.sparse_bidir_logsumexp(T, include_zeros=z, output_layout="padded")
            got = sparse_bidir_logsumexp(A, include_zeros=z, output_layout="padded")
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)


def test_bad_inputs():
    A = BCOO.fromdense(jnp.eye(3))
    with pytest.raises(TypeError, match="input: expected a jax.experimental.sparse BCOO or BCSR"):
        sparse_logsumexp(jnp.eye(3), 0)
    with pytest.raises(ValueError, match="input: expected float32 or float64 values"):
        sparse_logsumexp(BCOO.fromdense(jnp.eye(3, dtype=jnp.int32)), 0)
    with pytest.raises(ValueError, match=r"input: expected a 2 or 3-D sparse matrix"):
        sparse_logsumexp(BCOO.fromdense(jnp.ones(3)), 0)
    check_logsumexp_argument_errors(sparse_logsumexp, sparse_bidir_logsumexp, A, "nested",
                                    "output_layout: expected one of .* no nested")
