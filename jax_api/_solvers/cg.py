"""``cg``: conjugate gradients for symmetric positive definite systems (JAX's own, reused).

Wraps :func:`jax.scipy.sparse.linalg.cg` (stopping test ``||r|| <= max(tol ||b||, atol)``),
solving each column of a block as its own system (``vmap``: the columns share one sparse
product per iteration). JAX reports no convergence information, so the returned
:class:`~jax_api.SolveInfo` is computed from the true residual of the solution (one extra
product), and a ``ConvergenceWarning`` is emitted when a column missed the tolerance.
"""

from __future__ import annotations

import jax

from ._common import compiled, solve_with_jax

__all__ = ["cg"]


@compiled
def cg(A, B: jax.Array, *, x0=None, tol: float = 1e-5, atol: float = 0.0, maxiter=None, M=None):
    """Solve ``A X = B`` for a symmetric positive definite ``A`` by (preconditioned) CG.

    Args:
        A: 2-D BCOO/BCSR ``(n, n)``, dense ``(n, n)`` array, or a callable ``x -> A x``.
        B: ``(n,)`` or ``(n, k)`` (``k`` independent systems).
        x0: initial guess shaped like ``B`` (zeros by default).
        tol, atol: stop when ``||b - A x|| <= max(tol ||b||, atol)`` (per column).
        maxiter: iteration cap (default ``10 n``).
        M: preconditioner, a callable ``r -> M^{-1} r`` on one vector.

    Returns:
        ``(X, info)``: ``X`` shaped like ``B`` and a :class:`~jax_api.SolveInfo`.

    Example:
        >>> X, info = cg(BCOO.fromdense(4 * jnp.eye(3)), jnp.ones(3))
    """
    return solve_with_jax(
        "cg", jax.scipy.sparse.linalg.cg, A, B, x0, tol, atol, maxiter, M=M
    )
