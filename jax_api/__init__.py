"""Sparse operations for JAX whose gradients keep the sparsity of their sparse inputs.

The operations of torch_api, with the same names and mathematics, as ``jax.custom_vjp``
functions and Equinox modules that work under ``jit``, ``vmap`` and ``grad``.
"""

from bridge._optional import require as _require

_require("jax")
_require("equinox")

from ._indexed_mm import gather_mm, segment_mm  # noqa: E402
from ._sparse_mm import sparse_mm  # noqa: E402
from ._triangular_solve import sparse_triangular_solve  # noqa: E402

__all__: list[str] = []
__all__ += ["segment_mm", "gather_mm"]
__all__ += ["sparse_mm", "sparse_triangular_solve"]
