"""Grouped products: ``gather_mm`` and ``segment_mm`` against the obvious pure-torch ways.

- ``gather_mm`` (sort rows by index, one grouped product, unsort) against
  ``bmm(a[:, None], b[idx_b])``, which copies a ``(D1, D2)`` matrix per row. Target: 13x on CPU.
- ``segment_mm`` against a Python loop of one ``torch.mm`` per segment (few large segments and
  many small ones).

Both forward and forward+backward (gradients for ``a`` and ``b``) are timed, in float32.
"""

from __future__ import annotations

from functools import partial

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
        torch.autograd.grad(fn().sum(), (a, b))

    return run


def _compare(case, ours, base, baseline, a, b, *, repeat, sync, target) -> list[dict]:
    """Time ``ours()`` and ``base()`` (zero-argument callables), forward and forward+backward."""
    rows = []
    for mode in ("forward", "forward+backward"):
        if mode == "forward":
            with torch.no_grad():
                t_ours = timeit(ours, repeat=repeat, warmup=2, sync=sync)
                t_base = timeit(base, repeat=repeat, warmup=2, sync=sync)
        else:
            t_ours = timeit(_fwd_bwd(ours, a, b), repeat=repeat, warmup=2, sync=sync)
            t_base = timeit(_fwd_bwd(base, a, b), repeat=repeat, warmup=2, sync=sync)
        rows.append({
            "case": f"{case.split(' ', 1)[0]} {mode} {case.split(' ', 1)[1]}",
            "ours_ms": t_ours * 1e3,
            "baseline": baseline,
            "baseline_ms": t_base * 1e3,
            "speedup": t_base / t_ours,
            "target": target if mode == "forward" else None,
        })
    return rows


def run(device: str, quick: bool) -> list[dict]:
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    g = torch.Generator().manual_seed(0)
    rows: list[dict] = []
    repeat = 3 if quick else 5
    dt = torch.float32

    gather_cases = [(2000, 32, 32, 8)] if quick else [(16384, 32, 32, 16), (16384, 32, 32, 256)]
    for N, D1, D2, R in gather_cases:
        a = torch.randn(N, D1, generator=g, dtype=dt).to(dev).requires_grad_()
        b = torch.randn(R, D1, D2, generator=g, dtype=dt).to(dev).requires_grad_()
        idx = torch.randint(0, R, (N,), generator=g).to(dev)
        rows += _compare(
            f"gather_mm N={N} D1={D1} D2={D2} R={R} {dt}",
            partial(gather_mm, a, b, idx), partial(_bmm_gather, a, b, idx),
            "bmm(a[:,None], b[idx_b])", a, b, repeat=repeat, sync=sync,
            target=13.0 if dev.type == "cpu" else None,
        )

    seg_cases = [(2000, 32, 32, 8)] if quick else [(16384, 32, 32, 16), (16384, 32, 32, 1024)]
    for N, D1, D2, R in seg_cases:
        a = torch.randn(N, D1, generator=g, dtype=dt).to(dev).requires_grad_()
        b = torch.randn(R, D1, D2, generator=g, dtype=dt).to(dev).requires_grad_()
        seglen = torch.bincount(torch.randint(0, R, (N,), generator=g), minlength=R)
        rows += _compare(
            f"segment_mm N={N} D1={D1} D2={D2} R={R} {dt}",
            partial(segment_mm, a, b, seglen), partial(_loop_segment, a, b, seglen.tolist()),
            "loop of torch.mm per segment", a, b, repeat=repeat, sync=sync, target=None,
        )
    for row in rows:
        print(f"   {row['case']}: {row['speedup']:.2f}x vs {row['baseline']}", flush=True)
    return rows
