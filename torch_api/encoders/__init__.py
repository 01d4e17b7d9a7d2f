"""Encoders building sparse matrices from dense per-offset values."""

from bridge.internal.pairwise import pairwise_indices, pairwise_offsets

from .._encoders import (
    PairwiseEncoder,
    PairwiseVoxelEncoder,
    calc_pairwise_coo_indices,
    calc_pairwise_coo_indices_nd,
)

__all__ = [
    "PairwiseEncoder",
    "PairwiseVoxelEncoder",
    "calc_pairwise_coo_indices",
    "calc_pairwise_coo_indices_nd",
    "pairwise_indices",
    "pairwise_offsets",
]
