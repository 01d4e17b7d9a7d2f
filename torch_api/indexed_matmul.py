"""Public names of ``torchsparsegradutils.indexed_matmul``.

Kept importable under that path; defined in ``torch_api`` and only re-exported here.
"""

from torch_api import gather_mm, segment_mm

__all__ = ["gather_mm", "segment_mm"]
