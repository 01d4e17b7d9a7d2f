"""Random sparse test matrices for JAX (BCOO / BCSR), with the parameters of torch_api.utils'.

The same construction as :mod:`torch_api._random`, driven by a ``jax.random`` key given first:
positions are drawn uniformly without replacement (every set of ``nnz`` positions equally
likely), values are ``jax.random`` draws, and "well conditioned" means strictly row diagonally
dominant (each diagonal value is ``min_diag_value + U[0, 0.5) + sum_row |off-diagonal|``).

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

from torch_api._blocks import _check_size
from torch_api._random import _check_min_diag, _check_range

__all__ = ["rand_sparse", "rand_sparse_tri", "make_spd_sparse"]

_LAYOUTS = {"coo": BCOO, "csr": BCSR, BCOO: BCOO, BCSR: BCSR}


# ------------------------------------------------------------------------------ checks
def _check_layout(layout):
    try:
        return _LAYOUTS[layout]
    except (KeyError, TypeError):
        raise TypeError(f"layout: expected 'coo', 'csr', BCOO or BCSR, got {layout!r}.") from None


def _check_dtype(name: str, dtype, kind: str):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    allowed = ("float32", "float64") if kind == "float" else ("int32", "int64")
    if dt is None or dt.name not in allowed:
        raise ValueError(f"{name}: expected {' or '.join(allowed)}, got {dtype!r}.")
    if jax.dtypes.canonicalize_dtype(dt) != dt:
        raise ValueError(
            f"{name}: expected a dtype JAX can hold now, got {dt.name} with x64 disabled; "
            f"use {dt.name[:-2]}32 or enable it (with jax.enable_x64(True): ...)."
        )
    return dt


def _check_nnz(nnz, lo: int, hi: int, size):
    if isinstance(nnz, bool) or not isinstance(nnz, (int, np.integer)):
        raise TypeError(f"nnz: expected an int, got {type(nnz).__name__} {nnz!r}.")
    if not lo <= nnz <= hi:
        raise ValueError(f"nnz: expected {lo} <= nnz <= {hi} for size {size}, got {nnz}.")
    return int(nnz)


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
    return np.random.default_rng(np.asarray(bits, dtype=np.uint32).ravel())


def _sample_unique(rng: np.random.Generator, total: int, k: int) -> np.ndarray:
    """``k`` distinct integers uniform in ``[0, total)``, sorted (int64)."""
    if k == 0:
        return np.zeros(0, np.int64)
    if 2 * k >= total:
        return np.sort(rng.permutation(total)[:k])
    got = np.zeros(0, np.int64)
    while got.size < k:
        draw = rng.integers(0, total, int(1.25 * (k - got.size)) + 16, dtype=np.int64)
        got = np.unique(np.concatenate([got, draw]))
    return np.sort(rng.permutation(got)[:k])


def _strict_lower(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-major rank ``t`` of a strictly lower position -> ``(row, col)``, ``row > col``."""
    i = np.floor((1 + np.sqrt(1 + 8 * t.astype(np.float64))) / 2).astype(np.int64)
    i = i - (i * (i - 1) // 2 > t)
    i = i + ((i + 1) * i // 2 <= t)
    return i, t - i * (i - 1) // 2


def _dominant(key, rows, cols, values, n: int, min_diag_value: float):
    """Diagonal values ``min_diag_value + U[0, 0.5) + sum_row |off-diagonal|`` (per item)."""
    diag = jnp.asarray(rows == cols)
    flat = jnp.asarray(rows + np.arange(rows.shape[0])[:, None] * n)
    off = jnp.where(diag, 0, jnp.abs(values))
    row_sum = jax.ops.segment_sum(off.ravel(), flat.ravel(), num_segments=rows.shape[0] * n)
    extra = 0.5 * jax.random.uniform(key, values.shape, values.dtype)
    return jnp.where(diag, min_diag_value + extra + row_sum[flat], values)


def _assemble(rows, cols, values, size, cls, index_dtype, device):
    """BCOO/BCSR from per-item ``(b, k)`` row/col arrays (NumPy) and values (JAX), any order."""
    b, k = rows.shape
    n_r, n_c = size[-2:]
    order = np.argsort(rows * n_c + cols, axis=1, kind="stable")
    rows, cols = np.take_along_axis(rows, order, 1), np.take_along_axis(cols, order, 1)
    values = jnp.take_along_axis(values, jnp.asarray(order), axis=1)
    put = (lambda x: jax.device_put(x, device)) if device is not None else (lambda x: x)
    if len(size) == 2:
        rows, cols, values = rows[0], cols[0], values[0]
    if cls is BCOO:
        indices = jnp.asarray(np.stack([rows, cols], axis=-1), index_dtype)
        return BCOO(
            (put(values), put(indices)), shape=tuple(size), indices_sorted=True, unique_indices=True
        )
    counts = np.stack([np.bincount(r, minlength=n_r) for r in np.atleast_2d(rows)])
    indptr = np.zeros((counts.shape[0], n_r + 1), np.int64)
    np.cumsum(counts, axis=1, out=indptr[:, 1:])
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
    size = _check_size(size)
    cls = _check_layout(layout)
    idt, vdt = (
        _check_dtype("indices_dtype", indices_dtype, "int"),
        _check_dtype("values_dtype", values_dtype, "float"),
    )
    n_r, n_c = size[-2:]
    square_wc = bool(well_conditioned) and n_r == n_c
    nnz = _check_nnz(nnz, n_r if square_wc else 0, n_r * n_c, size)
    if square_wc:
        _check_min_diag(min_diag_value)
    b = size[0] if len(size) == 3 else 1
    k_pos, k_val, k_diag = jax.random.split(key, 3)
    rng = _host_rng(k_pos)
    rows, cols = [], []
    for _ in range(b):
        if square_wc:  # the diagonal plus nnz - n off-diagonal positions
            t = _sample_unique(rng, n_r * (n_r - 1), nnz - n_r)
            i, r = t // max(n_r - 1, 1), t % max(n_r - 1, 1)
            rows.append(np.concatenate([np.arange(n_r), i]))
            cols.append(np.concatenate([np.arange(n_r), r + (r >= i)]))
        else:
            t = _sample_unique(rng, n_r * n_c, nnz)
            rows.append(t // max(n_c, 1))
            cols.append(t % max(n_c, 1))
    rows, cols = np.stack(rows).reshape(b, nnz), np.stack(cols).reshape(b, nnz)
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
    size = _check_size(size)
    n = size[-1]
    if size[-2] != n:
        raise ValueError(f"size: expected a square (n, n) or (b, n, n), got {size!r}.")
    cls = _check_layout(layout)
    idt, vdt = (
        _check_dtype("indices_dtype", indices_dtype, "int"),
        _check_dtype("values_dtype", values_dtype, "float"),
    )
    pairs = n * (n - 1) // 2
    min_nnz = 0 if strict else n
    nnz = _check_nnz(nnz, min_nnz, pairs + min_nnz, size)
    low, high = _check_range(value_range)
    wc = bool(well_conditioned) and not strict
    if wc:
        _check_min_diag(min_diag_value)
    b = size[0] if len(size) == 3 else 1
    k_pos, k_val, k_diag = jax.random.split(key, 3)
    rng = _host_rng(k_pos)
    rows, cols = [], []
    for _ in range(b):
        i, j = _strict_lower(_sample_unique(rng, pairs, nnz - min_nnz))
        if not strict:
            i, j = np.concatenate([np.arange(n), i]), np.concatenate([np.arange(n), j])
        rows.append(j if upper else i)
        cols.append(i if upper else j)
    rows, cols = np.stack(rows).reshape(b, nnz), np.stack(cols).reshape(b, nnz)
    values = jax.random.uniform(k_val, (b, nnz), vdt, minval=low, maxval=high)
    if wc:
        values = _dominant(k_diag, rows, cols, values, n, min_diag_value)
    return _assemble(rows, cols, values, size, cls, idt, device)


def make_spd_sparse(
    key,
    n,
    layout="coo",
    value_dtype=jnp.float32,
    index_dtype=jnp.int32,
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
        value_dtype, index_dtype: float32/float64 and int32/int64 (64-bit needs x64).
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
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}.")
    n = int(n)
    cls = _check_layout(layout)
    vdt = _check_dtype("value_dtype", value_dtype, "float")
    idt = _check_dtype("index_dtype", index_dtype, "int")
    pairs = n * (n - 1) // 2
    if nz is not None:
        if (
            isinstance(nz, bool)
            or not isinstance(nz, (int, np.integer))
            or not 0 <= nz // 2 <= pairs
        ):
            raise ValueError(f"nz: expected an int in [0, {2 * pairs + 1}] for n={n}, got {nz!r}.")
        empty = int(nz) // 2
    else:
        if not 0.0 <= float(sparsity_ratio) <= 1.0:
            raise ValueError(
                f"sparsity_ratio: expected a number in [0, 1], got {sparsity_ratio!r}."
            )
        empty = int(sparsity_ratio * pairs)
    k_pos, k_val, k_diag = jax.random.split(key, 3)
    i, j = _strict_lower(_sample_unique(_host_rng(k_pos), pairs, pairs - empty))
    v = jax.random.normal(k_val, i.shape, vdt)
    v = jnp.where(v == 0, 1, v)  # keep the pattern exact
    ar = np.arange(n)
    rows, cols = np.concatenate([i, j, ar])[None], np.concatenate([j, i, ar])[None]
    values = jnp.concatenate([v, v, jnp.zeros(n, vdt)])[None]
    values = _dominant(k_diag, rows, cols, values, n, 1.0)
    dense = jnp.zeros((n, n), vdt).at[rows[0], cols[0]].set(values[0])
    if device is not None:
        dense = jax.device_put(dense, device)
    return _assemble(rows, cols, values, (n, n), cls, idt, device), dense
