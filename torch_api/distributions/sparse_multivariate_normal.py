"""Public names of ``torchsparsegradutils.distributions.sparse_multivariate_normal``.

Kept importable under that path; defined in ``torch_api.distributions`` and only re-exported here.
"""

from torch_api.distributions import SparseMultivariateNormal, SparseMultivariateNormalNative

__all__ = ["SparseMultivariateNormal", "SparseMultivariateNormalNative"]
