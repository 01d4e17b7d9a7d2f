"""jax_api.rand_sparse / rand_sparse_tri / make_spd_sparse: patterns, values, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO, BCSR  # noqa: E402

from jax_api import make_spd_sparse, rand_sparse, rand_sparse_tri  # noqa: E402

LAYOUTS = ["coo", "csr", BCOO, BCSR]


def _cls(layout):
    return {"coo": BCOO, "csr": BCSR}.get(layout, layout)


def _unique_sorted(A):
    """Every batch item stores distinct positions in row-major order."""
    if isinstance(A, BCSR):
        indptr = np.atleast_2d(np.asarray(A.indptr))
        cols = np.atleast_2d(np.asarray(A.indices))
        for p, c in zip(indptr, cols, strict=True):
            rows = np.repeat(np.arange(len(p) - 1), np.diff(p))
            key = rows * A.shape[-1] + c
            assert (np.diff(key) > 0).all()
    else:
        idx = np.asarray(A.indices).reshape(-1, A.indices.shape[-2], 2)
        for i in idx:
            key = i[:, 0] * A.shape[-1] + i[:, 1]
            assert (np.diff(key) > 0).all()


@pytest.mark.parametrize("layout", LAYOUTS, ids=["coo", "csr", "BCOO", "BCSR"])
@pytest.mark.parametrize("size", [(7, 5), (3, 6, 6)], ids=["2d", "batched"])
def test_rand_sparse(layout, size):
    A = rand_sparse(jax.random.key(0), size, 11, layout)
    assert isinstance(A, _cls(layout)) and A.shape == size
    assert A.n_batch == len(size) - 2
    assert A.dtype == jnp.float32 and A.indices.dtype == jnp.int32
    D = np.asarray(A.todense())
    assert ((D != 0).sum(axis=(-2, -1)) == 11).all()  # values in (0, 1) are non-zero a.s.
    assert D.min() >= 0 and D.max() < 1
    _unique_sorted(A)


def test_rand_sparse_well_conditioned():
    A = rand_sparse(
        jax.random.key(1), (2, 9, 9), 30, "csr", well_conditioned=True, min_diag_value=2.0
    )
    D = np.asarray(A.todense())
    diag = np.diagonal(D, axis1=-2, axis2=-1)
    off = np.abs(D).sum(-1) - np.abs(diag)
    assert (diag >= 2.0 + off).all() and (diag < 2.5 + off + 1e-6).all()
    # a rectangular matrix ignores well_conditioned
    assert rand_sparse(jax.random.key(1), (4, 6), 3, well_conditioned=True).nse == 3


def test_reproducible_from_key():
    a = rand_sparse(jax.random.key(3), (8, 8), 10)
    b = rand_sparse(jax.random.key(3), (8, 8), 10)
    c = rand_sparse(jax.random.key(4), (8, 8), 10)
    np.testing.assert_array_equal(a.todense(), b.todense())
    assert not np.array_equal(a.todense(), c.todense())
    legacy = rand_sparse(jax.random.PRNGKey(3), (8, 8), 10)  # raw uint32 keys work too
    assert legacy.nse == 10


def test_positions_are_uniform():
    counts = np.zeros((4, 4))
    for s in range(300):
        counts += np.asarray(rand_sparse(jax.random.key(s), (4, 4), 3).todense()) != 0
    mean, sd = 300 * 3 / 16, np.sqrt(300 * 3 / 16 * 13 / 16)
    assert np.abs(counts - mean).max() < 5 * sd
    # the large-range (rejection) branch also gives distinct positions
    A = rand_sparse(jax.random.key(0), (300, 400), 50)
    _unique_sorted(A)
    assert A.nse == 50


@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_rand_sparse_tri(upper, strict, layout):
    n, nnz = 8, 12
    T = rand_sparse_tri(
        jax.random.key(5),
        (2, n, n),
        nnz,
        layout,
        upper=upper,
        strict=strict,
        value_range=(1.0, 3.0),
    )
    D = np.asarray(T.todense())
    tri = np.triu if upper else np.tril
    np.testing.assert_array_equal(D, tri(D, k=(1 if upper else -1) if strict else 0))
    diag = np.diagonal(D, axis1=-2, axis2=-1)
    assert (diag == 0).all() if strict else (diag != 0).all()
    assert ((D != 0).sum(axis=(-2, -1)) == nnz).all()
    nz = D[D != 0]
    assert nz.min() >= 1.0 and nz.max() < 3.0
    _unique_sorted(T)


def test_rand_sparse_tri_well_conditioned_and_full():
    n = 6
    L = rand_sparse_tri(
        jax.random.key(6), (n, n), n * (n + 1) // 2, upper=False, well_conditioned=True
    )
    D = np.asarray(L.todense())
    assert (D[np.tril_indices(n)] != 0).all()  # every position of the triangle
    diag = np.diag(D)
    assert (diag >= 1.0 + np.abs(D).sum(1) - diag).all()


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_make_spd_sparse(layout):
    A, D = make_spd_sparse(
        jax.random.key(7), 12, layout, jnp.float32, jnp.int32, sparsity_ratio=0.7
    )
    assert isinstance(A, _cls(layout)) and A.shape == (12, 12)
    D = np.asarray(D)
    np.testing.assert_array_equal(np.asarray(A.todense()), D)
    np.testing.assert_array_equal(D, D.T)
    assert np.linalg.eigvalsh(D.astype(np.float64)).min() > 0
    pairs = 12 * 11 // 2
    assert A.nse == 12 + 2 * (pairs - int(0.7 * pairs))
    A, _ = make_spd_sparse(jax.random.key(7), 12, layout, nz=20)
    assert A.nse == 144 - 20
    _unique_sorted(A)


def test_64_bit_dtypes(x64):
    A = rand_sparse(
        jax.random.key(0), (5, 5), 6, "csr", indices_dtype=jnp.int64, values_dtype=jnp.float64
    )
    assert A.dtype == jnp.float64 and A.indices.dtype == jnp.int64 and A.indptr.dtype == jnp.int64
    S, D = make_spd_sparse(
        jax.random.key(0), 5, "coo", values_dtype=jnp.float64, indices_dtype=jnp.int64
    )
    assert S.dtype == D.dtype == jnp.float64 and S.indices.dtype == jnp.int64


def test_device_placement():
    dev = jax.devices()[0]
    A = rand_sparse(jax.random.key(0), (5, 5), 6, device=dev)
    assert A.data.devices() == {dev}


def test_bad_inputs():
    k = jax.random.key(0)
    with pytest.raises(TypeError, match="layout: expected 'coo', 'csr', BCOO or BCSR"):
        rand_sparse(k, (4, 4), 3, "csc")
    with pytest.raises(ValueError, match=r"nnz: expected 0 <= nnz <= 16"):
        rand_sparse(k, (4, 4), 17)
    with pytest.raises(ValueError, match=r"nnz: expected 4 <= nnz <= 16"):
        rand_sparse(k, (4, 4), 2, well_conditioned=True)
    with pytest.raises(TypeError, match="nnz: expected an int"):
        rand_sparse(k, (4, 4), 2.5)
    with pytest.raises(TypeError, match="size: expected a tuple of ints"):
        rand_sparse(k, 4, 2)
    with pytest.raises(ValueError, match=r"size: expected \(n, m\) or \(b, n, m\)"):
        rand_sparse(k, (4,), 2)
    with pytest.raises(ValueError, match="values_dtype: expected float32 or float64"):
        rand_sparse(k, (4, 4), 2, values_dtype=jnp.int32)
    with pytest.raises(ValueError, match="values_dtype: expected a dtype JAX can hold now"):
        with jax.enable_x64(False):
            rand_sparse(k, (4, 4), 2, values_dtype=np.float64)
    with pytest.raises(ValueError, match="indices_dtype: expected int32 or int64"):
        rand_sparse(k, (4, 4), 2, indices_dtype=jnp.float32)
    with pytest.raises(TypeError, match="key: expected a concrete jax.random key"):
        rand_sparse(0, (4, 4), 2)
    with pytest.raises(TypeError, match="key: expected a concrete jax.random key"):
        jax.jit(lambda key: rand_sparse(key, (4, 4), 2).data)(k)
    with pytest.raises(ValueError, match=r"size: expected a square"):
        rand_sparse_tri(k, (4, 5), 4)
    with pytest.raises(ValueError, match=r"nnz: expected 0 <= nnz <= 6"):
        rand_sparse_tri(k, (4, 4), 7, strict=True)
    with pytest.raises(ValueError, match="value_range: expected low <= high"):
        rand_sparse_tri(k, (4, 4), 4, value_range=(2, 1))
    with pytest.raises(ValueError, match="min_diag_value: expected a positive number"):
        rand_sparse_tri(k, (4, 4), 4, well_conditioned=True, min_diag_value=0.0)
    with pytest.raises(ValueError, match="n: expected a positive int"):
        make_spd_sparse(k, 0)
    with pytest.raises(ValueError, match="sparsity_ratio: expected a number in"):
        make_spd_sparse(k, 4, sparsity_ratio=1.5)
    with pytest.raises(ValueError, match=r"nz: expected an int in \[0, 13\]"):
        make_spd_sparse(k, 4, nz=14)
