"""Dense blocked kernels of the supernodal Takahashi recursion (:mod:`._factor_kernels`):
a small-product ``matmul`` and the two in-place unit-triangular solves of a supernode's block.

numba functions, compiled at first use; imported only through :mod:`._factor_kernels`.
"""

from __future__ import annotations

import numba
import numpy as np

BLOCK = 48  # columns per diagonal block of the blocked triangular solves


@numba.njit(cache=False, nogil=True)
def matmul(A, B):
    """``A @ B`` for C-ordered 2-D arrays: BLAS when large, plain loops when small (a BLAS call
    costs more than a small product, and a threaded BLAS much more on a busy machine)."""
    p, k = A.shape
    m = B.shape[1]
    if p * k * m > 262144:
        return np.dot(A, B)
    C = np.zeros((p, m))
    for i in range(p):
        for q in range(k):
            a = A[i, q]
            if a != 0.0:
                for j in range(m):
                    C[i, j] += a * B[q, j]
    return C


@numba.njit(cache=False, nogil=True)
def solve_right_unit_lower(Y, L):
    """``Y <- Y L^{-1}`` in place, for ``Y (p, m)`` and a unit lower ``L (m, m)``."""
    p, m = Y.shape
    k1 = m
    while k1 > 0:
        k0 = max(0, k1 - BLOCK)
        if k1 < m:  # Y[:, K] -= Y[:, k1:] L[k1:, K]
            Y[:, k0:k1] -= matmul(np.ascontiguousarray(Y[:, k1:]),
                                  np.ascontiguousarray(L[k1:, k0:k1]))
        for i in range(p):
            for c in range(k1 - 1, k0 - 1, -1):
                s = Y[i, c]
                for r in range(c + 1, k1):
                    s -= Y[i, r] * L[r, c]
                Y[i, c] = s
        k1 = k0


@numba.njit(cache=False, nogil=True)
def solve_left_unit_upper(U, Y):
    """``Y <- U^{-1} Y`` in place, for a unit upper ``U (m, m)`` and ``Y (m, p)``."""
    m, p = Y.shape
    k1 = m
    while k1 > 0:
        k0 = max(0, k1 - BLOCK)
        if k1 < m:  # Y[K, :] -= U[K, k1:] Y[k1:, :]
            Y[k0:k1, :] -= matmul(np.ascontiguousarray(U[k0:k1, k1:]),
                                  np.ascontiguousarray(Y[k1:, :]))
        for c in range(k1 - 1, k0 - 1, -1):
            for r in range(c + 1, k1):
                u = U[c, r]
                if u != 0.0:
                    for i in range(p):
                        Y[c, i] -= u * Y[r, i]
        k1 = k0

