"""jax_api.sparse_triangular_solve: dense references, gradients on the pattern, checks, jit/vmap."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import sparse_triangular_solve  # noqa: E402
from tests.helpers import (  # noqa: E402
    JAX_KINDS_2D,
    JAX_KINDS_3D,
    jax_sparse,
    jax_sparse_grad_dense,
    jax_with_data,
)

TOL32 = {"rtol": 1e-4, "atol": 1e-5}


def _tri(n=7, upper=False, unit=False, batch=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, n) if batch is None else (batch, n, n)
    R = rng.standard_normal(shape) * (rng.random(shape) < 0.4)
    R = np.triu(R, 1) if upper else np.tril(R, -1)
    if not unit:
        R = R + np.eye(n) * (2.0 + np.abs(R).sum(-1, keepdims=True))
    return R


def _op(D, unit, transpose):
    M = D + np.eye(D.shape[-1]) if unit else D
    return np.swapaxes(M, -1, -2) if transpose else M


def _reference(D, B, G, unit, transpose):
    """X = op(A)^{-1} B and the dense gradients of sum(G * X) (dA masked by the caller)."""
    M = _op(D, unit, transpose)
    X = np.linalg.solve(M, B)
    dB = np.linalg.solve(np.swapaxes(M, -1, -2), G)
    dA = -np.einsum("...ik,...jk->...ij", dB, X)
    if transpose:
        dA = np.swapaxes(dA, -1, -2)
    return X, dA, dB


CASES = [  # (upper, unitriangular, transpose)
    (False, False, False),
    (True, False, False),
    (False, False, True),
    (True, False, True),
    (False, True, False),
    (True, True, True),
]


@pytest.mark.parametrize("upper,unit,transpose", CASES)
@pytest.mark.parametrize("kind", JAX_KINDS_2D)
def test_matches_dense_with_gradient(kind, upper, unit, transpose):
    D = _tri(upper=upper, unit=unit)
    rng = np.random.default_rng(1)
    B, G = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    A = jax_sparse(D.astype(np.float32), kind)
    opts = {"upper": upper, "unitriangular": unit, "transpose": transpose}
    X_ref, dA, dB = _reference(D, B, G, unit, transpose)

    X = sparse_triangular_solve(A, jnp.asarray(B, jnp.float32), **opts)
    np.testing.assert_allclose(X, X_ref, **TOL32)

    def loss(data, B):
        X = sparse_triangular_solve(jax_with_data(A, data), B, **opts)
        return jnp.sum(jnp.asarray(G, jnp.float32) * X)

    g_data, g_B = jax.jit(jax.grad(loss, (0, 1)))(A.data, jnp.asarray(B, jnp.float32))
    np.testing.assert_allclose(g_B, dB, **TOL32)
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g_data), dA * (D != 0), **TOL32)


@pytest.mark.parametrize("kind", JAX_KINDS_3D)
def test_batched_matrix_and_vector_rhs(kind):
    D = _tri(n=5, batch=3, seed=2)
    B = np.random.default_rng(0).standard_normal((3, 5))
    A = jax_sparse(D.astype(np.float32), kind)
    X = jax.jit(lambda A, B: sparse_triangular_solve(A, B, upper=False))(
        A, jnp.asarray(B, jnp.float32)
    )
    assert X.shape == (3, 5)
    np.testing.assert_allclose(X, np.linalg.solve(D, B[..., None])[..., 0], **TOL32)
    g = jax.grad(
        lambda d: jnp.sum(
            sparse_triangular_solve(jax_with_data(A, d), jnp.asarray(B, jnp.float32), upper=False)
        )
    )(A.data)
    _, dA, _ = _reference(D, B[..., None], np.ones((3, 5, 1)), False, False)
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g), dA * (D != 0), **TOL32)


@pytest.mark.parametrize("upper,unit,transpose", [(False, False, False), (True, True, True)])
@pytest.mark.parametrize("kind", ["bcoo_unsorted", "bcsr_padded"])
def test_check_grads_float64(x64, kind, upper, unit, transpose):
    D = _tri(n=6, upper=upper, unit=unit, seed=3)
    A = jax_sparse(D, kind)
    B = jnp.asarray(np.random.default_rng(4).standard_normal((6, 2)))
    f = lambda data, B: sparse_triangular_solve(
        jax_with_data(A, data), B, upper=upper, unitriangular=unit, transpose=transpose
    )
    check_grads(f, (A.data, B), order=1, modes=["rev"])


def test_check_grads_float64_batched(x64):
    D = _tri(n=4, batch=2, upper=True, seed=5)
    A = jax_sparse(D, "bcsr")
    B = jnp.asarray(np.random.default_rng(4).standard_normal((2, 4, 2)))
    f = lambda data, B: sparse_triangular_solve(jax_with_data(A, data), B, upper=True)
    check_grads(f, (A.data, B), order=1, modes=["rev"])


def test_vmap_over_rhs_and_over_matrices():
    D = _tri(n=6, seed=6)
    A = jax_sparse(D.astype(np.float32), "bcsr")
    Bs = np.random.default_rng(0).standard_normal((4, 6, 2)).astype(np.float32)
    solve = lambda A, B: sparse_triangular_solve(A, B, upper=False)
    X = jax.jit(jax.vmap(solve, (None, 0)))(A, jnp.asarray(Bs))
    np.testing.assert_allclose(X, np.linalg.solve(D, Bs), **TOL32)
    # a batch of matrices sharing the pattern
    scale = np.array([1.0, 2.0, -0.5], np.float32)
    datas = jnp.asarray(scale)[:, None] * A.data[None]
    X = jax.vmap(lambda d: solve(jax_with_data(A, d), jnp.asarray(Bs[0])))(datas)
    np.testing.assert_allclose(X, np.linalg.solve(scale[:, None, None] * D, Bs[0]), **TOL32)
    # matrices with different patterns (BCOO, equal nse)
    Ds = np.stack([_tri(n=6, seed=s) for s in range(3)]).astype(np.float32)
    nse = int(max(np.count_nonzero(d) for d in Ds))
    As = [BCOO.fromdense(jnp.asarray(d), nse=nse) for d in Ds]
    data, idx = jnp.stack([a.data for a in As]), jnp.stack([a.indices for a in As])

    def f(d, i, B):
        return solve(BCOO((d, i), shape=(6, 6)), B)

    np.testing.assert_allclose(
        jax.jit(jax.vmap(f))(data, idx, jnp.asarray(Bs[:3])), np.linalg.solve(Ds, Bs[:3]), **TOL32
    )
    g = jax.vmap(jax.grad(lambda d, i, B: jnp.sum(f(d, i, B)), (0, 2)))(
        data, idx, jnp.asarray(Bs[:3])
    )
    for k in range(3):
        _, dA, dB = _reference(Ds[k], Bs[k], np.ones((6, 2)), False, False)
        np.testing.assert_allclose(
            jax_sparse_grad_dense(As[k], g[0][k]), dA * (Ds[k] != 0), **TOL32
        )
        np.testing.assert_allclose(g[1][k], dB, **TOL32)


# ---------------------------------------------------------------------------------- checks
def test_wrong_side_entries_raise_eagerly_and_under_jit():
    D = _tri(n=5, upper=False)
    A = jax_sparse(D.astype(np.float32), "bcsr")
    B = jnp.ones((5, 1), jnp.float32)
    with pytest.raises(
        ValueError,
        match=r"A: expected an upper-triangular matrix \(upper=True\), got \d+ stored entries "
        r"below the diagonal, e.g. at \(\d+, \d+\)",
    ):
        sparse_triangular_solve(A, B, upper=True)
    # under jit the pattern is only known when the kernel runs: it checks and raises there
    with pytest.raises(Exception, match=r"A: expected an upper-triangular matrix"):
        jax.jit(lambda A, B: sparse_triangular_solve(A, B, upper=True))(A, B).block_until_ready()


def test_stored_diagonal_with_unitriangular_raises():
    D = _tri(n=5, upper=True)
    A = jax_sparse(D.astype(np.float32), "bcoo")
    with pytest.raises(
        ValueError,
        match=r"A: expected a strictly triangular matrix with unitriangular=True .* "
        r"got 5 stored diagonal entries",
    ):
        sparse_triangular_solve(A, jnp.ones(5, jnp.float32), unitriangular=True)
    with pytest.raises(Exception, match=r"got 5 stored diagonal entries"):
        jax.jit(
            lambda d: sparse_triangular_solve(
                jax_with_data(A, d), jnp.ones(5, jnp.float32), unitriangular=True
            )
        )(A.data).block_until_ready()


def test_singular_diagonal_raises():
    D = _tri(n=5, upper=True)
    D[2, 2] = 0.0  # not stored
    with pytest.raises(
        ValueError, match=r"expected a nonzero stored diagonal .* got 1 missing and 0 zero"
    ):
        sparse_triangular_solve(jax_sparse(D.astype(np.float32), "bcsr"), jnp.ones(5, jnp.float32))
    A = jax_sparse(_tri(n=5, upper=True).astype(np.float32), "bcoo")
    data = jnp.where((A.indices[:, 0] == A.indices[:, 1]) & (A.indices[:, 0] == 3), 0.0, A.data)
    with pytest.raises(ValueError, match=r"got 0 missing and 1 zero diagonal entries out of 5"):
        sparse_triangular_solve(jax_with_data(A, data), jnp.ones(5, jnp.float32))


def test_batched_wrong_side_reports_batch_position():
    D = _tri(n=4, batch=2, upper=True)
    D[1, 3, 0] = 1.0
    with pytest.raises(
        ValueError, match=r"1 stored entries below the diagonal, e.g. at \(1, 3, 0\)"
    ):
        sparse_triangular_solve(
            jax_sparse(D.astype(np.float32), "bcsr"), jnp.ones((2, 4), jnp.float32)
        )


def test_bad_arguments():
    A = jax_sparse(_tri(n=5).astype(np.float32), "bcsr")
    with pytest.raises(
        ValueError, match=r"A: expected a square matrix, got a BCOO matrix of shape \(5, 4\)"
    ):
        sparse_triangular_solve(BCOO.fromdense(jnp.ones((5, 4))), jnp.ones(4))
    with pytest.raises(ValueError, match=r"B: expected 5 rows to match A's 5 columns"):
        sparse_triangular_solve(A, jnp.ones((4, 2), jnp.float32), upper=False)
    with pytest.raises(TypeError, match=r"upper: expected a bool, got str 'yes'"):
        sparse_triangular_solve(A, jnp.ones(5, jnp.float32), upper="yes")
    with pytest.raises(
        TypeError,
        match=r"A: expected a jax.experimental.sparse BCOO or BCSR matrix, got a dense array",
    ):
        sparse_triangular_solve(jnp.eye(5), jnp.ones(5))
    with pytest.raises(
        TypeError, match=r"B: expected a dense jax.Array, got an object of type builtins.list"
    ):
        sparse_triangular_solve(A, [1.0] * 5, upper=False)
