"""The hub of the sparse converters: a sparse input's components as torch tensors.

See :mod:`bridge._sparse` for how readers and writers use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._dense import convert


@dataclass
class Hub:
    layout: str  # "coo" or "csr"
    shape: tuple[int, ...]
    values: torch.Tensor  # COO: (nnz, *dense); CSR: (*batch, nnz, *dense)
    index: tuple[torch.Tensor, ...]  # COO: (indices (n_sparse, nnz),); CSR: (crow, col)
    canonical: bool | None = None  # None: not known yet, checked on demand

    def is_canonical(self) -> bool:
        if self.canonical is None:
            check = _coo_canonical if self.layout == "coo" else _csr_canonical
            self.canonical = bool(check(*self.index))
        return self.canonical


def _coo_canonical(indices: torch.Tensor) -> bool:
    """Columns of ``indices`` strictly increasing in lexicographic (row-major) order."""
    if indices.shape[1] < 2:
        return True
    diff = indices[:, 1:].long() - indices[:, :-1].long()
    first = (diff != 0).int().argmax(dim=0, keepdim=True)
    return bool((diff.gather(0, first) > 0).all())


def _csr_canonical(crow: torch.Tensor, col: torch.Tensor) -> bool:
    """Column indices sorted and distinct within every row (batched too)."""
    nnz = col.shape[-1]
    if nnz < 2:
        return True
    starts = torch.zeros(*col.shape[:-1], nnz + 1, dtype=torch.bool, device=col.device)
    starts.scatter_(-1, crow.long(), True)
    return bool(((col[..., 1:] > col[..., :-1]) | starts[..., 1:nnz]).all())


def _component(x, name: str, copy) -> torch.Tensor:
    return convert(x, "torch", copy=copy, name=name, fn="bridge")
