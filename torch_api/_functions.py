"""torchsparsegradutils' autograd Function classes, by name, over torch_api's operations.

The original exposes each operation's ``torch.autograd.Function`` (``SparseMatMul.apply(A, B)``
and so on). torch_api's operations are built on value-level Functions instead (see
``ARCHITECTURE.md``), so these classes are not Function subclasses: ``apply`` takes the
original Function's positional arguments and returns the operation's result, differentiable
exactly as the operation is (sparse ``A.grad``, higher order).
"""

from __future__ import annotations

from ._generic_lstsq import sparse_generic_lstsq
from ._generic_solve import sparse_generic_solve
from ._solve_c4t import sparse_solve_c4t
from ._solve_j4t import sparse_solve_j4t
from ._sparse_mm import sparse_mm
from ._triangular_solve import sparse_triangular_solve


class _Operation:
    """``apply(*args)``: the operation on the original Function's arguments."""

    @staticmethod
    def operation(*args):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        return cls.operation(*args)


class SparseMatMul(_Operation):
    """``SparseMatMul.apply(A, B)`` is :func:`torch_api.sparse_mm` ``(A, B)``.

    Example:
        >>> C = SparseMatMul.apply(torch.eye(2).to_sparse(), torch.ones(2, 3))
    """

    operation = staticmethod(sparse_mm)


class SparseTriangularSolve(_Operation):
    """``SparseTriangularSolve.apply(A, B, upper, unitriangular, transpose)`` is
    :func:`torch_api.sparse_triangular_solve` with those options.

    Example:
        >>> X = SparseTriangularSolve.apply(torch.eye(2).to_sparse_csr(), torch.ones(2, 1),
        ...                                 False, False, False)
    """

    @staticmethod
    def operation(A, B, upper=True, unitriangular=False, transpose=False):
        return sparse_triangular_solve(
            A, B, upper=upper, unitriangular=unitriangular, transpose=transpose
        )


class SparseGenericSolve(_Operation):
    """``SparseGenericSolve.apply(A, B, solve, transpose_solve, kwargs)`` is
    :func:`torch_api.sparse_generic_solve` ``(A, B, solve, transpose_solve, **kwargs)``.

    Example:
        >>> X = SparseGenericSolve.apply(torch.eye(2).to_sparse(), torch.ones(2), None, None, {})
    """

    @staticmethod
    def operation(A, B, solve=None, transpose_solve=None, kwargs=None):
        return sparse_generic_solve(A, B, solve, transpose_solve, **(kwargs or {}))


class SparseGenericLstsq(_Operation):
    """``SparseGenericLstsq.apply(A, B, lstsq, transpose_lstsq)`` is
    :func:`torch_api.sparse_generic_lstsq` ``(A, B, lstsq, transpose_lstsq)``.

    Example:
        >>> X = SparseGenericLstsq.apply(torch.eye(3, 2).to_sparse(), torch.ones(3), None, None)
    """

    @staticmethod
    def operation(A, B, lstsq=None, transpose_lstsq=None):
        return sparse_generic_lstsq(A, B, lstsq, transpose_lstsq)


class SparseSolveJ4T(_Operation):
    """``SparseSolveJ4T.apply(A, B, solve, transpose_solve, kwargs)`` is
    :func:`torch_api.sparse_solve_j4t` ``(A, B, solve, transpose_solve, **kwargs)`` (JAX extra).

    Example:
        >>> X = SparseSolveJ4T.apply(A, B, None, None, {"tol": 1e-10})  # doctest: +SKIP
    """

    @staticmethod
    def operation(A, B, solve=None, transpose_solve=None, kwargs=None):
        return sparse_solve_j4t(A, B, solve, transpose_solve, **(kwargs or {}))


class SparseSolveC4T(_Operation):
    """``SparseSolveC4T.apply(A, B, solve, transpose_solve, kwargs)`` is
    :func:`torch_api.sparse_solve_c4t` ``(A, B, solve, transpose_solve, **kwargs)``.

    Example:
        >>> X = SparseSolveC4T.apply(torch.eye(2).to_sparse_csr(), torch.ones(2), "cg", None, {})
    """

    @staticmethod
    def operation(A, B, solve=None, transpose_solve=None, kwargs=None):
        return sparse_solve_c4t(A, B, solve, transpose_solve, **(kwargs or {}))
