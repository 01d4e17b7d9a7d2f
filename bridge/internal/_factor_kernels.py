"""numba kernels of :mod:`bridge.internal.factor`: pattern alignment, symbolic closure, Takahashi.

Imported (and compiled, once per process) only when a factorisation first needs them: importing
``bridge`` never imports numba. All patterns are strictly lower triangular CSC arrays with
sorted row indices: ``ptr (n+1,)``, ``idx (nnz,)``.
"""

from __future__ import annotations

import numba
import numpy as np

from ._dense_kernels import matmul, solve_left_unit_upper, solve_right_unit_lower


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
def _takahashi_reference(n, ptr, idx, lval, uval, d):
    """:func:`takahashi` column by column with scalar loops: the slow reference of the tests.

    Entries of ``Z = (L U)^{-1}`` on a closed pattern (Takahashi, Fagan and Chen, 1973).

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
def supernodes(n, ptr, idx):
    """Starts of the supernodes of the lower pattern ``(ptr, idx)``: ``(k+1,)``, ending with ``n``.

    A supernode is a maximal run ``j, j+1, ..., j+m-1`` of columns whose rows satisfy
    ``S_j = {j+1} ∪ S_{j+1}``: its columns share the rows ``R`` below it and are dense above.
    """
    start = np.empty(n + 1, np.int64)
    k = 0
    for j in range(n):
        joined = False
        if j > 0:
            a, b = ptr[j - 1], ptr[j]  # column j - 1 must be {j} followed by column j
            if b - a == ptr[j + 1] - b + 1 and idx[a] == j:
                joined = True
                for q in range(b, ptr[j + 1]):
                    if idx[q - b + a + 1] != idx[q]:
                        joined = False
                        break
        if not joined:
            start[k] = j
            k += 1
    start[k] = n
    return start[:k + 1].copy()


@numba.njit(cache=False, nogil=True)
def takahashi(n, ptr, idx, lval, uval, d):
    """Entries of ``Z = (L U)^{-1}`` on a closed pattern (Takahashi, Fagan and Chen, 1973).

    ``L`` is unit lower, ``U = diag(d) Ut`` with ``Ut`` unit upper; ``lval[t] = L[i, j]`` and
    ``uval[t] = Ut[j, i]`` for the pattern entry ``t = (i, j)``, ``i > j``. Columns are taken
    from the last to the first, each from the rows below it:

        Z[i, j] = -sum_k Z[i, k] L[k, j],   Z[j, i] = -sum_k Ut[j, k] Z[k, i]   (k > j)
        Z[j, j] = 1 / d[j] - sum_k Ut[j, k] Z[k, j]

    (from ``Z L = Ut^{-1} D^{-1}`` and ``Ut Z = D^{-1} L^{-1}``, upper and lower triangular).
    Here a whole supernode (see :func:`supernodes`) at a time: with ``J`` its columns and
    ``R`` the rows below it, from ``Z[R, R]`` (computed already, gathered dense),

        Z[R, J] = -Z[R, R] L[R, J] L[J, J]^{-1},   Z[J, R] = -Ut[J, J]^{-1} Ut[J, R] Z[R, R]
        Z[J, J] = Ut[J, J]^{-1} (D_J^{-1} L[J, J]^{-1} - Ut[J, R] Z[R, J])

    with dense products (BLAS) and blocked triangular solves; the workspace is ``O(|R|^2 +
    |J| |R| + |J|^2)`` for the largest supernode, at most a few times the factor's size.

    Returns ``(lower, upper, diag, open_columns)``: ``lower[t] = Z[i, j]``, ``upper[t] =
    Z[j, i]``, ``diag[j] = Z[j, j]``, and the number of columns whose pairs were not all in
    the pattern (0 on a closed pattern; their missing entries are taken as zero).

    Example:
        >>> ptr, idx = np.array([0, 1, 1]), np.array([1])  # L = [[1, 0], [2, 1]], Ut = I
        >>> takahashi(2, ptr, idx, np.array([2.0]), np.array([0.0]), np.ones(2))[0]
        array([-2.])
    """
    lower = np.zeros(idx.shape[0])
    upper = np.zeros(idx.shape[0])
    diag = np.zeros(n)
    if n == 0:
        return lower, upper, diag, 0
    start = supernodes(n, ptr, idx)
    ns = start.shape[0] - 1
    big_rr = 0
    big_jr = 0
    big_jj = 0
    for s in range(ns):
        m = start[s + 1] - start[s]
        j1 = start[s + 1] - 1
        p = ptr[j1 + 1] - ptr[j1]
        big_rr = max(big_rr, p * p)
        big_jr = max(big_jr, m * p)
        big_jj = max(big_jj, m * m)
    w_rr = np.empty(big_rr)
    w_lrj = np.empty(big_jr)
    w_ujr = np.empty(big_jr)
    w_zrj = np.empty(big_jr)
    w_zjr = np.empty(big_jr)
    w_ljj = np.empty(big_jj)
    w_ujj = np.empty(big_jj)
    w_zjj = np.empty(big_jj)
    owner = np.empty(n, np.int64)  # the supernode of each column
    for s in range(ns):
        owner[start[s]:start[s + 1]] = s
    rel = np.empty(n, np.int64)  # positions of R's rows in a later supernode's rows
    open_columns = 0
    for s in range(ns - 1, -1, -1):
        j0 = start[s]
        m = start[s + 1] - j0
        j1 = j0 + m - 1
        rs = ptr[j1]
        p = ptr[j1 + 1] - rs
        # Z[R, R], gathered from the columns of R (all after this supernode)
        ZRR = w_rr[:p * p].reshape(p, p)
        ZRR[:, :] = 0.0
        found = 0
        a = 0
        while a < p:
            # the run R[a:a2] of rows in one supernode K = k0..k1: column r of K holds the
            # rows r+1..k1, then R_K, so R's rows above k1 sit at the same places of R_K
            kk = owner[idx[rs + a]]
            k1 = start[kk + 1] - 1
            a2 = a
            while a2 < p and idx[rs + a2] <= k1:
                a2 += 1
            kr = ptr[k1]
            ke = ptr[k1 + 1]
            q = kr
            for b in range(a2, p):
                x = idx[rs + b]
                while q < ke and idx[q] < x:
                    q += 1
                if q < ke and idx[q] == x:
                    rel[b] = q - kr
                else:
                    rel[b] = -1
            for a1 in range(a, a2):
                r = idx[rs + a1]
                ZRR[a1, a1] = diag[r]
                t0 = ptr[r]
                for b in range(a1 + 1, a2):  # inside K: dense
                    t = t0 + idx[rs + b] - r - 1
                    ZRR[b, a1] = lower[t]
                    ZRR[a1, b] = upper[t]
                    found += 1
                t1 = t0 + k1 - r
                for b in range(a2, p):
                    if rel[b] >= 0:
                        t = t1 + rel[b]
                        ZRR[b, a1] = lower[t]
                        ZRR[a1, b] = upper[t]
                        found += 1
            a = a2
        if found != p * (p - 1) // 2:
            open_columns += m
        # the factor's blocks: column j0 + c holds rows j0+c+1 .. j1, then R
        LRJ = w_lrj[:p * m].reshape(p, m)
        UJR = w_ujr[:m * p].reshape(m, p)
        LJJ = w_ljj[:m * m].reshape(m, m)
        UJJ = w_ujj[:m * m].reshape(m, m)
        for c in range(m):
            t0 = ptr[j0 + c]
            off = t0 + (m - 1 - c)
            for b in range(p):
                LRJ[b, c] = lval[off + b]
                UJR[c, b] = uval[off + b]
            for r in range(m):
                LJJ[r, c] = 0.0
                UJJ[c, r] = 0.0
            LJJ[c, c] = 1.0
            UJJ[c, c] = 1.0
            for r in range(c + 1, m):
                LJJ[r, c] = lval[t0 + r - c - 1]
                UJJ[c, r] = uval[t0 + r - c - 1]
        ZRJ = w_zrj[:p * m].reshape(p, m)
        ZJR = w_zjr[:m * p].reshape(m, p)
        ZJJ = w_zjj[:m * m].reshape(m, m)
        if p > 0:
            ZRJ[:, :] = matmul(ZRR, LRJ)
            ZRJ *= -1.0
            solve_right_unit_lower(ZRJ, LJJ)
            ZJR[:, :] = matmul(UJR, ZRR)
            ZJR *= -1.0
            solve_left_unit_upper(UJJ, ZJR)
        # Z[J, J]: D_J^{-1} L[J, J]^{-1} - Ut[J, R] Z[R, J], then Ut[J, J]^{-1} from the left
        for r in range(m):
            for c in range(m):
                ZJJ[r, c] = 0.0
            ZJJ[r, r] = 1.0
        solve_right_unit_lower(ZJJ, LJJ)
        for r in range(m):
            inv = 1.0 / d[j0 + r]
            for c in range(r + 1):
                ZJJ[r, c] *= inv
        if p > 0:
            ZJJ -= matmul(UJR, ZRJ)
        solve_left_unit_upper(UJJ, ZJJ)
        # scatter into the pattern
        for c in range(m):
            t0 = ptr[j0 + c]
            diag[j0 + c] = ZJJ[c, c]
            for r in range(c + 1, m):
                lower[t0 + r - c - 1] = ZJJ[r, c]
                upper[t0 + r - c - 1] = ZJJ[c, r]
            off = t0 + (m - 1 - c)
            for b in range(p):
                lower[off + b] = ZRJ[b, c]
                upper[off + b] = ZJR[c, b]
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
