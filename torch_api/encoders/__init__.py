"""Encoders building sparse matrices from dense per-offset values."""

from bridge.internal.pairwise import pairwise_indices, pairwise_offsets

from .._encoders import PairwiseEncoder

__all__ = ["PairwiseEncoder", "pairwise_indices", "pairwise_offsets"]
