"""``sparse_triangular_solve``: ``X = op(A)^{-1} B`` for a sparse triangular ``A``.

``op(A)`` is ``A`` or, with ``transpose=True``, ``A^T``. JAX has no sparse triangular solve, so
the solve is PyTorch's (MKL's CSR triangular solve on CPU, cuSPARSE's on GPU), run on JAX's
buffers inside ``jit`` through :func:`bridge.jax_kernel`. A batched ``A`` is solved as its
block-diagonal 2-D matrix; a ``vmap`` over right-hand sides folds them into the columns of one
solve. Differentiation is :func:`~jax_api._solve.implicit_solve`'s: one transposed triangular
solve and an SDDMM at A's nonzeros.

Checks (as in torch_api): no stored entry on the wrong side of the diagonal; with
``unitriangular=True`` no stored diagonal; otherwise a complete nonzero diagonal. They run in
Python, raising ``ValueError``, when the arrays are concrete (eager calls). Under ``jit`` (or
``grad``/``vmap``) the values are not known while tracing, so the kernel runs the same checks on
the real arrays each time it is called and raises; JAX then reports a ``JaxRuntimeError`` whose
text contains the same message. Nothing can be cached under ``jit``, and the O(nnz) check costs
about as much as a one-column MKL solve (0.6 ms against 0.35 ms for a 30^3 stencil's factor), so
``check=False`` skips it (and the index checks of :mod:`jax_api._checks`) for a factor known to
be valid.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from bridge.internal.csr_checks import check_triangular as _check_triangular
from bridge.internal.csr_checks import columns_sorted

from ._checks import check_sparse_indices, checked_indices
from ._cpu_kernels import matrix_call, torch_csr
from ._pattern import Pattern
from ._solve import implicit_solve
from ._validate import check_rhs, check_sparse, is_concrete

__all__ = ["sparse_triangular_solve"]


def _strictly_sorted(crow, col) -> bool:
    """Whether the columns of a row-sorted CSR pattern increase strictly within each row."""
    import torch

    if crow.device.type == "cpu":
        return columns_sorted(crow.numpy(), col.numpy())
    if col.numel() < 2:
        return True
    step = col[1:] > col[:-1]
    starts = crow[1:-1].long()  # a new row may start anywhere: those steps are free
    starts = starts[(starts > 0) & (starts < col.numel())]
    step[starts - 1] = True
    return bool(torch.all(step))


def _solve_kernel(
    crow, col, values, B, *, shape, csr_shape, upper, unitriangular, transpose, check
):
    import torch

    if check:
        _check_triangular(crow, col, values, shape=shape, upper=upper, unitriangular=unitriangular)
    if int(crow[-1]) == 0:  # only valid with unitriangular=True: op(A) is the identity
        return B.clone()
    M = torch_csr(crow, col, values, csr_shape)
    if not _strictly_sorted(crow, M.col_indices()):
        # MKL needs sorted, distinct columns per row: sum duplicate BCOO entries and sort
        # (built afresh: torch marks a CSR -> COO conversion coalesced without checking)
        C = M.to_sparse_coo()
        M = torch.sparse_coo_tensor(C.indices(), C.values(), C.shape).coalesce().to_sparse_csr()
    return torch.triangular_solve(
        B, M, upper=upper, transpose=transpose, unitriangular=unitriangular
    ).solution


def _flat_solve(pattern: Pattern, values, B, args, *, upper, unitriangular, transpose, check):
    out = jax.ShapeDtypeStruct(B.shape, B.dtype)
    X = matrix_call(
        _solve_kernel,
        out,
        pattern,
        values,
        B,
        shape=pattern.shape,
        upper=upper,
        unitriangular=unitriangular,
        transpose=transpose,
        check=check,
    )
    return X, None


def _eager_check(crow, col, values, *, shape, upper: bool, unitriangular: bool) -> None:
    import torch

    as_t = lambda x: torch.from_numpy(np.array(x))
    _check_triangular(as_t(crow), as_t(col), as_t(values), shape=shape, upper=upper,
                      unitriangular=unitriangular)


def sparse_triangular_solve(
    A,
    B: jax.Array,
    upper: bool = True,
    unitriangular: bool = False,
    transpose: bool = False,
    *,
    check: bool = True,
) -> jax.Array:
    """Solve ``A X = B`` (or ``A^T X = B``) for a sparse triangular ``A``; gradient on A's pattern.

    Args:
        A: BCOO or BCSR ``(n, n)`` or batched ``(b, n, n)``, float32/float64, triangular on the
            side ``upper`` names (entries on the other side are an error). With
            ``unitriangular=True`` the diagonal is implicitly 1 and must not be stored.
        B: dense ``(n,)``/``(n, k)``, or ``(b, n)``/``(b, n, k)`` for a batched ``A``.
        upper: whether ``A`` is upper (True) or lower (False) triangular.
        unitriangular: whether ``A`` has an implicit unit diagonal.
        transpose: solve ``A^T X = B`` instead.
        check: check A's indices, triangle and diagonal on every call (eagerly in Python, under
            ``jit`` when the program runs); ``False`` trusts them: an invalid ``A`` then gives
            wrong numbers. See the module notes for the cost.

    Returns:
        Dense ``X`` of B's shape; the gradient for ``A.data`` has A.data's shape.

    Example:
        >>> A = BCSR.fromdense(jnp.array([[2.0, 0.0], [1.0, 4.0]]))
        >>> x = sparse_triangular_solve(A, jnp.ones(2), upper=False)
    """
    A = check_sparse("A", A, square=True)
    B = check_rhs("B", B, A)
    flags = {"upper": upper, "unitriangular": unitriangular, "transpose": transpose,
             "check": check}
    for name, flag in flags.items():
        if not isinstance(flag, (bool, int, np.bool_)):
            raise TypeError(f"{name}: expected a bool, got {type(flag).__name__} {flag!r}.")
    upper, unitriangular, transpose = bool(upper), bool(unitriangular), bool(transpose)
    indices_checked = not check or check_sparse_indices("A", A)
    concrete = indices_checked and is_concrete(A.data)
    if check and concrete:
        _eager_check(*_csr_parts(A), shape=tuple(A.shape), upper=upper,
                     unitriangular=unitriangular)
    return _solve(A, B, upper, unitriangular, transpose, check=bool(check) and not concrete,
                  validate=not indices_checked)


@jax.jit
def _csr_parts(A):
    """The flat CSR ``(crow, col, values)`` of A's pattern, and only those (the row of every
    entry, which the solve does not need, is not computed: this is most of a pattern's cost)."""
    pattern, values = Pattern.of(A)
    return pattern.crow, pattern.col, values


@partial(jax.jit, static_argnums=(2, 3, 4), static_argnames=("check", "validate"))
def _solve(A, B, upper, unitriangular, transpose, *, check: bool, validate: bool):
    # compiled once per shapes, dtypes and flags: eager calls reuse the program
    pattern, values = Pattern.of(checked_indices("A", A) if validate else A)
    Bf, vector = pattern.flat_rhs(B)
    opts = {"upper": upper, "unitriangular": unitriangular}
    solve = partial(_flat_solve, transpose=transpose, check=check, **opts)
    transpose_solve = partial(_flat_solve, transpose=not transpose, check=False, **opts)
    X, _ = implicit_solve(pattern, values, Bf, solve, transpose_solve, transposed=transpose)
    return pattern.unflat(X, vector, A.shape[-1])
