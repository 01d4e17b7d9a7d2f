"""Value checks that hold eagerly and under ``jit`` alike, with one message per failure.

A check on values (a negative index, a segment length) runs before anything is computed when
the arrays are concrete, and raises ``ValueError`` (the index checks as one small compiled pass
per shapes and one host sync: a fifth of the time of NumPy's several passes at 3M entries).
On traced arrays (under ``jit``, ``vmap``, ``grad``) the same predicate is computed by XLA
and :func:`runtime_check` raises at run time (``equinox.error_if``), on every platform: JAX
reports an error whose text contains the same ``"{argument}: expected ..., got ..."``
message. Where a torch kernel already runs on the host (the triangular solve) its check runs
inside the kernel instead (:mod:`jax_api._triangular_solve`).

An op calls :func:`check_sparse_indices` before entering its compiled program, and passes
``validate=not checked`` to it, so eager calls check once, in Python, and compiled calls check in
the program. Index rules: a BCOO index at or past the shape is padding (as in JAX, whose own
operations drop it), a negative one is an error; a BCSR needs an ``indptr`` rising from 0 to at
most ``nse`` and column indices in range before ``indptr[-1]``. The ``indices_sorted`` and
``unique_indices`` flags are never trusted (:meth:`~jax_api._pattern.Pattern.of` checks the order
and sorts when needed; duplicates are summed by every kernel).
"""

from __future__ import annotations

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

from ._sharding import varying_axes
from ._validate import is_concrete

NEGATIVE_INDEX = (
    "{name}: expected non-negative indices (an index at or past the shape marks padding), "
    "got a negative index."
)
BAD_INDPTR = (
    "{name}: expected BCSR indptr rising from 0 to at most nse (the number of stored "
    "entries), got a decreasing, negative or too large indptr."
)
BAD_COLUMN = (
    "{name}: expected BCSR column indices in [0, {m}) for the stored entries (those before "
    "indptr[-1]), got one outside."
)


def runtime_check(x: jax.Array, bad: jax.Array, message: str) -> jax.Array:
    """``x``, raising ``message`` at run time if any ``bad`` is true (also under ``jit``)."""
    return _error_if(x, jnp.any(bad), jnp.zeros((), jnp.int32), [message])


def _error_if(x, pred, index, messages):
    """``equinox.branched_error_if``, also inside ``shard_map``: there its branches disagree on
    a varying ``x``'s type, so the predicate is made the same on every device (``pmax``) and
    checked on a scalar that ``x`` then depends on (``x + 0``, computed at run time)."""
    axes = tuple(sorted(varying_axes(x) | varying_axes(pred) | varying_axes(index)))
    if not axes:
        return eqx.branched_error_if(x, pred, index, messages)
    code = jnp.where(pred, index.astype(jnp.int32) + 1, 0)
    code = jax.lax.pmax(code, axes)
    token = eqx.branched_error_if(jnp.zeros((), jnp.int32), code > 0,
                                  jnp.maximum(code - 1, 0), messages)
    return x + token.astype(x.dtype)


def _index_failures(name: str, indices, indptr, m: int, xp) -> list[tuple[object, str]]:
    """``(bad, message)`` of each way the index arrays of a BCOO (``indptr=None``) or a BCSR
    with ``m`` columns can be malformed, in NumPy (``xp=np``: concrete arrays) or JAX. A BCOO
    index at or past the shape is padding (JAX's convention: its own operations drop it), so
    only negative ones are wrong."""
    messages = _messages(name, indptr is not None, m)
    if indptr is None:
        return [(xp.any(indices < 0), messages[0])]
    nse = indices.shape[-1]
    bad_ptr = (xp.any(indptr[..., 0] != 0) | xp.any(indptr[..., 1:] < indptr[..., :-1])
               | xp.any(indptr[..., -1] > nse))
    stored = xp.arange(nse) < indptr[..., -1:]
    bad_col = xp.any(stored & ((indices < 0) | (indices >= m)))
    return [(bad_ptr, messages[0]), (bad_col, messages[1])]


def _messages(name: str, bcsr: bool, m: int) -> list[str]:
    if not bcsr:
        return [NEGATIVE_INDEX.format(name=name)]
    return [BAD_INDPTR.format(name=name), BAD_COLUMN.format(name=name, m=m)]


@partial(jax.jit, static_argnums=2)
def _failure_flags(indices, indptr, m: int):
    """The failures of :func:`_index_failures` as one compiled pass (one program per shapes)."""
    return jnp.stack([bad for bad, _ in _index_failures("", indices, indptr, m, jnp)])


def _index_arrays(A):
    return (A.indices, A.indptr) if isinstance(A, BCSR) else (A.indices, None)


def check_sparse_indices(name: str, A) -> bool:
    """Check a BCOO/BCSR's indices now when they are concrete (``ValueError``); returns whether
    it could (``False``: traced indices, to be checked by :func:`checked_indices`)."""
    indices, indptr = _index_arrays(A)
    if not is_concrete(indices, indptr):
        return False
    with jax.ensure_compile_time_eval():  # concrete indices inside an outer trace too
        flags = np.asarray(_failure_flags(indices, indptr, A.shape[-1]))
    for bad, msg in zip(flags, _messages(name, indptr is not None, A.shape[-1]), strict=True):
        if bad:
            raise ValueError(msg)
    return True


def checked_indices(name: str, A):
    """``A`` whose indices raise at run time when malformed (see :func:`runtime_check`).

    One check on ``A.indices``, which every kernel reads (with ``indptr`` for a BCSR), so no
    kernel runs on malformed indices; the first failing message is reported."""
    failures = _index_failures(name, *_index_arrays(A), A.shape[-1], jnp)
    bad = jnp.stack([b for b, _ in failures])
    indices = _error_if(A.indices, jnp.any(bad), jnp.argmax(bad), [m for _, m in failures])
    flags = {"shape": A.shape, "indices_sorted": A.indices_sorted,
             "unique_indices": A.unique_indices}
    if isinstance(A, BCSR):
        return BCSR((A.data, indices, A.indptr), **flags)
    return BCOO((A.data, indices), **flags)
