"""jax_api direct solves and log-determinants: dense references, every transformation, real
SuiteSparse matrices, refusals eagerly and under jit, and the same numbers as torch_api."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import (  # noqa: E402
    sparse_cholesky_solve,
    sparse_logdet,
    sparse_lu_solve,
    sparse_slogdet,
)
from tests.helpers import jax_sparse, jax_sparse_grad_dense, jax_with_data  # noqa: E402

MATRICES = Path(__file__).resolve().parents[2].parent / "shared" / "matrices"


def _general(n=6, seed=0):
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.4)
    return R + 3 * np.eye(n)


def _spd(n=6, seed=0):
    M = _general(n, seed)
    return M @ M.T + np.eye(n)


OPS = {"cholesky": (sparse_cholesky_solve, _spd), "lu": (sparse_lu_solve, _general)}


def _mirror(A):
    """For each stored entry of a 2-D BCOO with a symmetric pattern, its transpose's index."""
    idx = np.asarray(A.indices)
    n = A.shape[0]
    key = idx[:, 0] * n + idx[:, 1]
    order = np.argsort(key)
    return order[np.searchsorted(key[order], idx[:, 1] * n + idx[:, 0])]


@pytest.mark.parametrize("kind", OPS)
@pytest.mark.parametrize("layout", ["bcoo_unsorted", "bcsr_padded", "bcoo"])
def test_solve_matches_dense_under_jit_and_grad(x64, kind, layout):
    op, make = OPS[kind]
    D = make(seed=1)
    rng = np.random.default_rng(2)
    B, G = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    A = jax_sparse(D, layout)
    X = op(A, jnp.asarray(B))
    np.testing.assert_allclose(X, np.linalg.solve(D, B), rtol=1e-10, atol=1e-12)
    loss = lambda d, b: jnp.sum(jnp.asarray(G) * op(jax_with_data(A, d), b))
    gd, gB = jax.jit(jax.grad(loss, (0, 1)))(A.data, jnp.asarray(B))
    dB = np.linalg.solve(D.T, G)
    dA = -dB @ np.linalg.solve(D, B).T
    np.testing.assert_allclose(gB, dB, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(jax_sparse_grad_dense(A, gd), dA * (D != 0), rtol=1e-9,
                               atol=1e-12)


def test_solve_float32_batched_and_vector():
    D = np.stack([_general(5, 3) + i * np.eye(5) for i in range(3)])
    A = BCOO.fromdense(jnp.asarray(D, jnp.float32), n_batch=1)
    b = np.random.default_rng(4).standard_normal((3, 5))
    x = sparse_lu_solve(A, jnp.asarray(b, jnp.float32))
    assert x.dtype == jnp.float32 and x.shape == (3, 5)
    np.testing.assert_allclose(x, np.linalg.solve(D, b[..., None])[..., 0], rtol=1e-4,
                               atol=1e-5)


def test_lu_solve_any_order_and_transformations(x64):
    D = _general(5, seed=5)
    A = BCSR.fromdense(jnp.asarray(D))
    B = jnp.asarray(np.random.default_rng(6).standard_normal((5, 2)))
    f = lambda d, b: sparse_lu_solve(jax_with_data(A, d), b)
    check_grads(f, (A.data, B), order=2, modes=("fwd", "rev"))
    # jacfwd in B is the dense inverse; vmap over right-hand sides; linear_transpose in B
    J = jax.jacfwd(lambda b: f(A.data, b))(B[:, 0])
    np.testing.assert_allclose(J, np.linalg.inv(D), rtol=1e-10, atol=1e-12)
    Bs = jnp.stack([B, 2 * B])
    np.testing.assert_allclose(jax.vmap(lambda b: f(A.data, b))(Bs),
                               np.linalg.solve(D, np.asarray(Bs)), rtol=1e-10, atol=1e-12)
    (T,) = jax.linear_transpose(lambda b: f(A.data, b), B)(jnp.ones_like(B))
    np.testing.assert_allclose(T, np.linalg.solve(D.T, np.ones((5, 2))), rtol=1e-10)
    # vmap over matrices (A.data batched)
    datas = jnp.stack([A.data, 1.5 * A.data])
    got = jax.vmap(lambda d: f(d, B))(datas)
    np.testing.assert_allclose(got[1], np.linalg.solve(1.5 * D, np.asarray(B)), rtol=1e-10)


def test_cholesky_solve_second_order_on_symmetric_perturbations(x64):
    D = _spd(5, seed=7)
    A = BCOO.fromdense(jnp.asarray(D))
    mirror = _mirror(A)
    B = jnp.asarray(np.random.default_rng(8).standard_normal((5, 2)))
    f = lambda d, b: sparse_cholesky_solve(jax_with_data(A, (d + d[mirror]) / 2), b)
    check_grads(f, (A.data, B), order=2, modes=("fwd", "rev"))
    # Hessian of a quadratic loss in B: 2 A^{-T} A^{-1}
    H = jax.hessian(lambda b: jnp.sum(f(A.data, b) ** 2))(B[:, 0])
    Ai = np.linalg.inv(D)
    np.testing.assert_allclose(H, 2 * Ai.T @ Ai, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("layout", ["bcoo_unsorted", "bcsr_padded"])
def test_logdet_and_slogdet_match_dense(x64, layout):
    for D, fn in ((_spd(6, 9), sparse_logdet),
                  (-_general(6, 9), lambda A: sparse_slogdet(A).logabsdet)):
        A = jax_sparse(D, layout)
        np.testing.assert_allclose(fn(A), np.linalg.slogdet(D)[1], rtol=1e-12)
        g = jax.jit(jax.grad(lambda d, A=A, fn=fn: fn(jax_with_data(A, d))))(A.data)
        np.testing.assert_allclose(jax_sparse_grad_dense(A, g), np.linalg.inv(D).T * (D != 0),
                                   rtol=1e-9, atol=1e-12)
    sign, _ = sparse_slogdet(jax_sparse(-_general(5, 10), "bcsr"))
    assert float(sign) == np.linalg.slogdet(-_general(5, 10))[0]


def test_logdet_forward_mode_vmap_and_batched(x64):
    D = _general(5, 11)
    A = BCSR.fromdense(jnp.asarray(D))
    f = lambda d: sparse_slogdet(jax_with_data(A, d)).logabsdet
    check_grads(f, (A.data,), order=1, modes=("fwd", "rev"))
    np.testing.assert_allclose(jax.jacfwd(f)(A.data), jax.grad(f)(A.data), rtol=1e-12)
    got = jax.vmap(f)(jnp.stack([A.data, 2 * A.data]))
    np.testing.assert_allclose(got, [np.linalg.slogdet(D)[1], np.linalg.slogdet(2 * D)[1]])
    S = np.stack([_spd(4, 12) + i * np.eye(4) for i in range(3)])
    Ab = BCOO.fromdense(jnp.asarray(S), n_batch=1)
    np.testing.assert_allclose(sparse_logdet(Ab), np.linalg.slogdet(S)[1], rtol=1e-12)
    gb = jax.grad(lambda d: jnp.sum(sparse_logdet(jax_with_data(Ab, d))))(Ab.data)
    np.testing.assert_allclose(jax_sparse_grad_dense(Ab, gb),
                               np.linalg.inv(S).transpose(0, 2, 1) * (S != 0), rtol=1e-9)


def test_logdet_second_derivative_is_refused(x64):
    A = BCSR.fromdense(jnp.asarray(_spd(4, 13)))
    f = lambda d: sparse_slogdet(jax_with_data(A, d)).logabsdet
    with pytest.raises(NotImplementedError, match="second derivative of a log-determinant"):
        jax.hessian(f)(A.data)


def _real(name):
    if not MATRICES.is_dir():
        pytest.skip(f"the SuiteSparse matrices are not at {MATRICES}")
    return np.asarray(scipy.io.mmread(MATRICES / f"{name}.mtx").toarray(), np.float64)


@pytest.mark.parametrize("name,kind", [("494_bus", "cholesky"), ("west0479", "lu")])
def test_real_matrices(x64, name, kind):
    D = _real(name)
    A = BCSR.fromdense(jnp.asarray(D))
    b = np.random.default_rng(0).standard_normal(D.shape[0])
    x = OPS[kind][0](A, jnp.asarray(b))
    assert np.linalg.norm(D @ np.asarray(x) - b) <= 1e-8 * np.linalg.norm(D) * np.linalg.norm(
        np.linalg.solve(D, b))
    fn = sparse_logdet if kind == "cholesky" else (lambda M: sparse_slogdet(M).logabsdet)
    g = jax.grad(lambda d: fn(jax_with_data(A, d)))(A.data)
    Z = np.linalg.inv(D).T
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g), Z * (D != 0), rtol=1e-6,
                               atol=1e-9 * np.abs(Z).max())


