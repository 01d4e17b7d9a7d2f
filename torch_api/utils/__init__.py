"""``torch_api.utils``: solvers and construction helpers (the torchsparsegradutils.utils API)."""

from .._convergence import ConvergenceError, ConvergenceWarning
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
]
