"""Direct sparse factorisations shared by both frontends: SciPy's SuperLU and the selected inverse.

:func:`factorize` factors one square CSR matrix (host NumPy arrays) as

- ``"cholesky"``: ``P A P^T = L D L^T`` by SuperLU in symmetric mode (a minimum-degree ordering
  of ``A + A^T``, no pivoting off the diagonal). ``A`` must be symmetric; it is positive
  definite exactly when every pivot ``D`` is positive and none had to be moved, which is
  checked, so a matrix that is not positive definite is refused instead of giving NaNs;
- ``"lu"``: ``Pr A Pc = L U`` by SuperLU with partial pivoting (threshold pivoting and the
  minimum-degree ordering when the pattern is symmetric, COLAMD otherwise).

Why SuperLU: it ships with SciPy (already required), runs everywhere, and exposes its factors,
which the log-determinant and its gradient need. The CHOLMOD wrappers either need SuiteSparse's
headers to build (scikit-sparse) or hide the factor (cholespy).

The fill-reducing ordering, the symbolic part, is computed once per pattern and cached (keyed
by a digest of the indices): later factorisations of the same pattern pre-permute and skip it.
The numeric factor serves the forward solve and the transposed solve of the backward.

The selected inverse: ``d log|det A| / dA = A^{-T}``, wanted at A's pattern only. Takahashi's
recursion computes ``Z = (L U)^{-1}`` on the pattern of ``L + U`` (closed under elimination,
see :func:`_factor_kernels.closure`) from the last column to the first, with the work of one
more factorisation and memory of the factor's size; the dense inverse is never formed. The
kernels are numba loops (:mod:`bridge.internal._factor_kernels`), compiled at first use.
All arithmetic is in float64.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from .messages import value_error

KINDS = ("cholesky", "lu")
_ORDERINGS: OrderedDict = OrderedDict()  # (kind, n, digest) -> column permutation
_ORDERINGS_MAX = 16
_LOCK = threading.Lock()


def _kernels():
    try:
        from . import _factor_kernels
    except ImportError as e:  # pragma: no cover - numba is a dependency
        raise ImportError(
            "sparse factorisations need numba: pip install 'sparsegradutils' (numba>=0.60)"
        ) from e
    return _factor_kernels


def _csc(n, indptr, indices, data):
    import scipy.sparse as sp

    M = sp.csc_matrix((data, indices, indptr), shape=(n, n))
    M.sort_indices()
    return M


def _digest(kind, n, indptr, indices) -> tuple:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(indptr, np.int64).tobytes())
    h.update(np.ascontiguousarray(indices, np.int64).tobytes())
    return kind, n, h.hexdigest()


def _symmetric_pattern(A) -> bool:
    P = A.copy()
    P.data = np.ones_like(P.data)
    return (P != P.T).nnz == 0


def check_symmetric(name: str, A, what: str = "a symmetric matrix", eps: float = 2.0**-52) -> None:
    """Raise naming ``name`` unless the SciPy matrix ``A`` equals its transpose to the rounding
    of the caller's precision ``eps`` (summed duplicates may round differently)."""
    D = abs(A - A.T)
    if D.nnz == 0:
        return
    scale = max(float(abs(A).max()), np.finfo(np.float64).tiny)
    worst = float(D.max())
    if worst > max(1e-12, 100 * eps) * scale * max(1.0, np.sqrt(A.shape[0])):
        raise value_error(name, f"a matrix with |A - A^T| up to {worst:.3g} "
                          f"(largest |A| {scale:.3g})", what)


