"""``linear_cg``: preconditioned conjugate gradients on a block of right-hand sides.

Each of the ``k`` columns of ``rhs (..., n, k)`` is an independent SPD system ``A x = b``; all
columns advance together (one operator call per iteration on the whole block). Convergence is
measured by the relative residual ``||b - A x|| / ||b||`` per column.

Lanczos tridiagonalisation (``n_tridiag > 0``): CG's coefficients give the Lanczos matrix of the
(preconditioned) operator for free. With ``alpha_j`` the step lengths and ``beta_j`` the direction
updates, ``T[j, j] = 1/alpha_j + beta_{j-1}/alpha_{j-1}`` and
``T[j, j+1] = T[j+1, j] = sqrt(beta_j)/alpha_j``; it is ``Q^T M^{-1/2} A M^{-1/2} Q`` for the
normalised residuals ``Q``, so its eigenvalues (Ritz values) approximate those of the operator.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch

from .._convergence import report_nonconvergence
from . import _common
from ._common import as_block, as_operator, check_operator_dtype, checked, col_dot, col_norm, worst

_log = logging.getLogger("torch_api.linear_cg")


class LinearCGSettings(NamedTuple):
    """Settings of :func:`linear_cg`.

    ``max_cg_iterations`` caps CG iterations, ``max_lanczos_quadrature_iterations`` the size of
    the Lanczos matrices, ``cg_tolerance`` is the relative residual tolerance,
    ``terminate_cg_by_size`` caps iterations at ``n``, ``verbose_linalg`` logs (logger
    ``torch_api.linear_cg``, level INFO) what each solve does.
    """

    max_cg_iterations: int = 1000
    max_lanczos_quadrature_iterations: int = 20
    cg_tolerance: float = 1e-5
    terminate_cg_by_size: bool = False
    verbose_linalg: bool = False


_DEFAULT_SETTINGS = LinearCGSettings()


@dataclass(frozen=True)
class CGInfo:
    """How a :func:`linear_cg` solve ended. Residual tensors have shape ``(*batch, k)``.

    ``reason``: ``"converged"`` (every true relative residual within tolerance),
    ``"recursive_converged"`` / ``"mean_converged"`` (the recurrence's residuals, resp. their
    mean, met the tolerance but a recomputed true residual does not), ``"stopped_updating"``
    (every column was frozen by ``stop_updating_after`` before reaching the tolerance) or
    ``"max_iter"``.
    """

    iterations: int
    matvecs: int
    converged: torch.Tensor
    recursive_relative_residual: torch.Tensor
    true_relative_residual: torch.Tensor
    tolerance: float
    reason: Literal[
        "converged", "recursive_converged", "mean_converged", "stopped_updating", "max_iter"
    ]


def _nonneg(name: str, x: float, positive: bool = False) -> float:
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise ValueError(
            f"{name}: expected a finite {'positive' if positive else 'nonnegative'} number, "
            f"got {x!r}."
        )
    return float(x)


def linear_cg(
    matmul_closure,
    rhs: torch.Tensor,
    n_tridiag: int = 0,
    tolerance: float | None = None,
    eps: float | None = None,
    stop_updating_after: float | None = None,
    max_iter: int | None = None,
    max_tridiag_iter: int | None = None,
    initial_guess: torch.Tensor | None = None,
    preconditioner=None,
    settings: LinearCGSettings = _DEFAULT_SETTINGS,
    convergence_reduction: Literal["all", "mean"] = "all",
    min_iter: int = 0,
    return_info: bool = False,
    *,
    raise_on_failure: bool = False,
):
    """Solve SPD systems ``A X = rhs`` by (preconditioned) conjugate gradients.

    Args:
        matmul_closure: ``A``: sparse COO/CSR ``(n, n)`` (or batched ``(b, n, n)`` with
            ``rhs (b, n, k)``), a dense ``(..., n, n)`` tensor, or a callable ``X -> A X``.
        rhs: ``(n,)`` or ``(..., n, k)``: ``k`` independent right-hand sides.
        n_tridiag: return the Lanczos matrices of the first ``n_tridiag`` columns.
        tolerance: relative residual tolerance (default ``settings.cg_tolerance``).
        eps: breakdown threshold of ``p^T A p`` (default: the dtype's smallest normal number);
            a column that breaks down (``A`` not SPD) is frozen and reported.
        stop_updating_after: freeze a column once its relative residual is below this
            (default ``tolerance``).
        max_iter, max_tridiag_iter: iteration caps (defaults from ``settings``).
        initial_guess: like ``rhs``; zeros by default.
        preconditioner: callable (or matrix) applying ``M^{-1}`` to a block like ``rhs``.
        convergence_reduction: stop when ``"all"`` columns (or their ``"mean"``) meet the tolerance.
        min_iter: iterations to run before stopping on tolerance.
        return_info: also return a :class:`CGInfo`.
        raise_on_failure: raise :class:`~torch_api.utils.ConvergenceError` instead of warning.

    Returns:
        ``X`` shaped like ``rhs``; then ``T (n_tridiag, *batch, r, r)`` if ``n_tridiag > 0``; then
        a :class:`CGInfo` if ``return_info``. If a true relative residual exceeds the tolerance a
        ``ConvergenceWarning`` names the iteration count and residual. Not differentiable
        (use :func:`torch_api.sparse_generic_solve` for gradients).

    Example:
        >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]]).to_sparse_csr()
        >>> x = linear_cg(A, torch.tensor([1.0, 2.0]), tolerance=1e-6)
    """
    B, vector = as_block(rhs)
    check_operator_dtype("matmul_closure", matmul_closure, B, "rhs", square=True)
    op = as_operator(matmul_closure, "matmul_closure")
    precond = None if preconditioner is None else as_operator(preconditioner, "preconditioner")
    max_iter = settings.max_cg_iterations if max_iter is None else int(max_iter)
    max_tridiag_iter = (
        settings.max_lanczos_quadrature_iterations
        if max_tridiag_iter is None
        else int(max_tridiag_iter)
    )
    tol = _nonneg("tolerance", settings.cg_tolerance if tolerance is None else tolerance)
    stop_after = _nonneg(
        "stop_updating_after", tol if stop_updating_after is None else stop_updating_after
    )
    eps = _nonneg("eps", torch.finfo(B.dtype).tiny if eps is None else eps, positive=True)
    if eps < torch.finfo(B.dtype).tiny:  # it would round to zero (or a subnormal) in B's dtype
        raise ValueError(f"eps: expected a threshold representable in {B.dtype} (at least "
                         f"{torch.finfo(B.dtype).tiny:.3g}), got {eps!r}.")
    if convergence_reduction not in ("all", "mean"):
        raise ValueError(
            f"convergence_reduction: expected 'all' or 'mean', got {convergence_reduction!r}."
        )
    if min_iter < 0 or max_iter < 0:
        raise ValueError(
            f"min_iter, max_iter: expected nonnegative integers, got {min_iter}, {max_iter}."
        )
    n, k = B.shape[-2], B.shape[-1]
    if not 0 <= n_tridiag <= k:
        raise ValueError(
            f"n_tridiag: expected an integer in [0, {k}] (rhs columns), got {n_tridiag}."
        )
    if n_tridiag and max_tridiag_iter > max_iter:
        raise ValueError(
            f"max_tridiag_iter: expected at most max_iter={max_iter} (a Lanczos matrix cannot be "
            f"larger than the number of CG iterations), got {max_tridiag_iter}."
        )
    n_iter = min(max_iter, n) if settings.terminate_cg_by_size else max_iter
    n_tri = min(max_tridiag_iter, n, n_iter) if n_tridiag else 0
    if settings.verbose_linalg:
        _log.info(
            "linear_cg: rhs %s, up to %d iterations, tolerance %g", tuple(B.shape), n_iter, tol
        )

    with torch.no_grad():
        b_norm = col_norm(B)
        b_zero = b_norm == 0
        denom = torch.where(b_zero, torch.ones_like(b_norm), b_norm)
        # with a guess, columns of B = 0 start from 0 (the solution of A x = 0)
        X, R, matvecs = _common.start_from(
            op, B, initial_guess, lambda X0: torch.where(b_zero, torch.zeros_like(X0), X0)
        )
        rel = col_norm(R) / denom
        frozen = rel <= stop_after
        broken = torch.zeros_like(frozen)
        batch_shape = B.shape[:-2]
        T = B.new_zeros(*batch_shape, n_tridiag, n_tri, n_tri) if n_tridiag else None
        tri_size, tri_live = 0, bool(n_tridiag)
        prev_alpha = prev_beta = None
        Z = R if precond is None else checked(precond(R), R, "preconditioner(residual)")
        P = Z.clone()
        rz = col_dot(R, Z)
        stopped_by, iterations, true_rel, restart = None, 0, None, None
        if bool(frozen.all()) and not n_tridiag and min_iter == 0:
            stopped_by = "frozen"
        else:
            for it in range(n_iter):
                AP = checked(op(P), P, "matmul_closure(direction)")
                matvecs += 1
                pAp = col_dot(P, AP)
                bad = ~frozen & ~((pAp >= eps) & torch.isfinite(pAp) & torch.isfinite(rz))
                broken |= bad
                frozen |= bad
                alpha = torch.where(frozen, torch.zeros_like(pAp), rz / torch.where(frozen, 1, pAp))
                X.addcmul_(P, alpha)  # X, R and P are this function's own tensors
                R.addcmul_(AP, alpha, value=-1)
                r_sq = col_dot(R, R)
                rel = r_sq.sqrt() / denom
                iterations = it + 1
                if tri_live and tri_size < n_tri:
                    a_t = alpha[..., 0, :n_tridiag]
                    if bool((a_t == 0).any()):
                        tri_live = False
                    else:
                        j = tri_size
                        diag = 1 / a_t
                        if j > 0:
                            diag = diag + prev_beta / prev_alpha
                            off = prev_beta.sqrt() / prev_alpha
                            T[..., j, j - 1] = off
                            T[..., j - 1, j] = off
                        T[..., j, j] = diag
                        tri_size += 1
                frozen |= rel <= stop_after
                if tri_live and bool(frozen[..., 0, :n_tridiag].any()):
                    tri_live = False  # a converged column has no further Lanczos vectors
                if convergence_reduction == "all":
                    done = bool((rel <= tol).all())
                else:
                    done = bool(rel.mean() <= tol)
                tri_pending = tri_live and tri_size < n_tri
                if done and iterations >= min_iter and not tri_pending:
                    # the recurrence says converged: check the true residual before stopping
                    true_R = B - checked(op(X), B, "matmul_closure(solution)")
                    matvecs += 1
                    true_rel = col_norm(true_R) / denom
                    if (
                        bool((true_rel <= tol).all())
                        if convergence_reduction == "all"
                        else bool(true_rel.mean() <= tol)
                    ):
                        stopped_by = "tolerance"
                        break
                    # rounding drift: replace the recursive residual by the true one, go on
                    true_rel = None
                    R = true_R
                    r_sq = col_dot(R, R)
                    rel = r_sq.sqrt() / denom
                    refrozen = (rel <= stop_after) | broken
                    restart = frozen & ~refrozen  # thawed columns restart from their residual
                    frozen = refrozen
                if bool(frozen.all()) and iterations >= min_iter and not tri_pending:
                    stopped_by = "frozen"
                    break
                if precond is None:
                    Z, rz_new = R, r_sq
                else:
                    Z = checked(precond(R), R, "preconditioner(residual)")
                    rz_new = col_dot(R, Z)
                beta = torch.where(
                    frozen, torch.zeros_like(rz), rz_new / torch.where(rz == 0, 1, rz)
                )
                if restart is not None:
                    beta, restart = torch.where(restart, 0, beta), None
                P = torch.addcmul(Z, beta, P, out=P)  # P = Z + beta P
                rz = rz_new
                if tri_live:
                    prev_alpha, prev_beta = alpha[..., 0, :n_tridiag], beta[..., 0, :n_tridiag]

        if true_rel is None:
            true_R = B - checked(op(X), B, "matmul_closure(solution)")
            matvecs += 1
            true_rel = col_norm(true_R) / denom
        converged = true_rel <= tol
        if bool(converged.all()):
            reason = "converged"
        elif stopped_by == "tolerance":
            reason = "mean_converged" if convergence_reduction == "mean" else "recursive_converged"
        elif stopped_by == "frozen" and not bool(broken.any()):
            reason = "stopped_updating"
        else:
            reason = "max_iter"
        if reason != "converged":
            what = "linear_cg" + (" (p^T A p <= eps: is A SPD?)" if bool(broken.any()) else "")
            report_nonconvergence(
                what, iterations, worst(true_rel), tol, raise_on_failure=raise_on_failure
            )

    out = X.squeeze(-1) if vector else X
    result: tuple = (out,)
    if n_tridiag:
        T = T[..., :tri_size, :tri_size]
        result += (T.movedim(-3, 0).contiguous(),)
    if return_info:
        result += (
            CGInfo(
                iterations=iterations,
                matvecs=matvecs,
                converged=converged.squeeze(-2),
                recursive_relative_residual=rel.squeeze(-2),
                true_relative_residual=true_rel.squeeze(-2),
                tolerance=tol,
                reason=reason,
            ),
        )
    return result[0] if len(result) == 1 else result
