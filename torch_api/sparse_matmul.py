"""Public names of ``torchsparsegradutils.sparse_matmul``.

Kept importable under that path; defined in ``torch_api`` and only re-exported here.
"""

from torch_api import sparse_mm

__all__ = ["sparse_mm"]
