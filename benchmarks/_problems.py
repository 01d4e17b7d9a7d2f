"""The benchmark's settings and its matrices, built with the library's own generators.

Built-in matrices (nothing is downloaded), all from :class:`torch_api.encoders.PairwiseEncoder`
on a ``(1, k, k, k)`` volume, so a stencil is "every voxel coupled to its neighbours":

- ``general``: the 27-point stencil (radius 1.75 takes the 26 neighbours), off-diagonal values
  uniform in [-1, 1), diagonal 27; at k = 50 it has 125,000 rows and about 3.3M nonzeros, a
  stand-in for SuiteSparse Rothberg/cfd2;
- ``spd``: the SPD 7-point Poisson matrix (6 on the diagonal, -1 to each face neighbour);
- ``lower``: the lower triangle of the 27-point stencil (``upper=False``) with the diagonal 27;
- ``spd_lower``: the lower triangle of the Poisson matrix, diagonal included;
- ``random(density)``: :func:`torch_api.utils.rand_sparse` with a dominant diagonal;
- ``tall``: the 27-point stencil stacked on the identity, ``(2n, n)``: a damped least-squares
  problem ``min ||A x - b||^2 + ||x||^2``, of full column rank whatever ``A`` is.

``--matrix PATH.mtx`` replaces them with a Matrix Market file read by ``scipy.io.mmread``:
``general`` is the matrix itself, ``lower`` its lower triangle with the diagonal replaced by
``1 + sum |row|``, ``spd`` its symmetric part with the same dominant diagonal, ``spd_lower``
that one's lower triangle, ``tall`` the matrix (any shape) stacked on the identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import bridge
from torch_api.encoders import PairwiseEncoder
from torch_api.utils import rand_sparse

LAYOUTS = {"coo": torch.sparse_coo, "csr": torch.sparse_csr}


@dataclass
class Config:
    device: str = "cpu"
    suite: str = "quick"
    dtype: torch.dtype = torch.float32
    index_dtype: torch.dtype = torch.int32  # CSR indices; torch's COO indices are int64
    layouts: tuple = ("coo", "csr")
    rhs: int = 32
    size: int = 16  # grid side k of the built-in matrices
    repeats: int = 5
    budget_s: float = 2.0  # timing budget of one implementation on one case
    min_samples: int = 1  # timed samples taken even past the budget
    slow_s: float = 5.0  # a warm-up call over this: timed by that call alone, memory not measured
    matrix: Path | None = None
    ops: tuple = ()
    out: Path | None = None
    densities: tuple = ()  # random matrices for sparse_mm (full suite)
    scaling_sizes: tuple = ()  # grid sides of the memory-scaling run
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def for_suite(cls, suite: str, **overrides) -> Config:
        base = {
            "quick": dict(size=16, repeats=5, budget_s=1.0, slow_s=2.0),
            "full": dict(size=50, repeats=7, budget_s=8.0, min_samples=3, slow_s=60.0,
                         densities=(1e-4, 1e-3, 1e-2)),
        }[suite]
        base.update({k: v for k, v in overrides.items() if v is not None})
        # memory scaling: grids up to the suite's size; the full suite spans 2 orders of nnz
        factors = (0.4, 0.8, 1.4) if suite == "quick" else (0.2, 0.32, 0.48, 0.68, 1.0)
        base["scaling_sizes"] = tuple(max(3, round(f * base["size"])) for f in factors)
        return cls(suite=suite, **base)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def index_name(self, layout: str) -> str:
        return "int64" if layout == "coo" else str(self.index_dtype).removeprefix("torch.")

    # ---------------------------------------------------------------- matrices, cached per run
    def matrix_for(self, kind: str, layout: str = "csr", size: int | None = None) -> torch.Tensor:
        """``kind`` (see the module docstring) as a torch tensor on ``self.device``."""
        key = (kind, layout, size)
        if key not in self._cache:
            A = self._host_csr(kind, size or self.size)
            self._cache[key] = as_layout(A, layout, self.index_dtype).to(self.device)
        return self._cache[key]

    def problems(self, kind: str, **extra):
        """``(layout, A, B, info)`` for each layout: ``kind``'s matrix, a dense right-hand side
        with A's rows, and the case's description (``extra`` entries after the layout)."""
        for layout in self.layouts:
            A = self.matrix_for(kind, layout)
            B = self.dense(A.shape[0])
            m, n = A.shape
            size = dict(n=n) if m == n else dict(m=m, n=n)
            info = dict(**size, nnz=A._nnz(), rhs=self.rhs, layout=layout, **extra,
                        index_dtype=self.index_name(layout), dtype=self.dtype_name)
            yield layout, A, B, info

    def name_of(self, kind: str, size: int | None = None) -> str:
        if self.matrix is not None:
            return f"{Path(self.matrix).name} ({kind})"
        k = size or self.size
        if kind.startswith("random:"):
            return f"random n={8 * k * k} density={kind.split(':')[1]}"
        names = {"general": "27-point stencil", "spd": "7-point Poisson",
                 "lower": "27-point lower", "spd_lower": "7-point Poisson lower",
                 "tall": "[27-point stencil; I]"}
        return f"{names[kind]} {k}^3"

    def _host_csr(self, kind: str, k: int) -> torch.Tensor:
        if kind == "tall":
            return stack_identity(self._host_csr("general", k))
        if self.matrix is not None:
            return _from_mtx(self.matrix, kind, self.dtype)
        if kind.startswith("random:"):
            n = 8 * k * k  # 2,048 at k = 16; 20,000 at k = 50
            nnz = max(int(float(kind.split(":")[1]) * n * n), n)
            return rand_sparse(
                (n, n), nnz, torch.sparse_csr, indices_dtype=torch.int64,
                values_dtype=self.dtype, well_conditioned=True,
            )
        return stencil(k, kind, self.dtype)

    def dense(self, rows: int, cols: int | None = None, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(rows, cols or self.rhs, generator=g, dtype=torch.float64)
        return x.to(self.dtype).to(self.device)


def stencil(k: int, kind: str, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """A grid matrix of a ``k^3`` volume (CSR, int64), built by the library's PairwiseEncoder."""
    radius, diag_value, upper = {
        "general": (1.75, 27.0, None),
        "lower": (1.75, 27.0, False),
        "spd": (1.0, 6.0, None),
        "spd_lower": (1.0, 6.0, False),
    }[kind]
    enc = PairwiseEncoder(radius, (1, k, k, k), diag=True, upper=upper, layout=torch.sparse_csr)
    shape = (len(enc.offsets), 1, k, k, k)
    if kind.startswith("spd"):
        values = torch.full(shape, -1.0, dtype=torch.float64)
    else:
        g = torch.Generator().manual_seed(seed)
        values = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    values[0] = diag_value  # the zero offset comes first
    return enc(values.to(dtype)).detach()


