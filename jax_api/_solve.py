"""The one place that differentiates linear solves in jax_api.

Every solve op (triangular, generic iterative) supplies only a forward solve and a transposed
solve on the flat form of :class:`~jax_api._pattern.Pattern` (row-sorted 2-D pattern, flat
values, right-hand sides ``(N, p)``). The solve is ``jax.lax.custom_linear_solve`` with the
product :func:`jax_api._linear.mm` as its matrix (:func:`jax_api._linear.linear_solve`): JAX's
primitive with JVP and transpose rules, so for ``X = A^{-1} B``

    dX = A^{-1} (dB - dA X)          forward mode (a solve and an SDDMM-free product)
    dB = A^{-T} G,  dA = -dB X^T     reverse mode (its transpose: a transposed solve, an SDDMM)

and every higher order and ``vmap`` follow from those rules. Inside ``shard_map`` (varying
operands) a custom VJP with the same two formulas is used instead: first order only there.
The solver is never differentiated through its iterations. An op that solves with the
transpose, ``X = A^{-T} B`` (``transposed=True``), uses ``A^T`` as the matrix and the same
pair of flat solves, swapped.

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

from ._linear import linear_solve
from ._pattern import Pattern
from ._sharding import varying_axes

FlatSolve = Callable[[Pattern, jax.Array, jax.Array, Any], tuple[jax.Array, Any]]


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
    """
    leaves = (pattern.crow, pattern.col, pattern.rows, values, B, *jax.tree_util.tree_leaves(args))
    if any(varying_axes(x) for x in leaves):
        # inside shard_map custom_linear_solve wants all its operands (the solvers' constants
        # included) typed as varying alike: there, first order only (a custom VJP)
        return _implicit(solve, transpose_solve, transposed, pattern, values, B, args)
    return linear_solve(pattern, values, B, solve, transpose_solve, transposed=transposed,
                        args=args)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _implicit(solve, transpose_solve, transposed, pattern, values, B, args):
    return solve(pattern, values, B, args)


def _implicit_fwd(solve, transpose_solve, transposed, pattern, values, B, args):
    X, aux = solve(pattern, values, B, args)
    return (X, aux), (pattern, values, X, args)


def _implicit_bwd(solve, transpose_solve, transposed, res, cts):
    pattern, values, X, args = res
    dB, _ = transpose_solve(pattern, values, cts[0], args)
    dA = pattern.sddmm(X, dB) if transposed else pattern.sddmm(dB, X)
    return None, -dA, dB, None


_implicit.defvjp(_implicit_fwd, _implicit_bwd)
