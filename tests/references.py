"""NumPy references written once for both frontends (torch_api and jax_api tests, consistency
tests and the bad-input audit), each from the contract's words rather than the library's code.

Inputs may be NumPy arrays, torch tensors (CPU, dense) or JAX arrays; results are NumPy float64
(or the input dtype where stated). Gradient references that need autograd stay in the tests.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

MATRICES = Path(__file__).resolve().parents[1].parent / "shared" / "matrices"


def host(x) -> np.ndarray:
    """A NumPy view or copy of a torch tensor (dense or sparse), JAX array or array-like."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        x = x.to_dense() if str(x.layout) != "torch.strided" else x
        x = x.resolve_neg().resolve_conj().numpy()
    return np.asarray(x)


# ------------------------------------------------------------------------ PairwiseEncoder
def pairwise_entries(volume_shape, offsets):
    """The PairwiseEncoder contract, entry by entry: for offset ``o`` (k-th) and every voxel ``p``
    with ``p - o`` inside the ``(C, *spatial)`` volume, ``M[p, p - o] = values[k][p]`` (voxels
    numbered in C order, no wrap-around).

    Returns int64 arrays ``(rows, cols, src)``: entry ``(rows[i], cols[i])`` holds the flat
    element ``src[i]`` of ``values`` of shape ``(len(offsets), *volume_shape)``. Two offsets
    never hit one entry (asserted).
    """
    rows, cols, src = [], [], []
    for k, o in enumerate(offsets):
        for p in itertools.product(*(range(n) for n in volume_shape)):
            q = tuple(a - b for a, b in zip(p, o, strict=True))
            if all(0 <= x < n for x, n in zip(q, volume_shape, strict=True)):
                rows.append(np.ravel_multi_index(p, volume_shape))
                cols.append(np.ravel_multi_index(q, volume_shape))
                src.append(np.ravel_multi_index((k, *p), (len(offsets), *volume_shape)))
    rows, cols, src = (np.asarray(v, dtype=np.int64) for v in (rows, cols, src))
    pairs = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert len(pairs) == len(rows), "two offsets hit one entry"
    return rows, cols, src


def pairwise_dense(values, volume_shape, offsets) -> np.ndarray:
    """The dense ``(S, S)`` matrix of ``values`` ``(K, C, *spatial)`` (the input dtype).

    Example: ``pairwise_dense(np.ones((1, 1, 3)), (1, 3), [(0, 1)])`` has ones below the diagonal.
    """
    v = host(values)
    S = math.prod(volume_shape)
    rows, cols, src = pairwise_entries(volume_shape, offsets)
    out = np.zeros((S, S), v.dtype)
    out[rows, cols] = v.reshape(-1)[src]
    return out


def pairwise_mask(volume_shape, offsets) -> np.ndarray:
    """Boolean ``(S, S)`` mask of the entries the encoder stores."""
    S = math.prod(volume_shape)
    rows, cols, _ = pairwise_entries(volume_shape, offsets)
    mask = np.zeros((S, S), bool)
    mask[rows, cols] = True
    return mask


# --------------------------------------------------------------------- grouped products
def segment_mm(a, b, seglen) -> np.ndarray:
    """``out[s:s+n] = a[s:s+n] @ b[r]`` for segment ``r`` of length ``n``, in float64."""
    a, b, seglen = host(a).astype(np.float64), host(b).astype(np.float64), host(seglen)
    return np.einsum("nd,nde->ne", a, b[np.repeat(np.arange(len(seglen)), seglen)])


def gather_mm(a, b, idx) -> np.ndarray:
    """``out[i] = a[i] @ b[idx[i]]``, in float64."""
    a, b = host(a).astype(np.float64), host(b).astype(np.float64)
    return np.einsum("nd,nde->ne", a, b[host(idx).astype(np.int64)])