def stack_identity(A: torch.Tensor) -> torch.Tensor:
    """``[A; I]`` for a CSR ``A (m, n)``: CSR ``(m + n, n)`` with A's index dtype."""
    m, n = A.shape
    crow, col = A.crow_indices(), A.col_indices()
    eye = torch.arange(n, dtype=crow.dtype)
    return torch.sparse_csr_tensor(
        torch.cat([crow, crow[-1] + 1 + eye]),
        torch.cat([col, eye]),
        torch.cat([A.values(), torch.ones(n, dtype=A.dtype)]),
        (m + n, n),
    )


def as_layout(A: torch.Tensor, layout: str, index_dtype: torch.dtype) -> torch.Tensor:
    """A torch CSR matrix as COO (int64) or CSR with ``index_dtype`` indices."""
    if layout == "coo":
        return A.to_sparse_coo().coalesce()
    crow, col = A.crow_indices().to(index_dtype), A.col_indices().to(index_dtype)
    return torch.sparse_csr_tensor(crow, col, A.values(), A.shape)


def _from_mtx(path, kind: str, dtype: torch.dtype) -> torch.Tensor:
    import scipy.io
    import scipy.sparse as sp

    M = scipy.io.mmread(path)
    if not sp.issparse(M):
        M = sp.csr_array(M)
    if np.iscomplexobj(M.data):
        raise ValueError(f"--matrix: {path} holds complex values; the benchmarks take real ones.")
    M = sp.csr_array(M, dtype=np.float64)
    if M.shape[0] != M.shape[1] and kind != "general":
        raise ValueError(
            f"--matrix: {path} is {M.shape[0]}x{M.shape[1]}; a {kind} solve needs a square one."
        )
    if kind in ("lower", "spd", "spd_lower"):
        M = sp.tril(M, -1) if kind == "lower" else (M + M.T) / 2
        M = sp.csr_array(M)
        M.setdiag(0)
        M.eliminate_zeros()
        M = sp.csr_array(M + sp.diags_array(1 + abs(M).sum(axis=1)))
        if kind == "spd_lower":
            M = sp.csr_array(sp.tril(M))
    M.sum_duplicates()
    M.sort_indices()
    M.indptr, M.indices = M.indptr.astype(np.int64), M.indices.astype(np.int64)
    return bridge.to_torch(M, copy=True).to(dtype)
