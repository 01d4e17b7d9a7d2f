"""Public names of ``torchsparsegradutils.encoders.pairwise_encoder``.

Kept importable under that path; defined in ``torch_api.encoders`` and only re-exported here.
"""

from torch_api.encoders import PairwiseEncoder

__all__ = ["PairwiseEncoder"]
