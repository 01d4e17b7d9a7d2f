"""``bicgstab``: BiCGSTAB (van der Vorst, 1992) for non-symmetric systems, column-parallel.

The ``k`` columns of ``rhs (..., n, k)`` are independent systems advanced together (two operator
calls per iteration on the whole block). The preconditioner is applied on the right
(``A M^{-1} u = b``, ``x = M^{-1} u``), so the recurrence's residual is the true residual of
``A x = b``. A column whose shadow inner product vanishes (a BiCG breakdown) restarts with its
current residual as the new shadow vector. A column stops once
``||b - A x|| <= max(abstol, reltol * ||b||)`` (SciPy's convention), its own threshold.

The budget ``matvec_max`` counts operator calls on the block, the initial residual
``b - A x0`` of a supplied guess included; ``matvec_max=0`` returns the initial guess without
calling anything (with a warning), and a guess already within tolerance is returned as it is.
"""

from __future__ import annotations

import logging
import warnings
from typing import NamedTuple

import torch

from .._convergence import report_nonconvergence
from ._common import (
    as_block,
    as_operator,
    check_operator_dtype,
    checked,
    col_dot,
    col_norm,
    start_from,
    vector_operator,
    worst,
)

_logger = logging.getLogger("torch_api.bicgstab")


class BICGSTABSettings(NamedTuple):
    """Settings of :func:`bicgstab`: ``matvec_max`` operator calls per right-hand side
    (default ``2 n``), tolerances, a right preconditioner ``precon`` (callable or matrix applying
    ``M^{-1}``) and the ``logger`` receiving per-iteration DEBUG records."""

    matvec_max: int | None = None
    abstol: float = 1e-8
    reltol: float = 1e-6
    precon: object = None
    logger: logging.Logger = _logger


_DEFAULT_SETTINGS = BICGSTABSettings()


def bicgstab(
    matmul_closure,
    rhs: torch.Tensor,
    initial_guess: torch.Tensor | None = None,
    settings: BICGSTABSettings = _DEFAULT_SETTINGS,
    *,
    raise_on_failure: bool = False,
) -> torch.Tensor:
    """Solve general square systems ``A X = rhs`` by (right-preconditioned) BiCGSTAB.

    Args:
        matmul_closure: ``A``: sparse COO/CSR ``(n, n)`` (or batched with ``rhs (b, n, k)``), a
            dense ``(..., n, n)`` tensor, or a callable ``X -> A X``.
        rhs: ``(n,)`` or ``(..., n, k)``; each column is solved independently.
        initial_guess: like ``rhs`` (zeros by default).
        settings: :class:`BICGSTABSettings`.
        raise_on_failure: raise :class:`~torch_api.utils.ConvergenceError` instead of warning.

    Returns:
        ``X`` shaped like ``rhs``. Warns ``ConvergenceWarning`` (operator calls, residual) if a
        column misses its tolerance. Not differentiable (use
        :func:`torch_api.sparse_generic_solve`).

    Example:
        >>> A = torch.tensor([[3.0, 1.0], [2.0, 4.0]])
        >>> x = bicgstab(A, torch.tensor([1.0, 2.0]))
    """
    B, vector = as_block(rhs)
    check_operator_dtype("matmul_closure", matmul_closure, B, "rhs", square=True)
    op = vector_operator(matmul_closure, as_operator(matmul_closure, "matmul_closure"), vector)
    precond = None
    if settings.precon is not None:
        precond = as_operator(settings.precon, "settings.precon")
        precond = vector_operator(settings.precon, precond, vector)
    n = B.shape[-2]
    matvec_max = 2 * n if settings.matvec_max is None else int(settings.matvec_max)
    if matvec_max < 0:
        raise ValueError(f"settings.matvec_max: expected a nonnegative integer, got {matvec_max}.")
    log = settings.logger
    if matvec_max == 0:
        warnings.warn("bicgstab: matvec_max=0, returning the initial guess without evaluating "
                      "the operator or checking convergence.", UserWarning, stacklevel=2)
        if initial_guess is None:
            return torch.zeros_like(rhs)
        return checked(initial_guess, rhs, "initial_guess").detach().clone()

    def M(V):
        return V if precond is None else checked(precond(V), V, "settings.precon(v)")

    with torch.no_grad():
        b_norm = col_norm(B)
        threshold = torch.clamp(settings.reltol * b_norm, min=settings.abstol)
        X, R, nmv = start_from(op, B, initial_guess)
        r_norm = col_norm(R)
        active = r_norm > threshold
        shadow = R.clone()
        one = torch.ones_like(b_norm)
        rho, alpha, omega = one, one, one
        P = torch.zeros_like(B)
        V = torch.zeros_like(B)
        breakdown = torch.finfo(B.dtype).eps
        iters = 0
        while bool(active.any()) and nmv + 2 <= matvec_max:
            rho_new = col_dot(shadow, R)
            restart = active & (rho_new.abs() <= breakdown * col_norm(shadow) * r_norm)
            if bool(restart.any()):  # breakdown: new shadow vector, fresh directions
                shadow = torch.where(restart, R, shadow)
                P = torch.where(restart, 0, P)
                V = torch.where(restart, 0, V)
                rho, alpha, omega = (torch.where(restart, 1, t) for t in (rho, alpha, omega))
                rho_new = torch.where(restart, col_dot(R, R), rho_new)
            ok = active & (rho != 0) & (omega != 0)
            beta = torch.where(
                ok, (rho_new / torch.where(ok, rho, 1)) * (alpha / torch.where(ok, omega, 1)), 0
            )
            P = R + beta * (P - omega * V)
            Ph = M(P)
            V = checked(op(Ph), Ph, "matmul_closure(p)")
            sv = col_dot(shadow, V)
            ok = active & (sv != 0) & torch.isfinite(sv)
            alpha = torch.where(ok, rho_new / torch.where(ok, sv, 1), 0)
            S = R - alpha * V
            s_norm = col_norm(S)
            half = ok & (s_norm <= threshold)  # converged after the first half step
            nmv += 1
            iters += 1
            if not bool((ok & ~half).any()):  # every column done (or stuck) at the half step
                X = X + alpha * Ph
                R, r_norm, rho, omega = S, s_norm, rho_new, torch.zeros_like(one)
                active = active & ~half
                continue
            Sh = M(S)
            T = checked(op(Sh), Sh, "matmul_closure(s)")
            nmv += 1
            tt = col_dot(T, T)
            full = ok & ~half & (tt > 0)
            omega = torch.where(full, col_dot(T, S) / torch.where(full, tt, 1), 0)
            X = X + alpha * Ph + omega * Sh
            R = S - omega * T
            rho = rho_new
            r_norm = col_norm(R)
            active = active & (r_norm > threshold)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "bicgstab: %d matvecs, max residual %.3e, %d active",
                    nmv,
                    float(r_norm.max()),
                    int(active.sum()),
                )
        true_r = r_norm  # b - A x0 itself when no step was taken
        if iters:
            true_r = col_norm(B - checked(op(X), B, "matmul_closure(solution)"))
        failed = ~(true_r <= threshold)  # NaN fails
        if bool(failed.any()):
            scale = torch.where(b_norm == 0, one, b_norm)
            report_nonconvergence(
                "bicgstab",
                iters,
                worst((true_r / scale)[failed]),
                worst((threshold / scale)[failed]),
                raise_on_failure=raise_on_failure,
            )
    return X.squeeze(-1) if vector else X
