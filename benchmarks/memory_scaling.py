"""Peak memory of the backward as nnz grows: ``sparse_mm`` and ``sparse_triangular_solve``.

The 27-point stencil (and its lower factor) of ``k^3`` grids for ``k`` in ``cfg.scaling_sizes``
(full suite: 10 to 50, nnz from 2.2e4 to 3.3e6, two orders of magnitude), CSR, ``rhs`` columns.
For torch_api and for torchsparsegradutils 0.2.7 the peak of one backward (forward output held,
inputs included) is measured as in every other benchmark, then fitted by least squares as
``peak = a (nnz + n p) + b``: ``a`` is the bytes per stored entry or dense element, and the
log-log slope of peak against nnz shows the growth is linear. The implementations are the
operation modules' own (:func:`benchmarks.sparse_mm.impls`, ...), nothing is rewritten here.
"""

from __future__ import annotations

import numpy as np

from benchmarks import sparse_mm, triangular_solve
from benchmarks._harness import Case, measure

IMPLS = ("torch_api", "tsgu 0.2.7")
OPS = {"sparse_mm": ("general", sparse_mm), "sparse_triangular_solve": ("lower", triangular_solve)}


def _fit(points: list[dict]) -> dict:
    x = np.array([p["nnz"] + p["n"] * p["rhs"] for p in points], dtype=float)
    y = np.array([p["peak_mb"] for p in points]) * 2**20
    a, b = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - (a * x + b)) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300)
    loglog = np.polyfit(np.log([p["nnz"] for p in points]), np.log(y), 1)[0]
    return {"bytes_per_unit": a, "intercept_mb": b / 2**20, "r2": r2, "loglog_slope": loglog}


def run(cfg, progress) -> list[dict]:
    rows = []
    for op, (kind, mod) in OPS.items():
        points: dict[str, list] = {name: [] for name in IMPLS}
        for k in cfg.scaling_sizes:
            A = cfg.matrix_for(kind, "csr", size=k)
            B = cfg.dense(A.shape[1])
            impls = [i for i in mod.impls(cfg, A, B, "csr") if i.name in IMPLS]
            case = Case(op, f"{cfg.name_of(kind, k)} csr", impls)
            progress(f"memory scaling {op} k={k}")
            results = measure(case, device=cfg.device, repeats=0, budget_s=0)
            for name, res in results.items():
                row = {"kind": "point", "op": op, "impl": name, "k": k, "n": A.shape[0],
                       "nnz": A._nnz(), "rhs": B.shape[1], "status": res.status,
                       "memory_method": res.memory_method}
                if res.ok and res.bwd_peak is not None:
                    row["peak_mb"] = (res.inputs_bytes + res.bwd_peak) / 2**20
                    points[name].append(row)
                rows.append(row)
        for name, pts in points.items():
            if len(pts) >= 2:
                rows.append({"kind": "fit", "op": op, "impl": name, **_fit(pts)})
    return rows
