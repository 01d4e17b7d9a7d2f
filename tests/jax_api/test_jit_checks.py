"""Value checks of jax_api under ``jax.jit`` (issue 17): every input that is refused eagerly with
a ``ValueError`` naming the argument is refused under ``jit`` too, when the program runs, with
the same message (never a silently wrong answer, never a raw torch error); false
``indices_sorted`` / ``unique_indices`` flags are not trusted."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.errors import JaxRuntimeError  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402

import jax_api as J  # noqa: E402
from tests.helpers import jax_sparse  # noqa: E402

MODES = ("eager", "jit")
TOL32 = {"rtol": 1e-4, "atol": 1e-5}


def _call(mode, f, *args):
    """``f(*args)`` eagerly, or compiled with every argument traced."""
    out = jax.jit(f)(*args) if mode == "jit" else f(*args)
    return jax.block_until_ready(out)


def _refused(mode, match):
    """The error of a refused input: ``ValueError`` eagerly; under ``jit`` JAX's run-time error,
    whose text holds the same message."""
    return pytest.raises(ValueError if mode == "eager" else JaxRuntimeError, match=match)


def _bcsr(D):
    return BCSR.fromdense(jnp.asarray(D, jnp.float32))


def _lower(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return np.tril(rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.5), -1) + 3 * np.eye(n)


# ------------------------------------------------------------------- triangular structure
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "case, make, unit, match",
    [
        ("entry above the diagonal", lambda L: L + np.triu(np.ones_like(L), 2), False,
         r"A: expected a lower-triangular matrix \(upper=False\), got \d+ stored entries above"),
        ("stored diagonal, unitriangular", lambda L: L, True,
         r"A: expected a strictly triangular matrix with unitriangular=True"),
        ("missing diagonal entry", lambda L: L * (1 - np.eye(len(L)) * (np.arange(len(L)) == 2)),
         False, r"A: expected a nonzero stored diagonal .* got 1 missing"),
    ],
)
def test_triangular_solve_refuses_bad_factors(mode, case, make, unit, match):
    A, B = _bcsr(make(_lower())), jnp.ones((5, 2), jnp.float32)
    solve = lambda A, B: J.sparse_triangular_solve(A, B, upper=False, unitriangular=unit)
    with _refused(mode, match):
        _call(mode, solve, A, B)
    # the gradient's program checks the forward factor the same way
    if mode == "jit":
        loss = lambda d: J.sparse_triangular_solve(
            BCSR((d, A.indices, A.indptr), shape=A.shape), B, upper=False, unitriangular=unit
        ).sum()
        with _refused(mode, match):
            jax.block_until_ready(jax.jit(jax.grad(loss))(A.data))


def test_triangular_solve_check_false_trusts_the_factor():
    L = _lower()
    A, B = _bcsr(L), jnp.asarray(np.arange(10.0).reshape(5, 2), jnp.float32)
    ref = np.linalg.solve(L, np.asarray(B))
    for mode in MODES:
        X = _call(mode, lambda A, B: J.sparse_triangular_solve(A, B, upper=False, check=False),
                  A, B)
        np.testing.assert_allclose(X, ref, **TOL32)
    bad = _bcsr(L + np.triu(np.ones_like(L), 1))  # refused with check=True, trusted without
    X = _call("jit", lambda A, B: J.sparse_triangular_solve(A, B, upper=False, check=False),
              bad, B)
    assert X.shape == (5, 2)
    with pytest.raises(TypeError, match=r"check: expected a bool"):
        J.sparse_triangular_solve(A, B, upper=False, check="no")


# ---------------------------------------------------------------- SparseMultivariateNormal
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("param", ["precision_tril", "scale_tril"])
@pytest.mark.parametrize(
    "case, D, ldlt, match",
    [
        ("entry above the diagonal", np.array([[1.0, 0.5], [0.5, 2.0]]), False,
         r"{p}: expected a lower-triangular factor, got entries above the diagonal"),
        ("non-positive diagonal", np.array([[1.0, 0.0], [0.5, -2.0]]), False,
         r"{p}: expected every diagonal entry stored and positive"),
        ("stored diagonal with diagonal=", np.array([[1.0, 0.0], [0.5, 2.0]]), True,
         r"{p}: expected a strictly lower factor with diagonal="),
    ],
)
def test_distribution_validate_args_under_jit(mode, param, case, D, ldlt, match):
    L, x = _bcsr(D), jnp.asarray([0.3, -1.2], jnp.float32)

    def log_prob(L, x):
        diag = jnp.ones(2, jnp.float32) if ldlt else None
        dist = J.SparseMultivariateNormal(jnp.zeros(2, jnp.float32), diag, validate_args=True,
                                          **{param: L})
        return dist.log_prob(x)

    with _refused(mode, match.format(p=param)):
        _call(mode, log_prob, L, x)


def test_distribution_validated_factor_gives_the_dense_density():
    D = np.array([[1.0, 0.0], [0.5, 2.0]])
    x = np.array([0.3, -1.2])
    P = D @ D.T
    ref = -0.5 * (2 * np.log(2 * np.pi) + x @ P @ x) + 0.5 * np.log(np.linalg.det(P))
    for mode in MODES:
        lp = _call(mode, lambda L, x: J.SparseMultivariateNormal(
            jnp.zeros(2, jnp.float32), precision_tril=L, validate_args=True).log_prob(x),
            _bcsr(D), jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(lp, ref, **TOL32)


# ------------------------------------------------------------------- false index flags
def _shuffled_bcoo(D, seed=0):
    """``D`` as a BCOO with its entries shuffled but flagged sorted and unique (a lie), plus one
    entry split into two duplicates, also flagged unique."""
    A = BCOO.fromdense(jnp.asarray(D, jnp.float32))
    data, idx = np.asarray(A.data), np.asarray(A.indices)
    data = np.concatenate([data, [0.25 * data[0]]])
    data[0] *= 0.75  # data[0] and the appended copy sum to the original entry
    idx = np.concatenate([idx, idx[:1]])
    perm = np.random.default_rng(seed).permutation(data.size)
    return BCOO((jnp.asarray(data[perm]), jnp.asarray(idx[perm])), shape=A.shape,
                indices_sorted=True, unique_indices=True)


@pytest.mark.parametrize("mode", MODES)
def test_false_sorted_and_unique_flags_are_not_trusted(mode):
    rng = np.random.default_rng(3)
    D = rng.standard_normal((7, 6)) * (rng.random((7, 6)) < 0.5)
    D[0, 0] = 1.5
    A, B = _shuffled_bcoo(D), jnp.asarray(rng.standard_normal((6, 3)), jnp.float32)
    ref = D @ np.asarray(B, np.float64)
    np.testing.assert_allclose(_call(mode, J.sparse_mm, A, B), ref, **TOL32)
    np.testing.assert_allclose(_call(mode, lambda A, B: A @ B, A, B), ref, **TOL32)  # JAX's own
    # the gradient at each stored entry (duplicates included) is G B^T there
    loss = lambda d: J.sparse_mm(BCOO((d, A.indices), shape=A.shape, indices_sorted=True,
                                      unique_indices=True), B).sum()
    g = _call(mode, jax.grad(loss), A.data)
    full = np.ones((7, 3)) @ np.asarray(B, np.float64).T
    idx = np.asarray(A.indices)
    np.testing.assert_allclose(g, full[idx[:, 0], idx[:, 1]], **TOL32)
    # a triangular factor given the same way
    L = _lower(6)
    L[0, 0] = 1.5
    At = _shuffled_bcoo(L, seed=1)
    X = _call(mode, lambda A, B: J.sparse_triangular_solve(A, B, upper=False), At, B)
    np.testing.assert_allclose(X, np.linalg.solve(L, np.asarray(B)), **TOL32)


@pytest.mark.parametrize("mode", MODES)
def test_bcsr_with_unsorted_columns_flagged_sorted(mode):
    L = _lower(6, seed=2)
    S = _bcsr(L)
    indptr, idx, data = (np.array(x) for x in (S.indptr, S.indices, S.data))
    for r in range(6):  # reverse the columns of every row
        s = slice(indptr[r], indptr[r + 1])
        idx[s], data[s] = idx[s][::-1], data[s][::-1]
    A = BCSR((jnp.asarray(data), jnp.asarray(idx), jnp.asarray(indptr)), shape=S.shape,
             indices_sorted=True)
    B = jnp.asarray(np.random.default_rng(0).standard_normal((6, 2)), jnp.float32)
    np.testing.assert_allclose(_call(mode, J.sparse_mm, A, B), L @ np.asarray(B), **TOL32)
    X = _call(mode, lambda A, B: J.sparse_triangular_solve(A, B, upper=False), A, B)
    np.testing.assert_allclose(X, np.linalg.solve(L, np.asarray(B)), **TOL32)


# ------------------------------------------------------------------------ index ranges
def _negative_bcoo():
    return BCOO((jnp.asarray([2.0, 1.0, 3.0], jnp.float32),
                 jnp.asarray([[0, 0], [-1, 1], [2, 2]], jnp.int32)), shape=(3, 3))


def _bcsr_parts(data, indices, indptr):
    return BCSR((jnp.asarray(data, jnp.float32), jnp.asarray(indices, jnp.int32),
                 jnp.asarray(indptr, jnp.int32)), shape=(3, 3))


BAD_INDICES = {
    "negative BCOO index": (_negative_bcoo, r"A: expected non-negative indices"),
    "BCSR column past the shape": (lambda: _bcsr_parts([2.0, 1.0, 3.0], [0, 7, 2], [0, 1, 2, 3]),
                                   r"A: expected BCSR column indices in \[0, 3\)"),
    "negative BCSR column": (lambda: _bcsr_parts([2.0, 1.0, 3.0], [0, -1, 2], [0, 1, 2, 3]),
                             r"A: expected BCSR column indices in \[0, 3\)"),
    "BCSR indptr decreasing": (lambda: _bcsr_parts([2.0, 1.0, 3.0], [0, 1, 2], [0, 2, 1, 3]),
                               r"A: expected BCSR indptr rising from 0"),
    "BCSR indptr past nse": (lambda: _bcsr_parts([2.0, 1.0, 3.0], [0, 1, 2], [0, 1, 2, 9]),
                             r"A: expected BCSR indptr rising from 0 to at most nse"),
}
OPS = {
    "sparse_mm": lambda A, B: J.sparse_mm(A, B),
    "sparse_triangular_solve": lambda A, B: J.sparse_triangular_solve(A, B, upper=False),
    "sparse_generic_solve": lambda A, B: J.sparse_generic_solve(A, B, J.cg, maxiter=5),
    "sparse_generic_lstsq": lambda A, B: J.sparse_generic_lstsq(A, B, maxiter=5),
}


# every case through sparse_mm; the solves (sharing the same check) with one BCOO and one BCSR
CASES = [("sparse_mm", case) for case in BAD_INDICES] + [
    (op, case) for op in list(OPS)[1:]
    for case in ("negative BCOO index", "BCSR column past the shape")
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op, case", CASES)
def test_malformed_indices_are_refused_naming_the_argument(mode, op, case):
    make, match = BAD_INDICES[case]
    with _refused(mode, match) as info:
        _call(mode, OPS[op], make(), jnp.ones((3, 2), jnp.float32))
    assert "bincount" not in str(info.value)


def test_bcoo_index_past_the_shape_is_padding_as_in_jax():
    A = BCOO((jnp.asarray([2.0, 5.0, 3.0], jnp.float32),
              jnp.asarray([[0, 0], [1, 9], [2, 2]], jnp.int32)), shape=(3, 3))
    B = jnp.asarray(np.arange(6.0).reshape(3, 2), jnp.float32)
    for mode in MODES:
        np.testing.assert_allclose(_call(mode, J.sparse_mm, A, B), A.todense() @ B, **TOL32)


def test_sparse_mm_check_flag():
    A = jax_sparse(np.eye(3, dtype=np.float32) * 2, "bcoo")
    B = jnp.ones((3, 1), jnp.float32)
    for mode in MODES:
        Y = _call(mode, lambda A, B: J.sparse_mm(A, B, check=False), A, B)
        np.testing.assert_allclose(Y, 2 * np.ones((3, 1)))
    with pytest.raises(TypeError, match=r"check: expected a bool"):
        J.sparse_mm(A, B, check=1.0)


# -------------------------------------------------------------- segment_mm / gather_mm
A_ROWS, B_GROUPS = jnp.ones((5, 3), jnp.float32), jnp.ones((2, 3, 4), jnp.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "seglen, match",
    [([2, 2], r"seglen_a: expected lengths summing to a's 5 rows"),
     ([6, -1], r"seglen_a: expected non-negative lengths"),
     ([0, 7], r"seglen_a: expected lengths summing to a's 5 rows")],
)
def test_segment_mm_refuses_bad_lengths(mode, seglen, match):
    with _refused(mode, match):
        _call(mode, J.segment_mm, A_ROWS, B_GROUPS, jnp.asarray(seglen, jnp.int32))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("idx", [[0, 1, 2, 0, 1], [0, -1, 1, 0, 1]])
def test_gather_mm_refuses_indices_out_of_range(mode, idx):
    with _refused(mode, r"idx_b: expected indices in \[0, 2\) for b of shape \(2, 3, 4\)"):
        _call(mode, J.gather_mm, A_ROWS, B_GROUPS, jnp.asarray(idx, jnp.int32))


def test_checks_hold_under_vmap_and_jit():
    seglens = jnp.asarray([[2, 3], [1, 4], [5, 1]], jnp.int32)  # the last one sums to 6
    f = jax.jit(jax.vmap(J.segment_mm, in_axes=(None, None, 0)))
    with pytest.raises(JaxRuntimeError, match=r"seglen_a: expected lengths summing"):
        jax.block_until_ready(f(A_ROWS, B_GROUPS, seglens))
    ok = jax.block_until_ready(f(A_ROWS, B_GROUPS, seglens[:2]))
    np.testing.assert_allclose(ok, 3 * np.ones((2, 5, 4)))
