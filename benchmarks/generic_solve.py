"""``sparse_generic_solve`` with CG on the SPD 3-D Poisson matrix (issue 3).

Forward + backward (gradients for A and B) of ``sparse_generic_solve(A, B, solve=linear_cg)``
against torchsparsegradutils 0.2.7's own ``sparse_generic_solve`` with its ``linear_cg``, at the
same CG tolerance, on the 7-point Poisson matrix of a ``k^3`` grid (k = 50: n = 125,000; k = 20
with ``quick``), float32, p = 32 right-hand sides, COO and CSR. Target: speedup >= 1.

The gradients are checked against a direct solve: the Dirichlet Poisson matrix is diagonalised
by the orthonormal 3-D type-I discrete sine transform, so ``A^{-1} G`` is computed exactly (in
float64) with two transforms. Reported: relative errors of X, dB and dA (at A's nonzeros).
"""

from __future__ import annotations

import math
import statistics
import time
import warnings

import numpy as np
import torch

from benchmarks._problems import poisson3d
from torch_api import sparse_generic_solve
from torch_api.utils import LinearCGSettings, linear_cg

P = 32
TOL = 1e-5


def poisson_direct_solve(k: int, B: torch.Tensor) -> torch.Tensor:
    """``A^{-1} B`` for ``A = poisson3d(k)`` (float64, exact up to rounding) by a 3-D DST-I."""
    from scipy.fft import dstn

    lam1 = 2 - 2 * np.cos(np.pi * np.arange(1, k + 1) / (k + 1))
    lam = lam1[:, None, None] + lam1[None, :, None] + lam1[None, None, :]
    Bg = B.detach().cpu().double().numpy().reshape(k, k, k, -1)
    Y = dstn(Bg, type=1, axes=(0, 1, 2), norm="ortho") / lam[..., None]
    X = dstn(Y, type=1, axes=(0, 1, 2), norm="ortho")
    return torch.from_numpy(X.reshape(k**3, -1))


def _interleaved(fns, repeat: int, sync) -> list[float]:
    """Median seconds of each zero-argument callable, timed in alternation (so that load from
    other processes hits every contender alike)."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            if sync:
                sync()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def _fwd_bwd(solve_fn, A, B, G):
    def run():
        X = solve_fn(A, B)
        dA, dB = torch.autograd.grad((X * G).sum(), (A, B))
        return X, dA, dB

    return run


def _grad_errors(k, A, B, G, X, dA, dB) -> dict:
    """Relative errors against the direct solve: X, dB = A^{-1} G, dA = -dB X^T at the pattern."""
    Xd = poisson_direct_solve(k, B)
    dBd = poisson_direct_solve(k, G)  # A is symmetric: A^{-T} G = A^{-1} G
    S = A.detach().cpu()
    if S.layout == torch.sparse_coo:
        S = S.coalesce()
        rows, cols = S.indices()
        got = dA.detach().cpu().coalesce().values()
    else:
        crow, cols = S.crow_indices().long(), S.col_indices().long()
        rows = torch.repeat_interleave(torch.arange(S.shape[0]), crow[1:] - crow[:-1])
        got = dA.detach().cpu().values()
    want = -(dBd[rows] * Xd[cols.long()]).sum(1)
    return {"X_rel_err": _rel(X, Xd), "dB_rel_err": _rel(dB, dBd), "dA_rel_err": _rel(got, want)}


def run(device: str, quick: bool) -> list[dict]:
    k = 20 if quick else 50
    n = k**3
    repeat = 3
    sync = torch.cuda.synchronize if device == "cuda" else None
    try:
        import torchsparsegradutils as tsgu
        from torchsparsegradutils.utils import LinearCGSettings as TsguSettings
        from torchsparsegradutils.utils import linear_cg as tsgu_cg
    except ImportError:
        tsgu = None
        print(
            "   torchsparsegradutils 0.2.7 is not installed: no baseline rows "
            "(pip install torchsparsegradutils==0.2.7 --no-deps)",
            flush=True,
        )

    g = torch.Generator().manual_seed(0)
    B0 = torch.randn(n, P, generator=g).to(device)
    G = torch.randn(n, P, generator=g).to(device)
    ours_settings = LinearCGSettings(cg_tolerance=TOL)

    def ours(A, B):
        return sparse_generic_solve(A, B, solve=linear_cg, settings=ours_settings)

    if tsgu is not None:
        theirs_settings = TsguSettings(cg_tolerance=TOL)

        def theirs(A, B):
            return tsgu.sparse_generic_solve(A, B, solve=tsgu_cg, settings=theirs_settings)

    rows = []
    for layout, index_dtype in ((torch.sparse_csr, torch.int32), (torch.sparse_coo, torch.int64)):
        lname = "csr int32" if layout == torch.sparse_csr else "coo int64"
        A = poisson3d(k, torch.float32, layout, index_dtype).to(device).requires_grad_()
        B = B0.clone().requires_grad_()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            X, dA, dB = _fwd_bwd(ours, A, B, G)()
        row = {
            "case": f"generic_solve linear_cg fwd+bwd {lname} n={n} p={P} tol={TOL:g}",
            "ours_converged": not any("did not converge" in str(w.message) for w in caught),
            "ours_warnings": "; ".join(str(w.message)[:80] for w in caught) or None,
            **_grad_errors(k, A, B, G, X, dA, dB),
        }
        if tsgu is None:
            (row["ours_s"],) = _interleaved([_fwd_bwd(ours, A, B, G)], repeat, sync)
            row["baseline"] = "skipped: torchsparsegradutils 0.2.7 not installed"
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Xt, dAt, dBt = _fwd_bwd(theirs, A, B, G)()
                row["ours_s"], t = _interleaved(
                    [_fwd_bwd(ours, A, B, G), _fwd_bwd(theirs, A, B, G)], repeat, sync
                )
            errs = _grad_errors(k, A, B, G, Xt, dAt, dBt)
            row.update(
                {
                    "baseline": "torchsparsegradutils 0.2.7 sparse_generic_solve(linear_cg)",
                    "baseline_s": t,
                    "speedup": t / row["ours_s"],
                    "baseline_dA_rel_err": errs["dA_rel_err"],
                    "target": "speedup >= 1.0; gradients agree with the direct solve",
                }
            )
        ok = max(row["dA_rel_err"], row["dB_rel_err"]) < math.sqrt(TOL)
        row["grads_agree"] = ok
        rows.append(row)
    return rows
