"""Peak memory of one call, bytes of inputs, and waiting for asynchronous results.

CPU (Linux): the process's resident set. ``python -m benchmarks`` runs with glibc's mmap threshold
fixed at 128 KiB and MKL's buffer pool off (``MALLOC_MMAP_THRESHOLD_``, ``MKL_DISABLE_FAST_MM``,
set by ``__main__`` for its own process only), so every large buffer, torch's, XLA's or SciPy's,
is mapped when allocated and unmapped when freed and the resident set follows the live
allocations. Before the call the peak-RSS mark is reset (``/proc/self/clear_refs`` <- 5); the
call's peak is ``VmHWM - VmRSS(before)``.

CUDA: ``torch.cuda.max_memory_allocated`` growth for torch and SciPy-free runners; for a jitted
JAX runner XLA's compiled memory analysis (its allocator's peak cannot be reset).

The measured calls are timed too (after the warm-up, like every timed call): a slow baseline
then needs no further round to have a time.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CPU_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MKL_DISABLE_FAST_MM": "1"}


def block(out):
    """Wait for every asynchronous result in ``out`` (JAX arrays, CUDA tensors); returns it."""
    jax = sys.modules.get("jax")
    cuda = False
    stack = [out]
    while stack:
        x = stack.pop()
        if isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, torch.Tensor):
            cuda = cuda or x.is_cuda
        elif jax is not None and isinstance(x, jax.Array):
            x.block_until_ready()
        elif hasattr(x, "indices") and hasattr(x, "data"):  # BCOO / BCSR results
            stack.extend((x.data, x.indices))
    if cuda:
        torch.cuda.synchronize()
    return out


def _parts(x):
    """The arrays behind a dense or sparse array of any of the frameworks."""
    if isinstance(x, torch.Tensor):
        if x.layout == torch.sparse_coo:
            return [x._indices(), x._values()]
        if x.layout == torch.sparse_csr:
            return [x.crow_indices(), x.col_indices(), x.values()]
        return [x]
    if hasattr(x, "indptr") and hasattr(x, "indices") and hasattr(x, "data"):  # BCSR, SciPy CSR
        return [x.data, x.indices, x.indptr]
    if hasattr(x, "indices") and hasattr(x, "data") and hasattr(x, "nse"):  # BCOO
        return [x.data, x.indices]
    if hasattr(x, "row") and hasattr(x, "col") and hasattr(x, "data"):  # SciPy COO
        return [x.data, x.row, x.col]
    return [x]


def nbytes(tree) -> int:
    """Bytes of the distinct buffers in ``tree`` (storage shared between tensors counted once)."""
    seen, total = set(), 0
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, (tuple, list)):
            stack.extend(x)
            continue
        if isinstance(x, dict):
            stack.extend(x.values())
            continue
        for p in _parts(x):
            if isinstance(p, torch.Tensor):
                key, size = p.untyped_storage().data_ptr(), p.untyped_storage().nbytes()
            elif isinstance(p, np.ndarray):
                base = p if p.base is None else p.base
                key, size = id(base), getattr(base, "nbytes", p.nbytes)
            elif hasattr(p, "nbytes"):
                key, size = id(p), int(p.nbytes)
            else:
                continue
            if key not in seen:
                seen.add(key)
                total += size
    return total


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def rss_available() -> bool:
    """Whether the resident-set method works here (Linux, peak mark resettable)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_kib("VmHWM")
        return True
    except OSError:
        return False


def cpu_method() -> str:
    if not rss_available():
        return "unavailable (needs Linux /proc/self/clear_refs)"
    tuned = all(os.environ.get(k) == v for k, v in CPU_ENV.items())
    return "RSS high-water mark" + ("" if tuned else " (allocator not tuned: a lower bound)")


def _cpu_peak(fn) -> tuple[object, int | None, float]:
    gc.collect()
    try:
        before = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        out, seconds = timed_call(fn)
        return out, None, seconds
    out, seconds = timed_call(fn)
    return out, max(_status_kib("VmHWM") - before, 0) * 1024, seconds


def _cuda_peak(fn) -> tuple[object, int, float]:
    gc.collect()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out, seconds = timed_call(fn)
    return out, torch.cuda.max_memory_allocated() - before, seconds


def timed_call(fn) -> tuple[object, float]:
    """``fn()`` with its asynchronous results waited for, and the seconds it took."""
    t0 = time.perf_counter()
    out = block(fn())
    return out, time.perf_counter() - t0


@dataclass
class Peaks:
    """Peak growth of one runner's calls (bytes, None where not measured), how they were
    measured, and the seconds the measured calls took (timing samples like any other)."""

    forward: int | None
    backward: int | None
    step: int | None
    method: str
    forward_s: float | None = None
    step_s: float | None = None


def peaks(runner, device: str) -> Peaks:
    """``forward``, ``backward`` (forward output held) and ``forward + backward`` peaks."""
    if device == "cuda" and runner.xla_bytes is not None:
        x = runner.xla_bytes
        return Peaks(x.get("forward"), None, x.get("step"), "XLA compiled memory analysis")
    peak, method = (_cuda_peak, "torch.cuda.max_memory_allocated") if device == "cuda" else (
        _cpu_peak,
        cpu_method(),
    )
    out, fwd, fwd_s = peak(runner.forward)
    bwd = step = step_s = None
    if runner.backward is not None:
        _, bwd, _ = peak(lambda: runner.backward(out))
    out = None  # the forward output is released before the fused step
    if runner.differentiable:
        _, step, step_s = peak(runner.forward_backward)
    return Peaks(fwd, bwd, step, method, fwd_s, step_s)


def available_bytes(device: str) -> int:
    """Memory free for a new allocation on ``device``."""
    if device == "cuda":
        return torch.cuda.mem_get_info()[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**40  # unknown: let the run itself fail and be recorded
