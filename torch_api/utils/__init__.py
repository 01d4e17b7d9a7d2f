"""``torch_api.utils``: solvers and construction helpers (the torchsparsegradutils.utils API)."""

# The original's module paths of the same names as functions, imported before the functions
# rebind those names: a later ``import torch_api.utils.bicgstab`` then leaves the function alone.
from . import bicgstab as _bicgstab_path  # noqa: F401, I001  (must precede the functions)
from . import linear_cg as _linear_cg_path  # noqa: F401
from . import lsmr as _lsmr_path  # noqa: F401
from . import minres as _minres_path  # noqa: F401
from .._blocks import sparse_block_diag, sparse_block_diag_split, sparse_eye, stack_csr
from .._convergence import ConvergenceError, ConvergenceWarning
from .._convert import convert_coo_to_csr, convert_coo_to_csr_indices_values
from .._preconditioners import ic0, ilu0, jacobi
from .._random import (
    generate_random_sparse_coo_matrix,
    generate_random_sparse_csr_matrix,
    generate_random_sparse_strictly_triangular_coo_matrix,
    generate_random_sparse_strictly_triangular_csr_matrix,
    generate_random_sparse_triangular_coo_matrix,
    generate_random_sparse_triangular_csr_matrix,
    make_spd_sparse,
    rand_sparse,
    rand_sparse_tri,
)
from .._solvers import (
    BICGSTABSettings,
    CGInfo,
    LinearCGSettings,
    MINRESSettings,
    bicgstab,
    linear_cg,
    lsmr,
    minres,
)
from .._stats import cov_nagao_test, mean_hotelling_t2_test

__all__ = [
    "BICGSTABSettings",
    "CGInfo",
    "ConvergenceError",
    "ConvergenceWarning",
    "LinearCGSettings",
    "MINRESSettings",
    "bicgstab",
    "linear_cg",
    "lsmr",
    "minres",
    "jacobi",
    "ic0",
    "ilu0",
    "rand_sparse",
    "rand_sparse_tri",
    "make_spd_sparse",
    "generate_random_sparse_coo_matrix",
    "generate_random_sparse_csr_matrix",
    "generate_random_sparse_strictly_triangular_coo_matrix",
    "generate_random_sparse_strictly_triangular_csr_matrix",
    "generate_random_sparse_triangular_coo_matrix",
    "generate_random_sparse_triangular_csr_matrix",
    "sparse_block_diag",
    "sparse_block_diag_split",
    "sparse_eye",
    "stack_csr",
    "convert_coo_to_csr_indices_values",
    "convert_coo_to_csr",
    "mean_hotelling_t2_test",
    "cov_nagao_test",
]
