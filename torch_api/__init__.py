"""Sparse operations for PyTorch whose gradients keep the sparsity of their sparse inputs.

A drop-in replacement for the public API of torchsparsegradutils: change the import.
"""

# the original's module path of the same name as the function, imported first so that the
# function keeps the name (as in torchsparsegradutils' own __init__)
from . import sparse_logsumexp as _sparse_logsumexp_path  # noqa: F401, I001
from ._functions import (
    SparseGenericLstsq,
    SparseGenericSolve,
    SparseMatMul,
    SparseSolveC4T,
    SparseSolveJ4T,
    SparseTriangularSolve,
)
from ._direct_solve import sparse_cholesky_solve, sparse_lu_solve
from ._generic_lstsq import sparse_generic_lstsq
from ._generic_solve import sparse_generic_solve
from ._indexed_mm import gather_mm, segment_mm
from ._logdet import SlogdetResult, sparse_logdet, sparse_slogdet
from ._logsumexp import sparse_bidir_logsumexp, sparse_logsumexp
from ._pattern_cache import clear as _clear
from ._solve_c4t import sparse_solve_c4t
from ._solve_j4t import sparse_solve_j4t
from ._sparse_mm import sparse_mm
from ._triangular_solve import sparse_triangular_solve

# the original's sub-packages, attributes of the package right after ``import torch_api``
# (as torchsparsegradutils' are); imported after the operations they re-export
from . import distributions, encoders, utils  # noqa: E402, F401, I001


def clear_caches() -> None:
    """Release everything the operations cache per sparsity pattern.

    Every operation keeps data derived from its sparse argument's indices alone (the index-range
    check's verdict, int32 copies of CPU indices, the transposed pattern, triangular-structure
    and canonical-format verdicts), together with a copy of those indices, which it compares on
    each call: changed indices rebuild the entries. Entries die with the index tensors and the
    cache's size is capped, so calling this is never needed for correctness, only to release
    memory at once.

    Example:
        >>> clear_caches()
    """
    _clear()

__all__ = [
    "sparse_mm",
    "sparse_triangular_solve",
    "sparse_generic_solve",
    "sparse_generic_lstsq",
    "sparse_cholesky_solve",
    "sparse_lu_solve",
    "sparse_logdet",
    "sparse_slogdet",
    "SlogdetResult",
    "segment_mm",
    "gather_mm",
    "sparse_logsumexp",
    "sparse_bidir_logsumexp",
    "sparse_solve_j4t",
    "sparse_solve_c4t",
    "clear_caches",
    "SparseMatMul",
    "SparseTriangularSolve",
    "SparseGenericSolve",
    "SparseGenericLstsq",
    "SparseSolveJ4T",
    "SparseSolveC4T",
]
