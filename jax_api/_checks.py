"""Value checks that hold eagerly and under ``jit`` alike, with one message per failure.

A check on values (a negative index, a segment length) runs in Python on concrete arrays and
raises ``ValueError`` before anything is computed. On traced arrays (under ``jit``, ``vmap``,
``grad``) the same predicate is computed by XLA and :func:`runtime_check` raises at run time
(``equinox.error_if``), on every platform: JAX reports an error whose text contains the same
``"{argument}: expected ..., got ..."`` message. Where a torch kernel already runs on the host
(the triangular solve) its check runs inside the kernel instead (:mod:`jax_api._triangular_solve`).

An op calls :func:`check_sparse_indices` before entering its compiled program, and passes
``validate=not checked`` to it, so eager calls check once, in Python, and compiled calls check in
the program.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCSR

from ._validate import is_concrete

NEGATIVE_INDEX = (
    "{name}: expected non-negative indices (an index equal to the shape marks padding), "
    "got a negative index."
)
BAD_INDPTR = (
    "{name}: expected BCSR indptr rising from 0 to at most nse (the number of stored "
    "entries), got a decreasing, negative or too large indptr."
)


def runtime_check(x: jax.Array, bad: jax.Array, message: str) -> jax.Array:
    """``x``, raising ``message`` at run time if any ``bad`` is true (also under ``jit``)."""
    return eqx.error_if(x, bad, message)


def _index_failures(indices, indptr, xp) -> list[tuple[object, str]]:
    """``(bad, message)`` pairs of a malformed index structure, in NumPy (``xp=np``) or JAX;
    ``indptr`` is ``None`` for a BCOO."""
    out = [(xp.any(indices < 0), NEGATIVE_INDEX)]
    if indptr is not None:
        nse = indices.shape[-1]
        bad = (xp.any(indptr[..., 0] != 0) | xp.any(indptr[..., 1:] < indptr[..., :-1])
               | xp.any(indptr[..., -1] > nse))
        out.insert(0, (bad, BAD_INDPTR))
    return out


def _index_arrays(A):
    return (A.indices, A.indptr) if isinstance(A, BCSR) else (A.indices, None)


def check_sparse_indices(name: str, A) -> bool:
    """Check a BCOO/BCSR's indices now when they are concrete (``ValueError``); returns whether
    it could (``False``: traced indices, to be checked by :func:`checked_indices`)."""
    indices, indptr = _index_arrays(A)
    if not is_concrete(indices, indptr):
        return False
    indptr = None if indptr is None else np.asarray(indptr)
    for bad, msg in _index_failures(np.asarray(indices), indptr, np):
        if bool(bad):
            raise ValueError(msg.format(name=name))
    return True


def checked_indices(name: str, A):
    """``A`` whose index arrays raise at run time when malformed (see :func:`runtime_check`)."""
    indices, indptr = _index_arrays(A)
    checks = _index_failures(indices, indptr, jnp)
    flags = {"shape": A.shape, "indices_sorted": A.indices_sorted,
             "unique_indices": A.unique_indices}
    if indptr is None:
        ((bad, msg),) = checks
        return type(A)((A.data, runtime_check(indices, bad, msg.format(name=name))), **flags)
    (bad_ptr, m_ptr), (bad_idx, m_idx) = checks
    indptr = runtime_check(indptr, bad_ptr, m_ptr.format(name=name))
    indices = runtime_check(indices, bad_idx, m_idx.format(name=name))
    return BCSR((A.data, indices, indptr), **flags)
