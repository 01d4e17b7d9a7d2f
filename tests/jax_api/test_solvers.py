"""jax_api iterative solvers: cg, bicgstab, gmres (JAX's), minres, lsmr (lax.while_loop)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402

from jax_api import ConvergenceWarning, SolveInfo, bicgstab, cg, gmres, lsmr, minres  # noqa: E402
from jax_api._pattern import Pattern  # noqa: E402
from jax_api._solvers._common import linear_matmul  # noqa: E402


def _matrix(kind: str, n=12, seed=0):
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.3)
    if kind == "spd":
        return R @ R.T + n * np.eye(n)
    if kind == "indefinite":  # symmetric, eigenvalues of both signs
        S = R + R.T
        return S + np.diag(np.where(np.arange(n) % 2 == 0, 6.0, -6.0))
    return R + (np.abs(R).sum(1).max() + 1) * np.eye(n)  # non-symmetric, diagonally dominant


def _as(A_dense, form):
    D = jnp.asarray(A_dense, jnp.float32)
    if form == "bcoo":
        return BCOO.fromdense(D)
    if form == "bcsr":
        return BCSR.fromdense(D)
    if form == "dense":
        return D
    return lambda x: D @ x


SQUARE = [
    (cg, "spd"),
    (bicgstab, "general"),
    (gmres, "general"),
    (minres, "spd"),
    (minres, "indefinite"),
]
IDS = ["cg", "bicgstab", "gmres", "minres_spd", "minres_indefinite"]


@pytest.mark.parametrize("solver,kind", SQUARE, ids=IDS)
@pytest.mark.parametrize("form", ["bcoo", "bcsr", "dense", "callable"])
def test_square_solvers_match_dense_solve(solver, kind, form):
    M = _matrix(kind)
    B = np.random.default_rng(1).standard_normal((12, 3))
    A = _as(M, form)
    if callable(A):
        X, info = jax.jit(lambda B: solver(A, B, tol=1e-6))(jnp.asarray(B, jnp.float32))
    else:
        X, info = jax.jit(lambda A, B: solver(A, B, tol=1e-6))(A, jnp.asarray(B, jnp.float32))
    np.testing.assert_allclose(X, np.linalg.solve(M, B), rtol=1e-4, atol=1e-4)
    assert isinstance(info, SolveInfo)
    assert info.converged.shape == (3,) and bool(info.converged.all())
    rel = np.linalg.norm(B - M @ np.asarray(X, np.float64), axis=0) / np.linalg.norm(B, axis=0)
    np.testing.assert_allclose(info.residual, rel, rtol=0.2, atol=2e-6)
    if solver is minres:
        assert np.all(np.asarray(info.iterations) >= 1)
    else:
        assert np.all(np.asarray(info.iterations) == -1)  # JAX's solvers do not count


@pytest.mark.parametrize("solver,kind", SQUARE[:4], ids=IDS[:4])
def test_vector_rhs_and_columns_are_independent(solver, kind):
    M = _matrix(kind)
    B = np.random.default_rng(2).standard_normal((12, 2)).astype(np.float32)
    A = BCSR.fromdense(jnp.asarray(M, jnp.float32))
    X, _ = solver(A, jnp.asarray(B), tol=1e-6)
    x0, info0 = solver(A, jnp.asarray(B[:, 0]), tol=1e-6)
    assert x0.shape == (12,) and info0.converged.shape == ()
    np.testing.assert_allclose(X[:, 0], x0, rtol=1e-5, atol=1e-6)
    Xv, _ = jax.vmap(lambda b: solver(A, b, tol=1e-6), in_axes=1, out_axes=(1, 0))(jnp.asarray(B))
    np.testing.assert_allclose(Xv, X, rtol=1e-5, atol=1e-6)


def test_minres_float64_precision_and_initial_guess(x64):
    M = _matrix("indefinite", n=10, seed=3)
    B = np.random.default_rng(3).standard_normal((10, 2))
    X, info = minres(BCOO.fromdense(jnp.asarray(M)), jnp.asarray(B), tol=1e-12)
    np.testing.assert_allclose(X, np.linalg.solve(M, B), rtol=1e-9, atol=1e-10)
    exact = jnp.asarray(np.linalg.solve(M, B))
    _, info = minres(jnp.asarray(M), jnp.asarray(B), x0=exact, tol=1e-10)
    np.testing.assert_array_equal(info.iterations, [0, 0])


def test_preconditioner_is_used():
    M = _matrix("spd", n=30, seed=4) * np.logspace(0, 3, 30)[:, None] ** 0.5
    M = M @ M.T  # badly scaled SPD
    diag = jnp.asarray(np.diag(M), jnp.float32)
    A = BCSR.fromdense(jnp.asarray(M, jnp.float32))
    b = jnp.asarray(np.random.default_rng(0).standard_normal(30), jnp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, plain = minres(A, b, tol=1e-5, maxiter=15)
        _, jacobi = minres(A, b, tol=1e-5, maxiter=15, M=lambda r: r / diag)
    assert float(jacobi.residual) < float(plain.residual)


def test_lsmr_least_squares_and_minimum_norm(x64):
    rng = np.random.default_rng(5)
    T = rng.standard_normal((15, 6)) * (rng.random((15, 6)) < 0.5) + np.eye(15, 6)
    B = rng.standard_normal((15, 2))
    X, info = lsmr(
        BCOO.fromdense(jnp.asarray(T)), jnp.asarray(B), atol=1e-12, btol=1e-12, maxiter=100
    )
    np.testing.assert_allclose(X, np.linalg.lstsq(T, B, rcond=None)[0], rtol=1e-8, atol=1e-9)
    assert bool(info.converged.all()) and np.all(np.asarray(info.iterations) <= 100)
    # underdetermined: the minimum-norm solution, as the lstsq backward needs
    G = rng.standard_normal((6, 2))
    Z, _ = lsmr(
        BCSR.fromdense(jnp.asarray(T.T)), jnp.asarray(G), atol=1e-12, btol=1e-12, maxiter=100
    )
    np.testing.assert_allclose(Z, np.linalg.pinv(T.T) @ G, rtol=1e-8, atol=1e-9)
    # damping: ridge regression
    Xd, _ = lsmr(
        jnp.asarray(T), jnp.asarray(B[:, 0]), damp=0.7, atol=1e-12, btol=1e-12, maxiter=100
    )
    ridge = np.linalg.solve(T.T @ T + 0.49 * np.eye(6), T.T @ B[:, 0])
    np.testing.assert_allclose(Xd, ridge, rtol=1e-8, atol=1e-9)
    # a callable operator with its transpose
    Tj = jnp.asarray(T)
    Xc, _ = lsmr(
        lambda x: Tj @ x,
        jnp.asarray(B),
        rmatvec=lambda u: Tj.T @ u,
        n=6,
        atol=1e-12,
        btol=1e-12,
        maxiter=100,
    )
    np.testing.assert_allclose(Xc, X, rtol=1e-9, atol=1e-10)


def test_zero_rhs_needs_no_iterations():
    A = BCSR.fromdense(jnp.asarray(_matrix("spd"), jnp.float32))
    for solver in (minres, lsmr):
        X, info = solver(A, jnp.zeros((12, 2), jnp.float32))
        np.testing.assert_array_equal(X, np.zeros((12, 2)))
        np.testing.assert_array_equal(info.iterations, [0, 0])
        assert bool(info.converged.all())


@pytest.mark.parametrize("solver,kind", SQUARE[:4], ids=IDS[:4])
def test_nonconvergence_warns_and_is_flagged(solver, kind):
    A = BCSR.fromdense(jnp.asarray(_matrix(kind, n=30), jnp.float32))
    B = jnp.asarray(np.random.default_rng(6).standard_normal((30, 2)), jnp.float32)
    name = solver.__name__
    extra = {"restart": 2} if solver is gmres else {}
    with pytest.warns(
        ConvergenceWarning, match=rf"{name} \(2 of 2 right-hand sides\) did not converge"
    ):
        X, info = jax.jit(lambda A, B: solver(A, B, tol=1e-7, maxiter=1, **extra))(A, B)
        X.block_until_ready()
        jax.effects_barrier()
    assert not bool(info.converged.any())
    assert np.all(np.asarray(info.residual) > 1e-3)


def test_lsmr_iteration_cap_warns():
    rng = np.random.default_rng(7)
    T = rng.standard_normal((20, 10))
    with pytest.warns(
        ConvergenceWarning, match=r"lsmr \(1 of 1 right-hand sides\) did not converge"
    ):
        _, info = lsmr(
            jnp.asarray(T, jnp.float32),
            jnp.asarray(rng.standard_normal(20), jnp.float32),
            maxiter=2,
        )
        jax.effects_barrier()
    assert not bool(info.converged)
    assert int(info.iterations) == 2


def test_linear_matmul_is_transposable_and_batched():
    rng = np.random.default_rng(8)
    D = (rng.standard_normal((6, 4)) * (rng.random((6, 4)) < 0.5)).astype(np.float32)
    pattern, values = Pattern.of(BCSR.fromdense(jnp.asarray(D)))
    x = jnp.asarray(rng.standard_normal((4, 2)), jnp.float32)
    np.testing.assert_allclose(
        linear_matmul(pattern, values, x), D @ np.asarray(x), rtol=1e-5, atol=1e-6
    )
    u = jnp.asarray(rng.standard_normal((6, 2)), jnp.float32)
    (t,) = jax.linear_transpose(lambda x: linear_matmul(pattern, values, x), x)(u)
    np.testing.assert_allclose(t, D.T @ np.asarray(u), rtol=1e-5, atol=1e-6)
    xs = jnp.asarray(rng.standard_normal((3, 4, 2)), jnp.float32)
    ys = jax.jit(jax.vmap(lambda x: linear_matmul(pattern, values, x)))(xs)
    np.testing.assert_allclose(ys, D @ np.asarray(xs), rtol=1e-5, atol=1e-6)
    # the mapped axis anywhere (folded into columns where it lies), nested maps, mapped values
    want = np.einsum("ij,bjp->bip", D, np.asarray(xs))
    for axis in (0, 1, 2):
        ys = jax.jit(jax.vmap(lambda x: linear_matmul(pattern, values, x), in_axes=axis))(
            jnp.moveaxis(xs, 0, axis)
        )
        np.testing.assert_allclose(ys, want, rtol=1e-5, atol=1e-6)
    xss = jnp.stack([xs, 2 * xs])
    yss = jax.vmap(jax.vmap(lambda x: linear_matmul(pattern, values, x), in_axes=2, out_axes=2))(
        jnp.moveaxis(xss, 1, 3)
    )
    np.testing.assert_allclose(yss, np.moveaxis(np.stack([want, 2 * want]), 1, 3), rtol=1e-5,
                               atol=1e-5)
    scales = jnp.asarray([1.0, -2.0, 0.5], jnp.float32)
    ys = jax.vmap(lambda s, x: linear_matmul(pattern, s * values, x))(scales, xs)
    np.testing.assert_allclose(ys, np.asarray(scales)[:, None, None] * want, rtol=1e-5,
                               atol=1e-6)
    (ts,) = jax.vmap(lambda u: jax.linear_transpose(
        lambda x: linear_matmul(pattern, values, x), x)(u), in_axes=1, out_axes=1)(
        jnp.stack([u, -u], axis=1))
    np.testing.assert_allclose(ts[:, 1], -(D.T @ np.asarray(u)), rtol=1e-5, atol=1e-6)


def test_bad_inputs():
    A = BCSR.fromdense(jnp.asarray(_matrix("spd"), jnp.float32))
    b = jnp.ones(12, jnp.float32)
    with pytest.raises(
        TypeError,
        match=r"A: expected a 2-D BCOO/BCSR matrix, a dense 2-D jax.Array or a callable, "
        r"got an object of type builtins.str",
    ):
        cg("A", b)
    with pytest.raises(
        ValueError, match=r"B: expected 12 rows to match A's shape \(12, 12\), got shape \(11,\)"
    ):
        minres(A, jnp.ones(11, jnp.float32))
    with pytest.raises(
        ValueError, match=r"x0: expected a 1-D array, got a dense array of shape \(12, 1\)"
    ):
        bicgstab(A, b, x0=jnp.ones((12, 1), jnp.float32))
    with pytest.raises(ValueError, match=r"x0: expected shape \(12,\), got shape \(11,\)"):
        bicgstab(A, b, x0=jnp.ones(11, jnp.float32))
    with pytest.raises(ValueError, match=r"maxiter: expected a positive int or None, got 0"):
        minres(A, b, maxiter=0)
    with pytest.raises(TypeError, match=r"A: a callable A needs rmatvec"):
        lsmr(lambda x: x, b)
    with pytest.raises(ValueError, match=r"A: expected a 2-D sparse matrix \(vmap over a batch\)"):
        gmres(BCSR.fromdense(jnp.ones((2, 3, 3)), n_batch=1), jnp.ones(3))
    with pytest.raises(
        ValueError, match=r"B: expected a 1 or 2-D array, got a dense array of shape \(2, 12, 1\)"
    ):
        cg(A, jnp.ones((2, 12, 1), jnp.float32))
