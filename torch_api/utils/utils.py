"""Public names of ``torchsparsegradutils.utils.utils``.

Kept importable under that path; defined in ``torch_api.utils`` and only re-exported here.
"""

from torch_api.utils import (
    convert_coo_to_csr,
    convert_coo_to_csr_indices_values,
    sparse_block_diag,
    sparse_block_diag_split,
    sparse_eye,
    stack_csr,
)

__all__ = [
    "convert_coo_to_csr",
    "convert_coo_to_csr_indices_values",
    "sparse_block_diag",
    "sparse_block_diag_split",
    "sparse_eye",
    "stack_csr",
]
