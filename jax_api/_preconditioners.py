"""Preconditioners for the iterative solvers: ``jacobi``, ``ic0`` and ``ilu0``.

Each builds ``M`` from a 2-D BCOO/BCSR ``A`` and returns a :class:`Preconditioner`, an Equinox
module whose call ``r -> M^{-1} r`` (one vector ``(n,)``, or a block ``(n, k)``) is what
``cg``/``minres``/``bicgstab``/``gmres(A, B, M=...)`` and ``sparse_generic_solve(A, B,
solve=..., M=...)`` take:

- ``jacobi``: ``M = diag(A)``, a diagonal scaling;
- ``ic0``: ``M = L L^T``, incomplete Cholesky with zero fill (SPD ``A``);
- ``ilu0``: ``M = L U``, incomplete LU with zero fill (``L`` unit lower, ``U`` upper).

The IC(0)/ILU(0) factors are computed on the host (:mod:`bridge.internal.incomplete`, numba)
from A's concrete values, so build them outside ``jit``; the module is a pytree, so pass it into
a jitted function as an argument (or close over it). ``jacobi`` also works on a traced ``A``.
The factors are applied with :func:`jax_api.sparse_triangular_solve` and held under
``jax.lax.stop_gradient``: a preconditioner is a constant, it changes iteration counts, never the
gradient of a solve (which is that of the exact solve).

``M.T`` is the preconditioner of ``A^T`` (the same module for ``jacobi`` and ``ic0``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCSR

from bridge.internal import incomplete

from ._checks import check_sparse_indices, checked_indices
from ._pattern import Pattern
from ._triangular_solve import sparse_triangular_solve
from ._validate import check_dense, check_match, check_sparse, is_concrete, value_error

__all__ = ["Preconditioner", "ic0", "ilu0", "jacobi"]


class Preconditioner(eqx.Module):
    """``M^{-1}`` of a sparse ``A`` as a callable on a vector ``(n,)`` or a block ``(n, k)``.

    Attributes:
        kind: ``"jacobi"``, ``"ic0"`` or ``"ilu0"``.
        shape: A's shape ``(n, n)``.
        shift: the diagonal shift ``alpha`` of an IC(0) that broke down (``M`` then factors
            ``A + alpha diag(A)``); 0.0 otherwise.
        factors: ``(inverse diagonal (n,),)`` for Jacobi, ``(L,)`` for IC(0), ``(L, U)`` for
            ILU(0), as BCSR.
    """

    factors: tuple
    kind: str = eqx.field(static=True)
    shape: tuple = eqx.field(static=True)
    shift: float = eqx.field(static=True, default=0.0)
    transposed: bool = eqx.field(static=True, default=False)

    @property
    def T(self) -> Preconditioner:
        """The preconditioner ``M^{-T}`` of ``A^T``."""
        if self.kind != "ilu0":
            return self
        return Preconditioner(self.factors, self.kind, self.shape, self.shift,
                              not self.transposed)

    def __call__(self, r: jax.Array) -> jax.Array:
        """``M^{-1} r`` for ``r (n,)`` or ``(n, k)``."""
        r = check_dense("r", r, ndims=(1, 2))
        n = self.shape[-1]
        if r.shape[0] != n:
            raise value_error("r", r, f"a vector ({n},) or a block ({n}, k)")
        consts = jax.lax.stop_gradient(self.factors)
        first = consts[0] if self.kind == "jacobi" else consts[0].data
        check_match("the preconditioner", first, "r", r)
        if self.kind == "jacobi":
            (inv_diag,) = consts
            return r * (inv_diag if r.ndim == 1 else inv_diag[:, None])
        solve = lambda F, x, **kw: sparse_triangular_solve(F, x, check=False, **kw)
        if self.kind == "ic0":
            (L,) = consts
            return solve(L, solve(L, r, upper=False), upper=False, transpose=True)
        L, U = consts
        if self.transposed:  # (L U)^{-T} = L^{-T} U^{-T}
            y = solve(U, r, upper=True, transpose=True)
            return solve(L, y, upper=False, unitriangular=True, transpose=True)
        y = solve(L, r, upper=False, unitriangular=True)
        return solve(U, y, upper=True)


def _check(A: object):
    """A 2-D square float BCOO/BCSR whose indices are in range (checked now when concrete;
    a traced ``A`` gets a check inside the program)."""
    A = check_sparse("A", A, ndims=(2,), square=True)
    return A if check_sparse_indices("A", A) else checked_indices("A", A)


def _host_csr(A, name: str):
    """A's row-sorted CSR arrays on the host (a concrete ``A`` only)."""
    if not is_concrete(A.data, *(getattr(A, f) for f in ("indices", "indptr") if hasattr(A, f))):
        raise value_error(
            name, "a traced matrix (inside jit, grad or vmap)",
            "a concrete matrix: the factorization runs on the host, so build the "
            "preconditioner outside jit and pass it in as an argument",
        )
    pattern, values = _pattern_of(A)
    crow = np.asarray(pattern.crow).astype(np.int64)
    nnz = int(crow[-1])
    col = np.asarray(pattern.col)[:nnz].astype(np.int64)
    vals = np.asarray(values)[:nnz].astype(np.float64)
    return crow, col, vals


