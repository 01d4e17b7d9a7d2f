"""Sparse operations for PyTorch whose gradients keep the sparsity of their sparse inputs.

A drop-in replacement for the public API of torchsparsegradutils: change the import.
"""

from ._sparse_mm import sparse_mm

__all__ = [
    "sparse_mm",
]
