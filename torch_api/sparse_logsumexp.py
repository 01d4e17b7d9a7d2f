"""Public names of ``torchsparsegradutils.sparse_logsumexp``.

Kept importable under that path; public in ``torch_api``, only re-exported here.
"""

from torch_api._logsumexp import sparse_bidir_logsumexp, sparse_logsumexp

__all__ = ["sparse_bidir_logsumexp", "sparse_logsumexp"]
