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

from bridge.internal.factor import Factor, factorize

from ._pattern import Pattern


def host_blocks(pattern: Pattern, values: torch.Tensor):
    """``(indptr, indices, data)`` of each ``n x n`` block of the flat pattern, as NumPy."""
    n = pattern.shape[-1]
    crow = pattern.crow.detach().cpu().numpy().astype(np.int64)
    col = pattern.col.detach().cpu().numpy().astype(np.int64)
    data = values.detach().cpu().to(torch.float64).numpy()
    for i in range(pattern.nb):
        ptr = crow[i * n:(i + 1) * n + 1]
        s, e = ptr[0], ptr[-1]
        yield ptr - s, col[s:e] - i * n, data[s:e]


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
                batched = pattern.batch is not None
                self._factors = [
                    factorize(self.kind, pattern.shape[-1], *block,
                              name=f"A[{i}]" if batched else "A")
                    for i, block in enumerate(host_blocks(pattern, values))
                ]
                self._key = key
            return self._factors

    def solve(self, pattern: Pattern, values: torch.Tensor, B: torch.Tensor,
              transpose: bool = False) -> torch.Tensor:
        """``op(A)^{-1} B`` for the flat ``B (b*n, p)`` (``op(A) = A^T`` if ``transpose``)."""
        n = pattern.shape[-1]
        Bh = B.detach().cpu().to(torch.float64).numpy()
        X = np.concatenate([F.solve(Bh[i * n:(i + 1) * n], transpose)
                            for i, F in enumerate(self.of(pattern, values))]) if n else Bh
        return torch.from_numpy(np.ascontiguousarray(X)).to(dtype=B.dtype, device=B.device)

    def inverse_transposed(self, pattern: Pattern, values: torch.Tensor) -> torch.Tensor:
        """The flat values of ``A^{-T}`` at A's pattern (each block's, in A's dtype)."""
        n = pattern.shape[-1]
        crow = pattern.crow.detach().cpu()
        rows = torch.repeat_interleave(torch.arange(crow.numel() - 1),
                                       crow[1:] - crow[:-1]).numpy()
        cols = pattern.col.detach().cpu().numpy().astype(np.int64)
        parts = []
        for i, F in enumerate(self.of(pattern, values)):
            s, e = int(crow[i * n]), int(crow[(i + 1) * n])
            # A^{-T}[a, b] = A^{-1}[b, a]
            parts.append(F.inverse_at(cols[s:e] - i * n, rows[s:e] - i * n))
        Z = np.concatenate(parts) if parts else np.zeros(0)
        return torch.from_numpy(Z).to(dtype=values.dtype, device=values.device)
