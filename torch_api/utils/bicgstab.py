"""Public names of ``torchsparsegradutils.utils.bicgstab``.

Kept importable under that path; public in ``torch_api.utils``, only re-exported here.
"""

from torch_api._solvers import BICGSTABSettings, bicgstab

__all__ = ["BICGSTABSettings", "bicgstab"]
