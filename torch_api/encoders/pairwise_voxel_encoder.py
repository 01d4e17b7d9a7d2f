"""Public names of ``torchsparsegradutils.encoders.pairwise_voxel_encoder``.

Kept importable under that path; defined in ``torch_api.encoders`` and only re-exported here.
"""

from torch_api.encoders import PairwiseVoxelEncoder

__all__ = ["PairwiseVoxelEncoder"]
