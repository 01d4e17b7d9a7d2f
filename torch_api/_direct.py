"""Direct factorisations of a :class:`~torch_api._pattern.Pattern`'s blocks, for the direct solves
and log-determinants.

Each block of the block-diagonal flat pattern (one per batch item) is factored on the host by
:func:`bridge.internal.factor.factorize` (SciPy's SuperLU, float64 arithmetic; a CUDA tensor
makes a round trip through host memory). A :class:`Factors` object keeps the factors of the
values it last saw, so the transposed solve of a backward reuses the forward's factorisation.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from bridge.internal.factor import (
    Factor,
    factorize_blocks,
    inverse_transposed_blocks,
    solve_blocks,
)

from ._pattern import Pattern


def _host(x: torch.Tensor, dtype=None) -> np.ndarray:
    x = x.detach().cpu()
    return (x if dtype is None else x.to(dtype)).numpy()


class Factors:
    """The factors of one matrix's blocks (``kind`` ``"cholesky"`` or ``"lu"``), computed on the
    first call with some values and reused while the same, unmodified values come back."""

    def __init__(self, kind: str):
        self.kind = kind
        self._key = None
        self._factors: list[Factor] = []
        self._lock = threading.Lock()

    def of(self, pattern: Pattern, values: torch.Tensor) -> list[Factor]:
        version = 0 if values.is_inference() else values._version
        key = (values.data_ptr(), values.numel(), values.dtype, version)
        with self._lock:
            if key != self._key:
                self._factors = factorize_blocks(
                    self.kind, pattern.shape[-1], _host(pattern.crow), _host(pattern.col),
                    _host(values, torch.float64), batched=pattern.batch is not None,
                    eps=torch.finfo(values.dtype).eps)
                self._key = key
            return self._factors

    def solve(self, pattern: Pattern, values: torch.Tensor, B: torch.Tensor,
              transpose: bool = False) -> torch.Tensor:
        """``op(A)^{-1} B`` for the flat ``B (b*n, p)`` (``op(A) = A^T`` if ``transpose``)."""
        X = solve_blocks(self.of(pattern, values), _host(B, torch.float64), transpose)
        return torch.from_numpy(np.ascontiguousarray(X)).to(dtype=B.dtype, device=B.device)

    def inverse_transposed(self, pattern: Pattern, values: torch.Tensor) -> torch.Tensor:
        """The flat values of ``A^{-T}`` at A's pattern (each block's, in A's dtype)."""
        Z = inverse_transposed_blocks(self.of(pattern, values), _host(pattern.crow),
                                      _host(pattern.col), pattern.nnz)
        return torch.from_numpy(Z).to(dtype=values.dtype, device=values.device)
