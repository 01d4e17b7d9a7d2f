"""Public names of ``torchsparsegradutils.sparse_solve``.

Kept importable under that path; defined in ``torch_api`` and only re-exported here.
"""

from torch_api import (
    SparseGenericSolve,
    SparseTriangularSolve,
    sparse_generic_solve,
    sparse_triangular_solve,
)

__all__ = [
    "SparseGenericSolve",
    "SparseTriangularSolve",
    "sparse_generic_solve",
    "sparse_triangular_solve",
]
