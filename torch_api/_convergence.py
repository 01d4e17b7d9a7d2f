"""Convergence reporting shared by every iterative solver (torch_api, jax_api, j4t, c4t).

Non-convergence is never silent: it emits a :class:`ConvergenceWarning` naming the solver, the
iteration count and the residual. Make it an error with
``warnings.simplefilter("error", ConvergenceWarning)`` or, where a solver offers it,
``raise_on_failure=True``.
"""

from __future__ import annotations

import warnings


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before reaching its tolerance."""


class ConvergenceError(RuntimeError):
    """An iterative solver stopped before reaching its tolerance (when asked to raise)."""


def report_nonconvergence(
    solver: str, iterations: int, residual: float, tolerance: float, *, raise_on_failure=False
) -> None:
    """Warn (or raise) that ``solver`` stopped after ``iterations`` with ``residual``."""
    msg = (
        f"{solver} did not converge: relative residual {residual:.3e} > tolerance "
        f"{tolerance:.3e} after {iterations} iterations. Raise the iteration limit, loosen the "
        f"tolerance, precondition, or check that the matrix suits {solver}."
    )
    if raise_on_failure:
        raise ConvergenceError(msg)
    warnings.warn(msg, ConvergenceWarning, stacklevel=3)
