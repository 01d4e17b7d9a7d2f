"""The one table of cross-framework cases, and the machinery that runs a case in each frontend.

A case fixes an operation, a layout, a dtype, a batch, a right-hand-side shape and a sparsity
pattern. Its inputs are built once in torch (float64 master values from a fixed seed, then cast),
converted with ``bridge`` to JAX, and each frontend differentiates ``sum(W * op(A, B))`` with
respect to the sparse argument's stored values (one gradient per stored entry, duplicates
included) and the dense argument. The dense reference runs the same operation on the densified
matrix with torch's dense autograd in float64 and reads its gradient at the stored entries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

# ------------------------------------------------------------------------------- the table
LAYOUTS = ("coo", "csr")
DTYPES = ("float32", "float64")
BATCHES = (None, 3)
RHS = ("vector", 4)  # B (n,) or (n, 4)
# Patterns: random; empty rows and columns; a single stored entry per matrix (per row for
# square solves, which must stay invertible); duplicate COO entries (COO only).
PATTERNS = ("random", "empty_rows_cols", "single", "duplicates")

# Relative-error bounds (stated here, used by every test).
DIRECT_RTOL = {"float64": 1e-10, "float32": 1e-4}
SOLVER_TOL = {"float64": 1e-12, "float32": 1e-6}


@dataclass(frozen=True)
class Case:
    op: str
    layout: str
    dtype: str
    batch: int | None
    rhs: str | int
    pattern: str

    @property
    def id(self) -> str:
        b = "b3" if self.batch else "2d"
        return f"{self.op}-{self.layout}-{self.dtype}-{b}-rhs{self.rhs}-{self.pattern}"

    @property
    def torch_dtype(self):
        return getattr(torch, self.dtype)


def cases(op: str, *, square: bool, batches=BATCHES, rhs=RHS, patterns=PATTERNS) -> list[Case]:
    out = []
    for layout, dtype, batch, r, pat in itertools.product(LAYOUTS, DTYPES, batches, rhs, patterns):
        if pat == "duplicates" and layout != "coo":
            continue
        if pat == "empty_rows_cols" and square:  # a square solve needs every row and column
            continue
        out.append(Case(op, layout, dtype, batch, r, pat))
    return out


def params(case_list):
    import pytest

    return [pytest.param(c, id=c.id) for c in case_list]


# --------------------------------------------------------------------------- the inputs
@dataclass
class Inputs:
    """One case's inputs in torch: stored entries (duplicates allowed) and the dense operand."""

    indices: torch.Tensor  # (2 or 3, nnz) int64 stored positions (COO order as stored)
    values: torch.Tensor  # (nnz,) float64 master values
    shape: tuple[int, ...]
    B: torch.Tensor  # float64 master
    W: torch.Tensor  # float64 weights of the scalar loss sum(W * out)

    def dense(self) -> torch.Tensor:
        return torch.sparse_coo_tensor(self.indices, self.values, self.shape).to_dense()


def _entries(D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    idx = D.nonzero().T.contiguous()
    return idx, D[tuple(idx)]


def _mask(case: Case, n: int, m: int, kind: str, g) -> torch.Tensor:
    """The stored pattern of one matrix (the diagonal included for invertible kinds)."""
    if case.pattern == "single":
        mask = torch.zeros(n, m, dtype=torch.bool)
        if kind == "rect":
            mask[n // 2, m // 3] = True
    else:
        mask = torch.zeros(n * m, dtype=torch.bool)
        mask[torch.randperm(n * m, generator=g)[: int(0.3 * n * m)]] = True
        mask = mask.reshape(n, m)
    if case.pattern == "empty_rows_cols":
        mask[1] = False
        mask[:, 2] = False
    if kind.endswith("lower"):
        mask = torch.tril(mask, -1)
    elif kind.endswith("upper"):
        mask = torch.triu(mask, 1)
    elif kind == "spd":
        mask = mask | mask.T
    if kind in ("general", "spd", "lower", "upper"):
        mask |= torch.eye(n, dtype=torch.bool)
    return mask


def make_matrix(case: Case, n: int, m: int, kind: str, seed: int = 0) -> torch.Tensor:
    """A dense float64 matrix ``(n, m)`` or ``(b, n, m)`` whose nonzeros are the pattern.

    ``kind``: "rect" (any), "general"/"spd" (invertible, diagonally dominant), "lower"/"upper"
    (triangular with a dominant diagonal), "strict-lower"/"strict-upper" (no diagonal).
    Batch items have different patterns with equal entry counts (torch's batched CSR needs
    that); SPD items share one symmetric pattern.
    """
    g = torch.Generator().manual_seed(seed)
    masks = [_mask(case, n, m, kind, g) for _ in range(case.batch or 1)]
    if kind == "spd":
        masks = [masks[0]] * len(masks)
    k = min(int(mk.sum()) for mk in masks)
    items = []
    for mk in masks:
        extra = int(mk.sum()) - k
        if extra:  # drop random off-diagonal entries down to the common count
            off = (mk & ~torch.eye(n, m, dtype=torch.bool)).nonzero()
            drop = off[torch.randperm(len(off), generator=g)[:extra]]
            mk = mk.clone()
            mk[drop[:, 0], drop[:, 1]] = False
        D = torch.randn(n, m, generator=g, dtype=torch.float64) * mk
        if kind == "spd":
            D = torch.triu(D) + torch.triu(D, 1).T
        if kind in ("general", "spd", "lower", "upper"):
            D.fill_diagonal_(0.0)
            D += torch.diag(D.abs().sum(1) + D.abs().sum(0) + 1.0)
        items.append(D)
    return torch.stack(items) if case.batch else items[0]


def make_inputs(case: Case, D: torch.Tensor, b_rows: int, seed: int = 1) -> Inputs:
    g = torch.Generator().manual_seed(seed)
    idx, vals = _entries(D)
    if case.pattern == "duplicates" and vals.numel() > 1:
        # split the first few entries into two stored duplicates that sum to the value
        k = max(1, vals.numel() // 4)
        part = torch.rand(k, generator=g, dtype=torch.float64)
        idx = torch.cat([idx, idx[:, :k]], dim=1)
        vals = torch.cat([vals[:k] * part, vals[k:], vals[:k] * (1 - part)])
        perm = torch.randperm(vals.numel(), generator=g)
        idx, vals = idx[:, perm], vals[perm]
    lead = (case.batch,) if case.batch else ()
    tail = () if case.rhs == "vector" else (case.rhs,)
    B = torch.randn(*lead, b_rows, *tail, generator=g, dtype=torch.float64)
    return Inputs(idx, vals, tuple(D.shape), B, W=None)  # W set by the runner (output shape)


def torch_sparse(inp: Inputs, case: Case, values: torch.Tensor) -> torch.Tensor:
    """The case's sparse matrix in torch on ``values`` (stored in ``inp.indices`` order, which
    is also the order torch stores them in: row-major, or as given for duplicate COO)."""
    A = torch.sparse_coo_tensor(inp.indices, values, inp.shape)
    if case.layout == "coo":
        return A if case.pattern == "duplicates" else A.coalesce()
    from torch_api.utils import convert_coo_to_csr

    return convert_coo_to_csr(A.coalesce())


def rel_err(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = max(np.linalg.norm(b), 1e-300)
    return float(np.linalg.norm(a - b) / scale)