def test_refusals_eager_and_under_jit(x64):
    b = jnp.ones(4)
    indefinite = BCSR.fromdense(jnp.asarray(_spd(4) - 50 * np.eye(4)))
    nonsym = BCSR.fromdense(jnp.asarray(_general(4, 1) + np.triu(np.ones((4, 4)), 1)))
    singular = BCSR.fromdense(jnp.asarray([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError, match="A: expected a symmetric positive definite matrix, "
                                         "got a symmetric matrix that is not positive definite"):
        sparse_cholesky_solve(indefinite, b)
    with pytest.raises(ValueError, match="got a matrix with"):
        sparse_logdet(nonsym)
    with pytest.raises(ValueError, match="A: expected a nonsingular matrix"):
        sparse_lu_solve(singular, jnp.ones(2))
    with pytest.raises(ValueError, match="A: expected .*square"):
        sparse_lu_solve(BCOO.fromdense(jnp.ones((3, 4))), jnp.ones(3))
    with pytest.raises(TypeError, match="A: expected"):
        sparse_logdet(jnp.eye(3))
    with pytest.raises(ValueError, match="B"):
        sparse_lu_solve(BCSR.fromdense(jnp.asarray(_general(4))), jnp.ones(5))
    # under jit the values are unknown while tracing: the same message at run time
    with pytest.raises(Exception, match="not positive definite"):
        jax.jit(lambda d: sparse_cholesky_solve(jax_with_data(indefinite, d), b))(
            indefinite.data).block_until_ready()
    with pytest.raises(Exception, match="A: expected finite values"):
        jax.jit(lambda d: sparse_lu_solve(jax_with_data(singular, d), jnp.ones(2)))(
            singular.data.at[0].set(jnp.nan)).block_until_ready()


def test_same_numbers_as_torch_api(x64):
    torch = pytest.importorskip("torch")
    import torch_api

    for D, jfn, tfn in ((_spd(6, 14), sparse_logdet, torch_api.sparse_logdet),
                        (_general(6, 14), lambda M: sparse_slogdet(M).logabsdet,
                         lambda M: torch_api.sparse_slogdet(M).logabsdet)):
        A = BCSR.fromdense(jnp.asarray(D))
        T = torch.from_numpy(D).to_sparse_csr().requires_grad_()
        v = tfn(T)
        v.backward()
        np.testing.assert_allclose(jfn(A), v.item(), rtol=1e-13)
        g = jax.grad(lambda d, A=A, jfn=jfn: jfn(jax_with_data(A, d)))(A.data)
        np.testing.assert_allclose(g, T.grad.values().numpy(), rtol=1e-12, atol=1e-14)
    B = np.random.default_rng(15).standard_normal((6, 2))
    for jop, top, D in ((sparse_lu_solve, torch_api.sparse_lu_solve, _general(6, 16)),
                        (sparse_cholesky_solve, torch_api.sparse_cholesky_solve, _spd(6, 16))):
        x_t = top(torch.from_numpy(D).to_sparse_csr(), torch.from_numpy(B)).numpy()
        np.testing.assert_allclose(jop(BCSR.fromdense(jnp.asarray(D)), jnp.asarray(B)), x_t,
                                   rtol=1e-13, atol=1e-15)
