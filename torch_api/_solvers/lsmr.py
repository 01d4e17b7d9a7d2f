"""``lsmr``: LSMR (Fong and Saunders, 2011) for least squares, column-parallel.

LSMR runs the Golub-Kahan bidiagonalisation of ``A`` started from ``b`` and minimises
``||A^T r||`` over the Krylov space, with two Givens QR factorisations (one of the bidiagonal
matrix, one of its transpose) giving the solution update and estimates of ``||r||``,
``||A^T r||``, ``||A||`` and ``cond(A)``. Started from ``x0 = 0`` it returns the minimum-norm
solution of an underdetermined (or rank-deficient) system. Each column of ``b (m, k)`` is an
independent problem: every scalar of the recurrences is a ``(1, k)`` row and a column that meets
its stopping test is frozen while the others go on.

Stopping tests per column (as in the paper): ``||r|| <= btol ||b|| + atol ||A|| ||x||``
(consistent systems), ``||A^T r|| <= atol ||A|| ||r||`` (least squares), machine-precision
versions of both; ``cond(A) >= conlim`` or the iteration cap are failures and are reported.
"""

from __future__ import annotations

import torch

from .._convergence import report_nonconvergence
from .._validate import type_error
from ._common import as_block, as_operator, check_operator_dtype, checked, col_norm, safe_div, worst


def _sym_ortho(a: torch.Tensor, b: torch.Tensor):
    """Givens rotation ``(c, s, r)`` with ``[c s; -s c] [a; b] = [r; 0]``, ``r >= 0``."""
    r = torch.hypot(a, b)
    nz = r > 0
    rr = torch.where(nz, r, 1)
    return torch.where(nz, a / rr, 1), torch.where(nz, b / rr, 0), r


def _complex_dense(M):
    """``(X -> M X, X -> M^H X)`` for a dense complex ``M``; ``(None, None)`` otherwise (a
    callable, or a real or sparse matrix, which :func:`as_operator` takes)."""
    if isinstance(M, torch.Tensor) and M.layout == torch.strided and M.is_complex():
        D = M.detach()
        return (lambda X: D @ X), (lambda X: D.mT.conj() @ X)
    return None, None


