"""Random sparse test matrices for JAX (BCOO / BCSR), with the parameters of torch_api.utils'.

The same construction as torch_api's, driven by a ``jax.random`` key given first: positions
(:mod:`bridge.internal.sampling`) are drawn uniformly without replacement (every set of ``nnz``
positions equally likely), values are ``jax.random`` draws, and "well conditioned" means
strictly row diagonally dominant (each diagonal value is
``min_diag_value + U[0, 0.5) + sum_row |off-diagonal|``).

The number of stored entries fixes the output shapes, so ``size``, ``nnz`` and the options are
Python values; the positions are found by rejection sampling on the host (NumPy, seeded from the
key), so these builders run eagerly and are not meant to be called under ``jit``. The same key
gives the same matrix.

``layout`` is ``"coo"`` / ``"csr"`` or the class ``BCOO`` / ``BCSR``. A batched ``(b, n, m)``
result has one batch dimension (``n_batch=1``) and ``nnz`` entries per item. Results have sorted,
unique indices. Index and value dtypes must be representable: int64 or float64 need JAX's x64
mode (``with jax.enable_x64(True):``); without it they raise rather than silently downcast.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

from bridge.internal import sampling
from bridge.internal.options import check_positive, check_range, check_size, check_square

from ._validate import check_dtype_arg

__all__ = ["rand_sparse", "rand_sparse_tri", "make_spd_sparse"]

_LAYOUTS = {"coo": BCOO, "csr": BCSR, BCOO: BCOO, BCSR: BCSR}


# ------------------------------------------------------------------------------ checks
def _check_layout(layout):
    try:
        return _LAYOUTS[layout]
    except (KeyError, TypeError):
        raise TypeError(f"layout: expected 'coo', 'csr', BCOO or BCSR, got {layout!r}.") from None


def _check_dtype(name: str, dtype, kind: str):
    allowed = ("float32", "float64") if kind == "float" else ("int32", "int64")
    return check_dtype_arg(
        name, dtype, allowed, "use {name32} or enable it (with jax.enable_x64(True): ...)."
    )


def _check_key(key):
    if not isinstance(key, jax.Array) or isinstance(key, jax.core.Tracer):
        raise TypeError(
            f"key: expected a concrete jax.random key (these builders run eagerly), "
            f"got {type(key).__name__}."
        )
    return key


# ------------------------------------------------------------------------------ sampling
def _host_rng(key) -> np.random.Generator:
    """A NumPy generator seeded from the key's bits (same key, same draw)."""
    bits = key if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else jax.random.key_data(key)
    return sampling.host_rng(np.asarray(bits, dtype=np.uint32))


def _dominant(key, rows, cols, values, n: int, min_diag_value: float):
    """Diagonal values ``min_diag_value + U[0, 0.5) + sum_row |off-diagonal|`` (per item)."""
    diag = jnp.asarray(rows == cols)
    flat = jnp.asarray(rows + np.arange(rows.shape[0])[:, None] * n)
    off = jnp.where(diag, 0, jnp.abs(values))
    row_sum = jax.ops.segment_sum(off.ravel(), flat.ravel(), num_segments=rows.shape[0] * n)
    extra = 0.5 * jax.random.uniform(key, values.shape, values.dtype)
    return jnp.where(diag, min_diag_value + extra + row_sum[flat], values)


def _assemble(rows, cols, values, size, cls, index_dtype, device):
    """BCOO/BCSR from per-item ``(b, k)`` row/col arrays (NumPy, row-major sorted) and values."""
    n_r = size[-2]
    put = (lambda x: jax.device_put(x, device)) if device is not None else (lambda x: x)
    if len(size) == 2:
        rows, cols, values = rows[0], cols[0], values[0]
    if cls is BCOO:
        indices = jnp.asarray(np.stack([rows, cols], axis=-1), index_dtype)
        return BCOO(
            (put(values), put(indices)), shape=tuple(size), indices_sorted=True, unique_indices=True
        )
    indptr = sampling.crow_indices(np.atleast_2d(rows), n_r)
    indptr = indptr[0] if len(size) == 2 else indptr
    return BCSR(
        (put(values), put(jnp.asarray(cols, index_dtype)), put(jnp.asarray(indptr, index_dtype))),
        shape=tuple(size),
        indices_sorted=True,
        unique_indices=True,
    )


# ------------------------------------------------------------------------------ builders
def rand_sparse(
    key,
    size,
    nnz,
    layout="coo",
    *,
    indices_dtype=jnp.int32,
    values_dtype=jnp.float32,
    device=None,
    well_conditioned=False,
    min_diag_value=1.0,
):
    """A random sparse matrix with exactly ``nnz`` stored entries per batch item.

    Args:
        key: a ``jax.random`` key (concrete).
        size: ``(n, m)`` or ``(b, n, m)``.
        nnz: stored entries per batch item, placed uniformly; values uniform in ``[0, 1)``.
        layout: ``"coo"``/``BCOO`` or ``"csr"``/``BCSR``.
        indices_dtype, values_dtype: int32/int64 and float32/float64 (64-bit needs x64).
        device: a ``jax.Device`` to place the result on (default: JAX's default device).
        well_conditioned: for a square matrix, store the whole diagonal (``nnz >= n``) and make
            it dominant; ignored for a rectangular one.
        min_diag_value: the dominance margin when ``well_conditioned``.

    Example:
        >>> A = rand_sparse(jax.random.key(0), (2, 50, 50), 200, "csr", well_conditioned=True)
    """
    key = _check_key(key)
    size = check_size(size)
    cls = _check_layout(layout)
    idt, vdt = (
        _check_dtype("indices_dtype", indices_dtype, "int"),
        _check_dtype("values_dtype", values_dtype, "float"),
    )
    n_r, n_c = size[-2:]
    square_wc = bool(well_conditioned) and n_r == n_c
    nnz = sampling.check_nnz(nnz, n_r if square_wc else 0, n_r * n_c, size)
    if square_wc:
        check_positive("min_diag_value", min_diag_value)
    b = size[0] if len(size) == 3 else 1
    k_pos, k_val, k_diag = jax.random.split(key, 3)
    rows, cols = sampling.general_positions(_host_rng(k_pos), b, n_r, n_c, nnz, square_wc)
    values = jax.random.uniform(k_val, (b, nnz), vdt)
    if square_wc:
        values = _dominant(k_diag, rows, cols, values, n_r, min_diag_value)
    return _assemble(rows, cols, values, size, cls, idt, device)


