"""``minres``: MINRES for symmetric (possibly indefinite) systems, several shifts at once.

MINRES (Paige and Saunders, 1975) builds the Lanczos basis of the (preconditioned) operator and
minimises the residual over it with Givens rotations of the tridiagonal Lanczos matrix. The
Krylov space of ``A + s I`` does not depend on ``s``, so without a preconditioner every shift
shares one Lanczos process (one operator call per iteration) and only the rotations, search
directions and solutions are kept per shift. With a preconditioner ``M`` that no longer holds
(the shared process would solve ``(A + s M) x = b``), so each shift then runs its own MINRES.

Convergence is measured by the relative residual ``||b - (A + s I) x|| / ||b||`` per column and
shift: the recurrence's estimate decides when to look, a recomputed true residual decides when
to stop.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import torch

from .._convergence import report_nonconvergence
from ._common import (
    as_block,
    as_operator,
    broadcast_rhs,
    check_operator_dtype,
    checked,
    col_dot,
    col_norm,
    safe_div,
    worst,
)

_log = logging.getLogger("torch_api.minres")


class MINRESSettings(NamedTuple):
    """Settings of :func:`minres`: iteration cap, relative residual tolerance, and whether to log
    (logger ``torch_api.minres``, level INFO) what each solve does."""

    max_cg_iterations: int = 1000
    minres_tolerance: float = 1e-4
    verbose_linalg: bool = False


_DEFAULT_SETTINGS = MINRESSettings()


def _with_shift_columns(op, X: torch.Tensor) -> torch.Tensor:
    """Apply ``op`` to ``X (S, ..., n, k)`` by folding the shifts into the columns."""
    S = X.shape[0]
    if S == 1:
        return op(X[0]).unsqueeze(0)
    folded = X.movedim(0, -1).reshape(*X.shape[1:-1], -1)  # (..., n, k*S)
    Y = op(folded)
    return Y.reshape(*X.shape[1:], S).movedim(-1, 0)


def _minres(op, B, shifts, precond, tol, max_iter, eps):
    """MINRES for ``(A + shifts[s] I) X = B`` sharing one Lanczos process (``precond`` only
    with a single zero shift). Returns ``X (S, ..., n, k)``, iterations, true relative residuals."""
    S = shifts.numel()
    sh = shifts.reshape(S, *([1] * B.dim()))
    b_norm = col_norm(B)
    denom = torch.where(b_norm == 0, torch.ones_like(b_norm), b_norm)

    def true_rel(X):
        R = B - _with_shift_columns(op, X) - sh * X
        return col_norm(R) / denom

    r1 = B
    y = B if precond is None else checked(precond(B), B, "preconditioner(rhs)")
    b1_sq = col_dot(B, y)
    if bool((b1_sq < 0).any()):
        raise ValueError(
            "preconditioner: expected a symmetric positive definite M^{-1}, got r^T M^{-1} r < 0."
        )
    beta1 = b1_sq.sqrt()
    oldb, beta, r2 = torch.zeros_like(beta1), beta1, r1
    zeros_s = torch.zeros(S, *beta1.shape, dtype=B.dtype, device=B.device)
    dbar, epsln, sn = zeros_s, zeros_s, zeros_s
    cs = zeros_s - 1
    phibar = beta1.expand_as(zeros_s)
    X = B.new_zeros(S, *B.shape)
    w = w2 = torch.zeros_like(X)
    rel = torch.ones_like(zeros_s)
    next_look = float("inf")  # estimate below which the true residual is recomputed next
    it = 0
    for it in range(1, max_iter + 1):
        s = torch.where(beta > eps, 1 / torch.where(beta > eps, beta, 1), 0)
        v = s * y
        y = checked(op(v), v, "matmul_closure(v)")
        if it >= 2:
            y = y - safe_div(beta, oldb) * r1
        alfa = col_dot(v, y)
        y = y - (alfa * s) * r2
        r1, r2 = r2, y
        y = r2 if precond is None else checked(precond(r2), r2, "preconditioner(v)")
        oldb = beta
        beta = col_dot(r2, y).clamp_min(0).sqrt()
        # Givens rotations of the shifted tridiagonal matrix, one per shift
        alfa_s = alfa + sh
        oldeps = epsln
        delta = cs * dbar + sn * alfa_s
        gbar = sn * dbar - cs * alfa_s
        epsln = sn * beta
        dbar = -cs * beta
        gamma = torch.hypot(gbar, beta.expand_as(gbar)).clamp_min(eps)
        cs, sn = gbar / gamma, beta / gamma
        phi = cs * phibar
        phibar = sn * phibar
        w1, w2 = w2, w
        w = (v - oldeps * w1 - delta * w2) / gamma
        X = X + phi * w
        est = safe_div(phibar.abs(), beta1)
        est_max = float(est.max())
        if est_max <= tol and est_max <= next_look:
            rel = true_rel(X)
            if bool((rel <= tol).all()):
                return X, it, rel
            next_look = est_max / 2
    return X, it, true_rel(X)


def minres(
    matmul_closure,
    rhs: torch.Tensor,
    eps: float = 1e-25,
    shifts=None,
    value: float | None = None,
    max_iter: int | None = None,
    preconditioner=None,
    settings: MINRESSettings = _DEFAULT_SETTINGS,
    *,
    raise_on_failure: bool = False,
) -> torch.Tensor:
    """Solve symmetric (possibly indefinite) systems ``(value * A + s I) X = rhs`` by MINRES.

    Args:
        matmul_closure: symmetric ``A``: sparse COO/CSR ``(n, n)`` (or batched with
            ``rhs (b, n, k)``), a dense ``(..., n, n)`` tensor, or a callable ``X -> A X``.
        rhs: ``(n,)`` or ``(..., n, k)``; broadcast over the batch of a dense ``A`` (a batch
            of matrices and one right-hand side: ``X (*batch, n, k)``).
        eps: breakdown threshold of the Lanczos ``beta`` and of the rotations.
        shifts: ``None`` (no shift), a number or a tensor of ``S`` shifts ``s``.
        value: scale ``A`` by this number (``None``: 1).
        max_iter: iteration cap (default ``settings.max_cg_iterations``).
        preconditioner: SPD ``M^{-1}`` as a callable (or matrix) on blocks like ``rhs``.
        settings: :class:`MINRESSettings`; ``minres_tolerance`` is the relative residual
            tolerance.
        raise_on_failure: raise :class:`~torch_api.utils.ConvergenceError` instead of warning.

    Returns:
        ``X`` shaped like ``rhs``, or ``(S, *rhs.shape)`` for ``S > 1`` shifts. Warns
        ``ConvergenceWarning`` (iterations, residual) if a relative residual exceeds the
        tolerance. Not differentiable (use :func:`torch_api.sparse_generic_solve`).

    Example:
        >>> A = torch.tensor([[2.0, 1.0], [1.0, -1.0]])
        >>> x = minres(A, torch.tensor([1.0, 2.0]), settings=MINRESSettings(minres_tolerance=1e-6))
    """
    B, vector = as_block(rhs)
    check_operator_dtype("matmul_closure", matmul_closure, B, "rhs", square=True)
    B = broadcast_rhs(matmul_closure, B)
    base = as_operator(matmul_closure, "matmul_closure")
    precond = None if preconditioner is None else as_operator(preconditioner, "preconditioner")
    op = base if value is None else (lambda X: value * base(X))
    if shifts is None:
        shift_t = B.new_zeros(1)
    elif isinstance(shifts, torch.Tensor):
        check_operator_dtype("rhs", B, shifts, "shifts")
        shift_t = shifts.reshape(-1)
    else:
        shift_t = torch.tensor([float(shifts)], dtype=B.dtype, device=B.device)
    if shift_t.numel() == 0:
        raise ValueError("shifts: expected at least one shift, got an empty tensor.")
    max_iter = settings.max_cg_iterations if max_iter is None else int(max_iter)
    tol = float(settings.minres_tolerance)
    if settings.verbose_linalg:
        _log.info(
            "minres: rhs %s, %d shift(s), up to %d iterations, tolerance %g",
            tuple(B.shape),
            shift_t.numel(),
            max_iter,
            tol,
        )

    with torch.no_grad():
        if precond is None or bool((shift_t == 0).all()) and shift_t.numel() == 1:
            X, iters, rel = _minres(op, B, shift_t, precond, tol, max_iter, eps)
        else:  # a preconditioner breaks shift invariance: one MINRES per shift
            parts = [
                _minres(
                    lambda V, s=s: op(V) + s * V, B, B.new_zeros(1), precond, tol, max_iter, eps
                )
                for s in shift_t
            ]
            X = torch.cat([p[0] for p in parts])
            iters = max(p[1] for p in parts)
            rel = torch.cat([p[2] for p in parts])
        if not bool((rel <= tol).all()):
            report_nonconvergence(
                "minres", iters, worst(rel), tol, raise_on_failure=raise_on_failure
            )

    if vector:
        X = X.squeeze(-1)
    return X[0] if shift_t.numel() == 1 else X
