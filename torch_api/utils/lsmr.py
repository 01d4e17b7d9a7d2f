"""Public names of ``torchsparsegradutils.utils.lsmr``.

Kept importable under that path; public in ``torch_api.utils``, only re-exported here.
"""

from torch_api._solvers import lsmr

__all__ = ["lsmr"]
