"""Sparse operations for JAX whose gradients keep the sparsity of their sparse inputs.

The operations of torch_api, with the same names and mathematics, as JAX functions and Equinox
modules that work under ``jit``, ``vmap``, ``grad`` and (products and solves) forward mode and
higher order.
"""

from bridge._optional import require as _require

_require("jax")
_require("equinox")

from bridge.internal.convergence import ConvergenceError, ConvergenceWarning  # noqa: E402

from ._direct_solve import sparse_cholesky_solve, sparse_lu_solve  # noqa: E402
from ._distributions import SparseMultivariateNormal  # noqa: E402
from ._encoders import PairwiseEncoder  # noqa: E402
from ._generic_lstsq import sparse_generic_lstsq  # noqa: E402
from ._generic_solve import sparse_generic_solve  # noqa: E402
from ._indexed_mm import gather_mm, segment_mm  # noqa: E402
from ._logdet import SlogdetResult, sparse_logdet, sparse_slogdet  # noqa: E402
from ._logsumexp import sparse_bidir_logsumexp, sparse_logsumexp  # noqa: E402
from ._preconditioners import ic0, ilu0, jacobi  # noqa: E402
from ._random import make_spd_sparse, rand_sparse, rand_sparse_tri  # noqa: E402
from ._solvers import SolveInfo, bicgstab, cg, gmres, lsmr, minres  # noqa: E402
from ._sparse_mm import sparse_mm  # noqa: E402
from ._stats import cov_nagao_test, mean_hotelling_t2_test  # noqa: E402
from ._triangular_solve import sparse_triangular_solve  # noqa: E402

__all__: list[str] = []
__all__ += ["segment_mm", "gather_mm"]
__all__ += ["sparse_logsumexp", "sparse_bidir_logsumexp"]
__all__ += ["rand_sparse", "rand_sparse_tri", "make_spd_sparse"]
__all__ += ["mean_hotelling_t2_test", "cov_nagao_test"]
__all__ += ["PairwiseEncoder"]
__all__ += ["SparseMultivariateNormal"]
__all__ += ["sparse_mm", "sparse_triangular_solve"]
__all__ += ["sparse_generic_solve", "sparse_generic_lstsq"]
__all__ += ["sparse_cholesky_solve", "sparse_lu_solve", "sparse_logdet", "sparse_slogdet"]
__all__ += ["SlogdetResult"]
__all__ += ["SolveInfo", "cg", "bicgstab", "gmres", "minres", "lsmr"]
__all__ += ["jacobi", "ic0", "ilu0"]
__all__ += ["ConvergenceWarning", "ConvergenceError"]
