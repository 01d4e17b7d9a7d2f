"""Host-side random positions of the random sparse test matrices of both frontends.

Positions are drawn without replacement and uniformly (every set of ``nnz`` positions equally
likely) by vectorised rejection on a NumPy generator: draw integers, keep the distinct ones,
take a random subset. Each frontend seeds the generator from its own randomness (torch's global
generator, a ``jax.random`` key) and draws the values itself. Positions come back sorted in
row-major order within each batch item, as ``(b, nnz)`` int64 row and column arrays.

A position of the strict lower triangle is its row-major rank ``t`` among the ``n (n - 1) / 2``
positions with ``row > col``: ``row = floor((1 + sqrt(1 + 8 t)) / 2)`` (corrected for float
rounding) and ``col = t - row (row - 1) / 2``.
"""

from __future__ import annotations

import numpy as np

from .options import check_fraction, is_int


def host_rng(entropy) -> np.random.Generator:
    """A NumPy generator seeded from non-negative integers (e.g. a JAX key's uint32 words)."""
    return np.random.default_rng(np.asarray(entropy, dtype=np.uint64).ravel().tolist())


def check_nnz(nnz: object, low: int, high: int, size) -> int:
    """``nnz`` as an int in ``[low, high]`` (TypeError if not an int, ValueError if outside)."""
    if not is_int(nnz):
        raise TypeError(f"nnz: expected an int, got {type(nnz).__name__} {nnz!r}.")
    if not low <= nnz <= high:
        raise ValueError(f"nnz: expected {low} <= nnz <= {high} for size {size}, got {nnz}.")
    return int(nnz)


def spd_empty_pairs(n: object, nz: object, sparsity_ratio: object) -> tuple[int, int]:
    """``(n, empty)``: the checked size of an SPD test matrix and how many of its
    ``n (n - 1) / 2`` symmetric off-diagonal pairs stay empty (``nz // 2`` if ``nz`` is given,
    else ``int(sparsity_ratio * pairs)``)."""
    if not is_int(n) or n < 1:
        raise ValueError(f"n: expected a positive int, got {n!r}.")
    n = int(n)
    pairs = n * (n - 1) // 2
    if nz is not None:
        if not is_int(nz) or not 0 <= nz // 2 <= pairs:
            raise ValueError(f"nz: expected an int in [0, {2 * pairs + 1}] for n={n}, got {nz!r}.")
        return n, int(nz) // 2
    return n, int(check_fraction("sparsity_ratio", sparsity_ratio) * pairs)


def sample_unique(rng: np.random.Generator, total: int, k: int) -> np.ndarray:
    """``k`` distinct integers drawn uniformly from ``[0, total)``, sorted (int64)."""
    if k == 0:
        return np.zeros(0, np.int64)
    if 2 * k >= total:  # dense draw: a permutation costs O(total) = O(k)
        return np.sort(rng.permutation(total)[:k])
    got = np.zeros(0, np.int64)
    while got.size < k:
        draw = rng.integers(0, total, int(1.25 * (k - got.size)) + 16, dtype=np.int64)
        got = np.unique(np.concatenate([got, draw]))
    return np.sort(rng.permutation(got)[:k])


def strict_lower(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-major rank ``t`` of a strictly lower position -> ``(row, col)`` with ``row > col``."""
    i = np.floor((1 + np.sqrt(1 + 8 * t.astype(np.float64))) / 2).astype(np.int64)
    i = i - (i * (i - 1) // 2 > t)
    i = i + ((i + 1) * i // 2 <= t)
    return i, t - i * (i - 1) // 2


def _sorted(rows: list, cols: list, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    if not rows:  # an empty batch
        return np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64)
    rows, cols = np.stack(rows).astype(np.int64), np.stack(cols).astype(np.int64)
    order = np.argsort(rows * max(n_cols, 1) + cols, axis=1, kind="stable")
    return np.take_along_axis(rows, order, 1), np.take_along_axis(cols, order, 1)


def general_positions(
    rng: np.random.Generator, batch: int, n_rows: int, n_cols: int, nnz: int, diagonal: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``nnz`` uniform positions per item of an ``(n_rows, n_cols)`` matrix; with ``diagonal``
    (square only) the whole diagonal plus ``nnz - n`` uniform off-diagonal positions."""
    rows, cols = [], []
    for _ in range(batch):
        if diagonal:
            t = sample_unique(rng, n_rows * (n_rows - 1), nnz - n_rows)
            i, r = t // max(n_rows - 1, 1), t % max(n_rows - 1, 1)
            rows.append(np.concatenate([np.arange(n_rows), i]))
            cols.append(np.concatenate([np.arange(n_rows), r + (r >= i)]))
        else:
            t = sample_unique(rng, n_rows * n_cols, nnz)
            rows.append(t // max(n_cols, 1))
            cols.append(t % max(n_cols, 1))
    return _sorted(rows, cols, n_cols)


def triangular_positions(
    rng: np.random.Generator, batch: int, n: int, nnz: int, upper: bool, strict: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``nnz`` positions per item in one triangle of an ``(n, n)`` matrix: the whole diagonal
    (unless ``strict``) plus uniform positions strictly inside the triangle."""
    rows, cols = [], []
    for _ in range(batch):
        i, j = strict_lower(sample_unique(rng, n * (n - 1) // 2, nnz - (0 if strict else n)))
        if not strict:
            i, j = np.concatenate([np.arange(n), i]), np.concatenate([np.arange(n), j])
        rows.append(j if upper else i)
        cols.append(i if upper else j)
    return _sorted(rows, cols, n)


def symmetric_positions(
    rng: np.random.Generator, n: int, empty: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A symmetric pattern with the whole diagonal and ``pairs - empty`` off-diagonal pairs.

    Returns:
        ``(rows, cols, pair)``, each ``(1, nnz)``: ``pair`` is the index of the pair an entry
        belongs to (the two entries of a pair share a value), ``-1`` on the diagonal.
    """
    n_pairs = n * (n - 1) // 2 - empty
    i, j = strict_lower(sample_unique(rng, n * (n - 1) // 2, n_pairs))
    ar, ids = np.arange(n), np.arange(n_pairs)
    rows, cols = np.concatenate([i, j, ar])[None], np.concatenate([j, i, ar])[None]
    pair = np.concatenate([ids, ids, np.full(n, -1)])[None]
    order = np.argsort(rows * n + cols, axis=1, kind="stable")
    take = lambda a: np.take_along_axis(a, order, 1)
    return take(rows), take(cols), take(pair)


def crow_indices(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """``(b, n_rows + 1)`` CSR row pointers of sorted ``(b, k)`` row indices (int64)."""
    counts = np.stack([np.bincount(r, minlength=n_rows) for r in rows])
    crow = np.zeros((rows.shape[0], n_rows + 1), np.int64)
    np.cumsum(counts, axis=1, out=crow[:, 1:])
    return crow
