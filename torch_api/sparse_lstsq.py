"""Public names of ``torchsparsegradutils.sparse_lstsq``.

Kept importable under that path; defined in ``torch_api`` and only re-exported here.
"""

from torch_api import SparseGenericLstsq, sparse_generic_lstsq

__all__ = ["SparseGenericLstsq", "sparse_generic_lstsq"]
