"""numba kernels of :mod:`bridge.internal.factor`: pattern alignment, symbolic closure, Takahashi.

Imported (and compiled, once per process) only when a factorisation first needs them: importing
``bridge`` never imports numba. All patterns are strictly lower triangular CSC arrays with
sorted row indices: ``ptr (n+1,)``, ``idx (nnz,)``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=False, nogil=True)
def align(ptr, idx, xptr, xidx, xval):
    """Values of the CSC matrix ``x`` on the pattern ``(ptr, idx)`` (which must contain x's)."""
    n = ptr.shape[0] - 1
    out = np.zeros(idx.shape[0])
    for j in range(n):
        t = ptr[j]
        for q in range(xptr[j], xptr[j + 1]):
            r = xidx[q]
            while idx[t] < r:
                t += 1
            out[t] = xval[q]
    return out


@numba.njit(cache=False, nogil=True)
def closure(n, ptr, idx):
    """The elimination (chordal) closure of the lower pattern ``(ptr, idx)`` in its own order.

    Column ``j`` of the result is ``j``'s own rows and those of its children in the elimination
    tree, below ``j``: the pattern a Cholesky factor of ``P + P^T`` would have. On it the
    Takahashi recursion only ever needs entries it has already computed.
    """
    parent_head = np.full(n, -1, np.int64)  # first child of each column
    sibling = np.full(n, -1, np.int64)
    mark = np.full(n, -1, np.int64)
    out_ptr = np.zeros(n + 1, np.int64)
    cap = max(16, 2 * idx.shape[0])
    out_idx = np.empty(cap, np.int64)
    buf = np.empty(n, np.int64)
    for j in range(n):
        m = 0
        for q in range(ptr[j], ptr[j + 1]):
            r = idx[q]
            if mark[r] != j:
                mark[r] = j
                buf[m] = r
                m += 1
        c = parent_head[j]
        while c != -1:
            for q in range(out_ptr[c], out_ptr[c + 1]):
                r = out_idx[q]
                if r > j and mark[r] != j:
                    mark[r] = j
                    buf[m] = r
                    m += 1
            c = sibling[c]
        rows = np.sort(buf[:m])
        start = out_ptr[j]
        if start + m > cap:
            while start + m > cap:
                cap *= 2
            grown = np.empty(cap, np.int64)
            grown[:start] = out_idx[:start]
            out_idx = grown
        out_idx[start:start + m] = rows
        out_ptr[j + 1] = start + m
        if m > 0:
            p = rows[0]
            sibling[j] = parent_head[p]
            parent_head[p] = j
    return out_ptr, out_idx[:out_ptr[n]].copy()


@numba.njit(cache=False, nogil=True)
def takahashi(n, ptr, idx, lval, uval, d):
    """Entries of ``Z = (L U)^{-1}`` on a closed pattern (Takahashi, Fagan and Chen, 1973).

    ``L`` is unit lower, ``U = diag(d) Ut`` with ``Ut`` unit upper; ``lval[t] = L[i, j]`` and
    ``uval[t] = Ut[j, i]`` for the pattern entry ``t = (i, j)``, ``i > j``. Columns are taken
    from the last to the first, each from the rows below it:

        Z[i, j] = -sum_k Z[i, k] L[k, j],   Z[j, i] = -sum_k Ut[j, k] Z[k, i]   (k > j)
        Z[j, j] = 1 / d[j] - sum_k Ut[j, k] Z[k, j]

    Returns ``(lower, upper, diag)``: ``lower[t] = Z[i, j]``, ``upper[t] = Z[j, i]``, and the
    number of columns whose pairs were not all in the pattern (0 on a closed pattern).
    """
    lower = np.zeros(idx.shape[0])
    upper = np.zeros(idx.shape[0])
    diag = np.zeros(n)
    pos = np.full(n, -1, np.int64)
    acc_lo = np.zeros(n)
    acc_up = np.zeros(n)
    open_columns = 0
    for j in range(n - 1, -1, -1):
        s, e = ptr[j], ptr[j + 1]
        for t in range(s, e):
            pos[idx[t]] = t
            acc_lo[idx[t]] = 0.0
            acc_up[idx[t]] = 0.0
        found = 0
        for t in range(s, e):
            k = idx[t]
            lk = lval[t]
            uk = uval[t]
            acc_lo[k] += diag[k] * lk
            acc_up[k] += uk * diag[k]
            for q in range(ptr[k], ptr[k + 1]):
                r = idx[q]
                tr = pos[r]
                if tr >= 0:
                    found += 1
                    acc_lo[r] += lower[q] * lk  # Z[r, k] L[k, j]
                    acc_lo[k] += upper[q] * lval[tr]  # Z[k, r] L[r, j]
                    acc_up[r] += uk * upper[q]  # Ut[j, k] Z[k, r]
                    acc_up[k] += uval[tr] * lower[q]  # Ut[j, r] Z[r, k]
        m = e - s
        if found != m * (m - 1) // 2:
            open_columns += 1
        total = 0.0
        for t in range(s, e):
            i = idx[t]
            lower[t] = -acc_lo[i]
            upper[t] = -acc_up[i]
            total += uval[t] * lower[t]
            pos[i] = -1
        diag[j] = 1.0 / d[j] - total
    return lower, upper, diag, open_columns


@numba.njit(cache=False, nogil=True)
def parity(perm):
    """``+1`` for an even permutation, ``-1`` for an odd one."""
    n = perm.shape[0]
    seen = np.zeros(n, np.bool_)
    sign = 1
    for i in range(n):
        if not seen[i]:
            length = 0
            j = i
            while not seen[j]:
                seen[j] = True
                j = perm[j]
                length += 1
            if length % 2 == 0:
                sign = -sign
    return sign
