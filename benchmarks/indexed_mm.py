"""Grouped products: ``gather_mm`` and ``segment_mm`` against the obvious pure-torch ways.

- ``gather_mm`` (sort rows by index, one grouped product, unsort) against
  ``bmm(a[:, None], b[idx_b])``, which copies a ``(D1, D2)`` matrix per row. Target: 13x on CPU.
- ``segment_mm`` against a Python loop of one ``torch.mm`` per segment (few large segments and
  many small ones).

Both forward and forward+backward (gradients for ``a`` and ``b``) are timed, in float32.
"""

from __future__ import annotations

import torch

from benchmarks._timing import timeit
from torch_api import gather_mm, segment_mm


def _bmm_gather(a, b, idx):
    return torch.bmm(a.unsqueeze(1), b[idx]).squeeze(1)


def _loop_segment(a, b, lens):
    out, start = [], 0
    for r, n in enumerate(lens):
        out.append(a[start : start + n] @ b[r])
        start += n
    return torch.cat(out)


def _fwd_bwd(fn, a, b):
    def run():
        out = fn()
        torch.autograd.grad(out.sum(), (a, b))
    return run


def run(device: str, quick: bool) -> list[dict]:
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    g = torch.Generator().manual_seed(0)
    rows: list[dict] = []
    repeat = 3 if quick else 5
    dt = torch.float32

    # ------------------------------------------------------------------ gather_mm vs bmm
    gather_cases = [(2000, 32, 32, 8)] if quick else [(20000, 64, 64, 16), (20000, 64, 64, 256)]
    for N, D1, D2, R in gather_cases:
        a = torch.randn(N, D1, generator=g, dtype=dt).to(dev).requires_grad_()
        b = torch.randn(R, D1, D2, generator=g, dtype=dt).to(dev).requires_grad_()
        idx = torch.randint(0, R, (N,), generator=g).to(dev)
        for mode in ("forward", "forward+backward"):
            if mode == "forward":
                with torch.no_grad():
                    ours = timeit(lambda: gather_mm(a, b, idx), repeat=repeat, sync=sync)
                    base = timeit(lambda: _bmm_gather(a, b, idx), repeat=repeat, sync=sync)
            else:
                ours = timeit(_fwd_bwd(lambda: gather_mm(a, b, idx), a, b), repeat=repeat, sync=sync)
                base = timeit(_fwd_bwd(lambda: _bmm_gather(a, b, idx), a, b), repeat=repeat,
                              sync=sync)
            rows.append({
                "case": f"gather_mm {mode} N={N} D1={D1} D2={D2} R={R} {dt}",
                "ours_ms": ours * 1e3,
                "baseline": "bmm(a[:,None], b[idx_b])",
                "baseline_ms": base * 1e3,
                "speedup": base / ours,
                "target": 13.0 if mode == "forward" and dev.type == "cpu" else None,
            })

    # ------------------------------------------------------------- segment_mm vs a loop
    seg_cases = [(2000, 32, 32, 8)] if quick else [(20000, 64, 64, 16), (20000, 64, 64, 2000)]
    for N, D1, D2, R in seg_cases:
        a = torch.randn(N, D1, generator=g, dtype=dt).to(dev).requires_grad_()
        b = torch.randn(R, D1, D2, generator=g, dtype=dt).to(dev).requires_grad_()
        seglen = torch.bincount(torch.randint(0, R, (N,), generator=g), minlength=R)
        lens = seglen.tolist()
        for mode in ("forward", "forward+backward"):
            if mode == "forward":
                with torch.no_grad():
                    ours = timeit(lambda: segment_mm(a, b, seglen), repeat=repeat, sync=sync)
                    base = timeit(lambda: _loop_segment(a, b, lens), repeat=repeat, sync=sync)
            else:
                ours = timeit(_fwd_bwd(lambda: segment_mm(a, b, seglen), a, b), repeat=repeat,
                              sync=sync)
                base = timeit(_fwd_bwd(lambda: _loop_segment(a, b, lens), a, b), repeat=repeat,
                              sync=sync)
            rows.append({
                "case": f"segment_mm {mode} N={N} D1={D1} D2={D2} R={R} {dt}",
                "ours_ms": ours * 1e3,
                "baseline": "loop of torch.mm per segment",
                "baseline_ms": base * 1e3,
                "speedup": base / ours,
                "target": None,
            })
    for row in rows:
        print(f"   {row['case']}: {row['speedup']:.2f}x vs {row['baseline']}", flush=True)
    return rows