def rand_sparse_tri(
    key,
    size,
    nnz,
    layout="coo",
    *,
    upper=True,
    strict=False,
    indices_dtype=jnp.int32,
    values_dtype=jnp.float32,
    device=None,
    value_range=(0, 1),
    well_conditioned=False,
    min_diag_value=1.0,
):
    """A random sparse triangular matrix with exactly ``nnz`` stored entries per batch item.

    Args:
        key: a ``jax.random`` key (concrete).
        size: square ``(n, n)`` or ``(b, n, n)``.
        nnz: stored entries per item: ``nnz <= n(n-1)/2`` if ``strict``, else
            ``n <= nnz <= n(n+1)/2`` (the whole diagonal plus uniform positions in the triangle).
        layout: ``"coo"``/``BCOO`` or ``"csr"``/``BCSR``.
        upper: upper (True) or lower (False) triangular.
        strict: no stored diagonal (for unit-triangular factors).
        indices_dtype, values_dtype, device: as in :func:`rand_sparse`.
        value_range: ``(low, high)``: values uniform in ``[low, high)``.
        well_conditioned: (not ``strict``) make the diagonal dominant.
        min_diag_value: the dominance margin when ``well_conditioned``.

    Example:
        >>> L = rand_sparse_tri(jax.random.key(0), (40, 40), 200, "csr", upper=False)
    """
    key = _check_key(key)
    size = check_size(size)
    n = size[-1]
    check_square(size)
    cls = _check_layout(layout)
    idt, vdt = (
        _check_dtype("indices_dtype", indices_dtype, "int"),
        _check_dtype("values_dtype", values_dtype, "float"),
    )
    pairs = n * (n - 1) // 2
    min_nnz = 0 if strict else n
    nnz = sampling.check_nnz(nnz, min_nnz, pairs + min_nnz, size)
    low, high = check_range(value_range)
    wc = bool(well_conditioned) and not strict
    if wc:
        check_positive("min_diag_value", min_diag_value)
    b = size[0] if len(size) == 3 else 1
    k_pos, k_val, k_diag = jax.random.split(key, 3)
    rng = _host_rng(k_pos)
    rows, cols = sampling.triangular_positions(rng, b, n, nnz, bool(upper), bool(strict))
    values = jax.random.uniform(k_val, (b, nnz), vdt, minval=low, maxval=high)
    if wc:
        values = _dominant(k_diag, rows, cols, values, n, min_diag_value)
    return _assemble(rows, cols, values, size, cls, idt, device)


def make_spd_sparse(
    key,
    n,
    layout="coo",
    values_dtype=jnp.float32,
    indices_dtype=jnp.int32,
    device=None,
    sparsity_ratio=0.5,
    nz=None,
):
    """A random sparse symmetric positive definite matrix, and the same matrix dense.

    Off-diagonal values are Gaussian on a symmetric random pattern; the diagonal is dominant,
    so the matrix is SPD (Gershgorin).

    Args:
        key: a ``jax.random`` key (concrete).
        n: the matrix is ``(n, n)``.
        layout: ``"coo"``/``BCOO`` or ``"csr"``/``BCSR``.
        values_dtype, indices_dtype: float32/float64 and int32/int64 (64-bit needs x64).
        device: a ``jax.Device`` for the result (default: JAX's default device).
        sparsity_ratio: fraction of the ``n(n-1)/2`` off-diagonal symmetric pairs left empty.
        nz: if given, the number of off-diagonal entries left empty instead (``nz // 2``
            pairs); the result stores exactly ``n*n - 2*(nz//2)`` entries.

    Returns:
        ``(A_sparse, A_dense)``.

    Example:
        >>> A, D = make_spd_sparse(jax.random.key(0), 20, "csr", jnp.float32, jnp.int32)
    """
    key = _check_key(key)
    n, empty = sampling.spd_empty_pairs(n, nz, sparsity_ratio)
    cls = _check_layout(layout)
    vdt = _check_dtype("values_dtype", values_dtype, "float")
    idt = _check_dtype("indices_dtype", indices_dtype, "int")
    k_pos, k_val, k_diag = jax.random.split(key, 3)
    rows, cols, pair = sampling.symmetric_positions(_host_rng(k_pos), n, empty)
    v = jax.random.normal(k_val, (n * (n - 1) // 2 - empty,), vdt)
    v = jnp.where(v == 0, 1, v)  # keep the pattern exact
    values = jnp.concatenate([v, jnp.zeros(1, vdt)])[jnp.asarray(pair)]  # pair -1: diagonal
    values = _dominant(k_diag, rows, cols, values, n, 1.0)
    dense = jnp.zeros((n, n), vdt).at[rows[0], cols[0]].set(values[0])
    if device is not None:
        dense = jax.device_put(dense, device)
    return _assemble(rows, cols, values, (n, n), cls, idt, device), dense