# ---------------------------------------------------------------------------- log-sum-exp
def logsumexp(D, dims, include_zeros: bool = True) -> np.ndarray:
    """``log(sum(exp(D)))`` over ``dims`` of the dense ``D``, in float64; with
    ``include_zeros=False`` the zeros (implicit entries) count as ``-inf`` (an all-implicit
    slice gives ``-inf``). NaN and inf propagate as in ``torch.logsumexp``."""
    from scipy.special import logsumexp as lse

    X = host(D).astype(np.float64)
    if not include_zeros:
        X = np.where(X != 0, X, -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return lse(X, axis=dims)


# ------------------------------------------------------------------------ sparse products
def stored_product(A, B, mask=None) -> np.ndarray:
    """``A @ B`` summing over the stored entries of ``A`` only (``mask``: default ``A != 0``):
    an implicit zero multiplies nothing, so an inf in ``B`` reaches only the rows that store an
    entry in its row, as in ``torch.sparse.mm``. 2-D ``A``; ``B`` of shape ``(m,)`` or
    ``(m, p)``."""
    A, B = host(A), host(B)
    mask = A != 0 if mask is None else host(mask)
    out = np.zeros((A.shape[0], *B.shape[1:]), np.result_type(A, B))
    for i, k in zip(*np.nonzero(mask), strict=True):
        out[i] += A[i, k] * B[k]
    return out


# ------------------------------------------------------------ matrices and incomplete factors
def suitesparse(name: str, scale: bool = False):
    """A SuiteSparse matrix of ``../shared/matrices`` as a canonical SciPy ``csr_array``
    (``scale``: symmetric diagonal scaling to a unit diagonal); skips the test when absent."""
    import pytest
    import scipy.io
    import scipy.sparse as sp

    if not MATRICES.is_dir():
        pytest.skip(f"{MATRICES} is absent")
    M = sp.csr_array(scipy.io.mmread(MATRICES / f"{name}.mtx"), dtype=np.float64)
    if scale:
        d = sp.diags_array(1 / np.sqrt(M.diagonal()))
        M = sp.csr_array(d @ M @ d)
    M.sum_duplicates()
    M.sort_indices()
    return M


def poisson3d(k: int):
    """The 7-point Dirichlet Poisson matrix of a k^3 grid as a SciPy ``csr_array``."""
    import scipy.sparse as sp

    T = sp.diags_array([-np.ones(k - 1), 2 * np.ones(k), -np.ones(k - 1)], offsets=[-1, 0, 1])
    eye = sp.eye_array(k)
    A = sp.kron(sp.kron(T, eye), eye) + sp.kron(sp.kron(eye, T), eye)
    A = sp.csr_array(A + sp.kron(eye, sp.kron(eye, T)))
    A.sort_indices()
    return A


def ic0_reference(D) -> np.ndarray:
    """IC(0): the dense right-looking Cholesky loop, updates kept on D's lower pattern."""
    D = host(D)
    n, P, L = D.shape[0], D != 0, np.tril(D).astype(np.float64)
    for k in range(n):
        L[k, k] = np.sqrt(L[k, k])
        L[k + 1:, k] = np.where(P[k + 1:, k], L[k + 1:, k] / L[k, k], 0)
        update = np.outer(L[k + 1:, k], L[k + 1:, k])
        L[k + 1:, k + 1:] -= np.tril(np.where(P[k + 1:, k + 1:], update, 0))
    return L


def ilu0_reference(D) -> tuple[np.ndarray, np.ndarray]:
    """ILU(0): the dense right-looking LU loop, updates kept on D's pattern: (unit L, U)."""
    D = host(D)
    n, P, W = D.shape[0], D != 0, D.astype(np.float64).copy()
    for k in range(n):
        W[k + 1:, k] = np.where(P[k + 1:, k], W[k + 1:, k] / W[k, k], 0)
        W[k + 1:, k + 1:] -= np.where(P[k + 1:, k + 1:], np.outer(W[k + 1:, k], W[k, k + 1:]), 0)
    return np.tril(W, -1) + np.eye(n), np.triu(W)
