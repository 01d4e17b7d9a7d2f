"""Public names of ``torchsparsegradutils.jax.jax_sparse_solve``.

Kept importable under that path; defined in ``torch_api`` and only re-exported here.
"""

from torch_api import SparseSolveJ4T, sparse_solve_j4t

__all__ = ["SparseSolveJ4T", "sparse_solve_j4t"]
