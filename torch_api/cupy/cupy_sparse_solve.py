"""Public names of ``torchsparsegradutils.cupy.cupy_sparse_solve``.

Kept importable under that path; defined in ``torch_api`` and only re-exported here.
"""

from torch_api import SparseSolveC4T, sparse_solve_c4t

__all__ = ["SparseSolveC4T", "sparse_solve_c4t"]
