"""The bilinear primitives (``mm``, ``sddmm``) and ``linear_solve`` of jax_api/_linear.py: every
order and mode of differentiation, transposition and batching, against dense references."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api._linear import linear_solve, mm, sddmm  # noqa: E402
from jax_api._pattern import Pattern  # noqa: E402
from tests.helpers import JAX_KINDS_2D, JAX_KINDS_3D, jax_sparse  # noqa: E402

pytestmark = pytest.mark.usefixtures("x64")
# a representative subset of the kinds (each compiles its own programs)
KINDS = [(k, False) for k in JAX_KINDS_2D if k in ("bcoo_unsorted", "bcsr_padded")] + [
    (k, True) for k in JAX_KINDS_3D if k in ("bcoo3", "bcsr")
]
IDS = [f"{k}-{'3d' if b else '2d'}" for k, b in KINDS]


def _problem(kind, batched, square=False, seed=0):
    """``(pattern, values, D)``: the flat pattern, its values and the dense block-diagonal
    ``csr_shape`` matrix they stand for."""
    rng = np.random.default_rng(seed)
    shape = (5, 5) if square else (5, 4)
    shape = (2, *shape) if batched else shape
    D = rng.standard_normal(shape) * (rng.random(shape) < 0.5)
    if square:
        D = D + 4 * np.eye(shape[-1])
    pattern, values = Pattern.of(jax_sparse(D, kind, seed=seed))
    return pattern, values, np.asarray(pattern.todense(values))


def _rand(*shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


@pytest.mark.parametrize("kind, batched", KINDS, ids=IDS)
def test_mm_and_sddmm_every_order(kind, batched):
    p, v, D = _problem(kind, batched)
    N, M = D.shape
    B, G = _rand(M, 3), _rand(N, 3, seed=2)
    np.testing.assert_allclose(mm(p, v, B), D @ B, atol=1e-12)
    np.testing.assert_allclose(mm(p, v, G, transpose=True), D.T @ G, atol=1e-12)
    rows, cols = np.asarray(p.rows), np.asarray(p.col)
    real = rows < N
    want = np.where(real, (np.asarray(G) @ np.asarray(B).T)[np.minimum(rows, N - 1), cols], 0)
    np.testing.assert_allclose(sddmm(p, G, B), want, atol=1e-12)
    for f, args in [(lambda v, B: mm(p, v, B), (v, B)),
                    (lambda v, G: mm(p, v, G, True), (v, G)),
                    (lambda G, X: sddmm(p, G, X), (G, B))]:
        check_grads(f, args, order=2, modes=("fwd", "rev"))


def test_third_order_and_jit():
    p, v, D = _problem("bcsr", False)
    B = _rand(4, 2)
    loss = lambda v, B: jnp.sum(jnp.sin(mm(p, v, B)) ** 2)
    check_grads(loss, (v, B), order=3, modes=("fwd", "rev"))
    check_grads(jax.jit(loss), (v, B), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("kind", ["bcoo", "bcsr_padded"])
def test_hessian_in_values_matches_dense_and_stays_nnz(kind):
    p, v, D = _problem(kind, False)
    B = _rand(4, 3)
    real = np.asarray(p.valid)
    rows, cols = np.asarray(p.rows)[real], np.asarray(p.col)[real]

    def dense_loss(w):
        A = jnp.zeros(D.shape).at[rows, cols].set(w)
        return jnp.sum((A @ B) ** 2)

    H = jax.jit(jax.hessian(lambda v: jnp.sum(mm(p, v, B) ** 2)))(v)
    assert H.shape == (p.nnz, p.nnz)
    np.testing.assert_allclose(H[np.ix_(real, real)], jax.hessian(dense_loss)(v[real]),
                               atol=1e-10)
    assert not np.any(H[~real]) and not np.any(H[:, ~real])  # padding: no curvature


def test_jacfwd_jacrev_and_linear_transpose():
    p, v, D = _problem("bcoo", False)
    B, G = _rand(4, 2), _rand(5, 2)
    f = lambda b: mm(p, v, b)
    np.testing.assert_allclose(jax.jacfwd(f)(B), jax.jacrev(f)(B), atol=1e-12)
    np.testing.assert_allclose(jax.jacfwd(f)(B).reshape(10, 8), np.kron(D, np.eye(2)),
                               atol=1e-12)
    (Bt,) = jax.linear_transpose(f, B)(G)
    np.testing.assert_allclose(Bt, D.T @ G, atol=1e-12)
    (vt,) = jax.linear_transpose(lambda w: mm(p, w, B), v)(G)
    np.testing.assert_allclose(vt, sddmm(p, G, B), atol=1e-12)


@pytest.mark.parametrize("in_axes", [(None, 0), (0, None), (0, 0), (None, 2)])
def test_vmap_any_axes_under_jit(in_axes):
    p, v, D = _problem("bcsr", False)
    vs = jnp.stack([v, 2 * v, -v])
    Bs = _rand(3, 4, 2)
    args = (vs if in_axes[0] == 0 else v, jnp.moveaxis(Bs, 0, 2) if in_axes[1] == 2 else
            Bs if in_axes[1] == 0 else Bs[0])
    got = jax.jit(jax.vmap(lambda w, b: mm(p, w, b), in_axes=in_axes))(*args)
    scale = np.array([1.0, 2.0, -1.0]) if in_axes[0] == 0 else np.ones(3)
    Bn = np.asarray(Bs) if in_axes[1] is not None else np.broadcast_to(Bs[0], (3, 4, 2))
    want = np.stack([s * D @ b for s, b in zip(scale, Bn, strict=True)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    # a vmapped gradient goes through the batching rules of both primitives
    g = jax.vmap(jax.grad(lambda w, b: jnp.sum(mm(p, w, b) ** 2)), in_axes=in_axes)(*args)
    assert g.shape == (3, p.nnz)


def _dense_solves():
    solve = lambda p, v, b, args: (jnp.linalg.solve(p.todense(v), b), None)
    tsolve = lambda p, v, b, args: (jnp.linalg.solve(p.todense(v).T, b), None)
    return solve, tsolve


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("kind", ["bcoo", "bcsr_padded"])
def test_linear_solve_every_order(kind, transposed):
    p, v, D = _problem(kind, False, square=True)
    solve, tsolve = _dense_solves()
    pair = (tsolve, solve) if transposed else (solve, tsolve)
    f = lambda v, B: linear_solve(p, v, B, *pair, transposed=transposed)[0]
    B = _rand(5, 2)
    np.testing.assert_allclose(f(v, B), np.linalg.solve(D.T if transposed else D, B),
                               atol=1e-12)
    check_grads(f, (v, B), order=2, modes=("fwd", "rev"))
    Bs = _rand(3, 5, 2)
    np.testing.assert_allclose(jax.jit(jax.vmap(f, (None, 0)))(v, Bs),
                               np.linalg.solve(D.T if transposed else D, Bs), atol=1e-12)
    H = jax.jit(jax.hessian(lambda v: jnp.sum(f(v, B) ** 2)))(v)
    assert H.shape == (p.nnz, p.nnz)


@pytest.mark.parametrize("name", ["cg", "bicgstab", "gmres", "minres"])
def test_solvers_called_directly_are_differentiable(name):
    """jax_api.cg/bicgstab/gmres/minres on a BCSR: the gradient and the JVP in A's values match
    dense autograd (implicit differentiation through custom_linear_solve, with mm's JVP rule)."""
    from jax.experimental.sparse import BCSR

    import jax_api

    rng = np.random.default_rng(3)
    D = rng.standard_normal((6, 6)) * (rng.random((6, 6)) < 0.4)
    D = D + D.T + 8 * np.eye(6)  # SPD for cg; fine for the others
    A = BCSR.fromdense(jnp.asarray(D))
    b = _rand(6, seed=4)
    solver = getattr(jax_api, name)
    rows, cols = np.nonzero(D)

    def sparse(d):
        return solver(BCSR((d, A.indices, A.indptr), shape=A.shape), b, tol=1e-13)[0]

    def dense(d):
        return jnp.linalg.solve(jnp.zeros((6, 6)).at[rows, cols].set(d), b)

    loss = lambda f: (lambda d: jnp.sum(f(d) ** 2))
    np.testing.assert_allclose(jax.grad(loss(sparse))(A.data), jax.grad(loss(dense))(A.data),
                               rtol=1e-8, atol=1e-10)
    u = _rand(A.data.shape[0], seed=5)
    np.testing.assert_allclose(jax.jvp(sparse, (A.data,), (u,))[1],
                               jax.jvp(dense, (A.data,), (u,))[1], rtol=1e-8, atol=1e-10)


def _symmetric_problem(seed=3):
    """A symmetric indefinite 6 x 6 BCSR parameterised by its upper triangle ``u`` (so every
    perturbation keeps it symmetric), the map ``sym`` from stored entries to ``u`` and ``b``."""
    from jax.experimental.sparse import BCSR

    rng = np.random.default_rng(seed)
    D = rng.standard_normal((6, 6)) * (rng.random((6, 6)) < 0.4)
    D = D + D.T + np.diag([3.0, -4.0, 5.0, -6.0, 7.0, 8.0])
    A = BCSR.fromdense(jnp.asarray(D))
    rows, cols = np.nonzero(D)
    pairs = [(min(i, j), max(i, j)) for i, j in zip(rows, cols, strict=True)]
    keys = sorted(set(pairs))
    sym = np.array([keys.index(k) for k in pairs])
    u = jnp.asarray(D[tuple(np.array(keys).T)])
    return A, rows, cols, sym, u, _rand(6, seed=4)


def test_minres_called_directly_every_order():
    """jax_api.minres: second-order checks in both modes and the Hessian in the matrix's
    parameters against dense autodiff (implicit differentiation; the symmetric
    parameterisation keeps every perturbed matrix symmetric, as MINRES requires)."""
    from jax.experimental.sparse import BCSR

    import jax_api

    A, rows, cols, sym, u, b = _symmetric_problem()

    def sparse(u, b):
        M = BCSR((u[sym], A.indices, A.indptr), shape=A.shape)
        return jax_api.minres(M, b, tol=1e-14, maxiter=200)[0]

    def dense(u, b):
        return jnp.linalg.solve(jnp.zeros((6, 6)).at[rows, cols].set(u[sym]), b)

    np.testing.assert_allclose(sparse(u, b), dense(u, b), atol=1e-12)
    check_grads(sparse, (u, b), order=2, modes=("fwd", "rev"))
    loss = lambda f: (lambda u: jnp.sum(f(u, b) ** 2))
    np.testing.assert_allclose(jax.jit(jax.hessian(loss(sparse)))(u), jax.hessian(loss(dense))(u),
                               atol=1e-9)


@pytest.mark.parametrize("damp", [0.0, 0.7])
def test_lsmr_called_directly_every_order(damp):
    """jax_api.lsmr (tall BCOO, two right-hand sides, with and without damping): second-order
    checks in A's values and B, the Hessian and jacfwd against dense least squares; the dense
    and callable forms of A are differentiable in their matrix too."""
    from jax.experimental.sparse import BCOO

    import jax_api

    rng = np.random.default_rng(0)
    T = rng.standard_normal((9, 5)) * (rng.random((9, 5)) < 0.6)
    T[:5] += np.eye(5)  # full column rank
    A = BCOO.fromdense(jnp.asarray(T))
    B = _rand(9, 2, seed=6)
    opts = dict(atol=1e-14, btol=1e-14, maxiter=100, damp=damp)

    def sparse(d, B):
        return jax_api.lsmr(BCOO((d, A.indices), shape=A.shape), B, **opts)[0]

    def dense(d, B):
        M = jnp.zeros((9, 5)).at[A.indices[:, 0], A.indices[:, 1]].add(d)
        stacked = jnp.vstack([M, damp * jnp.eye(5)])
        return jnp.linalg.lstsq(stacked, jnp.vstack([B, jnp.zeros((5, 2))]))[0]

    np.testing.assert_allclose(sparse(A.data, B), dense(A.data, B), atol=1e-12)
    check_grads(sparse, (A.data, B), order=2, modes=("fwd", "rev"))
    if damp == 0:
        return  # the rest once (each compiles its own programs)
    loss = lambda f: (lambda d: jnp.sum(f(d, B) ** 2))
    H = jax.jit(jax.hessian(loss(sparse)))(A.data)
    assert H.shape == (A.nse, A.nse)
    np.testing.assert_allclose(H, jax.hessian(loss(dense))(A.data), atol=1e-9)
    np.testing.assert_allclose(jax.jacfwd(lambda d: sparse(d, B))(A.data),
                               jax.jacfwd(lambda d: dense(d, B))(A.data), atol=1e-10)
    M = jnp.asarray(T)
    forms = [lambda M: jax_api.lsmr(M, B, **opts)[0],
             lambda M: jax_api.lsmr(lambda x: M @ x, B, rmatvec=lambda r: M.T @ r, n=5,
                                    **opts)[0]]
    want = jax.grad(lambda M: jnp.sum(jnp.linalg.lstsq(
        jnp.vstack([M, damp * jnp.eye(5)]), jnp.vstack([B, jnp.zeros((5, 2))]))[0] ** 3))(M)
    for f in forms:
        got = jax.grad(lambda M, f=f: jnp.sum(f(M) ** 3))(M)
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_newton_with_hvp_by_cg_converges():
    """Nonlinear least squares ``0.5 ||L(v)^{-1} B - T||^2`` over a sparse triangular L's
    values: Newton with Hessian-vector products (``jvp`` of ``grad``) solved by ``jax_api.cg``
    on the Hessian as a callable converges quadratically to the true values."""
    from jax.experimental.sparse import BCSR

    import jax_api

    rng = np.random.default_rng(13)
    D = 0.3 * np.tril(rng.standard_normal((6, 6)) * (rng.random((6, 6)) < 0.4), -1)
    D = D + np.diag(1.0 + np.arange(6) / 6)
    S = BCSR.fromdense(jnp.asarray(D))
    B = _rand(6, 6, seed=2)  # X = L^{-1} B of full rank: L is identified, J^T J is definite
    solve = lambda w: jax_api.sparse_triangular_solve(
        BCSR((w, S.indices, S.indptr), shape=S.shape), B, upper=False)
    v_true = S.data
    T = solve(v_true)
    loss = lambda w: 0.5 * jnp.sum((solve(w) - T) ** 2)
    grad = jax.jit(jax.grad(loss))
    hvp = jax.jit(lambda w, u: jax.jvp(grad, (w,), (u,))[1])
    v = v_true * (1 + 0.02 * jnp.asarray(rng.standard_normal(v_true.shape)))
    steps = 0
    for _ in range(8):
        g = grad(v)
        if jnp.linalg.norm(g) < 1e-12:
            break
        step, _ = jax_api.cg(lambda u, v=v: hvp(v, u), -g, tol=1e-14, maxiter=100)
        v, steps = v + step, steps + 1
    assert steps <= 6 and loss(v) < 1e-20
    np.testing.assert_allclose(v, v_true, rtol=1e-8, atol=1e-10)
