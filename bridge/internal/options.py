"""Validators of plain Python arguments shared by both frontends: sizes, integers, choices,
ranges, booleans, callables, iteration limits and the solver pair of the solve wrappers.

Wrong type -> ``TypeError``, wrong value -> ``ValueError``, in the template of
:mod:`bridge.internal.messages`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

from .messages import describe, type_error

_SOLVER_ARGS = ("solve", "transpose_solve")


def is_int(x: object) -> bool:
    """An integer (Python, NumPy or 0-d index-like), never a bool."""
    if isinstance(x, bool):
        return False
    try:
        operator.index(x)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def check_int(name: str, x: object, *, minimum: int | None = None, what: str = "an int") -> int:
    """``x`` as an int (TypeError if it is not one), at least ``minimum`` (ValueError).

    Example: ``check_int("n", 3, minimum=1)`` is ``3``.
    """
    if not is_int(x):
        raise TypeError(f"{name}: expected {what}, got {type(x).__name__} {x!r}.")
    x = operator.index(x)  # type: ignore[arg-type]
    if minimum is not None and x < minimum:
        raise ValueError(f"{name}: expected {what} >= {minimum}, got {x}.")
    return x


def check_size(size: object, name: str = "size") -> tuple[int, ...]:
    """``(n, m)`` or ``(b, n, m)`` of non-negative ints (a tuple, list or ``torch.Size``)."""
    if not isinstance(size, (tuple, list)) or not all(is_int(s) for s in size):
        raise TypeError(f"{name}: expected a tuple of ints, got {size!r}.")
    if len(size) not in (2, 3) or any(s < 0 for s in size):
        raise ValueError(
            f"{name}: expected (n, m) or (b, n, m) of non-negative ints, got {size!r}."
        )
    return tuple(int(s) for s in size)


def check_square(size: tuple[int, ...], name: str = "size") -> None:
    if size[-1] != size[-2]:
        raise ValueError(f"{name}: expected a square (n, n) or (b, n, n), got {size!r}.")


def check_grouped_operands(a_shape: tuple, b_shape: tuple) -> None:
    """ValueError unless ``b (R, D1, D2)`` matches the ``D1`` columns of ``a (N, D1)`` (the
    operands of ``segment_mm`` / ``gather_mm``, both frontends)."""
    if b_shape[1] != a_shape[1]:
        raise ValueError(
            f"b: expected shape (R, {a_shape[1]}, D2) to match a's {a_shape[1]} columns, "
            f"got shape {tuple(b_shape)}."
        )


def check_choice(name: str, got: object, allowed: Sequence, what: str) -> None:
    """ValueError unless ``got`` is one of ``allowed`` (``what`` describes them)."""
    if got not in allowed:
        raise ValueError(f"{name}: expected {what}, got {got!r}.")


def check_positive(name: str, x: object):
    """``x`` if ``x > 0`` (ValueError otherwise, NaN and non-numbers included)."""
    try:
        ok = bool(x > 0)  # type: ignore[operator]
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected a positive number, got {x!r}.")
    return x


def check_range(value_range: object, name: str = "value_range") -> tuple[float, float]:
    """A pair ``(low, high)`` of numbers with ``low <= high``."""
    try:
        low, high = (float(v) for v in value_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: expected a pair (low, high) of numbers, got {value_range!r}."
        ) from None
    if not low <= high:
        raise ValueError(f"{name}: expected low <= high, got {value_range!r}.")
    return low, high


def check_fraction(name: str, x: object) -> float:
    """A number in ``[0, 1]``."""
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {x!r}.")
    return value


def check_bool(name: str, flag: object) -> bool:
    """A Python or NumPy bool (TypeError for anything else, 0/1 included)."""
    if not isinstance(flag, bool) and type(flag).__name__ != "bool_":
        raise TypeError(f"{name}: expected a bool, got {type(flag).__name__} {flag!r}.")
    return bool(flag)


def check_callable(name: str, f: object, *, optional: bool = True, what: str = "a callable"):
    """``f`` if it is callable (or ``None`` when ``optional``); TypeError otherwise."""
    if f is None and optional:
        return f
    if not callable(f):
        raise type_error(name, f, what + (" or None" if optional else ""))
    return f


def check_maxiter(maxiter: object, n: int) -> int:
    """An iteration limit: a positive int, or ``None`` for ``10 n`` (at least 10)."""
    if maxiter is None:
        return 10 * max(n, 1)
    if not is_int(maxiter) or operator.index(maxiter) < 1:  # type: ignore[arg-type]
        raise ValueError(f"maxiter: expected a positive int or None, got {maxiter!r}.")
    return operator.index(maxiter)  # type: ignore[arg-type]


def resolve_solvers(
    solve: object,
    transpose_solve: object,
    default: object,
    *,
    args: tuple[str, str] = _SOLVER_ARGS,
    what: str = "a callable",
    names: Sequence[str] = (),
) -> tuple[Callable | str, Callable | str]:
    """The (forward, transposed) solver pair of a solve wrapper.

    Either one missing (``None``) takes the other; both missing take ``default``. A solver is
    a callable or, where ``names`` lists them, a solver's name.

    Args:
        solve, transpose_solve: what the caller passed.
        default: the solver used when both are ``None``.
        args: the two arguments' names for messages (e.g. ``("lstsq", "transpose_lstsq")``).
        what: how a valid callable is described in a TypeError.
        names: the solver names accepted as strings (a ValueError names them).

    Example: ``resolve_solvers(None, cg, minres)`` is ``(cg, cg)``.
    """
    for arg, f in zip(args, (solve, transpose_solve), strict=True):
        if isinstance(f, str) and names:
            if f not in names:
                raise ValueError(f"{arg}: expected one of {tuple(names)} or a callable, got {f!r}.")
        elif f is not None and not callable(f):
            raise TypeError(f"{arg}: expected {what} or None, got {describe(f)}.")
    if solve is None and transpose_solve is None:
        return default, default  # type: ignore[return-value]
    if solve is None:
        return transpose_solve, transpose_solve  # type: ignore[return-value]
    if transpose_solve is None:
        return solve, solve  # type: ignore[return-value]
    return solve, transpose_solve  # type: ignore[return-value]
