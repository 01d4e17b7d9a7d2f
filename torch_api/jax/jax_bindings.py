"""Public names of ``torchsparsegradutils.jax.jax_bindings``.

Kept importable under that path; defined in ``torch_api.jax`` and only re-exported here.
"""

from torch_api.jax import j2t, j2t_coo, j2t_csr, spmm_t4j, t2j, t2j_coo, t2j_csr

__all__ = ["j2t", "j2t_coo", "j2t_csr", "spmm_t4j", "t2j", "t2j_coo", "t2j_csr"]
