"""Timing and memory helpers shared by the benchmark modules."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timeit(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1, sync=None) -> float:
    """Median wall time of ``fn()`` in seconds (``sync`` e.g. torch.cuda.synchronize)."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timeit_interleaved(fns: dict, *, repeat: int, sync=None, slow=(), slow_repeat=3) -> dict:
    """Minimum wall time in seconds of each zero-argument callable, measured in interleaved
    rounds (one call of each per round, after one warm-up call each): on a shared machine the
    others' load only adds time, and every candidate sees the same conditions. Names in
    ``slow`` run only ``slow_repeat`` rounds."""
    best = dict.fromkeys(fns, float("inf"))
    for r in range(repeat + 1):
        for name, fn in fns.items():
            if name in slow and r > slow_repeat:
                continue
            t0 = time.perf_counter()
            fn()
            if sync:
                sync()
            if r:  # round 0 is the warm-up
                best[name] = min(best[name], time.perf_counter() - t0)
    return best
