"""jax_api.sparse_generic_solve: implicit gradients on A's pattern for every solver."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import (  # noqa: E402
    ConvergenceWarning,
    SolveInfo,
    bicgstab,
    cg,
    gmres,
    minres,
    sparse_generic_solve,
)
from tests.helpers import jax_sparse, jax_sparse_grad_dense, jax_with_data  # noqa: E402

TOL32 = {"rtol": 1e-3, "atol": 1e-4}


def _matrix(kind: str, n=8, seed=0):
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.35)
    if kind == "spd":
        S = R + R.T
        return S + np.diag(np.abs(S).sum(1) + 1)
    return R + np.diag(np.abs(R).sum(1) + np.abs(R).sum(0) + 1)


def _reference(D, B, G):
    X = np.linalg.solve(D, B)
    dB = np.linalg.solve(D.T, G)
    return X, -dB @ X.T if X.ndim == 2 else -np.outer(dB, X), dB


SOLVERS = [(None, "spd"), (minres, "spd"), (cg, "spd"), (bicgstab, "general"), (gmres, "general")]
IDS = ["default_minres", "minres", "cg", "bicgstab", "gmres"]


@pytest.mark.parametrize("solver,kind", SOLVERS, ids=IDS)
@pytest.mark.parametrize("layout", ["bcoo_unsorted", "bcsr_padded"])
def test_values_and_gradients_match_dense(solver, kind, layout):
    D = _matrix(kind)
    rng = np.random.default_rng(1)
    B, G = rng.standard_normal((8, 2)), rng.standard_normal((8, 2))
    A = jax_sparse(D.astype(np.float32), layout)
    X_ref, dA, dB = _reference(D, B, G)

    def loss(data, B):
        X = sparse_generic_solve(jax_with_data(A, data), B, solver, tol=1e-6)
        return jnp.sum(jnp.asarray(G, jnp.float32) * X)

    X = sparse_generic_solve(A, jnp.asarray(B, jnp.float32), solver, tol=1e-6)
    np.testing.assert_allclose(X, X_ref, **TOL32)
    g_data, g_B = jax.jit(jax.grad(loss, (0, 1)))(A.data, jnp.asarray(B, jnp.float32))
    np.testing.assert_allclose(g_B, dB, **TOL32)
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g_data), dA * (D != 0), **TOL32)


@pytest.mark.parametrize(
    "solver,kind",
    [(minres, "spd"), (bicgstab, "general"), (gmres, "general")],
    ids=["minres", "bicgstab", "gmres"],
)
def test_check_grads_float64(x64, solver, kind):
    D = _matrix(kind, n=6, seed=2)
    A = jax_sparse(D, "bcsr")
    B = jnp.asarray(np.random.default_rng(3).standard_normal((6, 2)))
    f = lambda data, B: sparse_generic_solve(jax_with_data(A, data), B, solver, tol=1e-13)
    check_grads(f, (A.data, B), order=1, modes=["rev"])


def test_transpose_solve_receives_the_transpose():
    """A direct (dense) solver on a non-symmetric matrix: right only if the backward gets A^T."""
    D = _matrix("general", seed=4)
    calls = []

    def dense_solve(M, R):
        calls.append(type(M).__name__)
        return jnp.linalg.solve(M.todense(), R)

    A = BCOO.fromdense(jnp.asarray(D, jnp.float32))
    b = jnp.asarray(np.random.default_rng(4).standard_normal(8), jnp.float32)
    g = jax.grad(lambda d: jnp.sum(sparse_generic_solve(jax_with_data(A, d), b, dense_solve) ** 2))(
        A.data
    )
    x = np.linalg.solve(D, np.asarray(b, np.float64))
    dB = np.linalg.solve(D.T, 2 * x)
    np.testing.assert_allclose(jax_sparse_grad_dense(A, g), -np.outer(dB, x) * (D != 0), **TOL32)
    # the caller's layout, forward and backward (the compiled program may trace the forward
    # once more while differentiating it)
    assert set(calls) == {"BCOO"} and len(calls) in (2, 3)


def test_vmap_over_rhs_and_over_matrices():
    D = _matrix("general", seed=5)
    A = jax_sparse(D.astype(np.float32), "bcsr")
    Bs = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    solve = lambda A, b: sparse_generic_solve(A, b, bicgstab, tol=1e-6)
    X = jax.jit(jax.vmap(solve, (None, 0)))(A, jnp.asarray(Bs))
    np.testing.assert_allclose(X, np.linalg.solve(D, Bs.T).T, **TOL32)
    scale = np.array([1.0, 2.0, 4.0], np.float32)
    datas = jnp.asarray(scale)[:, None] * A.data[None]
    g = jax.vmap(jax.grad(lambda d: jnp.sum(solve(jax_with_data(A, d), jnp.asarray(Bs[0])))))(datas)
    for k in range(3):
        x = np.linalg.solve(scale[k] * D, Bs[0])
        dB = np.linalg.solve(scale[k] * D.T, np.ones(8))
        np.testing.assert_allclose(
            jax_sparse_grad_dense(A, g[k]), -np.outer(dB, x) * (D != 0), **TOL32
        )
    Ds = np.stack([_matrix("general", seed=s) for s in range(3)]).astype(np.float32)
    nse = int(max(np.count_nonzero(d) for d in Ds))
    As = [BCOO.fromdense(jnp.asarray(d), nse=nse) for d in Ds]
    data, idx = jnp.stack([a.data for a in As]), jnp.stack([a.indices for a in As])
    X = jax.vmap(lambda d, i, b: solve(BCOO((d, i), shape=(8, 8)), b))(data, idx, jnp.asarray(Bs))
    np.testing.assert_allclose(X, np.linalg.solve(Ds, Bs[..., None])[..., 0], **TOL32)


def test_return_info_and_array_kwargs_under_jit():
    D = _matrix("spd", seed=6)
    A = jax_sparse(D.astype(np.float32), "bcoo")
    B = jnp.asarray(np.random.default_rng(6).standard_normal((8, 2)), jnp.float32)
    x0 = jnp.asarray(np.linalg.solve(D, np.asarray(B)), jnp.float32)

    @jax.jit
    def run(A, B, x0):
        return sparse_generic_solve(A, B, minres, return_info=True, tol=1e-6, x0=x0)

    X, info = run(A, B, x0)
    assert isinstance(info, SolveInfo) and info.converged.shape == (2,)
    assert bool(info.converged.all()) and np.all(np.asarray(info.iterations) <= 2)
    np.testing.assert_allclose(X, x0, **TOL32)
    X, info = sparse_generic_solve(
        A, B, lambda M, R: jnp.linalg.solve(M.todense(), R), return_info=True
    )
    assert info is None


def test_nonconvergence_is_reported():
    A = jax_sparse(_matrix("spd", n=20).astype(np.float32), "bcsr")
    b = jnp.asarray(np.random.default_rng(7).standard_normal(20), jnp.float32)
    with pytest.warns(ConvergenceWarning, match=r"cg \(1 of 1 right-hand sides\) did not converge"):
        _, info = sparse_generic_solve(A, b, cg, return_info=True, maxiter=1)
        jax.effects_barrier()
    assert not bool(info.converged)


def test_equinox_filter_grad():
    D = _matrix("spd", seed=8)

    class Model(eqx.Module):
        A: BCSR

        def __call__(self, b):
            return sparse_generic_solve(self.A, b, cg, tol=1e-6)

    model = Model(jax_sparse(D.astype(np.float32), "bcsr"))
    b = jnp.asarray(np.random.default_rng(8).standard_normal(8), jnp.float32)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(b)))(model)
    x = np.linalg.solve(D, np.asarray(b, np.float64))
    dB = np.linalg.solve(D.T, np.ones(8))
    np.testing.assert_allclose(
        jax_sparse_grad_dense(model.A, grads.A.data), -np.outer(dB, x) * (D != 0), **TOL32
    )


def test_bad_inputs():
    A = jax_sparse(_matrix("spd").astype(np.float32), "bcsr")
    b = jnp.ones(8, jnp.float32)
    with pytest.raises(
        ValueError, match=r"A: expected a 2-D sparse matrix, got a BCSR matrix of shape \(2, 8, 8\)"
    ):
        sparse_generic_solve(BCSR.fromdense(jnp.ones((2, 8, 8)), n_batch=1), jnp.ones((2, 8)))
    with pytest.raises(ValueError, match=r"A: expected a square matrix"):
        sparse_generic_solve(BCOO.fromdense(jnp.ones((8, 7))), jnp.ones(7))
    with pytest.raises(
        TypeError, match=r"solve: expected a callable or None, got an object of type builtins.str"
    ):
        sparse_generic_solve(A, b, "cg")
    with pytest.raises(
        ValueError,
        match=r"solve: expected the solver to return an array of shape \(8,\) and dtype float32",
    ):
        sparse_generic_solve(A, b, lambda M, R: jnp.ones(3, jnp.float32))
    with pytest.raises(ValueError, match=r"B: expected 8 rows to match A's 8 columns"):
        sparse_generic_solve(A, jnp.ones(7, jnp.float32))
