"""Public names of ``torchsparsegradutils.cupy.cupy_bindings``.

Kept importable under that path; defined in ``torch_api.cupy`` and only re-exported here.
"""

from torch_api.cupy import c2t_coo, c2t_csr, t2c_coo, t2c_csr

__all__ = ["c2t_coo", "c2t_csr", "t2c_coo", "t2c_csr"]