def lsmr(
    A,
    b: torch.Tensor,
    Armat=None,
    n: int | None = None,
    damp: float = 0.0,
    atol: float = 1e-6,
    btol: float = 1e-6,
    conlim: float = 1e8,
    maxiter: int | None = None,
    x0: torch.Tensor | None = None,
    check_nonzero: bool = True,
    *,
    raise_on_failure: bool = False,
) -> tuple[torch.Tensor, int]:
    """Least-squares solution of ``min ||A x - b||`` (damped: ``+ damp^2 ||x||^2``) by LSMR.

    Args:
        A: sparse COO/CSR ``(m, n)``, a dense ``(m, n)`` tensor, or a callable ``x -> A x``;
            complex (dense or callable) with a complex ``b``.
        b: ``(m,)`` or ``(m, k)`` (``k`` independent problems), real or complex.
        Armat: ``A^T`` (``A^H`` if complex) as a matrix or a callable ``u -> A^H u``; required
            when ``A`` is callable (a sparse ``A`` uses its cached transposed CSR pattern).
        n: number of columns of ``A``; required when ``A`` is callable.
        damp, atol, btol, conlim: damping and stopping tolerances (see the module docstring).
        maxiter: iteration cap (default ``min(m, n)``).
        x0: initial guess ``(n,)`` / ``(n, k)`` (zeros by default).
        check_nonzero: if ``False``, skip the early exit for an all-zero ``b`` (no host sync).
        raise_on_failure: raise :class:`~torch_api.utils.ConvergenceError` instead of warning.

    Returns:
        ``(x, itn)``: ``x (n,)`` / ``(n, k)`` and the number of iterations. Warns
        ``ConvergenceWarning`` if a column hit ``maxiter`` or ``conlim``. Not differentiable
        (use :func:`torch_api.sparse_generic_lstsq`).

    Example:
        >>> A = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        >>> x, itn = lsmr(A, torch.tensor([1.0, 2.0, 3.0]), atol=1e-8, btol=1e-8)
    """
    B, vector = as_block(b, "b", complex_ok=True)
    check_operator_dtype("A", A, B, "b")
    shape = A.shape[-2:] if isinstance(A, torch.Tensor) else None
    if shape is None:
        if not callable(A):
            raise type_error("A", A, "a sparse COO/CSR tensor, a dense tensor or a callable")
        if Armat is None or n is None:
            raise ValueError("Armat, n: a callable A needs Armat (u -> A^T u) and n (its columns).")
    else:
        if B.shape[-2] != shape[0]:
            raise ValueError(
                f"b: expected {shape[0]} rows to match A's shape {tuple(shape)}, "
                f"got {tuple(b.shape)}."
            )
        if n is None:
            n = int(shape[1])
    if Armat is not None:
        check_operator_dtype("Armat", Armat, B, "b")
    Aop, Atop = _complex_dense(A) if B.is_complex() else (None, None)
    if Aop is None:
        Aop = as_operator(A, "A")
        Atop = as_operator(A, "A", transpose=True) if Armat is None else None
    if Armat is not None:
        Atop = _complex_dense(Armat)[0] if B.is_complex() else None
        Atop = Atop or as_operator(Armat, "Armat")
    m = B.shape[-2]
    maxiter = min(m, n) if maxiter is None else int(maxiter)
    ctol = 1.0 / conlim if conlim > 0 else 0.0
    xshape = (*B.shape[:-2], n, B.shape[-1])

    with torch.no_grad():
        if x0 is None:
            x = B.new_zeros(xshape)
            u = B.clone()
        else:
            x = (x0.unsqueeze(-1) if x0.dim() == 1 else x0).clone()
            checked(x, B.new_empty(xshape), "x0")
            u = B - checked(Aop(x), B, "A(x0)")
        normb = col_norm(B)
        beta = col_norm(u)
        u = safe_div(u, beta)
        v = Atop(u)
        checked(v, x, "Armat(u)")
        alpha = col_norm(v)
        v = safe_div(v, alpha)

        zero, one = torch.zeros_like(beta), torch.ones_like(beta)
        damp_t = torch.full_like(beta, float(damp))
        zetabar, alphabar = alpha * beta, alpha
        rho, rhobar, cbar, sbar = one, one, one, zero
        h, hbar = v, torch.zeros_like(x)
        betadd, betad, rhodold = beta, zero, one
        tautildeold, thetatilde, zeta, d = zero, zero, zero, zero
        normA2 = alpha.square()
        maxrbar, minrbar = zero, torch.full_like(beta, torch.finfo(B.dtype).max)
        normA = normA2.sqrt()
        test2 = test1 = zero
        stop = torch.zeros(beta.shape, dtype=torch.int8, device=B.device)
        done = (alpha * beta == 0) | (normb == 0)  # x0 already exact, or b = 0
        x = torch.where(normb == 0, 0, x)
        stop = torch.where(done, 1, stop)
        itn = 0
        if check_nonzero and bool(done.all()):
            maxiter = 0
        for itn in range(1, maxiter + 1):
            u = Aop(v) - alpha * u
            beta = col_norm(u)
            u = safe_div(u, beta)
            v = Atop(u) - beta * v
            alpha = col_norm(v)
            v = safe_div(v, alpha)

            chat, shat, alphahat = _sym_ortho(alphabar, damp_t)
            rhoold = rho
            c, s, rho = _sym_ortho(alphahat, beta)
            thetanew = s * alpha
            alphabar = c * alpha
            rhobarold, zetaold = rhobar, zeta
            thetabar = sbar * rho
            rhotemp = cbar * rho
            cbar, sbar, rhobar = _sym_ortho(cbar * rho, thetanew)
            zeta = cbar * zetabar
            zetabar = -sbar * zetabar
            hbar = h - safe_div(thetabar * rho, rhoold * rhobarold) * hbar
            x_new = x + safe_div(zeta, rho * rhobar) * hbar
            h = v - safe_div(thetanew, rho) * h

            # estimate of ||r||
            betaacute = chat * betadd
            betacheck = -shat * betadd
            betahat = c * betaacute
            betadd = -s * betaacute
            thetatildeold = thetatilde
            ctildeold, stildeold, rhotildeold = _sym_ortho(rhodold, thetabar)
            thetatilde = stildeold * rhobar
            rhodold = ctildeold * rhobar
            betad = -stildeold * betad + ctildeold * betahat
            tautildeold = safe_div(zetaold - thetatildeold * tautildeold, rhotildeold)
            taud = safe_div(zeta - thetatilde * tautildeold, rhodold)
            d = d + betacheck.square()
            normr = (d + (betad - taud).square() + betadd.square()).sqrt()
            # estimates of ||A||, cond(A), ||A^T r||, ||x||
            normA2 = normA2 + beta.square()
            normA = normA2.sqrt()
            normA2 = normA2 + alpha.square()
            maxrbar = torch.maximum(maxrbar, rhobarold)
            if itn > 1:
                minrbar = torch.minimum(minrbar, rhobarold)
            condA = safe_div(torch.maximum(maxrbar, rhotemp), torch.minimum(minrbar, rhotemp))
            normar = zetabar.abs()
            normx = col_norm(x_new)

            test1 = safe_div(normr, normb)
            test2 = torch.where(normA * normr > 0, safe_div(normar, normA * normr), torch.inf)
            test3 = safe_div(one, condA)
            t1 = safe_div(test1, 1 + safe_div(normA * normx, normb))
            rtol = btol + atol * safe_div(normA * normx, normb)
            new = torch.full_like(stop, 7 if itn >= maxiter else 0)
            new = torch.where(1 + test3 <= 1, 6, new)
            new = torch.where(1 + test2 <= 1, 5, new)
            new = torch.where(1 + t1 <= 1, 4, new)
            new = torch.where(test3 <= ctol, 3, new)
            new = torch.where(test2 <= atol, 2, new)
            new = torch.where(test1 <= rtol, 1, new)
            active = stop == 0
            x = torch.where(active, x_new, x)
            stop = torch.where(active, new, stop)
            if not bool((stop == 0).any()):
                break

        failed = (stop == 0) | (stop == 3) | (stop == 6) | (stop == 7)
        if bool(failed.any()):
            what = "lsmr (||A^T r|| / (||A|| ||r||)"
            what += (
                ", condition estimate above conlim)"
                if bool(((stop == 3) | (stop == 6)).any())
                else ")"
            )
            report_nonconvergence(
                what,
                itn,
                worst(test2.expand_as(failed)[failed]),
                atol,
                raise_on_failure=raise_on_failure,
            )
    return (x.squeeze(-1) if vector else x), itn
