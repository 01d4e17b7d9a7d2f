"""The convergence policy of every iterative solver (torch_api, jax_api, j4t, c4t).

Non-convergence is never silent: it emits a :class:`ConvergenceWarning` naming the solver, the
iteration count and the residual. Make it an error with
``warnings.simplefilter("error", ConvergenceWarning)`` or, where a solver offers it,
``raise_on_failure=True`` (a :class:`ConvergenceError`).

A solver that reports no convergence of its own (JAX's ``cg``/``bicgstab``/``gmres``, SciPy's
``minres`` on a singular system) is judged by the true residual ``r = ||A x - b||`` of each
column: it fails where ``r`` exceeds

    ``10 max(tol ||b||, atol) + 10 eps min(||A||_F ||x|| + ||b||, ||b|| / sqrt(eps))``

(:func:`residual_verdict`). The factor 10 absorbs the gap between a solver's recursively updated
residual and the true one; the second term is the rounding allowance of a backward-stable solve,
capped at ``sqrt(eps) ||b||`` so that a solution that is huge because ``A`` is (numerically)
singular does not pass as rounding. NaN residuals fail.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance."""


class ConvergenceError(RuntimeError):
    """An iterative solver stopped before reaching its tolerance (when asked to raise)."""


def report_nonconvergence(
    solver: str,
    iterations: int | None,
    residual: float,
    tolerance: float,
    *,
    raise_on_failure: bool = False,
    limit: int | None = None,
    stacklevel: int = 3,
) -> None:
    """Warn (or raise) that ``solver`` stopped after ``iterations`` with ``residual``.

    Args:
        solver: the name shown in the message.
        iterations: iterations used; ``None`` for a solver that does not count them (then
            ``limit``, its iteration limit, is shown instead).
        residual, tolerance: the relative residual reached and the one asked for.
        raise_on_failure: raise :class:`ConvergenceError` instead of warning.
        stacklevel: passed to ``warnings.warn`` (3: the caller of the caller).

    Example: ``report_nonconvergence("cg", 100, 1e-3, 1e-8)`` warns.
    """
    if iterations is None:
        after = f"(the solver reports no iteration count; its limit was {limit})"
    else:
        after = f"after {iterations} iterations"
    msg = (
        f"{solver} did not converge: relative residual {residual:.3e} > tolerance "
        f"{tolerance:.3e} {after}. Raise the iteration limit, loosen the tolerance, "
        f"precondition, or check that the matrix suits {solver}."
    )
    if raise_on_failure:
        raise ConvergenceError(msg)
    warnings.warn(msg, ConvergenceWarning, stacklevel=stacklevel)


def residual_verdict(
    residual, b_norm, x_norm, a_norm: float, eps: float, tol: float, atol: float
) -> tuple[float, bool]:
    """The worst relative residual ``||A x - b|| / ||b||`` over the columns, and whether any
    column misses the bound of the module docstring.

    Args:
        residual, b_norm, x_norm: ``(p,)`` host arrays (NumPy or sequences): ``||A x - b||``,
            ``||b||`` and ``||x||`` of each column.
        a_norm: ``||A||_F``; eps: the machine epsilon of the solve's dtype.
        tol, atol: the relative and absolute tolerances.

    Example: ``residual_verdict([1e-9], [1.0], [1.0], 1.0, 2.2e-16, 1e-5, 0.0)`` is
    ``(1e-09, False)``.
    """
    res, bn, xn = (np.asarray(a, dtype=np.float64) for a in (residual, b_norm, x_norm))
    rounding = np.minimum(a_norm * xn + bn, bn / math.sqrt(eps))
    bound = 10 * np.maximum(tol * bn, atol) + 10 * eps * rounding
    with np.errstate(divide="ignore", invalid="ignore"):
        failed = bool((~(res <= bound)).any())
        rel = res / np.where(bn > 0, bn, 1.0)
    if np.isnan(rel).any():
        return math.nan, failed
    return (float(rel.max()) if rel.size else 0.0), failed
