"""``sparse_triangular_solve`` forward + backward with the lower factor of the stencil (issue 3).

Problem: L = ``lower(stencil27(k))``: the lower triangle of the 27-point-stencil matrix of a
``k^3`` grid with a dominant diagonal (k = 50: 125,000 rows, 1.7M nonzeros; k = 20 with
``quick``), float32, COO (int64 indices) and CSR (int32 indices); B and the upstream gradient G
are dense ``(n, 32)``. One timed call is ``X = solve(L, B, upper=False)`` and
``torch.autograd.grad(X, (L, B), G)`` (one more triangular solve and an SDDMM).

Compared side by side in one process (minimum over interleaved rounds, as in
``benchmarks.sparse_mm``): ``torch_api`` in steady state
(transposed pattern cached, as in training) and cold (cache emptied before every call), against
torchsparsegradutils 0.2.7 ``sparse_triangular_solve`` (imported lazily; rows skipped if not
installed). Target: speedup >= 2 for COO and CSR. The relative difference between the two
results is reported as a check that both solve the same system.
"""

from __future__ import annotations

from functools import partial

import torch

from benchmarks._problems import lower, stencil27
from benchmarks._timing import timeit_interleaved
from torch_api import sparse_triangular_solve

P = 32
LAYOUTS = {"coo": (torch.sparse_coo, torch.int64), "csr": (torch.sparse_csr, torch.int32)}


def _tsgu():
    try:
        import torchsparsegradutils
    except ImportError:
        return None
    return torchsparsegradutils.sparse_triangular_solve


def _ours_cold(A, B, **kw):
    from torch_api import _pattern

    _pattern._transpose_cache.clear()
    return sparse_triangular_solve(A, B, **kw)


def step(op, A, B, G):
    X = op(A, B, upper=False)
    return (X, *torch.autograd.grad(X, (A, B), G))


def run(device: str, quick: bool) -> list[dict]:
    k = 20 if quick else 50
    n = k**3
    sync = torch.cuda.synchronize if device == "cuda" else None
    repeat = 3 if quick else 7
    tsgu = _tsgu()
    if tsgu is None:
        print(
            "   torchsparsegradutils 0.2.7 is not installed: no baseline rows "
            "(pip install torchsparsegradutils==0.2.7 --no-deps)",
            flush=True,
        )
    g = torch.Generator().manual_seed(1)
    B0 = torch.randn(n, P, generator=g)
    G = torch.randn(n, P, generator=g).to(device)
    rows = []
    for lname, (layout, index_dtype) in LAYOUTS.items():
        L = lower(stencil27(k, torch.float32, layout, index_dtype, seed=0))
        L = L.to(device).requires_grad_()
        B = B0.to(device).requires_grad_()
        ops = {"ours": sparse_triangular_solve, "ours_cold": _ours_cold}
        if tsgu is not None:
            ops["tsgu"] = tsgu
        fns = {name: partial(step, op, L, B, G) for name, op in ops.items()}
        times = timeit_interleaved(fns, repeat=repeat, sync=sync, slow=("tsgu",))
        row = {
            "case": f"triangular_solve lower fwd+bwd {lname} n={n} nnz={L._nnz()} p={P} float32",
            "threads": torch.get_num_threads(),
            "ours_ms": times["ours"] * 1e3,
            "ours_cold_ms": times["ours_cold"] * 1e3,
        }
        if tsgu is not None:
            X, dL, dB = step(sparse_triangular_solve, L, B, G)
            Xt, dLt, dBt = step(tsgu, L, B, G)
            rel = float(torch.linalg.vector_norm(X - Xt) / torch.linalg.vector_norm(Xt))
            row.update(
                {
                    "baseline": "torchsparsegradutils 0.2.7 sparse_triangular_solve",
                    "baseline_ms": times["tsgu"] * 1e3,
                    "speedup": times["tsgu"] / times["ours"],
                    "speedup_cold": times["tsgu"] / times["ours_cold"],
                    "target": "speedup >= 2",
                    "ok": times["tsgu"] / times["ours"] >= 2.0,
                    "X_rel_diff_vs_baseline": rel,
                }
            )
        rows.append(row)
    return rows
