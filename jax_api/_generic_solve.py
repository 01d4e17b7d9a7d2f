"""``sparse_generic_solve``: ``X = A^{-1} B`` with any solver, a gradient on A's pattern.

The solver is a black box ``solve(A, B, **kwargs)`` returning ``X`` or ``(X, info)`` (JAX's
convention, which every ``jax_api`` solver follows); differentiation is implicit
(:mod:`jax_api._solve`): ``dB = A^{-T} G`` by ``transpose_solve`` called with the *transpose* of
``A``, and ``dA = -dB X^T`` at A's nonzeros. Both matrices reach the solver as 2-D BCOO/BCSR in
the caller's layout, rebuilt from the pattern (``A^T`` through the transposed pattern), so any
solver written for ``A @ x`` works.

Keyword arguments reach both solves. Array-valued ones (``x0=...``) travel as ordinary
arguments; the others (tolerances, ``maxiter``, a preconditioner function) are static. A
preconditioner closing over traced arrays is not supported (pass its arrays through kwargs).

Calls are compiled once per shapes, dtypes, solvers and static options (``jax.jit``), so eager
calls with the same ones reuse the program. A solver (or a function-valued option such as a
preconditioner) is keyed by what it runs (:class:`StaticFunction`): a fresh ``lambda`` or
``functools.partial`` built the same way on each call (same code, globals and defaults, captured
values equal: numbers and strings by value, anything else by identity) reuses the program; one
capturing a new array on each call compiles again (pass arrays through ``kwargs`` instead).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from functools import partial

import jax

from bridge.internal.options import resolve_solvers

from ._checks import check_sparse_indices, checked_indices
from ._pattern import Pattern
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse, describe

__all__ = ["sparse_generic_solve"]


def transposed_matrix(pattern: Pattern, values: jax.Array):
    """``A^T`` of a 2-D pattern as a BCOO/BCSR in the caller's layout (indices sorted)."""
    pattern_t, perm = pattern.transposed()
    return pattern_t.matrix(values[perm])


def split_kwargs(kwargs: dict) -> tuple[tuple, dict]:
    """``(static items, array kwargs)``: arrays become arguments of the custom VJP; functions
    among the static ones are keyed by what they run (:class:`StaticFunction`)."""
    arrays = {k: v for k, v in kwargs.items() if isinstance(v, jax.Array)}
    static = tuple((k, static_function(v)) for k, v in kwargs.items() if k not in arrays)
    return static, arrays


