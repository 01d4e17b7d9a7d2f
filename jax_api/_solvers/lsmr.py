"""``lsmr``: LSMR (Fong and Saunders, 2011) for least squares, with ``lax.while_loop``.

LSMR runs the Golub-Kahan bidiagonalisation of ``A`` started from ``b`` and minimises
``||A^T r||`` over the Krylov space, with two Givens QR factorisations giving the solution
update and estimates of ``||r||``, ``||A^T r||``, ``||A||`` and ``cond(A)``. Started from
``x0 = 0`` it returns the minimum-norm solution of an underdetermined (or rank-deficient)
system, which :func:`jax_api.sparse_generic_lstsq`'s backward relies on. JAX has no LSMR
(outside lineax), so it is written here as one ``lax.while_loop`` per vector; the columns of a
block are independent problems solved together under ``vmap``.

Stopping tests per column (``istop`` as in the paper and SciPy): 1 ``||r|| <= btol ||b|| + atol
||A|| ||x||`` (compatible system), 2 ``||A^T r|| <= atol ||A|| ||r||`` (least squares), 4/5 the
same at machine precision: all converged. 3/6 ``cond(A) >= conlim`` and 7 the iteration cap are
failures, reported by a ``ConvergenceWarning`` and ``info.converged``. ``info.residual`` is the
quantity of the deciding test: ``||r|| / ||b||`` for 1/4, ``||A^T r|| / (||A|| ||r||)`` otherwise.

Differentiable when called directly (in ``B`` and in whatever ``A``'s products close over: a
sparse or dense matrix's values), to any order and in both modes, by implicit differentiation
of the normal equations (below), never through the iterations; this assumes ``A`` has full
column rank or ``damp > 0``, so that the solution is unique.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._common import SolveInfo, as_operator, by_column, check_rhs_for, check_x0, compiled, report

__all__ = ["lsmr"]


def _sym_ortho(a, b):
    """Givens rotation ``(c, s, r)`` with ``[c s; -s c] [a; b] = [r; 0]``, ``r >= 0``."""
    r = jnp.hypot(a, b)
    nz = r > 0
    rr = jnp.where(nz, r, 1)
    return jnp.where(nz, a / rr, 1), jnp.where(nz, b / rr, 0), r


def _safe_div(a, b):
    nz = b != 0
    return jnp.where(nz, a / jnp.where(nz, b, 1), 0)


def _lsmr_one(matvec, rmatvec, b, x0, damp, atol, btol, conlim, maxiter, n):
    dtype = b.dtype
    # Every initial value derives from u = b - A x0 and v = A^T u (one extra product for
    # x0 = 0), so inside shard_map the carry varies over the mesh axes A and b vary over.
    x = jnp.zeros((n,), dtype) if x0 is None else x0
    u = b - matvec(x)
    normb = jnp.linalg.norm(b)
    beta = jnp.linalg.norm(u)
    u = _safe_div(u, beta)
    v = rmatvec(u) * (beta > 0)
    alpha = jnp.linalg.norm(v)
    v = _safe_div(v, alpha)
    zero = 0 * (alpha + beta)
    one = zero + 1
    x = x + 0 * v
    ctol = 1.0 / conlim if conlim > 0 else 0.0
    state = dict(
        itn=jnp.int32(0),
        x=x,
        u=u,
        v=v,
        h=v,
        hbar=jnp.zeros_like(v),
        alpha=alpha,
        alphabar=alpha,
        **dict.fromkeys(("rho", "rhobar", "cbar", "rhodold"), one),
        **dict.fromkeys(("sbar", "betad", "tautildeold", "thetatilde", "zeta", "d", "maxrbar"),
                        zero),
        zetabar=alpha * beta,
        betadd=beta,
        normA2=alpha * alpha,
        minrbar=zero + (1e100 if dtype == jnp.float64 else 1e30),
        normr=beta,
        normar=alpha * beta,
        # b = A x0 already (1), or A^T r0 = 0: x0 is a least-squares solution (2)
        istop=jnp.where(beta == 0, jnp.int32(1), jnp.where(alpha == 0, jnp.int32(2), jnp.int32(0))),
        test1=jnp.where(normb > 0, beta / jnp.where(normb > 0, normb, 1), zero),
        test2=zero,
    )

    def cond(s):
        return s["istop"] == 0

    def body(s):
        s = dict(s)
        itn = s["itn"] + 1
        u = matvec(s["v"]) - s["alpha"] * s["u"]
        beta = jnp.linalg.norm(u)
        u = _safe_div(u, beta)
        v = jnp.where(beta > 0, rmatvec(u) - beta * s["v"], s["v"])
        alpha = jnp.where(beta > 0, jnp.linalg.norm(v), s["alpha"])
        v = jnp.where(beta > 0, _safe_div(v, alpha), v)
        alpha = jnp.where(beta > 0, alpha, zero)  # Kahan: u = 0 ends the process

        chat, shat, alphahat = _sym_ortho(s["alphabar"], jnp.asarray(damp, dtype))
        rhoold = s["rho"]
        c, sn, rho = _sym_ortho(alphahat, beta)
        thetanew = sn * alpha
        alphabar = c * alpha
        rhobarold, zetaold = s["rhobar"], s["zeta"]
        thetabar = s["sbar"] * rho
        rhotemp = s["cbar"] * rho
        cbar, sbar, rhobar = _sym_ortho(s["cbar"] * rho, thetanew)
        zeta = cbar * s["zetabar"]
        zetabar = -sbar * s["zetabar"]
        hbar = s["h"] - _safe_div(thetabar * rho, rhoold * rhobarold) * s["hbar"]
        x = s["x"] + _safe_div(zeta, rho * rhobar) * hbar
        h = v - _safe_div(thetanew, rho) * s["h"]

        betaacute = chat * s["betadd"]
        betacheck = -shat * s["betadd"]
        betahat = c * betaacute
        betadd = -sn * betaacute
        thetatildeold = s["thetatilde"]
        ctildeold, stildeold, rhotildeold = _sym_ortho(s["rhodold"], thetabar)
        thetatilde = stildeold * rhobar
        rhodold = ctildeold * rhobar
        betad = -stildeold * s["betad"] + ctildeold * betahat
        tautildeold = _safe_div(zetaold - thetatildeold * s["tautildeold"], rhotildeold)
        taud = _safe_div(zeta - thetatilde * tautildeold, rhodold)
        d = s["d"] + betacheck * betacheck
        normr = jnp.sqrt(d + (betad - taud) ** 2 + betadd * betadd)

        normA2 = s["normA2"] + beta * beta
        normA = jnp.sqrt(normA2)
        normA2 = normA2 + alpha * alpha
        maxrbar = jnp.maximum(s["maxrbar"], rhobarold)
        minrbar = jnp.where(itn > 1, jnp.minimum(s["minrbar"], rhobarold), s["minrbar"])
        condA = _safe_div(jnp.maximum(maxrbar, rhotemp), jnp.minimum(minrbar, rhotemp))

        normar = jnp.abs(zetabar)
        normx = jnp.linalg.norm(x)
        test1 = _safe_div(normr, normb)
        test2 = jnp.where(normA * normr != 0, _safe_div(normar, normA * normr), jnp.inf)
        test3 = _safe_div(one, condA)
        t1 = _safe_div(test1, 1 + _safe_div(normA * normx, normb))
        rtol = btol + atol * _safe_div(normA * normx, normb)
        istop = jnp.int32(0)
        for flag, code in (
            (itn >= maxiter, 7),
            (1 + test3 <= 1, 6),
            (1 + test2 <= 1, 5),
            (1 + t1 <= 1, 4),
            (test3 <= ctol, 3),
            (test2 <= atol, 2),
            (test1 <= rtol, 1),
        ):
            istop = jnp.where(flag, jnp.int32(code), istop)
        return dict(
            itn=itn,
            x=x,
            u=u,
            v=v,
            h=h,
            hbar=hbar,
            alpha=alpha,
            alphabar=alphabar,
            rho=rho,
            rhobar=rhobar,
            cbar=cbar,
            sbar=sbar,
            zetabar=zetabar,
            betadd=betadd,
            betad=betad,
            rhodold=rhodold,
            tautildeold=tautildeold,
            thetatilde=thetatilde,
            zeta=zeta,
            d=d,
            normA2=normA2,
            maxrbar=maxrbar,
            minrbar=minrbar,
            normr=normr,
            normar=normar,
            istop=istop,
            test1=test1,
            test2=jnp.where(jnp.isfinite(test2), test2, zero),
        )

    out = jax.lax.while_loop(cond, body, state)
    istop = out["istop"]
    converged = (istop == 1) | (istop == 2) | (istop == 4) | (istop == 5)
    residual = jnp.where((istop == 1) | (istop == 4), out["test1"], out["test2"])
    info = SolveInfo(converged, out["itn"], residual, jnp.asarray(atol, dtype))
    return out["x"], info


@compiled
def lsmr(
    A,
    B: jax.Array,
    *,
    rmatvec=None,
    n: int | None = None,
    damp: float = 0.0,
    atol: float = 1e-6,
    btol: float = 1e-6,
    conlim: float = 1e8,
    maxiter=None,
    x0=None,
):
    """Least-squares solution of ``min ||A x - b||`` (``+ damp^2 ||x||^2``) by LSMR.

    Args:
        A: 2-D BCOO/BCSR ``(m, n)``, dense ``(m, n)`` array, or a callable ``x -> A x``
            (then give ``rmatvec`` and ``n``).
        B: ``(m,)`` or ``(m, k)`` (``k`` independent problems).
        rmatvec: ``u -> A^T u`` for a callable ``A``.
        n: number of columns of a callable ``A``.
        damp, atol, btol, conlim: damping and stopping tolerances (see the module docstring).
        maxiter: iteration cap (default ``min(m, n)``; a few times more for ill-conditioned A).
        x0: initial guess ``(n,)`` / ``(n, k)`` (zeros by default: minimum-norm solutions).

    Returns:
        ``(X, info)``: ``X (n,)`` or ``(n, k)`` and a :class:`~jax_api.SolveInfo`.

    Example:
        >>> A = BCOO.fromdense(jnp.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]))
        >>> X, info = lsmr(A, jnp.ones(3))
    """
    op = as_operator(A, rmatvec=rmatvec, transpose=True)
    if op.rmatvec is None or (op.shape is None and n is None):
        raise TypeError("A: a callable A needs rmatvec=(u -> A^T u) and n=(its number of columns).")
    B = check_rhs_for(op, B, 0)
    m, n = (B.shape[0], int(n)) if op.shape is None else op.shape
    x0 = check_x0(x0, B, cols=n)
    if maxiter is None:
        maxiter = min(m, n)
    if not isinstance(maxiter, int) or maxiter < 1:
        raise ValueError(f"maxiter: expected a positive int or None, got {maxiter!r}.")

    example = jnp.zeros((n,), B.dtype), jnp.zeros((m,), B.dtype)
    (mv, mv_consts), (rmv, rmv_consts) = _convert(op.matvec, example[0]), _convert(
        op.rmatvec, example[1])
    options = (damp, atol, btol, conlim, maxiter, n)
    X, info = _implicit(mv, rmv, options, B, x0, (mv_consts, rmv_consts))
    return X, report("lsmr", info)


# ------------------------------------------------------------- implicit differentiation
# X solves the normal equations N X = A^T B, N = A^T A + damp^2 I, so for a perturbation of
# A's parameters (the arrays the products close over) and of B, with r = B - A X:
#     N dX = dA^T r + A^T (dB - dA X)
# N^{-1} is lax.custom_linear_solve of x -> A^T A x + damp^2 x, solved by LSMR twice (below),
# so the tangent is differentiable again: every order, forward and reverse.


def _convert(f, example):
    """``f`` as ``g(x, *consts)`` and the arrays it closes over (every one, integer arrays
    such as sparse indices included, so that none leaks from the caller's trace)."""
    closed = jax.make_jaxpr(f)(example)
    return (lambda x, *c: jax.core.eval_jaxpr(closed.jaxpr, c, x)[0]), tuple(closed.consts)


def _block(f, Y):
    """``f`` of one vector applied to a vector or to every column of a block."""
    return f(Y) if Y.ndim == 1 else jax.vmap(f, 1, 1)(Y)


def _lsmr_block(matvec, rmatvec, B, x0, options):
    damp, atol, btol, conlim, maxiter, n = options

    def one(b, x):
        return _lsmr_one(matvec, rmatvec, b, x, damp, atol, btol, conlim, maxiter, n)

    return by_column(one, B, x0)


@partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _implicit(mv, rmv, options, B, x0, consts):
    return _lsmr_block(lambda x: mv(x, *consts[0]), lambda u: rmv(u, *consts[1]), B, x0, options)


@_implicit.defjvp
def _implicit_jvp(mv, rmv, options, primals, tangents):
    B, x0, consts = primals
    dB, _, dconsts = tangents
    X, info = _implicit(mv, rmv, options, B, x0, consts)
    A = lambda x: mv(x, *consts[0])
    At = lambda u: rmv(u, *consts[1])
    dA = lambda x: jax.jvp(lambda c: mv(x, *c), (consts[0],), (dconsts[0],))[1]
    dAt = lambda u: jax.jvp(lambda c: rmv(u, *c), (consts[1],), (dconsts[1],))[1]
    R = _block(dAt, B - _block(A, X)) + _block(At, dB - _block(dA, X))
    dX = _normal_solve(A, At, options, R)
    from .._generic_lstsq import _zero_tangent  # the info is not differentiated

    return (X, info), (dX, jax.tree_util.tree_map(_zero_tangent, info))


def _normal_solve(A, At, options, R):
    """``N^{-1} R`` for ``N = A^T A + damp^2 I`` as ``Ã^+ (Ã^+)^T R`` with ``Ã = [A; damp I]``:
    the minimum-norm solution ``z`` of ``Ã^T z = R`` (LSMR from zero), then ``Ã^+ z``."""
    damp, atol, btol, conlim, maxiter, n = options
    d = jnp.asarray(damp, R.dtype)
    m = jax.eval_shape(A, jax.ShapeDtypeStruct((n,), R.dtype)).shape[0]
    if damp == 0:
        Ab, Abt, rows = A, At, m
    else:  # the augmented operator [A; damp I] and its transpose
        Ab = lambda x: jnp.concatenate([A(x), d * x])
        Abt = lambda z: At(z[:m]) + d * z[m:]
        rows = m + n
    plain = (0.0, atol, btol, conlim, maxiter)

    def solve(_, c):
        z, _ = _lsmr_block(Abt, Ab, c, None, (*plain, rows))
        return _lsmr_block(Ab, Abt, z, None, (*plain, n))[0]

    N = lambda x: _block(lambda v: At(A(v)) + d * d * v, x)
    return jax.lax.custom_linear_solve(N, R, solve, symmetric=True)
