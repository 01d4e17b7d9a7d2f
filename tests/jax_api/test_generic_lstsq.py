"""jax_api.sparse_generic_lstsq: least squares with the gradient on A's pattern."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import SolveInfo, sparse_generic_lstsq  # noqa: E402
from tests.helpers import jax_sparse, jax_sparse_grad_dense, jax_with_data  # noqa: E402

TIGHT = {"atol": 1e-12, "btol": 1e-12, "maxiter": 200}


def _tall(m=12, n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)) * (rng.random((m, n)) < 0.5) + 2 * np.eye(m, n)


def _dense_reference(T, B, G):
    """X = T^+ B and the gradients of sum(G * X), by differentiating the dense normal equations."""
    with jax.enable_x64(True):
        f = lambda T, B: jnp.sum(jnp.asarray(G) * jnp.linalg.solve(T.T @ T, T.T @ B))
        X = np.linalg.lstsq(T, B, rcond=None)[0]
        dT, dB = jax.grad(f, (0, 1))(jnp.asarray(T), jnp.asarray(B))
        return X, np.asarray(dT), np.asarray(dB)


@pytest.mark.parametrize("layout", ["bcoo", "bcoo_unsorted", "bcsr", "bcsr_padded"])
@pytest.mark.parametrize("vector", [False, True], ids=["block", "vector"])
def test_values_and_gradients_match_dense(x64, layout, vector):
    T = _tall()
    rng = np.random.default_rng(1)
    B = rng.standard_normal(12 if vector else (12, 2))  # inconsistent: r != 0
    G = rng.standard_normal(5 if vector else (5, 2))
    A = jax_sparse(T, layout)
    X_ref, dT, dB = _dense_reference(T, B, G)

    def loss(data, B):
        return jnp.sum(jnp.asarray(G) * sparse_generic_lstsq(jax_with_data(A, data), B, **TIGHT))

    np.testing.assert_allclose(
        sparse_generic_lstsq(A, jnp.asarray(B), **TIGHT), X_ref, rtol=1e-8, atol=1e-9
    )
    g_data, g_B = jax.jit(jax.grad(loss, (0, 1)))(A.data, jnp.asarray(B))
    np.testing.assert_allclose(g_B, dB, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(
        jax_sparse_grad_dense(A, g_data), dT * (T != 0), rtol=1e-7, atol=1e-8
    )


def test_check_grads_float64(x64):
    A = jax_sparse(_tall(m=9, n=4, seed=2), "bcsr")
    B = jnp.asarray(np.random.default_rng(2).standard_normal((9, 2)))
    f = lambda data, B: sparse_generic_lstsq(jax_with_data(A, data), B, **TIGHT)
    check_grads(f, (A.data, B), order=1, modes=["rev"])


def test_float32_jit_vmap_and_info():
    T = _tall(seed=3).astype(np.float32)
    A = jax_sparse(T, "bcoo")
    Bs = np.random.default_rng(3).standard_normal((3, 12)).astype(np.float32)
    X = jax.jit(jax.vmap(lambda b: sparse_generic_lstsq(A, b, maxiter=50), in_axes=0))(
        jnp.asarray(Bs)
    )
    ref = np.linalg.lstsq(T.astype(np.float64), Bs.T.astype(np.float64), rcond=None)[0].T
    np.testing.assert_allclose(X, ref, rtol=1e-3, atol=1e-4)
    X, info = sparse_generic_lstsq(A, jnp.asarray(Bs.T), return_info=True, maxiter=50)
    assert isinstance(info, SolveInfo) and info.converged.shape == (3,)
    assert bool(info.converged.all())
    # matrices sharing a pattern
    datas = jnp.asarray([1.0, 2.0], jnp.float32)[:, None] * A.data[None]
    g = jax.vmap(
        jax.grad(
            lambda d: jnp.sum(
                sparse_generic_lstsq(jax_with_data(A, d), jnp.asarray(Bs[0]), maxiter=50)
            )
        )
    )(datas)
    _, dT, _ = _dense_reference(2 * T.astype(np.float64), Bs[0].astype(np.float64), np.ones(5))
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g[1]), dT * (T != 0), rtol=2e-3, atol=2e-4)


def test_custom_solvers_receive_a_and_its_transpose(x64):
    T = _tall(seed=4)
    seen = []

    def dense_lstsq(M, R):
        seen.append(M.shape)
        D = M.todense()
        return jnp.linalg.pinv(D) @ R  # least squares / minimum norm

    A = BCSR.fromdense(jnp.asarray(T))
    B = jnp.asarray(np.random.default_rng(4).standard_normal(12))
    g = jax.grad(lambda d: jnp.sum(sparse_generic_lstsq(jax_with_data(A, d), B, dense_lstsq)))(
        A.data
    )
    _, dT, _ = _dense_reference(T, np.asarray(B), np.ones(5))
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g), dT * (T != 0), rtol=1e-8, atol=1e-9)
    # last: A^T z = G, A Y = z (the transposed normal solve); before it the forward and the
    # tangent's normal solve, traced (possibly more than once) while linearising
    assert seen[-2:] == [(5, 12), (12, 5)] and set(seen) == {(12, 5), (5, 12)}


def test_bad_inputs():
    A = jax_sparse(_tall().astype(np.float32), "bcoo")
    with pytest.raises(
        ValueError,
        match=r"A: expected a tall matrix \(m >= n, full column rank\), got shape \(5, 12\)",
    ):
        sparse_generic_lstsq(BCOO.fromdense(jnp.ones((5, 12))), jnp.ones(5))
    with pytest.raises(ValueError, match=r"B: expected 12 rows to match A's 12 rows"):
        sparse_generic_lstsq(A, jnp.ones(5, jnp.float32))
    with pytest.raises(TypeError, match=r"lstsq: expected a callable or None"):
        sparse_generic_lstsq(A, jnp.ones(12, jnp.float32), lstsq=3)
    with pytest.raises(ValueError, match=r"A: expected a 2-D sparse matrix"):
        sparse_generic_lstsq(BCOO.fromdense(jnp.ones((2, 4, 3)), n_batch=1), jnp.ones((2, 4)))


@pytest.mark.parametrize("layout", ["bcsr_padded"])
def test_any_order_forward_and_reverse(x64, layout):
    """check_grads to second order in both modes: the derivative is a custom_jvp built of
    transposable pieces (products and a normal-equations custom_linear_solve)."""
    T = _tall(9, 4, seed=5)
    A = jax_sparse(T, layout)
    B = jnp.asarray(np.random.default_rng(6).standard_normal((9, 2)))
    f = jax.jit(lambda d, b: sparse_generic_lstsq(jax_with_data(A, d), b, **TIGHT))
    check_grads(f, (A.data, B), order=2, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)


def test_hessian_in_the_values_matches_dense(x64):
    T = _tall(9, 4, seed=7)
    A = BCOO.fromdense(jnp.asarray(T))  # data: T's nonzeros in row-major order
    mask = T != 0
    B = jnp.asarray(np.random.default_rng(8).standard_normal((9, 2)))

    def dense_loss(t):
        Tm = jnp.zeros(T.shape).at[np.nonzero(mask)].set(t)
        return jnp.sum(jnp.linalg.solve(Tm.T @ Tm, Tm.T @ B) ** 2)

    loss = lambda d: jnp.sum(sparse_generic_lstsq(jax_with_data(A, d), B, **TIGHT) ** 2)
    H = jax.jit(jax.hessian(loss))(A.data)
    assert H.shape == (A.nse, A.nse)  # on the pattern: nnz x nnz, never (m n) x (m n)
    np.testing.assert_allclose(H, jax.hessian(dense_loss)(jnp.asarray(T[mask])), rtol=1e-6,
                               atol=1e-8)