class _Same:
    """A captured object compared by identity (held, so its id is never reused meanwhile)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


def _value_key(v):
    if v is None or isinstance(v, (bool, int, str, bytes)):
        return (type(v), v)
    if isinstance(v, float):
        return (float, v.hex())  # -0.0 and 0.0 apart, NaN equal to itself
    if isinstance(v, tuple):
        return (tuple, *map(_value_key, v))
    return _Same(v)


class StaticFunction:
    """A function as a static argument of ``jax.jit``, equal to another when both run the same
    code on the same captured values: a ``lambda``/closure by code object, globals, defaults
    and closure contents; a ``functools.partial`` by function, arguments and keywords (see
    :func:`_value_key`). Calls go to the function first wrapped."""

    __slots__ = ("fn", "key")

    def __init__(self, fn, key):
        self.fn, self.key = fn, key

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __eq__(self, other):
        return isinstance(other, StaticFunction) and other.key == self.key

    def __hash__(self):
        return hash(self.key)


def static_function(f):
    """``f`` as a :class:`StaticFunction` when it is a Python function or a partial, else ``f``."""
    if isinstance(f, types.FunctionType):
        kwdefaults = tuple(sorted((f.__kwdefaults__ or {}).items()))
        cells = tuple(c.cell_contents for c in f.__closure__ or ())
        key = (f.__code__, _Same(f.__globals__), _value_key(f.__defaults__ or ()),
               _value_key(tuple(v for _, v in kwdefaults)), tuple(k for k, _ in kwdefaults),
               _value_key(cells))
        return StaticFunction(f, key)
    if isinstance(f, functools.partial):
        keywords = tuple(sorted(f.keywords.items()))
        key = ("partial", _Same(f.func), _value_key(f.args), tuple(k for k, _ in keywords),
               _value_key(tuple(v for _, v in keywords)))
        return StaticFunction(f, key)
    return f


def call_solver(
    name: str, fn: Callable, M, R: jax.Array, vector: bool, rows: int, kwargs: dict
) -> tuple[jax.Array, object]:
    """``fn(M, R, **kwargs)`` on the caller's form of ``R`` (a vector if the caller gave one),
    checked and returned as ``((rows, p) block, info or None)``."""
    out = fn(M, R[:, 0] if vector else R, **kwargs)
    X, info = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
    want = (rows,) if vector else (rows, R.shape[1])
    if not isinstance(X, jax.Array) or tuple(X.shape) != want or X.dtype != R.dtype:
        raise ValueError(
            f"{name}: expected the solver to return an array of shape {want} and dtype "
            f"{R.dtype} (or a pair (X, info)), got {describe(X)}."
        )
    return (X.reshape(rows, 1) if vector else X), info  # (rows, -1) fails for rows = 0


def _forward(solve, static, vector, pattern, values, Bf, arrays):
    kwargs = {**dict(static), **arrays}
    return call_solver(
        "solve", solve, pattern.matrix(values), Bf, vector, pattern.shape[-1], kwargs
    )


def _backward(transpose_solve, static, vector, pattern, values, Gf, arrays):
    kwargs = {**dict(static), **arrays}
    At = transposed_matrix(pattern, values)
    return call_solver(
        "transpose_solve", transpose_solve, At, Gf, vector, pattern.shape[-2], kwargs
    )


def sparse_generic_solve(
    A,
    B: jax.Array,
    solve: Callable | None = None,
    transpose_solve: Callable | None = None,
    *,
    return_info: bool = False,
    **kwargs,
):
    """Solve ``A X = B`` with a pluggable solver; the gradient for ``A`` keeps A's pattern.

    Args:
        A: 2-D BCOO or BCSR ``(n, n)``, float32/float64 (``vmap`` for batches).
        B: dense ``(n,)`` or ``(n, k)``, same dtype.
        solve: ``solve(A, B, **kwargs) -> X`` or ``(X, info)``, ``A`` a BCOO/BCSR like the
            caller's (default :func:`jax_api.minres`, which needs a symmetric ``A``; e.g.
            :func:`jax_api.cg` for SPD, :func:`jax_api.bicgstab`/:func:`jax_api.gmres` otherwise).
        transpose_solve: ``transpose_solve(A^T, G, **kwargs)``, used by the backward pass with
            the transpose of ``A``; defaults to ``solve`` (and ``solve`` to it when only it is
            given).
        return_info: also return the forward solver's convergence ``info`` (``None`` if the
            solver gives none). The backward solve reports non-convergence by its warning.
        **kwargs: passed to both solves, e.g. ``tol=1e-8, maxiter=500``.

    Returns:
        ``X`` shaped like ``B``, or ``(X, info)`` with ``return_info=True``. The gradient for
        ``A.data`` has A.data's shape.

    Example:
        >>> A = BCSR.fromdense(4 * jnp.eye(3))
        >>> f = lambda d: sparse_generic_solve(BCSR((d, A.indices, A.indptr), shape=A.shape),
        ...                                    jnp.ones(3), solve=cg).sum()
        >>> jax.grad(f)(A.data)
    """
    A = check_sparse("A", A, ndims=(2,), square=True)
    B = check_rhs("B", B, A)
    from ._solvers import minres

    solve, transpose_solve = map(static_function, resolve_solvers(solve, transpose_solve, minres))
    static, arrays = split_kwargs(kwargs)
    validate = not check_sparse_indices("A", A)
    run = _solve_jit if hashable((solve, transpose_solve, static)) else _solve
    X, info = run(A, B, arrays, solve, transpose_solve, static, validate)
    return (X, info) if return_info else X


def hashable(x) -> bool:
    """Whether ``x`` can be a static argument of ``jax.jit`` (else the op runs uncompiled)."""
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _solve(A, B, arrays, solve, transpose_solve, static, validate):
    pattern, values = Pattern.of(checked_indices("A", A) if validate else A)
    Bf, vector = pattern.flat_rhs(B)
    fwd = partial(_forward, solve, static, vector)
    bwd = partial(_backward, transpose_solve, static, vector)
    Xf, info = implicit_solve(pattern, values, Bf, fwd, bwd, args=arrays)
    return pattern.unflat(Xf, vector, A.shape[-1]), info


# compiled once per shapes, dtypes, solvers and static options: eager calls reuse the program
# (the solvers are part of the key: a fresh lambda per call compiles every time)
_solve_jit = jax.jit(_solve, static_argnums=(3, 4, 5, 6))
