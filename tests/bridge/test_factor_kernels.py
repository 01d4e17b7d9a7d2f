"""bridge.internal._factor_kernels: the supernodal Takahashi kernel against the scalar reference
and dense inverses, end to end through factorize / inverse_at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from bridge.internal import _factor_kernels as K
from bridge.internal import factor

MATRICES = Path(__file__).resolve().parents[2].parent / "shared" / "matrices"


def _poisson3(k):
    T = sp.diags([-np.ones(k - 1), 2 * np.ones(k), -np.ones(k - 1)], [-1, 0, 1])
    eye = sp.identity(k)
    return (sp.kron(sp.kron(T, eye), eye) + sp.kron(sp.kron(eye, T), eye)
            + sp.kron(sp.kron(eye, eye), T)).tocsr()


def _kernel_inputs(F):
    """The arguments factor.Factor._selected gives takahashi, captured by a stand-in."""
    seen = {}
    real = K.takahashi

    def spy(*args):
        seen["args"] = args
        return real(*args)

    K.takahashi = spy
    try:
        F._z = None
        F._selected()
    finally:
        K.takahashi = real
    return seen["args"]


def _check(kind, A):
    A = sp.csr_matrix(A)
    A.sort_indices()
    n = A.shape[0]
    F = factor.factorize(kind, n, A.indptr, A.indices, A.data)
    args = _kernel_inputs(F)
    new = K.takahashi(*args)
    ref = K._takahashi_reference(*args)
    assert new[3] == 0 and ref[3] == 0
    scale = max(np.abs(ref[2]).max(), 1e-300)
    for a, b in zip(new[:3], ref[:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11 * scale)
    # end to end: A^{-1} on the transpose of A's pattern (what d log|det A| / dA needs)
    rows, cols = A.nonzero()
    Zd = np.linalg.inv(A.toarray())
    got = F.inverse_at(cols, rows)
    np.testing.assert_allclose(got, Zd[cols, rows], rtol=1e-8, atol=1e-10 * np.abs(Zd).max())


@pytest.mark.parametrize("n,density,seed", [(1, 1.0, 0), (2, 0.5, 1), (7, 0.3, 2), (30, 0.1, 3),
                                            (80, 0.05, 4)])
def test_random_unsymmetric_lu(n, density, seed):
    M = sp.random(n, n, density=density, random_state=seed) + 2.0 * sp.identity(n)
    _check("lu", M)


@pytest.mark.parametrize("n,seed", [(1, 0), (5, 1), (40, 2), (120, 3)])
def test_random_spd_cholesky(n, seed):
    M = sp.random(n, n, density=0.04, random_state=seed)
    _check("cholesky", M @ M.T + sp.identity(n))


def test_poisson_8cubed():
    _check("cholesky", _poisson3(8))


@pytest.mark.parametrize("name,kind", [("494_bus", "cholesky"), ("bcsstk13", "cholesky"),
                                       ("west0479", "lu"), ("watt_2", "lu"),
                                       ("impcol_a", "lu")])
def test_real_matrices(name, kind):
    if not MATRICES.is_dir():
        pytest.skip(f"{MATRICES} is absent")
    A = sp.csr_matrix(scipy.io.mmread(str(MATRICES / f"{name}.mtx")))
    _check(kind, A)


def test_supernodes_and_open_columns():
    # a dense 4x4 lower pattern is one supernode; a path 0-1, 2-3 gives two
    ptr = np.array([0, 3, 5, 6, 6])
    idx = np.array([1, 2, 3, 2, 3, 3])
    np.testing.assert_array_equal(K.supernodes(4, ptr, idx), [0, 4])
    ptr2 = np.array([0, 1, 1, 2, 2])
    idx2 = np.array([1, 3])
    np.testing.assert_array_equal(K.supernodes(4, ptr2, idx2), [0, 2, 4])
    # column 0 with rows {2, 3} but (3, 2) missing: not closed, counted like the reference
    ptr3 = np.array([0, 2, 2, 2, 2])
    idx3 = np.array([2, 3])
    vals = np.array([0.5, -0.25])
    args = (4, ptr3, idx3, vals, vals, np.ones(4))
    assert K.takahashi(*args)[3] == K._takahashi_reference(*args)[3] == 1
