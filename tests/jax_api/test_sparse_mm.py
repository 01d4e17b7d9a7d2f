"""jax_api.sparse_mm and the Pattern core: dense references, padding, jit/vmap/grad, backends."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import _xla_kernels as xla  # noqa: E402
from jax_api import sparse_mm  # noqa: E402
from jax_api._pattern import Pattern  # noqa: E402
from tests.helpers import (  # noqa: E402
    JAX_KINDS_2D,
    JAX_KINDS_3D,
    jax_padding_mask,
    jax_sparse,
    jax_sparse_grad_dense,
    jax_with_data,
)

TOL32 = {"rtol": 2e-5, "atol": 2e-5}


def _dense(shape, density=0.35, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal(shape) * (rng.random(shape) < density)
    D.reshape(-1)[0] = 1.0  # never empty
    return D


def _operands(shape=(7, 5), p=3, seed=0, vector=False):
    D = _dense(shape, seed=seed)
    rng = np.random.default_rng(seed + 1)
    bshape = (*shape[:-2], shape[-1]) if vector else (*shape[:-2], shape[-1], p)
    return D, rng.standard_normal(bshape)


def _loss_grads_dense(D, B, G):
    """Gradients of sum(G * (D @ B)): dD = G B^T (masked by the caller), dB = D^T G."""
    if B.ndim == D.ndim - 1:
        B, G = B[..., None], G[..., None]
        return np.einsum("...ik,...jk->...ij", G, B), np.einsum("...ji,...jk->...ik", D, G)[..., 0]
    return np.einsum("...ik,...jk->...ij", G, B), np.einsum("...ji,...jk->...ik", D, G)


@pytest.mark.parametrize("kind", JAX_KINDS_2D)
@pytest.mark.parametrize("vector", [False, True], ids=["block", "vector"])
def test_matches_dense_and_gradient_on_pattern(kind, vector):
    D, B = _operands(vector=vector)
    A = jax_sparse(D.astype(np.float32), kind)
    Bj = jnp.asarray(B, jnp.float32)
    Y = sparse_mm(A, Bj)
    assert Y.shape == (D @ B).shape and Y.dtype == jnp.float32
    np.testing.assert_allclose(Y, D @ B, **TOL32)

    G = np.random.default_rng(5).standard_normal(Y.shape)
    loss = lambda data, B: jnp.sum(
        jnp.asarray(G, jnp.float32) * sparse_mm(jax_with_data(A, data), B)
    )
    g_data, g_B = jax.jit(jax.grad(loss, (0, 1)))(A.data, Bj)
    dD, dB = _loss_grads_dense(D, B, G)
    assert g_data.shape == A.data.shape
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g_data), dD * (D != 0), **TOL32)
    np.testing.assert_allclose(g_B, dB, **TOL32)


@pytest.mark.parametrize("kind", JAX_KINDS_3D)
def test_batched_matrix(kind):
    D, B = _operands(shape=(3, 6, 4), seed=2)
    A = jax_sparse(D.astype(np.float32), kind)
    Bj = jnp.asarray(B, jnp.float32)
    np.testing.assert_allclose(jax.jit(sparse_mm)(A, Bj), D @ B, **TOL32)
    G = np.random.default_rng(3).standard_normal((3, 6, 3))
    loss = lambda data, B: jnp.sum(
        jnp.asarray(G, jnp.float32) * sparse_mm(jax_with_data(A, data), B)
    )
    g_data, g_B = jax.grad(loss, (0, 1))(A.data, Bj)
    dD, dB = _loss_grads_dense(D, B, G)
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g_data), dD * (D != 0), **TOL32)
    np.testing.assert_allclose(g_B, dB, **TOL32)


@pytest.mark.parametrize("kind", ["bcoo_unsorted", "bcsr_padded"])
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 4)], ids=["2d", "batched"])
def test_check_grads_float64(x64, kind, shape):
    if len(shape) == 3 and kind == "bcoo_unsorted":
        kind = "bcoo3"
    D, B = _operands(shape=shape, seed=4)
    A = jax_sparse(D, kind)
    assert A.dtype == jnp.float64
    f = lambda data, B: sparse_mm(jax_with_data(A, data), B)
    check_grads(f, (A.data, jnp.asarray(B)), order=1, modes=["rev"])


def test_vmap_over_dense_argument_folds_and_nests():
    D, _ = _operands()
    A = jax_sparse(D.astype(np.float32), "bcsr")
    Bs = np.random.default_rng(1).standard_normal((4, 2, 5, 3)).astype(np.float32)
    Y = jax.jit(jax.vmap(jax.vmap(sparse_mm, (None, 0)), (None, 0)))(A, jnp.asarray(Bs))
    np.testing.assert_allclose(Y, np.einsum("ij,abjk->abik", D, Bs), **TOL32)
    # gradient with respect to the shared matrix sums over the mapped axis
    g = jax.grad(
        lambda d: jnp.sum(jax.vmap(sparse_mm, (None, 0))(jax_with_data(A, d), Bs[0]) ** 2)
    )(A.data)
    Gs = 2 * np.einsum("ij,ajk->aik", D, Bs[0])
    ref = np.einsum("aik,ajk->ij", Gs, Bs[0]) * (D != 0)
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["bcoo", "bcsr"])
def test_vmap_over_matrices_sharing_a_pattern(kind):
    D, B = _operands()
    A = jax_sparse(D.astype(np.float32), kind)
    scale = jnp.asarray([1.0, -2.0, 0.5], jnp.float32)
    datas = scale[:, None] * A.data[None]
    f = lambda d: sparse_mm(jax_with_data(A, d), jnp.asarray(B, jnp.float32))
    Y = jax.jit(jax.vmap(f))(datas)
    np.testing.assert_allclose(Y, np.asarray(scale)[:, None, None] * (D @ B), **TOL32)
    g = jax.vmap(jax.grad(lambda d: jnp.sum(f(d))))(datas)
    for i in range(3):
        ref = np.ones((7, 3)) @ B.T * (D != 0)
        np.testing.assert_allclose(jax_sparse_grad_dense(A, g[i]), ref, **TOL32)


def test_vmap_over_matrices_with_different_patterns():
    Ds = np.stack([_dense((7, 5), seed=s) for s in range(3)]).astype(np.float32)
    nse = int(max(np.count_nonzero(d) for d in Ds))
    As = [BCOO.fromdense(jnp.asarray(d), nse=nse) for d in Ds]
    data = jnp.stack([a.data for a in As])
    idx = jnp.stack([a.indices for a in As])
    B = np.random.default_rng(0).standard_normal((3, 5, 2)).astype(np.float32)

    def f(d, i, B):
        return sparse_mm(BCOO((d, i), shape=(7, 5)), B)

    np.testing.assert_allclose(jax.jit(jax.vmap(f))(data, idx, B), Ds @ B, **TOL32)
    g_data, g_B = jax.vmap(jax.grad(lambda d, i, B: jnp.sum(f(d, i, B) ** 2), (0, 2)))(data, idx, B)
    for k in range(3):
        G = 2 * Ds[k] @ B[k]
        np.testing.assert_allclose(
            jax_sparse_grad_dense(As[k], g_data[k]), G @ B[k].T * (Ds[k] != 0), rtol=1e-4, atol=1e-4
        )
        np.testing.assert_allclose(g_B[k], Ds[k].T @ G, rtol=1e-4, atol=1e-4)


def test_equinox_filter_grad_over_a_module():
    D, B = _operands()

    class Layer(eqx.Module):
        A: BCSR

        def __call__(self, x):
            return sparse_mm(self.A, x)

    layer = Layer(jax_sparse(D.astype(np.float32), "bcsr"))
    grads = eqx.filter_grad(lambda m, x: jnp.sum(m(x)))(layer, jnp.asarray(B, jnp.float32))
    assert isinstance(grads.A, BCSR) and grads.A.data.shape == layer.A.data.shape
    ref = np.ones((7, 3)) @ B.T * (D != 0)
    np.testing.assert_allclose(jax_sparse_grad_dense(layer.A, grads.A.data), ref, **TOL32)


def test_padding_values_are_ignored_and_get_zero_gradient():
    D, B = _operands()
    A = jax_sparse(D.astype(np.float32), "bcoo_padded")
    pad = jax_padding_mask(A)
    assert pad.any() and np.all(np.asarray(A.data)[pad] == 7.5)
    np.testing.assert_allclose(sparse_mm(A, jnp.asarray(B, jnp.float32)), D @ B, **TOL32)
    g = jax.grad(lambda d: jnp.sum(sparse_mm(jax_with_data(A, d), jnp.asarray(B, jnp.float32))))(
        A.data
    )
    assert np.all(np.asarray(g)[pad] == 0)


def test_empty_matrix():
    A = BCOO((jnp.zeros((0,), jnp.float32), jnp.zeros((0, 2), jnp.int32)), shape=(4, 3))
    B = jnp.ones((3, 2), jnp.float32)
    np.testing.assert_array_equal(sparse_mm(A, B), np.zeros((4, 2)))
    g_data, g_B = jax.grad(lambda d, B: jnp.sum(sparse_mm(jax_with_data(A, d), B)), (0, 1))(
        A.data, B
    )
    assert g_data.shape == (0,)
    np.testing.assert_array_equal(g_B, np.zeros((3, 2)))


@pytest.mark.parametrize("kind", ["bcoo_unsorted", "bcsr_padded", "bcoo3"])
def test_xla_backend_matches_torch_backend(kind):
    """The non-CPU code path (XLA gather/scatter, blocked SDDMM, sort-based transpose)."""
    shape = (2, 6, 5) if kind == "bcoo3" else (7, 5)
    D = _dense(shape, seed=3).astype(np.float32)
    A = jax_sparse(D, kind)
    pattern, values = Pattern.of(A)
    N, M = pattern.csr_shape
    rng = np.random.default_rng(0)
    B = jnp.asarray(rng.standard_normal((M, 3)), jnp.float32)
    G = jnp.asarray(rng.standard_normal((N, 3)), jnp.float32)
    Dflat = np.asarray(pattern.todense(values))
    np.testing.assert_allclose(xla.spmm(pattern, values, B), Dflat @ np.asarray(B), **TOL32)
    np.testing.assert_allclose(xla.spmm(pattern, values, B), pattern.matmul(values, B), **TOL32)
    np.testing.assert_allclose(xla.sddmm(pattern, G, B), pattern.sddmm(G, B), **TOL32)
    crow_x, col_x, perm_x = xla.transpose(pattern)
    crow_t, col_t, perm = pattern.transpose()
    np.testing.assert_array_equal(crow_x, crow_t)
    np.testing.assert_array_equal(col_x, col_t)
    np.testing.assert_array_equal(perm_x, perm)
    t_pattern, t_perm = pattern.transposed()
    np.testing.assert_array_equal(t_pattern.crow, crow_t)
    np.testing.assert_array_equal(t_pattern.col, col_t)
    np.testing.assert_array_equal(t_perm, perm)
    assert t_pattern.csr_shape == (M, N)
    np.testing.assert_allclose(t_pattern.todense(values[perm]), Dflat.T, **TOL32)
    np.testing.assert_allclose(pattern.rmatmul(values, G), Dflat.T @ np.asarray(G), **TOL32)
    np.testing.assert_allclose(xla.rmatmul(pattern, values, G), Dflat.T @ np.asarray(G), **TOL32)


def test_sddmm_blocks_over_columns_without_nnz_by_p_temporary(monkeypatch):
    monkeypatch.setattr(xla, "_SDDMM_BLOCK_ELEMS", 8)  # force one column per block
    D = _dense((7, 5), seed=1).astype(np.float32)
    pattern, _ = Pattern.of(jax_sparse(D, "bcsr"))
    rng = np.random.default_rng(2)
    G, X = rng.standard_normal((7, 5)), rng.standard_normal((5, 5))
    got = xla.sddmm(pattern, jnp.asarray(G, jnp.float32), jnp.asarray(X, jnp.float32))
    rows, cols = np.nonzero(D)
    np.testing.assert_allclose(got[: len(rows)], (G @ X.T)[rows, cols], **TOL32)


# --------------------------------------------------------------------------------- bad inputs
def test_bad_inputs():
    D, B = _operands()
    A = jax_sparse(D.astype(np.float32), "bcoo")
    Bj = jnp.asarray(B, jnp.float32)
    with pytest.raises(
        TypeError,
        match=r"A: expected a jax.experimental.sparse BCOO or BCSR matrix, got a dense array",
    ):
        sparse_mm(jnp.asarray(D, jnp.float32), Bj)
    with pytest.raises(TypeError, match=r"B: expected a dense jax.Array, got a BCOO matrix"):
        sparse_mm(A, BCOO.fromdense(Bj))
    with pytest.raises(ValueError, match=r"B: expected 5 rows to match A's 5 columns"):
        sparse_mm(A, jnp.ones((4, 3), jnp.float32))
    with pytest.raises(
        ValueError, match=r"B: expected float32 or float64 values, got a dense array"
    ):
        sparse_mm(A, jnp.ones((5, 3), jnp.int32))
    with pytest.raises(ValueError, match=r"A: expected float32 or float64 values"):
        sparse_mm(BCOO.fromdense(jnp.ones((3, 3), jnp.int32)), jnp.ones((3, 1), jnp.int32))
    with pytest.raises(TypeError, match=r"A: expected a BCOO without dense dimensions"):
        sparse_mm(BCOO.fromdense(jnp.ones((3, 3, 2)), n_dense=1), Bj)
    with pytest.raises(ValueError, match=r"A: expected a 2 or 3-D sparse matrix"):
        sparse_mm(BCOO.fromdense(jnp.ones((2, 2, 3, 3))), Bj)
    with pytest.raises(ValueError, match=r"A: expected at most one batch dimension"):
        sparse_mm(BCOO.fromdense(jnp.ones((2, 3, 3)), n_batch=2), Bj)
    A3 = jax_sparse(_dense((2, 4, 5)).astype(np.float32), "bcsr")
    with pytest.raises(ValueError, match=r"B: expected batch size 2 to match A, got 3"):
        sparse_mm(A3, jnp.ones((3, 5, 1), jnp.float32))
    with pytest.raises(ValueError, match=r"B: expected a 2 or 3-D array"):
        sparse_mm(A3, jnp.ones((5,), jnp.float32))
    with pytest.raises(ValueError, match=r"B: expected an array JAX can hold without a downcast"):
        sparse_mm(A, np.ones((5, 3)))  # float64 NumPy while x64 is off


def test_dtype_mismatch_is_not_cast(x64):
    A = jax_sparse(_dense((4, 5)).astype(np.float32), "bcsr")
    with pytest.raises(
        ValueError, match=r"B: expected dtype float32 to match A, got float64; cast"
    ):
        sparse_mm(A, jnp.ones((5, 2), jnp.float64))
