"""Public names of ``torchsparsegradutils.utils.minres``.

Kept importable under that path; public in ``torch_api.utils``, only re-exported here.
"""

from torch_api._solvers import MINRESSettings, minres

__all__ = ["MINRESSettings", "minres"]
