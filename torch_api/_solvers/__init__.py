"""Pure-PyTorch iterative solvers (CG, MINRES, BiCGSTAB, LSMR), public in ``torch_api.utils``.

Each takes a sparse COO/CSR matrix, a dense matrix or a matvec callable, and a vector or a block
of right-hand sides solved column by column in one sweep. None of them is differentiated through
its iterations: :func:`torch_api.sparse_generic_solve` and :func:`torch_api.sparse_generic_lstsq`
give gradients. Non-convergence is never silent: a ``ConvergenceWarning`` names the iteration
count and residual; pass ``raise_on_failure=True`` (or use
``warnings.simplefilter("error", ConvergenceWarning)``) to make it an error.
"""

from .bicgstab import BICGSTABSettings, bicgstab
from .cg import CGInfo, LinearCGSettings, linear_cg
from .lsmr import lsmr
from .minres import MINRESSettings, minres

__all__ = [
    "BICGSTABSettings",
    "CGInfo",
    "LinearCGSettings",
    "MINRESSettings",
    "bicgstab",
    "linear_cg",
    "lsmr",
    "minres",
]
