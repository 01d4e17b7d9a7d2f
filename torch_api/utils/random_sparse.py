"""Public names of ``torchsparsegradutils.utils.random_sparse``.

Kept importable under that path; defined in ``torch_api.utils`` and only re-exported here.
"""

from torch_api.utils import make_spd_sparse, rand_sparse, rand_sparse_tri

__all__ = ["make_spd_sparse", "rand_sparse", "rand_sparse_tri"]
