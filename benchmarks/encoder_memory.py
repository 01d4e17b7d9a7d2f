"""Encoder -> SparseMultivariateNormal -> rsample -> backward: CSR against COO, memory and time.

The pipeline: ``PairwiseEncoder(radius 2)`` on a ``(4, 32, 32, 32)`` volume (quick: ``(2, 12, 12,
12)``) builds a lower-triangular factor from per-offset values (requires_grad), which
parameterises a ``SparseMultivariateNormal``; one reparameterised sample's weighted sum is
backpropagated to the values. Two parameterisations: LL^T covariance (``scale_tril``, products)
and LDL^T precision (``precision_tril`` + ``diagonal``, transposed triangular solves).

Method. Each (parameterisation, layout) runs in a fresh subprocess, so no allocator or cache
state is shared. Every kernel is first run once on a tiny volume; then the peak memory that ONE
forward+backward adds to the memory held before it is measured:

- CPU (Linux): glibc's ``M_MMAP_THRESHOLD`` is fixed at 64 KiB so freed buffers leave the
  resident set; the kernel's peak-RSS mark is reset (``/proc/self/clear_refs`` <- 5) before the
  step and ``VmHWM - VmRSS(before)`` read from ``/proc/self/status`` after it.
- CUDA: ``torch.cuda.max_memory_allocated()`` during the step minus the memory allocated before.

Then the median time of further steps. Target: CSR peak and time <= 1.2x COO's (the original's
CSR path costs 2-3x in the backward).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TARGET = 1.2
PARAMS = ("scale_llt", "precision_ldlt")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> int:
    """Reset the peak RSS (VmHWM) to the current RSS; returns the current RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return 1024 * _status_kib("VmRSS")


def _peak_rss() -> int:
    return 1024 * _status_kib("VmHWM")


def _child(spec: dict) -> dict:
    import ctypes
    import time
    import warnings

    import torch

    from torch_api.distributions import SparseMultivariateNormal
    from torch_api.encoders import PairwiseEncoder

    warnings.simplefilter("ignore")
    if spec["device"] == "cpu":
        # buffers above 64 KiB are mmap-ed and unmapped on free, so RSS follows live memory
        ctypes.CDLL(None).mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD (fixed, not adaptive)
    dev = torch.device(spec["device"])
    shape, param = tuple(spec["shape"]), spec["param"]
    layout = torch.sparse_coo if spec["layout"] == "coo" else torch.sparse_csr
    llt = param == "scale_llt"
    key = "scale_tril" if llt else "precision_tril"

    def setup(shape):
        enc = PairwiseEncoder(spec["radius"], shape, diag=llt, upper=False, layout=layout).to(dev)
        values = 0.05 * torch.randn(len(enc.offsets), *shape, dtype=torch.float32, device=dev)
        if llt:
            values[0] = 1.0  # the zero offset comes first: a positive diagonal
        values.requires_grad_()
        S = enc.volume_numel
        loc = torch.zeros(S, dtype=torch.float32, device=dev)
        D = None if llt else torch.ones(S, dtype=torch.float32, device=dev)

        def step():
            A = enc(values)
            dist = SparseMultivariateNormal(loc, diagonal=D, **{key: A})
            x = dist.rsample((spec["samples"],))
            (x * x).sum().backward()
            values.grad = None
            return A._nnz()

        return step

    torch.manual_seed(0)
    setup((1, 4, 4, 4))()  # load every kernel and lazy import on a tiny volume first
    step = setup(shape)

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        nnz = step()
        sync()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        base = _reset_peak_rss()
        nnz = step()
        peak = _peak_rss() - base
    times = []
    for _ in range(spec["repeat"]):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"nnz": nnz, "peak_mb": peak / 2**20, "time_ms": 1e3 * times[len(times) // 2]}


def _spawn(spec: dict) -> dict:
    root = Path(__file__).resolve().parent.parent
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.encoder_memory", json.dumps(spec)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"encoder_memory child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(device: str, quick: bool) -> list[dict]:
    shape = (2, 12, 12, 12) if quick else (4, 32, 32, 32)
    rows = []
    for param in PARAMS:
        got = {}
        for layout in ("coo", "csr"):
            spec = {
                "device": device,
                "shape": shape,
                "radius": 2,
                "param": param,
                "layout": layout,
                "samples": 1,
                "repeat": 3 if quick else 5,
            }
            got[layout] = _spawn(spec)
            rows.append({"case": f"{param} {layout} {shape} r=2", **got[layout]})
        rows.append(
            {
                "case": f"{param} csr/coo {shape} r=2",
                "peak_ratio": got["csr"]["peak_mb"] / max(got["coo"]["peak_mb"], 1e-9),
                "time_ratio": got["csr"]["time_ms"] / got["coo"]["time_ms"],
                "target": TARGET,
            }
        )
    return rows


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
