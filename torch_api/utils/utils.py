"""Public names of ``torchsparsegradutils.utils.utils``.

Kept importable under that path; defined in ``torch_api._blocks`` and ``torch_api._convert``
(also re-exported by ``torch_api.utils``).
"""

from .._blocks import sparse_block_diag, sparse_block_diag_split, sparse_eye, stack_csr
from .._convert import convert_coo_to_csr, convert_coo_to_csr_indices_values

__all__ = [
    "convert_coo_to_csr",
    "convert_coo_to_csr_indices_values",
    "sparse_block_diag",
    "sparse_block_diag_split",
    "sparse_eye",
    "stack_csr",
]
