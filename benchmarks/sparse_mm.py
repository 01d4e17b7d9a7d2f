"""``sparse_mm`` forward + backward on the 27-point-stencil matrix (issue 3).

Problem: A = the 27-point-stencil matrix of a ``k^3`` grid (k = 50: 125,000 rows, 3.3M
nonzeros; k = 20 with ``quick``) with random values, float32, COO (int64 indices) and CSR (int32
indices); B and the upstream gradient G are dense ``(n, 32)``. One timed call is the forward
``Y = op(A, B)`` and the backward ``torch.autograd.grad(Y, (A, B), G)``.

Compared side by side in one process (minimum over interleaved rounds: see
:func:`timeit_interleaved`):
- ``torch_api.sparse_mm``: steady state (the transposed pattern of A is cached from the previous
  call, as in training) and cold (the cache is emptied before every call);
- torchsparsegradutils 0.2.7 ``sparse_mm`` (imported lazily; rows skipped if not installed).
  Target: speedup >= 10 for COO and CSR;
- ``torch.sparse.mm``'s own autograd, CSR only (its COO backward allocates a dense n x n
  gradient). Target: speedup >= 1.

Peak memory of the backward (target <= 1.5): on CPU, each op runs in a fresh subprocess in
which glibc malloc serves every block above 128 KiB with mmap and MKL's buffer pool is off
(``MALLOC_MMAP_THRESHOLD_=131072``, ``MKL_DISABLE_FAST_MM=1``), so the resident set follows the
live allocations; after one warm-up step and the forward, the peak RSS (``VmHWM``) is reset
through ``/proc/self/clear_refs`` and read after the backward. Reported ratio:
``(bytes(A) + bytes(B) + peak RSS growth during the backward) / bytes(A, B, dA, dB)``, storage
shared between A and dA (the gradient reuses A's index tensors) counted once. On CUDA:
``torch.cuda.max_memory_allocated`` growth over the backward, same ratio.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import torch

from benchmarks._problems import stencil27
from benchmarks._timing import timeit_interleaved
from torch_api import sparse_mm

P = 32
LAYOUTS = {"coo": (torch.sparse_coo, torch.int64), "csr": (torch.sparse_csr, torch.int32)}
ROOT = Path(__file__).resolve().parent.parent


def _tsgu():
    try:
        import torchsparsegradutils
    except ImportError:
        return None
    return torchsparsegradutils.sparse_mm


def _ours_cold(A, B):
    from torch_api import _pattern

    _pattern._transpose_cache.clear()
    return sparse_mm(A, B)


def _ops(layout_name: str) -> dict:
    ops = {"ours": sparse_mm, "ours_cold": _ours_cold}
    tsgu = _tsgu()
    if tsgu is not None:
        ops["tsgu"] = tsgu
    if layout_name == "csr":
        ops["torch"] = torch.sparse.mm
    return ops


def problem(k: int, layout_name: str, device: str):
    layout, index_dtype = LAYOUTS[layout_name]
    A = stencil27(k, torch.float32, layout, index_dtype, seed=0).to(device).requires_grad_()
    g = torch.Generator().manual_seed(1)
    B = torch.randn(k**3, P, generator=g).to(device).requires_grad_()
    G = torch.randn(k**3, P, generator=g).to(device)
    return A, B, G


def step(op, A, B, G):
    Y = op(A, B)
    return torch.autograd.grad(Y, (A, B), G)


def _storages(*tensors) -> int:
    """Bytes of the distinct storages behind dense tensors and the parts of sparse ones."""
    seen, total = set(), 0
    for t in tensors:
        if t.layout == torch.sparse_coo:
            parts = (t._indices(), t._values())
        elif t.layout == torch.sparse_csr:
            parts = (t.crow_indices(), t.col_indices(), t.values())
        else:
            parts = (t,)
        for p in parts:
            key = p.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += p.untyped_storage().nbytes()
    return total


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def backward_memory(op, A, B, G, device: str) -> dict:
    """Peak memory of one backward, measured in this process (see the module docstring)."""
    step(op, A, B, G)  # warm-up: caches, lazy initialisation
    Y = op(A, B)
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        dA, dB = torch.autograd.grad(Y, (A, B), G)
        torch.cuda.synchronize()
        growth = torch.cuda.max_memory_allocated() - before
        method = "torch.cuda.max_memory_allocated"
    else:
        before = _rss_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        dA, dB = torch.autograd.grad(Y, (A, B), G)
        growth = (_rss_kib("VmHWM") - before) * 1024
        method = "RSS high-water mark (mmap threshold 128 KiB, MKL fast MM off)"
    reference = _storages(A, B, dA, dB)
    used = _storages(A, B) + growth
    return {
        "peak_bytes": used,
        "reference_bytes": reference,
        "ratio": used / reference,
        "method": method,
    }


def _memory_in_subprocess(k: int, layout_name: str, op_name: str) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MKL_DISABLE_FAST_MM="1")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.sparse_mm", "--memory", str(k), layout_name, op_name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(device: str, quick: bool) -> list[dict]:
    k = 20 if quick else 50
    n = k**3
    sync = torch.cuda.synchronize if device == "cuda" else None
    repeat = 3 if quick else 7
    rows = []
    if _tsgu() is None:
        print(
            "   torchsparsegradutils 0.2.7 is not installed: no baseline rows "
            "(pip install torchsparsegradutils==0.2.7 --no-deps)",
            flush=True,
        )
    for lname in LAYOUTS:
        A, B, G = problem(k, lname, device)
        ops = _ops(lname)
        fns = {name: partial(step, op, A, B, G) for name, op in ops.items()}
        times = timeit_interleaved(fns, repeat=repeat, sync=sync, slow=("tsgu",))
        if device == "cuda":
            mem = {
                name: backward_memory(op, A, B, G, device)
                for name, op in ops.items()
                if name != "ours_cold"
            }
        else:
            mem = {
                name: _memory_in_subprocess(k, lname, name) for name in ops if name != "ours_cold"
            }
        base = {
            "case": f"sparse_mm fwd+bwd {lname} n={n} nnz={A._nnz()} p={P} float32",
            "threads": torch.get_num_threads(),
            "ours_ms": times["ours"] * 1e3,
            "ours_cold_ms": times["ours_cold"] * 1e3,
            "ours_bwd_peak_ratio": mem["ours"]["ratio"],
            "ours_bwd_peak_MB": mem["ours"]["peak_bytes"] / 2**20,
            "memory_method": mem["ours"]["method"],
        }
        rows.append(
            {**base, "memory_target": "ratio <= 1.5", "memory_ok": mem["ours"]["ratio"] <= 1.5}
        )
        for name, label, target in (
            ("tsgu", "torchsparsegradutils 0.2.7 sparse_mm", 10.0),
            ("torch", "torch.sparse.mm autograd (CSR)", 1.0),
        ):
            if name not in times:
                continue
            rows.append(
                {
                    "case": base["case"],
                    "baseline": label,
                    "baseline_ms": times[name] * 1e3,
                    "speedup": times[name] / times["ours"],
                    "speedup_cold": times[name] / times["ours_cold"],
                    "target": f"speedup >= {target:g}",
                    "ok": times[name] / times["ours"] >= target,
                    "baseline_bwd_peak_ratio": mem[name]["ratio"],
                }
            )
        del A, B, G
    return rows


def _main(argv: list[str]) -> None:
    if argv[:1] != ["--memory"]:
        raise SystemExit("usage: python -m benchmarks.sparse_mm --memory K LAYOUT OP")
    k, lname, name = int(argv[1]), argv[2], argv[3]
    A, B, G = problem(k, lname, "cpu")
    print(json.dumps(backward_memory(_ops(lname)[name], A, B, G, "cpu")))


if __name__ == "__main__":
    _main(sys.argv[1:])
