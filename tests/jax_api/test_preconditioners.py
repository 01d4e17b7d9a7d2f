"""jax_api preconditioners jacobi / ic0 / ilu0: factors against dense references, preconditioned
solves against dense solves, fewer iterations, jit, exact-solve gradients, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import (  # noqa: E402
    ConvergenceWarning,
    bicgstab,
    cg,
    gmres,
    minres,
    sparse_generic_solve,
)
from jax_api._preconditioners import ic0, ilu0, jacobi  # noqa: E402
from tests.references import ic0_reference, ilu0_reference, poisson3d, suitesparse  # noqa: E402

RTOL = 1e-10


def spd_dense(n: int, seed: int = 0, density: float = 0.3) -> np.ndarray:
    """A sparse SPD matrix with random signs (not an M-matrix), diagonally dominant."""
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((n, n)) * (rng.random((n, n)) < density)
    S = R + R.T
    return S + np.diag(np.abs(S).sum(1) + 1)


def general_dense(n: int, seed: int = 1, density: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((n, n)) * (rng.random((n, n)) < density)
    return R + np.diag(np.abs(R).sum(1) + 1)


def _bcsr(M) -> BCSR:
    return BCSR((jnp.asarray(M.data), jnp.asarray(M.indices, jnp.int32),
                 jnp.asarray(M.indptr, jnp.int32)), shape=M.shape)


def bcsr(D) -> BCSR:
    """A NumPy dense matrix as a BCSR of its nonzeros (built on the host: no compilation)."""
    import scipy.sparse as sp

    return _bcsr(sp.csr_array(np.asarray(D)))


def bcoo(D) -> BCOO:
    import scipy.sparse as sp

    C = sp.coo_array(np.asarray(D))
    idx = np.stack([C.row, C.col], axis=1)
    return BCOO((jnp.asarray(C.data), jnp.asarray(idx, jnp.int32)), shape=C.shape)


def dense(F: BCSR) -> np.ndarray:
    """A BCSR factor as a NumPy dense matrix (through SciPy, on the host)."""
    import scipy.sparse as sp

    parts = (np.asarray(F.data), np.asarray(F.indices), np.asarray(F.indptr))
    return sp.csr_array(parts, shape=F.shape).toarray()


def counting(A):
    """``x -> A x`` counting its calls (a host callback: also inside the solver's loop)."""
    calls = [0]

    def bump():
        calls[0] += 1

    def matvec(x):
        jax.debug.callback(bump)
        return A @ x

    return matvec, calls


# ----------------------------------------------------------------------------- factors
@pytest.mark.parametrize("form", ["bcoo", "bcsr"])
def test_factors_match_dense_references(x64, form):
    D = spd_dense(25)
    to = bcoo if form == "bcoo" else bcsr
    M = ic0(to(D))
    assert M.kind == "ic0" and M.shift == 0.0
    L = dense(M.factors[0])
    np.testing.assert_allclose(L, ic0_reference(D), rtol=RTOL, atol=RTOL)
    lower = np.tril(D) != 0
    assert np.array_equal(L != 0, lower)
    np.testing.assert_allclose((L @ L.T)[lower], D[lower], rtol=RTOL, atol=RTOL)

    G = general_dense(25)
    Lg, Ug = (dense(F) for F in ilu0(to(G)).factors)
    Lr, Ur = ilu0_reference(G)
    np.testing.assert_allclose(Lg + np.eye(25), Lr, rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(Ug, Ur, rtol=RTOL, atol=RTOL)
    P = G != 0
    np.testing.assert_allclose(((Lg + np.eye(25)) @ Ug)[P], G[P], rtol=RTOL, atol=RTOL)


def test_ic0_shift_on_real_matrix(x64):
    S = suitesparse("bcsstk13", scale=True)
    M = ic0(_bcsr(S))
    assert M.shift >= 1e-3
    L = M.factors[0]
    Ls = dense(L)
    D = S.toarray()
    shifted = D + M.shift * np.diag(np.diag(D))
    lower = np.tril(D) != 0
    np.testing.assert_allclose((Ls @ Ls.T)[lower], shifted[lower], rtol=1e-9, atol=1e-9)


def test_apply_equals_dense_inverse(x64):
    D, G = spd_dense(20, seed=2), general_dense(20, seed=3)
    R = np.random.default_rng(0).standard_normal((20, 3))
    A = bcsr(D)
    np.testing.assert_allclose(jacobi(A)(jnp.asarray(R)), R / np.diag(D)[:, None], rtol=RTOL)
    L = dense(ic0(A).factors[0])
    np.testing.assert_allclose(ic0(A)(jnp.asarray(R[:, 0])), np.linalg.solve(L @ L.T, R[:, 0]),
                               rtol=RTOL, atol=RTOL)
    M = ilu0(bcoo(G))
    Lg, Ug = (dense(F) for F in M.factors)
    LU = (Lg + np.eye(20)) @ Ug
    np.testing.assert_allclose(M(jnp.asarray(R)), np.linalg.solve(LU, R), rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(M.T(jnp.asarray(R)), np.linalg.solve(LU.T, R), rtol=RTOL,
                               atol=RTOL)


def test_float32():
    D = spd_dense(15).astype(np.float32)
    A = bcsr(D)
    for P in (jacobi(A), ic0(A), ilu0(A)):
        y = P(jnp.ones(15, jnp.float32))
        assert y.dtype == jnp.float32 and y.shape == (15,)
    X, info = cg(A, jnp.ones(15, jnp.float32), M=ic0(A), tol=1e-5)
    assert bool(info.converged)


# ----------------------------------------------------------------------------- solves
@pytest.mark.parametrize("name", ["poisson", "494_bus", "bcsstk13"])
def test_cg_iterations_drop(x64, name):
    S = poisson3d(8) if name == "poisson" else suitesparse(name, scale=name == "bcsstk13")
    A = _bcsr(S)
    b = jnp.asarray(np.random.default_rng(0).standard_normal(S.shape[0]))
    counts = []
    for P in (None, jacobi(A), ic0(A)):
        matvec, calls = counting(A)
        x, info = cg(matvec, b, M=P, tol=1e-8, maxiter=5000)
        assert bool(info.converged)
        counts.append(calls[0])
    plain, jac, ic = counts
    # bcsstk13 is scaled to a unit diagonal: Jacobi is the identity there up to rounding
    slack = plain // 100 if name == "bcsstk13" else 0
    assert ic < jac <= plain + slack, counts


def test_minres_reports_fewer_iterations(x64):
    S = suitesparse("494_bus")
    A = _bcsr(S)
    b = jnp.asarray(np.random.default_rng(1).standard_normal(S.shape[0]))
    mv = lambda x: A @ x  # noqa: E731
    # with M, minres stops on its M^{-1}-norm residual estimate: the true 2-norm residual it
    # reports can miss the tolerance by a little more than its 2x slack (a ConvergenceWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        its = [int(minres(mv, b, M=P, tol=1e-8, maxiter=5000)[1].iterations)
               for P in (None, jacobi(A), ic0(A))]
        x, info = minres(A, b, M=ic0(A), tol=1e-10)
    assert its[2] < its[1] < its[0], its
    np.testing.assert_allclose(x, np.linalg.solve(S.toarray(), np.asarray(b)), rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("solver", [bicgstab, gmres], ids=["bicgstab", "gmres"])
def test_ilu0_nonsymmetric(x64, solver):
    G = general_dense(40, seed=4)
    A = bcsr(G)
    B = np.random.default_rng(2).standard_normal((40, 2))
    X, info = solver(A, jnp.asarray(B), M=ilu0(A), tol=1e-12)
    assert bool(np.all(info.converged))
    np.testing.assert_allclose(X, np.linalg.solve(G, B), rtol=1e-8, atol=1e-10)


def test_ilu0_real_nonsymmetric(x64):
    S = suitesparse("watt_2")
    A = _bcsr(S)
    x_true = np.random.default_rng(3).standard_normal(S.shape[0])
    b = jnp.asarray(S @ x_true)
    M = ilu0(A)
    L, U = (dense(F) for F in M.factors)
    P = S.toarray() != 0
    np.testing.assert_allclose(((L + np.eye(S.shape[0])) @ U)[P], S.toarray()[P], rtol=1e-10,
                               atol=1e-12)
    x, info = gmres(A, b, M=M, tol=1e-10, restart=30, maxiter=200)
    assert bool(info.converged), info
    assert float(np.linalg.norm(S @ np.asarray(x) - b) / np.linalg.norm(b)) < 2e-10


# ----------------------------------------------------------------------------- jit, grads
def test_under_jit(x64):
    D = spd_dense(30, seed=5)
    A = bcsr(D)
    b = jnp.asarray(np.random.default_rng(4).standard_normal(30))
    x_ref = np.linalg.solve(D, np.asarray(b))
    for P in (jacobi(A), ic0(A), ilu0(A)):  # built outside, passed in as a pytree argument
        x, info = jax.jit(lambda A, b, P: cg(A, b, M=P, tol=1e-12))(A, b, P)
        np.testing.assert_allclose(x, x_ref, rtol=1e-8, atol=1e-10)
    # jacobi also builds inside jit, from the traced matrix
    x, _ = jax.jit(lambda A, b: cg(A, b, M=jacobi(A), tol=1e-12))(A, b)
    np.testing.assert_allclose(x, x_ref, rtol=1e-8, atol=1e-10)
    P = ic0(A)
    x = jax.jit(lambda A, b: sparse_generic_solve(A, b, solve=cg, M=P, tol=1e-12))(A, b)
    np.testing.assert_allclose(x, x_ref, rtol=1e-8, atol=1e-10)


def test_gradients_are_those_of_the_exact_solve(x64):
    D = spd_dense(10, seed=6, density=0.4)
    A = bcsr(D)
    P = ic0(A)
    b = jnp.asarray(np.random.default_rng(5).standard_normal(10))
    w = jnp.asarray(np.random.default_rng(6).standard_normal(10))

    def f(data, b):
        M = BCSR((data, A.indices, A.indptr), shape=A.shape)
        return sparse_generic_solve(M, b, solve=cg, M=P, tol=1e-13)

    check_grads(jax.jit(f), (A.data, b), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)
    grads = jax.jit(jax.grad(lambda d, b: jnp.dot(w, f(d, b)), argnums=(0, 1)))(A.data, b)
    dense = jax.grad(lambda D, b: jnp.dot(w, jnp.linalg.solve(D, b)), argnums=(0, 1))(
        jnp.asarray(D), b)
    rows = np.repeat(np.arange(10), np.diff(np.asarray(A.indptr)))
    cols = np.asarray(A.indices)
    np.testing.assert_allclose(grads[0], np.asarray(dense[0])[rows, cols], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(grads[1], dense[1], rtol=1e-8, atol=1e-10)
    # cg called directly (JAX's custom_linear_solve), under jit, with the ILU(0) preconditioner
    G = general_dense(10, seed=7, density=0.4)
    Ag = bcsr(G)
    Mg = ilu0(Ag)

    def g(data, b):
        M = BCSR((data, Ag.indices, Ag.indptr), shape=Ag.shape)
        return gmres(M, b, M=Mg, tol=1e-13)[0]

    check_grads(jax.jit(g), (Ag.data, b), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("build", [jacobi, ic0, ilu0])
def test_bad_input(x64, build):
    with pytest.raises(TypeError, match="A: expected a jax.experimental.sparse BCOO or BCSR"):
        build(jnp.eye(3))
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        build(bcoo(np.ones((3, 4))))
    with pytest.raises(ValueError, match="A: expected float32 or float64"):
        build(bcoo(np.eye(3, dtype=np.int32)))
    zero_diag = np.asarray([[1.0, 0.5, 0.0], [0.5, 0.0, 0.2], [0.0, 0.2, 1.0]])
    with pytest.raises(ValueError, match="A: expected .*diagonal"):
        build(bcsr(zero_diag))


def test_factor_errors(x64):
    with pytest.raises(ValueError, match="A: expected a positive diagonal.*row 1"):
        ic0(bcsr(np.array([[2.0, 0.5], [0.5, -1.0]])))
    with pytest.raises(ValueError, match=r"A: expected .*nonzero pivots, got a zero pivot U\[1"):
        ilu0(bcsr(np.ones((2, 2))))
    with pytest.raises(ValueError, match="A: expected a stored nonzero diagonal entry"):
        ilu0(_bcsr(suitesparse("impcol_a")))  # structurally zero diagonal entries
    A = bcsr(spd_dense(5))
    with pytest.raises(ValueError, match="A: expected a concrete matrix"):
        jax.jit(lambda A: ic0(A)(jnp.ones(5)))(A)
    with pytest.raises(ValueError, match=r"r: expected a vector \(5,\)"):
        ic0(A)(jnp.ones(4))
    with pytest.raises(ValueError, match="r: expected dtype float64"):
        ic0(A)(jnp.ones(5, jnp.float32))
