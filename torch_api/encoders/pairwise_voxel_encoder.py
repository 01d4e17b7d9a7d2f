"""``torchsparsegradutils.encoders.pairwise_voxel_encoder``'s module path.

Its one public name, the deprecated ``PairwiseVoxelEncoder``, is not in torch_api.encoders yet;
it is re-exported here once it is.
"""

__all__: list[str] = []
