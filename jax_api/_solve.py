"""The one place that differentiates linear solves in jax_api.

Every solve op (triangular, generic iterative) supplies only a forward solve and a transposed
solve on the flat form of :class:`~jax_api._pattern.Pattern` (row-sorted 2-D pattern, flat
values, right-hand sides ``(N, p)``). For ``X = A^{-1} B`` with upstream gradient ``G``:

    dB = A^{-T} G            (one transposed solve)
    dA = -dB X^T             (sampled at A's nonzeros only: Pattern.sddmm)

The solver is never differentiated through its iterations. An op that solves with the
transpose, ``X = A^{-T} B`` (``transposed=True``), gets ``dB = A^{-1} G`` from the same pair of
flat solves (the roles swap) and ``dA = -X dB^T`` at the pattern.

A flat solve is ``solve(pattern, values, B, args) -> (X, aux)``: ``args`` is a pytree of arrays
the solver needs (an initial guess, a tolerance...), passed through undifferentiated, and
``aux`` anything the solver reports (convergence information), returned beside ``X`` and never
differentiated.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax

from ._pattern import Pattern

FlatSolve = Callable[[Pattern, jax.Array, jax.Array, Any], tuple[jax.Array, Any]]


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _implicit(solve, transpose_solve, transposed, pattern, values, B, args):
    return solve(pattern, values, B, args)


def _fwd(solve, transpose_solve, transposed, pattern, values, B, args):
    X, aux = solve(pattern, values, B, args)
    return (X, aux), (pattern, values, X, args)


def _bwd(solve, transpose_solve, transposed, res, cts):
    pattern, values, X, args = res
    G = cts[0]
    dB, _ = transpose_solve(pattern, values, G, args)
    dA = pattern.sddmm(X, dB) if transposed else pattern.sddmm(dB, X)
    return None, -dA, dB, None


_implicit.defvjp(_fwd, _bwd)


def implicit_solve(
    pattern: Pattern,
    values: jax.Array,
    B: jax.Array,
    solve: FlatSolve,
    transpose_solve: FlatSolve,
    *,
    transposed: bool = False,
    args: Any = None,
) -> tuple[jax.Array, Any]:
    """Solve ``A X = B`` with ``solve`` and differentiate implicitly with ``transpose_solve``.

    ``B`` is flat ``(N, p)``; returns ``(X, aux)``. With ``transposed=True`` the op is
    ``X = A^{-T} B``: ``solve`` solves with ``A^T`` and ``transpose_solve`` with ``A``.
    ``solve``/``transpose_solve`` must be hashable (functions, ``functools.partial``).
    """
    return _implicit(solve, transpose_solve, transposed, pattern, values, B, args)
