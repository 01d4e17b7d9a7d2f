"""Public names of ``torchsparsegradutils.encoders.pairwise_encoder``.

Kept importable under that path; defined in ``torch_api.encoders`` and only re-exported here.
"""

from torch_api.encoders import (
    PairwiseEncoder,
    calc_pairwise_coo_indices,
    calc_pairwise_coo_indices_nd,
)

__all__ = ["PairwiseEncoder", "calc_pairwise_coo_indices", "calc_pairwise_coo_indices_nd"]
