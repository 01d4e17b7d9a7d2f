"""``bicgstab``: BiCGSTAB for general square systems (JAX's own, reused).

Wraps :func:`jax.scipy.sparse.linalg.bicgstab`, solving each column of a block as its own
system (``vmap``). Convergence information is computed from the true residual of the solution,
as for :func:`~jax_api.cg`, and a ``ConvergenceWarning`` is emitted when a column missed.
"""

from __future__ import annotations

import jax

from ._common import compiled, solve_with_jax

__all__ = ["bicgstab"]


@compiled
def bicgstab(
    A, B: jax.Array, *, x0=None, tol: float = 1e-5, atol: float = 0.0, maxiter=None, M=None
):
    """Solve ``A X = B`` for a general square ``A`` by (preconditioned) BiCGSTAB.

    Args and returns: as :func:`~jax_api.cg` (``A`` need not be symmetric): ``A (n, n)``
    (BCOO/BCSR, dense or a callable), ``B (n,)`` or ``(n, k)``; returns ``(X, info)``.

    Example:
        >>> X, info = bicgstab(BCSR.fromdense(jnp.array([[2.0, 1.0], [0.0, 3.0]])), jnp.ones(2))
    """
    return solve_with_jax(
        "bicgstab", jax.scipy.sparse.linalg.bicgstab, A, B, x0, tol, atol, maxiter, M=M
    )
