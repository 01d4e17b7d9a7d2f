"""Peak memory of one call, bytes of inputs, and waiting for asynchronous results.

CPU (Linux): the process's resident set. While a call's memory is measured, glibc's mmap
threshold is fixed at 128 KiB (``mallopt``) and freed heap pages are returned first
(``malloc_trim``), so every large buffer, torch's, XLA's or SciPy's, is mapped when allocated and
unmapped when freed and the resident set follows the live allocations; MKL's buffer pool is off
(``MKL_DISABLE_FAST_MM``, set by ``__main__`` for its own process only). The peak-RSS mark is
reset before the call (``/proc/self/clear_refs`` <- 5) and the call's peak is
``VmHWM - VmRSS(before)``. Outside these calls the allocator is left to keep large buffers, as a
user's process does: mapping a fresh buffer for every temporary makes iterative solvers up to
2.5x slower, so the measured calls are never timing samples.

CUDA: ``torch.cuda.max_memory_allocated`` growth for torch and SciPy-free runners; for a jitted
JAX runner XLA's compiled memory analysis (its allocator's peak cannot be reset).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CPU_ENV = {"MKL_DISABLE_FAST_MM": "1"}
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


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


def _glibc():
    """glibc's ``mallopt`` and ``malloc_trim``, or None (another C library)."""
    try:
        libc = ctypes.CDLL(None)
        return libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):
        return None


_GLIBC = _glibc() if sys.platform.startswith("linux") else None


@contextlib.contextmanager
def _exact_rss():
    """Large buffers mapped and unmapped one by one (see the module docstring), then the
    allocator's steady state again: large buffers up to 32 MiB kept for reuse."""
    if _GLIBC is None:
        yield
        return
    mallopt, trim = _GLIBC
    mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
    trim(0)
    try:
        yield
    finally:
        mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
        mallopt(_M_TRIM_THRESHOLD, 64 * 2**20)


def cpu_method() -> str:
    if not rss_available():
        return "unavailable (needs Linux /proc/self/clear_refs)"
    exact = _GLIBC is not None and os.environ.get("MKL_DISABLE_FAST_MM") == "1"
    return "RSS high-water mark" + ("" if exact else " (allocator not tuned: a lower bound)")


def _cpu_peak(fn) -> tuple[object, int | None]:
    with _exact_rss():
        gc.collect()
        try:
            before = _status_kib("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        except OSError:
            return block(fn()), None
        out = block(fn())
        return out, max(_status_kib("VmHWM") - before, 0) * 1024


def _cuda_peak(fn) -> tuple[object, int]:
    gc.collect()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = block(fn())
    return out, torch.cuda.max_memory_allocated() - before


def timed_call(fn) -> tuple[object, float]:
    """``fn()`` with its asynchronous results waited for, and the seconds it took."""
    t0 = time.perf_counter()
    out = block(fn())
    return out, time.perf_counter() - t0


@dataclass
class Peaks:
    """Peak growth of one runner's calls (bytes, None where not measured) and how they were
    measured."""

    forward: int | None
    backward: int | None
    step: int | None
    method: str


def peaks(runner, device: str) -> Peaks:
    """``forward``, ``backward`` (forward output held) and ``forward + backward`` peaks."""
    if device == "cuda" and runner.xla_bytes is not None:
        x = runner.xla_bytes
        return Peaks(x.get("forward"), None, x.get("step"), "XLA compiled memory analysis")
    peak, method = (_cuda_peak, "torch.cuda.max_memory_allocated") if device == "cuda" else (
        _cpu_peak,
        cpu_method(),
    )
    out, fwd = peak(runner.forward)
    bwd = step = None
    if runner.backward is not None:
        _, bwd = peak(lambda: runner.backward(out))
    out = None  # the forward output is released before the fused step
    if runner.differentiable:
        _, step = peak(runner.forward_backward)
    return Peaks(fwd, bwd, step, method)


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
