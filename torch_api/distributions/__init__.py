"""Sparse Gaussian distributions."""

from .._distributions import SparseMultivariateNormal, SparseMultivariateNormalNative

__all__ = ["SparseMultivariateNormal", "SparseMultivariateNormalNative"]
