"""Encoders building sparse matrices from dense per-offset values ."""

from .._encoders import PairwiseEncoder, pairwise_indices, pairwise_offsets

__all__ = ["PairwiseEncoder", "pairwise_indices", "pairwise_offsets"]
