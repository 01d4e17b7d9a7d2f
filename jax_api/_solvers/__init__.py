"""Iterative solvers for jax_api: JAX's CG, BiCGSTAB and GMRES (reused) and MINRES and LSMR
(written with ``lax.while_loop``). Each returns ``(X, info)`` with a :class:`SolveInfo` and
warns (``ConvergenceWarning``) when a column did not converge. Differentiate solves through
:func:`jax_api.sparse_generic_solve` / :func:`jax_api.sparse_generic_lstsq`.
"""

from ._common import SolveInfo
from .bicgstab import bicgstab
from .cg import cg
from .gmres import gmres
from .lsmr import lsmr
from .minres import minres

__all__ = ["SolveInfo", "bicgstab", "cg", "gmres", "lsmr", "minres"]
