"""``torch_api.utils``: solvers and construction helpers (the torchsparsegradutils.utils API)."""

# The original's module paths of the same names as functions, imported before the functions
# rebind those names: a later ``import torch_api.utils.bicgstab`` then leaves the function alone.
from . import bicgstab as _bicgstab_path  # noqa: F401, I001  (must precede the functions)
from . import linear_cg as _linear_cg_path  # noqa: F401
from . import lsmr as _lsmr_path  # noqa: F401
from . import minres as _minres_path  # noqa: F401
from .. import _random, _solvers
from .._blocks import sparse_block_diag, sparse_block_diag_split, sparse_eye, stack_csr
from .._convergence import ConvergenceError, ConvergenceWarning
from .._convert import convert_coo_to_csr, convert_coo_to_csr_indices_values
from .._preconditioners import ic0, ilu0, jacobi
from .._random import *  # noqa: F403  (rand_sparse, make_spd_sparse, generate_random_sparse_*)
from .._solvers import *  # noqa: F403  (bicgstab, linear_cg, lsmr, minres and their settings)
from .._stats import cov_nagao_test, mean_hotelling_t2_test

__all__ = [
    *_solvers.__all__,
    "ConvergenceError",
    "ConvergenceWarning",
    "jacobi",
    "ic0",
    "ilu0",
    *_random.__all__,
    "sparse_block_diag",
    "sparse_block_diag_split",
    "sparse_eye",
    "stack_csr",
    "convert_coo_to_csr_indices_values",
    "convert_coo_to_csr",
    "mean_hotelling_t2_test",
    "cov_nagao_test",
]