class Factor:
    """The factorisation of one ``n x n`` matrix; see :func:`factorize`."""

    def __init__(self, kind, lu, A2, row_perm, col_perm, name):
        self.kind = kind
        self._pattern = A2.tocoo()  # positions the selected inverse must cover
        self.n = lu.shape[0]
        self._lu = lu
        self._r = row_perm  # A2 = A[r][:, c]: the pre-permuted matrix SuperLU factored
        self._c = col_perm
        self._r_pos = np.argsort(row_perm)  # row a of A is row _r_pos[a] of A2
        self._c_pos = np.argsort(col_perm)
        d = lu.U.diagonal()
        self._d = d
        if not np.all(np.isfinite(d)) or np.any(d == 0):
            raise value_error(name, "a singular matrix (a zero or non-finite pivot)",
                              "a nonsingular matrix")
        self._z = None
        self._name = name

    # ------------------------------------------------------------------ solves
    def solve(self, B: np.ndarray, transpose: bool = False) -> np.ndarray:
        """``A^{-1} B`` (``A^{-T} B`` if ``transpose``) for ``B`` ``(n,)`` or ``(n, k)``."""
        B = np.asarray(B, np.float64)
        if transpose:
            Y = self._lu.solve(np.ascontiguousarray(B[self._c]), trans="T")
            X = Y[self._r_pos]
        else:
            Y = self._lu.solve(np.ascontiguousarray(B[self._r]))
            X = Y[self._c_pos]
        if not np.all(np.isfinite(X)):
            raise value_error(self._name, "a numerically singular matrix (non-finite solution)",
                              "a nonsingular matrix")
        return X

    # ------------------------------------------------------------ determinants
    def slogdet(self) -> tuple[float, float]:
        """``(sign, log|det A|)``."""
        k = _kernels()
        d = self._d
        sign = float(np.prod(np.sign(d)))
        for p in (self._r, self._c, self._lu.perm_r, self._lu.perm_c):
            sign *= k.parity(np.ascontiguousarray(p, np.int64))
        return sign, float(np.sum(np.log(np.abs(d))))

    # --------------------------------------------------------- selected inverse
    def _selected(self):
        if self._z is None:
            import scipy.sparse as sp

            k = _kernels()
            lu = self._lu
            L = sp.tril(self._lu.L, -1, format="csc")
            U = self._lu.U
            Ut = sp.triu(sp.diags_array(1.0 / self._d) @ U, 1, format="csr")
            # strictly lower pattern of L + Ut^T and of A's positions (both ways, should a
            # stored value of the factor be an exact zero), closed under elimination
            # (patterns only: int8 ones on shared index arrays, so the temporaries of the sum
            # take 5 bytes per entry rather than the 12 of float64 copies)
            P = self._pattern
            At = sp.coo_matrix((np.ones(P.nnz, np.int8), (lu.perm_r[P.row], lu.perm_c[P.col])),
                               shape=P.shape)
            S = sp.tril(_ones(L) + _ones(Ut.T) + At + At.T, -1, format="csc")
            del At
            S.sort_indices()
            ptr, idx = k.closure(self.n, S.indptr.astype(np.int64), S.indices.astype(np.int64))
            del S
            L.sort_indices()
            UtT = Ut.T.tocsc()
            UtT.sort_indices()
            lval = k.align(ptr, idx, L.indptr.astype(np.int64), L.indices.astype(np.int64),
                           L.data.astype(np.float64))
            uval = k.align(ptr, idx, UtT.indptr.astype(np.int64),
                           UtT.indices.astype(np.int64), UtT.data.astype(np.float64))
            lower, upper, diag, open_columns = k.takahashi(self.n, ptr, idx, lval, uval,
                                                           self._d.astype(np.float64))
            if open_columns:  # pragma: no cover - the closure makes this impossible
                raise RuntimeError("selected inverse: the factor's pattern is not closed")
            keys = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(ptr)) * self.n + idx
            self._z = (keys, lower, upper, diag)
        return self._z

    def inverse_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Entries ``A^{-1}[rows, cols]`` at transposed positions of A's pattern: ``(rows[k],
        cols[k])`` with ``(cols[k], rows[k])`` stored in A (what ``A^{-T}`` at A's pattern needs;
        other positions may lie outside the factor and raise)."""
        keys, lower, upper, diag = self._selected()
        lu = self._lu
        # A^{-1}[b, a] = A2^{-1}[c_pos[b], r_pos[a]] = Zt[perm_c[c_pos[b]], perm_r[r_pos[a]]]
        x = lu.perm_c[self._c_pos[rows]].astype(np.int64)
        y = lu.perm_r[self._r_pos[cols]].astype(np.int64)
        out = np.empty(x.shape, np.float64)
        on = x == y
        out[on] = diag[x[on]]
        lo = x > y  # Z[x, y] below the diagonal: column y, row x
        hi = x < y  # above: stored as the transposed position's upper entry
        for mask, col, row, vals in ((lo, y, x, lower), (hi, x, y, upper)):
            if mask.any():
                want = col[mask] * self.n + row[mask]
                at = np.searchsorted(keys, want)
                at = np.minimum(at, keys.shape[0] - 1)
                if keys.shape[0] == 0 or np.any(keys[at] != want):  # pragma: no cover
                    raise RuntimeError("selected inverse: a position outside the factor")
                out[mask] = vals[at]
        return out

    # ----------------------------------------------------------------- sampling
    def sample_colour(self, eps: np.ndarray, precision: bool) -> np.ndarray:
        """``C eps`` with ``C C^T = A`` (``precision=False``) or ``C C^T = A^{-1}``
        (``precision=True``), for ``eps`` ``(n,)`` or ``(n, k)``; a ``"cholesky"`` factor only.

        With ``q`` the composed ordering (``A[q][:, q] = L D L^T``, SuperLU's symmetric mode):
        ``C = Q^T L D^{1/2}`` or ``C = Q^T L^{-T} D^{-1/2}``, where ``(Q^T y)[q] = y``.
        """
        import scipy.sparse as sp
        from scipy.sparse.linalg import spsolve_triangular

        if self.kind != "cholesky":
            raise value_error("kind", repr(self.kind), "'cholesky' for sample_colour")
        eps = np.asarray(eps, np.float64)
        lu, d = self._lu, self._d
        # factored matrix B = Pr A2 Pc with B[perm_r[i], perm_c[j]] = A2[i, j] = A[r[i], c[j]]
        q = self._r[np.argsort(lu.perm_r)]
        scale = np.sqrt(d) if eps.ndim == 1 else np.sqrt(d)[:, None]
        if precision:
            Lt = sp.csr_matrix(lu.L.T)
            y = spsolve_triangular(Lt, eps / scale, lower=False, unit_diagonal=True)
        else:
            y = lu.L @ (eps * scale)
        out = np.empty_like(y)
        out[q] = y
        return out


def factorize(kind: str, n: int, indptr, indices, data, name: str = "A",
              eps: float = 2.0**-52) -> Factor:
    """Factor the ``n x n`` CSR matrix ``(indptr, indices, data)``; see the module docstring.

    Raises a ValueError naming ``name`` for NaN/inf values, a non-symmetric (beyond rounding at
    the caller's precision ``eps``) or not positive definite matrix (``"cholesky"``) or a
    singular one.

    Example:
        >>> F = factorize("lu", 2, np.array([0, 1, 2]), np.array([0, 1]), np.array([2., 4.]))
        >>> F.solve(np.ones(2))
        array([0.5 , 0.25])
    """
    import scipy.sparse.linalg as sla

    if kind not in KINDS:
        raise value_error("kind", repr(kind), f"one of {KINDS}")
    data = np.asarray(data, np.float64)
    if not np.all(np.isfinite(data)):
        raise value_error(name, "a matrix with NaN or infinite values", "finite values")
    # CSR of A is CSC of A^T: factor A^T's CSC as A's
    A = _csc(n, indptr, indices, data).T.tocsc()
    A.sort_indices()
    if kind == "cholesky":
        check_symmetric(name, A, "a symmetric positive definite matrix", eps)
    key = _digest(kind, n, indptr, indices)
    with _LOCK:
        perm = _ORDERINGS.get(key)
        if perm is not None:
            _ORDERINGS.move_to_end(key)
    symmetric = kind == "cholesky" or _symmetric_pattern(A)
    opts = dict(SymmetricMode=True) if symmetric else {}
    thresh = 0.0 if kind == "cholesky" else (0.1 if symmetric else 1.0)
    if perm is None:
        spec = "MMD_AT_PLUS_A" if symmetric else "COLAMD"
        A2, r, c = A, np.arange(n), np.arange(n)
    else:
        spec = "NATURAL"
        c = perm
        r = perm if symmetric else np.arange(n)
        A2 = A[r][:, c].tocsc()
        A2.sort_indices()
    try:
        lu = sla.splu(A2, permc_spec=spec, diag_pivot_thresh=thresh, options=opts)
    except RuntimeError as e:  # "Factor is exactly singular"
        raise value_error(name, f"a singular matrix (SuperLU: {e})", "a nonsingular matrix") from e
    if perm is None:
        # remember the ordering SuperLU chose: A2[:, perm_c[b]] = A[:, b]
        with _LOCK:
            _ORDERINGS[key] = np.argsort(lu.perm_c)
            while len(_ORDERINGS) > _ORDERINGS_MAX:
                _ORDERINGS.popitem(last=False)
    F = Factor(kind, lu, A2, r, c, name)
    if kind == "cholesky":
        if not np.array_equal(lu.perm_r, lu.perm_c) or not np.all(F._d > 0):
            raise value_error(name, "a symmetric matrix that is not positive definite "
                              "(a non-positive pivot)", "a symmetric positive definite matrix")
    return F


def clear() -> None:
    """Forget the cached orderings."""
    with _LOCK:
        _ORDERINGS.clear()


# ------------------------------------------------------------------ block-diagonal patterns
def factorize_blocks(kind: str, n: int, crow, col, data, batched: bool,
                     eps: float = 2.0**-52) -> list[Factor]:
    """Factor each ``n x n`` block of a block-diagonal flat CSR ``(crow, col, data)`` (row
    pointers over all blocks; entries after ``crow[-1]`` are padding). Errors name ``A`` (or
    ``A[i]`` if ``batched``); ``eps``: the precision of the caller's values."""
    crow = np.asarray(crow, np.int64)
    col = np.asarray(col, np.int64)
    data = np.asarray(data, np.float64)
    nb = (crow.shape[0] - 1) // n if n else 1
    out = []
    for i in range(nb):
        ptr = crow[i * n:(i + 1) * n + 1]
        s, e = ptr[0], ptr[-1]
        out.append(factorize(kind, n, ptr - s, col[s:e] - i * n, data[s:e],
                             name=f"A[{i}]" if batched else "A", eps=eps))
    return out


def solve_blocks(factors: list[Factor], B: np.ndarray, transpose: bool = False) -> np.ndarray:
    """``op(A)^{-1} B`` for the flat ``B (nb*n, p)`` of a block-diagonal ``A``."""
    n = factors[0].n if factors else 0
    if n == 0:
        return np.asarray(B, np.float64).copy()
    return np.concatenate([F.solve(B[i * n:(i + 1) * n], transpose)
                           for i, F in enumerate(factors)])


def inverse_transposed_blocks(factors: list[Factor], crow, col, nnz: int) -> np.ndarray:
    """``A^{-T}`` at each of the ``nnz`` stored positions (padding: 0) of the flat pattern."""
    crow = np.asarray(crow, np.int64)
    col = np.asarray(col, np.int64)
    rows = np.repeat(np.arange(crow.shape[0] - 1, dtype=np.int64), np.diff(crow))
    out = np.zeros(nnz, np.float64)
    n = factors[0].n if factors else 0
    for i, F in enumerate(factors):
        s, e = crow[i * n], crow[(i + 1) * n]
        # A^{-T}[a, b] = A^{-1}[b, a]
        out[s:e] = F.inverse_at(col[s:e] - i * n, rows[s:e] - i * n)
    return out


def _ones(M):
    """The pattern of a CSC/CSR matrix as int8 ones on its own index arrays (no copy)."""
    return type(M)((np.ones(M.nnz, np.int8), M.indices, M.indptr), shape=M.shape)
