"""``minres``: MINRES for symmetric (possibly indefinite) systems, with ``lax.while_loop``.

MINRES (Paige and Saunders, 1975) runs the Lanczos process of the (preconditioned) operator and
minimises the residual over the Krylov space with Givens rotations of the tridiagonal Lanczos
matrix; one product and one preconditioner application per iteration, short recurrences, no
stored basis. JAX has no MINRES, so it is written here as one ``lax.while_loop`` per vector;
the columns of a block are independent systems solved together under ``vmap`` (one sparse
product with all still-running columns per iteration).

Stopping test per column: the recurrence's residual estimate ``phibar`` (the
``M^{-1}``-norm of the residual, the 2-norm without preconditioner) falls to
``max(tol * ||b||_M, atol)``, or ``maxiter``. The returned :class:`~jax_api.SolveInfo` holds the
iteration count and the *true* relative residual of the solution; ``converged`` requires the
true residual to meet the bound (within 2x), so a stagnating float32 solve is reported.

Differentiable when called directly, to any order and in both modes, by implicit
differentiation (``lax.custom_linear_solve`` with ``symmetric=True``: the transposed solve is
MINRES again), never through its iterations; inside ``shard_map`` it is differentiable
through :func:`jax_api.sparse_generic_solve` only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._sharding import varying_axes
from ._common import (
    SolveInfo,
    as_operator,
    by_column,
    check_rhs_for,
    check_x0,
    compiled,
    default_maxiter,
    relative_residual,
    report,
)

__all__ = ["minres"]


def _minres_one(matvec, precond, b, x0, tol, atol, maxiter):
    dtype = b.dtype
    eps = jnp.finfo(dtype).eps
    # Every initial value derives from r0 = b - A x0 (one product even for x0 = 0), so inside
    # shard_map the carry varies over the same mesh axes as A and b do (while_loop's rule).
    x = jnp.zeros_like(b) if x0 is None else x0
    r0 = b - matvec(x)
    y = precond(r0)
    beta1 = jnp.sqrt(jnp.maximum(jnp.vdot(r0, y), 0))
    b_norm = beta1 if x0 is None else jnp.sqrt(jnp.maximum(jnp.vdot(b, precond(b)), 0))
    bound = jnp.maximum(tol * b_norm, atol)
    zero = 0 * beta1
    x = x + 0 * r0
    w0 = 0 * r0
    # state: itn, x, r1, r2, y, w, w2, beta, oldb, dbar, epsln, phibar, cs, sn
    state = (jnp.int32(0), x, r0, r0, y, w0, w0, beta1, zero, zero, zero, beta1, zero - 1, zero)

    def cond(s):
        itn, phibar = s[0], s[11]
        return (itn < maxiter) & (phibar > bound)

    def body(s):
        itn, x, r1, r2, y, w, w2, beta, oldb, dbar, epsln, phibar, cs, sn = s
        v = y / beta
        y = matvec(v)
        y = y - jnp.where(itn > 0, beta / jnp.where(oldb > 0, oldb, 1), 0) * r1
        alfa = jnp.vdot(v, y)
        y = y - (alfa / beta) * r2
        r1, r2 = r2, y
        y = precond(r2)
        oldb, beta = beta, jnp.sqrt(jnp.maximum(jnp.vdot(r2, y), 0))
        oldeps = epsln
        delta = cs * dbar + sn * alfa
        gbar = sn * dbar - cs * alfa
        epsln = sn * beta
        dbar = -cs * beta
        gamma = jnp.maximum(jnp.hypot(gbar, beta), eps)
        cs, sn = gbar / gamma, beta / gamma
        phi, phibar = cs * phibar, sn * phibar
        w1, w2 = w2, w
        w = (v - oldeps * w1 - delta * w2) / gamma
        x = x + phi * w
        return (itn + 1, x, r1, r2, y, w, w2, beta, oldb, dbar, epsln, phibar, cs, sn)

    out = jax.lax.while_loop(cond, body, state)
    itn, x = out[0], out[1]
    rel = relative_residual(matvec, b, x)
    plain = jnp.linalg.norm(b)
    rel_bound = jnp.maximum(tol, atol / jnp.where(plain > 0, plain, 1))
    info = SolveInfo(rel <= 2 * rel_bound, itn, rel, jnp.asarray(tol, rel.dtype))
    return x, info


@compiled
def minres(A, B: jax.Array, *, x0=None, tol: float = 1e-5, atol: float = 0.0, maxiter=None, M=None):
    """Solve ``A X = B`` for a symmetric (possibly indefinite) ``A`` by MINRES.

    Args:
        A: 2-D BCOO/BCSR ``(n, n)``, dense ``(n, n)`` array, or a callable ``x -> A x``;
            symmetric.
        B: ``(n,)`` or ``(n, k)`` (``k`` independent systems).
        x0: initial guess shaped like ``B`` (zeros by default).
        tol, atol: stop when the residual estimate is ``<= max(tol ||b||, atol)`` (per column).
        maxiter: iteration cap (default ``10 n``).
        M: symmetric positive definite preconditioner, a callable ``r -> M^{-1} r``.

    Returns:
        ``(X, info)``: ``X`` shaped like ``B`` and a :class:`~jax_api.SolveInfo`.

    Example:
        >>> X, info = minres(BCOO.fromdense(jnp.array([[2.0, 1.0], [1.0, -3.0]])), jnp.ones(2))
    """
    op = as_operator(A)
    B = check_rhs_for(op, B, 0)
    x0 = check_x0(x0, B)
    maxiter = default_maxiter(maxiter, B.shape[0])
    precond = M if M is not None else (lambda r: r)

    def one(b, x):
        solve = lambda matvec, rhs: _minres_one(matvec, precond, rhs, x, tol, atol, maxiter)
        if _in_shard_map(op.matvec, b, x):
            return solve(op.matvec, b)
        # implicit differentiation (any order): MINRES is the solve of a symmetric system
        return jax.lax.custom_linear_solve(op.matvec, b, solve, symmetric=True, has_aux=True)

    X, info = by_column(one, B, x0)
    return X, report("minres", info)


def _in_shard_map(matvec, b, x0) -> bool:
    """Whether ``b``, ``x0`` or the arrays ``matvec`` closes over vary over ``shard_map`` axes:
    there ``custom_linear_solve`` requires all its operands (every constant of the solver
    included) to vary alike, so MINRES runs as written (use ``sparse_generic_solve`` to
    differentiate inside ``shard_map``)."""
    consts = jax.make_jaxpr(matvec)(b).consts
    return any(varying_axes(a) for a in (b, *(() if x0 is None else (x0,)), *consts))
