"""The framework-neutral checks of both frontends' ``SparseMultivariateNormal``.

Which of the four parameterisations was given, whether the parameters' event sizes match
``loc``'s, the broadcast batch shape, and the messages both frontends raise.
"""

from __future__ import annotations

import math

import numpy as np

from .messages import GAUSSIAN_MATRICES, exactly_one_parameterisation

LOG_2PI = math.log(2 * math.pi)

PRECISION_VARIANCE = (
    "variance: with a precision factor the marginal variances are diag(P^{-1}), "
    "which needs a selected inversion of the factor (Takahashi recursion, with "
    "fill-in), not an O(nnz) operation; it is not implemented. Use a covariance "
    "factor (scale_tril), or estimate the variances from samples."
)


FORMS = ("scale_tril", "precision_tril", *GAUSSIAN_MATRICES)


def parameterisation(forms: tuple, diagonal: object, diagonal_got: str) -> tuple[str, object]:
    """``(name, value)`` of the one of ``forms`` (the values of the :data:`FORMS` arguments, in
    that order, ``None`` where not given) that was given.

    ValueError unless exactly one is given, or when ``diagonal`` comes with a matrix form
    (``diagonal_got`` describes it in that message).

    Example:
        >>> parameterisation((L, None, None, None), None, "")
        ('scale_tril', L)
    """
    named = [k for k, v in zip(FORMS, forms, strict=True) if v is not None]
    if len(named) != 1:
        raise ValueError(exactly_one_parameterisation(named))
    name = named[0]
    if name in GAUSSIAN_MATRICES and diagonal is not None:
        raise ValueError(
            f"diagonal: expected None with {name} (diagonal is the D of an LDL^T factor, "
            f"given with scale_tril or precision_tril only), got {diagonal_got}."
        )
    return name, forms[FORMS.index(name)]


def check_event_size(name: str, shape: tuple, n: int) -> None:
    """ValueError unless ``shape`` (a factor's ``(.., n, n)``, or ``diagonal``'s ``(.., n)``)
    ends in loc's event size ``n``.

    Example:
        >>> check_event_size("diagonal", (3,), 3)
    """
    if shape[-1] == n:
        return
    expected = f"({n},) or (b, {n})" if name == "diagonal" else f"({n}, {n}) or (b, {n}, {n})"
    raise ValueError(
        f"{name}: expected shape {expected} to match loc's event size {n}, got shape "
        f"{tuple(shape)}."
    )


def batch_shape(name: str, shapes: list) -> tuple:
    """The broadcast of the parameters' batch ``shapes`` (loc's, the factor ``name``'s,
    diagonal's); ValueError when they do not broadcast.

    Example:
        >>> batch_shape("scale_tril", [(2,), ()])
        (2,)
    """
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(
            f"loc, diagonal, {name}: batch shapes {[tuple(s) for s in shapes]} do not "
            f"broadcast."
        ) from None
