"""The one validator of jax_api: every public operation checks its inputs here.

Same rules and wording as ``torch_api._validate``: wrong type or layout -> ``TypeError``; wrong
shape or dtype mix -> ``ValueError``; each message names the argument, what it received and what
was expected. Only static facts (types, shapes, dtypes) are checked here, so every check also
works on tracers under ``jit``/``vmap``; value checks (e.g. a pattern's triangle) belong to the op.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

from bridge.internal.messages import describe, type_error, value_error  # noqa: F401 (re-export)

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
SPARSE_TYPES = (BCOO, BCSR)


def is_sparse(x: object) -> bool:
    return isinstance(x, SPARSE_TYPES)


def batch_size(A: BCOO | BCSR) -> int | None:
    """The batch size of a validated sparse matrix (``None`` when 2-D)."""
    return A.shape[0] if len(A.shape) == 3 else None


def check_sparse(
    name: str,
    A: object,
    *,
    ndims: tuple[int, ...] = (2, 3),
    square: bool = False,
    floating: bool = True,
) -> BCOO | BCSR:
    """Check ``A`` is a BCOO/BCSR matrix of an allowed rank and (real float) dtype.

    A 3-D (batched) matrix is a BCOO or BCSR with one batch dimension (``n_batch == 1``), or a
    BCOO with three sparse dimensions (torch's batched COO layout). Dense dimensions are refused.
    """
    if not isinstance(A, SPARSE_TYPES):
        raise type_error(name, A, "a jax.experimental.sparse BCOO or BCSR matrix")
    if A.n_dense != 0:
        raise type_error(name, A, f"a {type(A).__name__} without dense dimensions (n_dense=0)")
    if len(A.shape) not in ndims:
        raise value_error(name, A, f"a {' or '.join(map(str, ndims))}-D sparse matrix")
    if A.n_batch > 1 or (len(A.shape) == 2 and A.n_batch != 0):
        raise value_error(name, A, "at most one batch dimension, in front of a 2-D matrix")
    if floating and np.dtype(A.dtype) not in FLOATS:
        raise value_error(name, A, "float32 or float64 values")
    if square and A.shape[-1] != A.shape[-2]:
        raise value_error(name, A, "a square matrix")
    return A


def check_dense(
    name: str,
    x: object,
    *,
    ndims: tuple[int, ...] = (1, 2, 3),
    floating: bool = True,
) -> jax.Array:
    """Check ``x`` is a dense ``jax.Array`` (tracers included) of an allowed rank and dtype.

    A NumPy array is accepted and converted when JAX can hold its dtype exactly (float64
    needs x64 mode: never a silent downcast).
    """
    if isinstance(x, np.ndarray):
        if floating and np.dtype(x.dtype) not in FLOATS:
            raise value_error(name, x, "float32 or float64 values")
        if jax.dtypes.canonicalize_dtype(x.dtype) != x.dtype:
            raise value_error(
                name,
                x,
                "an array JAX can hold without a downcast (float64 needs "
                "`with jax.enable_x64(True):`, or cast it to float32 explicitly)",
            )
        x = jnp.asarray(x)
    if isinstance(x, SPARSE_TYPES) or not isinstance(x, jax.Array):
        raise type_error(name, x, "a dense jax.Array")
    if x.ndim not in ndims:
        raise value_error(name, x, f"a {' or '.join(map(str, ndims))}-D array")
    if floating and np.dtype(x.dtype) not in FLOATS:
        raise value_error(name, x, "float32 or float64 values")
    return x


def check_match(name_a: str, a, name_b: str, b) -> None:
    """``a`` and ``b`` must share dtype (never silently cast)."""
    if np.dtype(a.dtype) != np.dtype(b.dtype):
        raise ValueError(
            f"{name_b}: expected dtype {np.dtype(a.dtype)} to match {name_a}, got "
            f"{np.dtype(b.dtype)}; cast one of them explicitly."
        )


def check_rhs(name: str, B: object, A, name_A: str = "A", *, rows: int | None = None) -> jax.Array:
    """A dense right-hand side / operand for a (possibly batched) sparse ``A``.

    Unbatched ``A (n, m)`` accepts ``B (r,)`` or ``(r, p)``; batched ``A (b, n, m)`` accepts
    ``B (b, r)`` or ``(b, r, p)``. ``r`` (default ``m``, A's columns) is the number of rows B
    must have; pass ``rows=n`` for an operand multiplying ``A^T`` or a least-squares target.
    """
    batched = len(A.shape) == 3
    B = check_dense(name, B, ndims=(2, 3) if batched else (1, 2))
    check_match(name_A, A, name, B)
    if batched and B.shape[0] != A.shape[0]:
        raise ValueError(
            f"{name}: expected batch size {A.shape[0]} to match {name_A}, got {B.shape[0]}."
        )
    want = A.shape[-1] if rows is None else rows
    got = B.shape[1] if batched else B.shape[0]
    if got != want:
        what = "columns" if rows is None else "rows"
        raise ValueError(
            f"{name}: expected {want} rows to match {name_A}'s {want} {what} "
            f"(shape {tuple(A.shape)}), got shape {tuple(B.shape)}."
        )
    return B


def check_callable(name: str, f: object, *, optional: bool = True):
    if f is None and optional:
        return f
    if not callable(f):
        raise type_error(name, f, "a callable" + (" or None" if optional else ""))
    return f


def is_concrete(*xs) -> bool:
    """Whether every array in ``xs`` has a value now (not a tracer under jit/vmap/grad)."""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def check_dtype_arg(name: str, dtype: object, allowed: tuple[str, ...], x64_hint: str):
    """``dtype`` (a dtype argument, e.g. ``indices_dtype``) as a NumPy dtype named in ``allowed``
    that JAX can hold under the current x64 setting; ValueError otherwise, ending with
    ``x64_hint`` (formatted with ``name32``, the 32-bit name of the same kind).

    Example:
        >>> check_dtype_arg("indices_dtype", jnp.int32, ("int32", "int64"), "use {name32}.")
        dtype('int32')
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in allowed:
        raise ValueError(f"{name}: expected {' or '.join(allowed)}, got {dtype!r}.")
    if jax.dtypes.canonicalize_dtype(dt) != dt:
        hint = x64_hint.format(name32=dt.name[:-2] + "32")
        raise ValueError(
            f"{name}: expected a dtype JAX can hold now, got {dt.name} with x64 disabled; {hint}"
        )
    return dt
