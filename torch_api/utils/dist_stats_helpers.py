"""Public names of ``torchsparsegradutils.utils.dist_stats_helpers``.

Kept importable under that path; defined in ``torch_api.utils`` and only re-exported here.
"""

from torch_api.utils import cov_nagao_test, mean_hotelling_t2_test

__all__ = ["cov_nagao_test", "mean_hotelling_t2_test"]
