"""Direct factorisations for jax_api: :mod:`bridge.internal.factor` (SciPy's SuperLU) called from
inside ``jit`` through :func:`bridge.jax_kernel` on host views of the arrays.

Factors are kept in a small cache keyed by a digest of the pattern and the values (at most
``_MAX`` matrices), so the transposed solve of a backward, or the selected inverse of a
log-determinant's gradient, reuses the forward's factorisation; :func:`clear` empties it. A
``vmap`` runs the callbacks once per batch item.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import jax
import numpy as np

from bridge.internal.factor import (
    Factor,
    factorize_blocks,
    inverse_transposed_blocks,
    solve_blocks,
)

from ._pattern import Pattern

_MAX = 4
_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()


def factors(kind: str, shape: tuple[int, ...], crow, col, values) -> list[Factor]:
    """The factors of each block of the flat pattern with these (host) values."""
    crow, col = np.asarray(crow, np.int64), np.asarray(col, np.int64)
    eps = float(np.finfo(np.asarray(values).dtype).eps)
    values = np.asarray(values, np.float64)
    h = hashlib.blake2b(digest_size=16)
    for a in (crow, col, values):
        h.update(np.ascontiguousarray(a).tobytes())
    key = (kind, shape, eps, h.hexdigest())
    with _LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    found = factorize_blocks(kind, shape[-1], crow, col, values, batched=len(shape) == 3,
                             eps=eps)
    with _LOCK:
        _CACHE[key] = found
        while len(_CACHE) > _MAX:
            _CACHE.popitem(last=False)
    return found


def clear() -> None:
    """Release the cached factors."""
    with _LOCK:
        _CACHE.clear()


def _call(host, out, *args):
    """``host(*numpy arrays) -> numpy array(s)`` under ``jit`` and ``vmap``, through
    :func:`bridge.jax_kernel` (which hands over the buffers without converting dtypes: a
    ``pure_callback`` would canonicalise float64 results to float32 in a callback thread where
    64-bit mode, enabled by a context, is off)."""
    from bridge import jax_kernel

    def kernel(*tensors):
        import torch

        arrays = [t.detach().cpu().numpy() for t in tensors]
        result = host(*arrays)
        device = tensors[0].device
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)
        return tuple(map(as_t, result)) if isinstance(result, tuple) else as_t(result)

    return jax_kernel(kernel, out)(*args)


def flat_solve(kind: str, transpose: bool, pattern: Pattern, values, B, args=None):
    """``op(A)^{-1} B`` for flat ``B (b*n, p)``, in the form :func:`~jax_api._solve.implicit_solve`
    takes (``(X, None)``)."""

    def host(crow, col, v, b):
        X = solve_blocks(factors(kind, pattern.shape, crow, col, v), np.asarray(b), transpose)
        return X.astype(b.dtype)

    out = jax.ShapeDtypeStruct(B.shape, B.dtype)
    return _call(host, out, pattern.crow, pattern.col, values, B), None


def slogdet(kind: str, pattern: Pattern, values):
    """``(sign, log|det|)`` of each block, ``(nb,)`` each (not differentiable)."""
    nb = pattern.shape[0] if len(pattern.shape) == 3 else 1

    def host(crow, col, v):
        out = [F.slogdet() for F in factors(kind, pattern.shape, crow, col, v)]
        return (np.array([s for s, _ in out], v.dtype), np.array([a for _, a in out], v.dtype))

    spec = jax.ShapeDtypeStruct((nb,), values.dtype)
    return _call(host, (spec, spec), pattern.crow, pattern.col, values)


def inverse_transposed(kind: str, pattern: Pattern, values):
    """``A^{-T}`` at every stored position of the flat pattern (padding: 0), ``(nnz,)``."""

    def host(crow, col, v):
        F = factors(kind, pattern.shape, crow, col, v)
        return inverse_transposed_blocks(F, crow, col, v.shape[0]).astype(v.dtype)

    out = jax.ShapeDtypeStruct(values.shape, values.dtype)
    return _call(host, out, pattern.crow, pattern.col, values)
