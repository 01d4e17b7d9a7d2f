"""bridge.internal: the message template, option validators, the index check on NumPy and torch,
host sampling and the convergence verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bridge.internal import convergence, indices, messages, options, sampling


def test_describe_and_template():
    assert messages.describe("a") == "an object of type builtins.str"
    assert messages.describe(np.zeros((2, 3))) == "a NumPy array of shape (2, 3), float64"
    t = torch.eye(2).to_sparse_csr()
    assert messages.describe(t) == "a sparse CSR tensor of shape (2, 2), torch.float32 on cpu"
    err = messages.value_error("n", "3", "a positive int")
    assert isinstance(err, ValueError) and str(err) == "n: expected a positive int, got 3."
    err = messages.type_error("fn", 3, "a callable")
    assert str(err) == "fn: expected a callable, got an object of type builtins.int."


def test_describe_jax_objects():
    jnp = pytest.importorskip("jax.numpy")
    from jax.experimental.sparse import BCSR

    assert messages.describe(jnp.zeros(3)) == "a dense array of shape (3,), float32"
    A = BCSR.fromdense(jnp.eye(2))
    assert messages.describe(A) == "a BCSR matrix of shape (2, 2), float32"


def minres():  # a stand-in default solver
    pass


def cg():
    pass


def test_resolve_solvers():
    assert options.resolve_solvers(None, None, minres) == (minres, minres)
    assert options.resolve_solvers(cg, None, minres) == (cg, cg)
    assert options.resolve_solvers(None, cg, minres) == (cg, cg)
    assert options.resolve_solvers(cg, minres, None) == (cg, minres)
    assert options.resolve_solvers("cg", None, "spsolve", names=("cg",)) == ("cg", "cg")
    with pytest.raises(ValueError, match=r"transpose_solve: expected one of \('cg',\)"):
        options.resolve_solvers("cg", "lu", "cg", names=("cg",))
    with pytest.raises(TypeError, match="transpose_lstsq: expected a callable or None, got an"):
        options.resolve_solvers(cg, 3, cg, args=("lstsq", "transpose_lstsq"))
    with pytest.raises(TypeError, match="solve: expected a callable or None"):
        options.resolve_solvers("cg", None, cg)  # no names: a string is not a solver


def test_scalar_validators():
    assert options.check_size([2, 3]) == (2, 3)
    with pytest.raises(TypeError, match="size: expected a tuple of ints"):
        options.check_size((2.0, 3))
    with pytest.raises(ValueError, match=r"size: expected \(n, m\) or \(b, n, m\)"):
        options.check_size((1, 2, 3, 4))
    assert options.check_range((0, 2)) == (0.0, 2.0)
    with pytest.raises(ValueError, match="value_range: expected low <= high"):
        options.check_range((2, 0))
    with pytest.raises(TypeError, match="value_range: expected a pair"):
        options.check_range(3)
    with pytest.raises(ValueError, match="min_diag_value: expected a positive number"):
        options.check_positive("min_diag_value", math.nan)
    with pytest.raises(TypeError, match="upper: expected a bool, got int 1"):
        options.check_bool("upper", 1)
    assert options.check_maxiter(None, 4) == 40 and options.check_maxiter(np.int64(3), 4) == 3
    with pytest.raises(ValueError, match="maxiter: expected a positive int or None"):
        options.check_maxiter(True, 4)


@pytest.mark.parametrize("array", [np.asarray, torch.as_tensor], ids=["numpy", "torch"])
def test_index_check_on_numpy_and_torch(array):
    indices.check_coo("A", array(np.array([[0, 1], [1, 0]])), (2, 2))
    with pytest.raises(ValueError, match=r"A: expected COO indices of dimension 1 in \[0, 2\), "
                                         r"got indices in \[0, 2\]"):
        indices.check_coo("A", array(np.array([[0, 1], [2, 0]])), (2, 2))
    crow, col = array(np.array([0, 1, 2])), array(np.array([1, 0]))
    indices.check_compressed("A", crow, col, (2, 2))
    with pytest.raises(ValueError, match=r"A: expected column indices in \[0, 2\), got indices "
                                         r"in \[-1, 1\] \(these CSR indices"):
        indices.check_compressed("A", crow, array(np.array([1, -1])), (2, 2))
    with pytest.raises(ValueError, match=r"expected compressed indices of length 3 rising from "
                                         r"0 to nnz=2, got \[0, 2, 1\]"):
        indices.check_compressed("A", array(np.array([0, 2, 1])), col, (2, 2))
    with pytest.raises(ValueError, match=r"expected row indices in \[0, 3\)"):
        indices.check_compressed("A", crow, array(np.array([3, 0])), (3, 2), "CSC")


def test_sampled_positions_are_distinct_sorted_and_in_the_triangle():
    rng = sampling.host_rng([1, 2])
    rows, cols = sampling.general_positions(rng, 3, 5, 7, 20, diagonal=False)
    flat = rows * 7 + cols
    assert flat.shape == (3, 20) and (np.diff(flat, axis=1) > 0).all()
    assert flat.min() >= 0 and flat.max() < 35
    rows, cols = sampling.general_positions(rng, 2, 6, 6, 10, diagonal=True)
    assert all(set(range(6)) <= {r for r, c in zip(rr, cc, strict=True) if r == c}
               for rr, cc in zip(rows, cols, strict=True))
    rows, cols = sampling.triangular_positions(rng, 2, 6, 12, upper=True, strict=False)
    assert (rows <= cols).all() and (np.diff(rows * 6 + cols, axis=1) > 0).all()
    i, j = sampling.strict_lower(np.arange(15))
    assert (i > j).all() and len(set(zip(i.tolist(), j.tolist(), strict=True))) == 15
    rows, cols, pair = sampling.symmetric_positions(rng, 5, 4)
    assert rows.shape == (1, 5 + 2 * 6) and (pair[rows == cols] == -1).all()
    for p in range(6):  # each pair holds a position and its mirror
        (k,) = np.nonzero(pair[0] == p)
        assert rows[0, k[0]] == cols[0, k[1]] and cols[0, k[0]] == rows[0, k[1]]
    np.testing.assert_array_equal(sampling.crow_indices(np.array([[0, 0, 2]]), 3),
                                  [[0, 2, 2, 3]])
    with pytest.raises(ValueError, match=r"nz: expected an int in \[0, 21\] for n=5"):
        sampling.spd_empty_pairs(5, 22, 0.5)
    with pytest.raises(TypeError, match="nnz: expected an int"):
        sampling.check_nnz(2.0, 0, 4, (2, 2))


def test_residual_verdict():
    worst, failed = convergence.residual_verdict([1e-9, 2e-3], [1.0, 2.0], [1.0, 1.0], 1.0,
                                                 2.2e-16, 1e-5, 0.0)
    assert failed and worst == pytest.approx(1e-3)
    assert convergence.residual_verdict([1e-9], [1.0], [1.0], 1.0, 2.2e-16, 1e-5, 0.0) == (
        pytest.approx(1e-9), False)
    worst, failed = convergence.residual_verdict([math.nan], [1.0], [1.0], 1.0, 1e-7, 1e-5, 0.0)
    assert failed and math.isnan(worst)
    # atol: a zero right-hand side passes when the residual is within it
    assert not convergence.residual_verdict([1e-9], [0.0], [0.0], 1.0, 2.2e-16, 1e-5, 1e-8)[1]


def test_report_without_iteration_count():
    with pytest.warns(convergence.ConvergenceWarning, match="no iteration count; its limit was 9"):
        convergence.report_nonconvergence("cg", None, 1.0, 1e-5, limit=9)
    with pytest.raises(convergence.ConvergenceError, match="after 3 iterations"):
        convergence.report_nonconvergence("cg", 3, 1.0, 1e-5, raise_on_failure=True)
