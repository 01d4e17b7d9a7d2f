"""Public names of ``torchsparsegradutils.utils.linear_cg``.

Kept importable under that path; public in ``torch_api.utils``, only re-exported here.
"""

from torch_api._solvers import CGInfo, LinearCGSettings, linear_cg

__all__ = ["CGInfo", "LinearCGSettings", "linear_cg"]