def _bcsr(A, ptr, idx, val) -> BCSR:
    dt = jnp.int32 if max(A.shape[0] + 1, len(idx) + 1) < 2**31 - 1 else jnp.int64
    data = jnp.asarray(val.astype(np.dtype(A.dtype)))
    return BCSR((data, jnp.asarray(idx, dt), jnp.asarray(ptr, dt)), shape=tuple(A.shape))


@jax.jit
def _diagonal(A) -> jax.Array:
    """A's diagonal ``(n,)`` (duplicates summed; a missing entry is 0), a constant."""
    pattern, values = Pattern.of(A)
    n = A.shape[0]
    on_diag = (pattern.rows == pattern.col) & pattern.valid
    diag = jnp.zeros(n, values.dtype).at[jnp.where(on_diag, pattern.rows, n)].add(
        jnp.where(on_diag, values, 0), mode="drop")
    return jax.lax.stop_gradient(diag)


_pattern_of = jax.jit(Pattern.of)  # compiled once per shapes: eager calls reuse the program


def jacobi(A) -> Preconditioner:
    """The Jacobi preconditioner ``M = diag(A)`` (works under ``jit``).

    Args:
        A: 2-D BCOO/BCSR ``(n, n)``, float32/float64, with a nonzero diagonal (checked when
            ``A`` is concrete).

    Returns:
        A :class:`Preconditioner` applying ``diag(A)^{-1}``.

    Example:
        >>> X, info = cg(A, B, M=jacobi(A))
    """
    A = _check(A)
    diag = _diagonal(A)
    if is_concrete(diag):
        zero = np.flatnonzero(np.asarray(diag) == 0)
        if zero.size:
            raise value_error("A", f"a zero (or missing) diagonal entry in row {zero[0]}",
                              "a nonzero diagonal for the Jacobi preconditioner")
    return Preconditioner((1 / diag,), "jacobi", tuple(A.shape))


def ic0(A) -> Preconditioner:
    """The incomplete Cholesky preconditioner ``M = L L^T`` with zero fill.

    Only A's lower triangle is read (``A`` symmetric positive definite, positive diagonal).
    If a pivot breaks down, ``A + alpha diag(A)`` is factored instead (``alpha`` from 1e-3,
    doubling; ``M.shift``). ``A`` must be concrete (not traced).

    Args:
        A: 2-D BCOO/BCSR ``(n, n)``, float32/float64.

    Returns:
        A :class:`Preconditioner` applying ``(L L^T)^{-1}`` by two triangular solves.

    Example:
        >>> X, info = cg(A, B, M=ic0(A))
    """
    A = _check(A)
    crow, col, vals = _host_csr(A, "A")
    n = A.shape[0]
    ptr, idx, val, alpha = incomplete.ic0(crow, col, vals, (n, n), name="A")
    return Preconditioner((_bcsr(A, ptr, idx, val),), "ic0", tuple(A.shape), alpha)


def ilu0(A) -> Preconditioner:
    """The incomplete LU preconditioner ``M = L U`` with zero fill.

    Args:
        A: 2-D BCOO/BCSR ``(n, n)``, float32/float64, concrete, with a stored diagonal; a zero
            pivot is a ValueError.

    Returns:
        A :class:`Preconditioner` applying ``(L U)^{-1}`` by two triangular solves (``.T``: the
        one of ``A^T``).

    Example:
        >>> X, info = gmres(A, B, M=ilu0(A))
    """
    A = _check(A)
    crow, col, vals = _host_csr(A, "A")
    n = A.shape[0]
    (lp, li, lv), (up, ui, uv) = incomplete.ilu0(crow, col, vals, (n, n), name="A")
    factors = (_bcsr(A, lp, li, lv), _bcsr(A, up, ui, uv))
    return Preconditioner(factors, "ilu0", tuple(A.shape))
