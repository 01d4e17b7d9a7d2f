"""The sparse triangular factor of :class:`~jax_api.SparseMultivariateNormal`: its products and
solves on batches of vectors, its stored diagonal, and the checks of its constraints (eager on
concrete values, at run time under ``jit``). The mirror of :mod:`torch_api._sparse_factor`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.experimental.sparse import BCOO, BCSR

from ._checks import runtime_check
from ._pattern import Pattern
from ._sparse_mm import flat_mm
from ._triangular_solve import sparse_triangular_solve


def with_data(A, data):
    """``A``'s pattern with new stored values (same type, indices and flags)."""
    if isinstance(A, BCSR):
        return BCSR(
            (data, A.indices, A.indptr),
            shape=A.shape,
            indices_sorted=A.indices_sorted,
            unique_indices=A.unique_indices,
        )
    return BCOO(
        (data, A.indices),
        shape=A.shape,
        indices_sorted=A.indices_sorted,
        unique_indices=A.unique_indices,
    )


def transposed_mm(A, X):
    """``A^T @ X`` with gradients on A's pattern (the product on the transposed pattern)."""
    pattern, values = Pattern.of(A)
    pattern_t, perm = pattern.transposed()
    Xf, vector = pattern.flat_rhs(X)
    return pattern.unflat(flat_mm(pattern_t, values[perm], Xf), vector, A.shape[-1])


def apply_to_vectors(op, A, v):
    """``op(A, V)`` on every vector of ``v (..., [b], n)``, gathered as the columns of ``V``."""
    n = v.shape[-1]
    if A.ndim == 2:
        lead = v.shape[:-1]
        return op(A, v.reshape(-1, n).T).T.reshape(*lead, n)
    b = A.shape[0]
    lead = v.shape[:-2]
    out = op(A, jnp.transpose(v.reshape(-1, b, n), (1, 2, 0)))
    return jnp.transpose(out, (2, 0, 1)).reshape(*lead, b, n)


def lower_solve(unit: bool, transpose: bool, check: bool):
    return lambda A, B: sparse_triangular_solve(
        A, B, upper=False, unitriangular=unit, transpose=transpose, check=check
    )


def _diag_entries(A):
    """``(rows, cols, values, on_diagonal)`` of the factor's real stored entries (flat)."""
    pattern, values = Pattern.of(A)
    on = pattern.valid & (pattern.rows == pattern.col)
    return pattern, values, on


def sum_log_diagonal(A):
    """``sum_i log A_ii`` per batch item from the stored values (``-inf`` if one is missing)."""
    pattern, values, on = _diag_entries(A)
    N = pattern.csr_shape[0]
    diag = jnp.zeros(N, values.dtype).at[jnp.where(on, pattern.rows, N)].add(values, mode="drop")
    return jnp.log(diag).reshape(*A.shape[:-2], -1).sum(-1)


_ABOVE = "{name}: expected a lower-triangular factor, got entries above the diagonal."
_STORED_DIAG = (
    "{name}: expected a strictly lower factor with diagonal= (LDL^T: the unit diagonal is "
    "implicit), got stored diagonal entries."
)
_BAD_DIAG = (
    "{name}: expected every diagonal entry stored and positive (LL^T), got a missing or "
    "non-positive one."
)
_BAD_D = "diagonal: expected positive values, got a non-positive one."


def _factor_failures(name, A, ldlt: bool, diagonal, xp):
    """``(bad, message)`` of each constraint on the factor, in NumPy (``xp=np``) or JAX."""
    pattern, values, on = _diag_entries(A)
    conv = np.asarray if xp is np else (lambda x: x)
    rows, cols, valid, on, values = map(conv, (pattern.rows, pattern.col, pattern.valid, on,
                                               values))
    out = [(xp.any(valid & (rows < cols)), _ABOVE.format(name=name))]
    if ldlt:
        out.append((xp.any(on), _STORED_DIAG.format(name=name)))
    else:
        N = pattern.csr_shape[0]
        if xp is np:
            n_diag = np.bincount(rows[on], minlength=N)
        else:
            n_diag = jnp.zeros(N, jnp.int32).at[jnp.where(on, rows, N)].add(1, mode="drop")
        bad = xp.any(n_diag == 0) | xp.any(on & (values <= 0))
        out.append((bad, _BAD_DIAG.format(name=name)))
    if diagonal is not None:
        out.append((xp.any(~(conv(diagonal) > 0)), _BAD_D))
    return out


def check_factor_values(name, A, ldlt: bool, diagonal):
    """Eager constraint checks (triangularity, positive diagonals), on concrete values."""
    for bad, msg in _factor_failures(name, A, ldlt, diagonal, np):
        if bool(bad):
            raise ValueError(msg)


def checked_factor(name, A, ldlt: bool, diagonal):
    """``A`` whose values raise at run time (under ``jit``) when a constraint fails."""
    data = A.data
    for bad, msg in _factor_failures(name, A, ldlt, diagonal, jnp):
        data = runtime_check(data, bad, msg)
    return with_data(A, data)
