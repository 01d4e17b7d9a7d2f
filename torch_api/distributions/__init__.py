"""Sparse Gaussian distributions; importing this registers their ``kl_divergence``."""

from .. import _kl  # noqa: F401  (registers kl_divergence with torch.distributions)
from .._distributions import SparseMultivariateNormal
from .._distributions_native import SparseMultivariateNormalNative

__all__ = ["SparseMultivariateNormal", "SparseMultivariateNormalNative"]
