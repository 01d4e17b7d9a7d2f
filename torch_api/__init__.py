"""Sparse operations for PyTorch whose gradients keep the sparsity of their sparse inputs.

A drop-in replacement for the public API of torchsparsegradutils: change the import.
"""

from ._generic_lstsq import sparse_generic_lstsq
from ._generic_solve import sparse_generic_solve
from ._indexed_mm import gather_mm, segment_mm
from ._logsumexp import sparse_bidir_logsumexp, sparse_logsumexp
from ._solve_c4t import sparse_solve_c4t
from ._solve_j4t import sparse_solve_j4t
from ._sparse_mm import sparse_mm
from ._triangular_solve import sparse_triangular_solve

__all__ = [
    "sparse_mm",
    "sparse_triangular_solve",
    "sparse_generic_solve",
    "sparse_generic_lstsq",
    "segment_mm",
    "gather_mm",
    "sparse_logsumexp",
    "sparse_bidir_logsumexp",
    "sparse_solve_j4t",
    "sparse_solve_c4t",
]
