"""Public names of ``torchsparsegradutils.sparse_matmul``.

Kept importable under that path; defined in ``torch_api`` and only re-exported here.
"""

from torch_api import SparseMatMul, sparse_mm

__all__ = ["SparseMatMul", "sparse_mm"]
