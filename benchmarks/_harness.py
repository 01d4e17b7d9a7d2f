"""What a benchmark is, and how one is measured.

A :class:`Case` is one operation on one problem, with the implementations that compute it
(:class:`Impl`: ours and the baselines a user would otherwise reach for) and the goals the issues
set (:class:`Goal`). An implementation's factory builds its inputs and returns a :class:`Runner`:
``forward()``, and for the differentiable ones ``backward(out)`` or a fused ``step()``.

:func:`measure` runs a case: every runner is built and warmed up (a timed call), its peak
memory measured in untimed calls (:mod:`benchmarks._memory`), then all of them are
timed in interleaved rounds (one call of each per round, so a machine's background load falls
on all alike) until each has ``repeats`` samples or has spent its time budget. On a CPU with
more than one torch thread each round also times every call with ``torch.set_num_threads(1)``:
on a shared machine torch's threads wait for a busy core (an MKL CSR product of a 16^3 stencil
took 24 ms with 2 threads against 0.35 ms with 1 while another process held a core), and a
default-thread time more than :data:`CONTENTION` times the one-thread time is flagged. A runner that
cannot run is recorded with the reason, not dropped:
``not installed``, ``unsupported``, ``oom`` (estimated ahead for the baselines known to densify,
or raised), or ``error``.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from benchmarks import _memory

CONTENTION = 2.0  # default threads slower than one thread by more than this: flagged


class Unsupported(Exception):
    """Raised by a factory or a runner: this implementation cannot compute this case."""


@dataclass
class Runner:
    """The calls of one implementation on inputs already built.

    ``forward()`` returns the output; ``backward(out)`` the gradients from it (None: not
    differentiable); ``step()`` a fused forward + backward (jitted JAX), used instead of
    ``backward(forward())`` when given. ``inputs`` are counted for bytes; ``xla_bytes`` maps
    ``"forward"``/``"step"`` to XLA's compiled memory estimate (used for JAX on GPU);
    ``cotangent`` is the upstream gradient the backward uses.
    """

    forward: Callable[[], Any]
    backward: Callable[[Any], Any] | None = None
    step: Callable[[], Any] | None = None
    inputs: tuple = ()
    xla_bytes: dict | None = None
    cotangent: Any = None  # the fixed upstream gradient G of the backward

    @property
    def differentiable(self) -> bool:
        return self.backward is not None or self.step is not None

    def forward_backward(self):
        return self.step() if self.step is not None else self.backward(self.forward())


@dataclass
class Impl:
    """One way to compute a case: ``ours`` (torch_api / jax_api) or a ``baseline``."""

    name: str
    make: Callable[[], Runner]
    ours: bool = False
    needs_bytes: int = 0  # memory a densifying baseline is known to need: checked before running


@dataclass
class Result:
    impl: str
    ours: bool
    status: str = "ok"
    fwd_s: list = field(default_factory=list)
    fwdbwd_s: list = field(default_factory=list)
    inputs_bytes: int | None = None
    fwd_peak: int | None = None  # bytes the forward adds at its peak
    bwd_peak: int | None = None  # bytes the backward adds at its peak, forward output held
    step_peak: int | None = None  # bytes forward + backward add at their peak
    memory_method: str = ""
    budget_hit: bool = False
    note: str = ""  # how it was measured, where that differs from the rule
    threads: int = 1  # torch's intra-op threads of the default-thread samples
    fwd_1t_s: list = field(default_factory=list)  # the same calls with torch at one thread
    fwdbwd_1t_s: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def median(self, metric: str) -> float | None:
        xs = getattr(self, metric)
        return statistics.median(xs) if xs else None

    def contention(self, metric: str = "fwdbwd_s") -> float | None:
        """default-thread / one-thread median time when over :data:`CONTENTION`, else None."""
        a, b = self.median(metric), self.median(metric.replace("_s", "_1t_s"))
        return a / b if a and b and a > CONTENTION * b else None


@dataclass
class Goal:
    """``value(results) <= limit``; ``value`` returns None when a side could not run."""

    text: str
    value: Callable[[dict[str, Result]], float | None]
    limit: float
    source: str = ""  # the issue that sets it


@dataclass
class Case:
    op: str
    problem: str
    impls: list[Impl]
    goals: list[Goal] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # n, nnz, p, dtype, layout, ...


def time_ratio(ours: str, base: str, metric: str = "fwdbwd_s") -> Callable:
    """``median time of ours / median time of base`` (None if either is missing)."""

    def value(res: dict[str, Result]) -> float | None:
        a, b = res.get(ours), res.get(base)
        if a is None or b is None or not (a.ok and b.ok):
            return None
        ta, tb = a.median(metric), b.median(metric)
        return ta / tb if ta is not None and tb else None

    value.timing = (ours, base, metric)  # read by ratio_spread and the one-thread ratio
    return value


def ratio_spread(res: dict[str, Result], ours: str, base: str, metric: str):
    """``(min, max, rounds)`` of ``ours / base`` over the timing rounds (None if a side is
    missing): rounds are interleaved, so sample i of each was taken in round i; with fewer than
    two paired rounds, the widest the samples allow (``min/max`` and ``max/min``)."""
    a, b = res.get(ours), res.get(base)
    if a is None or b is None or not (a.ok and b.ok):
        return None
    xs, ys = getattr(a, metric), getattr(b, metric)
    if not xs or not ys or not all(ys):
        return None
    n = min(len(xs), len(ys))
    if n >= 2:
        ratios = [x / y for x, y in zip(xs[:n], ys[:n], strict=True)]
        return min(ratios), max(ratios), n
    return min(xs) / max(ys), max(xs) / min(ys), n


def memory_ratio(ours: str, base: str, peak: str = "step_peak") -> Callable:
    """``(inputs + peak) of ours / (inputs + peak) of base``: whole footprints compared."""

    def value(res: dict[str, Result]) -> float | None:
        a, b = res.get(ours), res.get(base)
        if a is None or b is None or not (a.ok and b.ok):
            return None
        pa, pb = getattr(a, peak), getattr(b, peak)
        if pa is None or pb is None:
            return None
        return (a.inputs_bytes + pa) / max(b.inputs_bytes + pb, 1)

    return value


def _status_of(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ImportError):
        return f"not installed: {msg}"
    if isinstance(exc, Unsupported):
        return f"unsupported: {msg}"
    if isinstance(exc, MemoryError) or "out of memory" in msg.lower() or "can't allocate" in msg:
        return f"oom: {msg[:120]}"
    return f"error: {type(exc).__name__}: {msg[:160]}"


def _guarded(result: Result, fn: Callable[[], Any], verbose: bool) -> Any:
    """``fn()``, or None with the failure recorded in ``result.status``."""
    try:
        return fn()
    except Exception as exc:  # recorded, never dropped
        result.status = _status_of(exc)
        if verbose and result.status.startswith("error"):
            traceback.print_exc()
        return None


def measure(
    case: Case,
    *,
    device: str,
    repeats: int,
    budget_s: float,
    min_samples: int = 1,
    slow_s: float = math.inf,
    progress: Callable[[str], None] = lambda msg: None,
    verbose: bool = False,
    one_thread: bool | None = None,
) -> dict[str, Result]:
    """Build, warm up, measure memory, then time every implementation of ``case``.

    Each implementation gets ``repeats`` samples, or fewer once it has spent ``budget_s``
    seconds, but never fewer than ``min_samples``. A baseline whose warm-up call took over
    ``slow_s`` seconds (far slower than the rest) keeps that call as its only time, and its
    memory is not measured (its ``note`` says so): one-time costs are small beside such a call,
    and measuring it like the others would take most of the suite's time. ``one_thread``: also
    time each call at one torch thread (None: on a CPU whose torch uses more than one).
    """
    if one_thread is None:
        one_thread = device == "cpu" and torch.get_num_threads() > 1
    # what exists before the case (modules, earlier cases' records) is set aside from the garbage
    # collector, so the collection before each memory measurement only walks this case's objects
    gc.collect()
    gc.freeze()
    try:
        return _measure(case, device, repeats, budget_s, min_samples, slow_s, progress, verbose,
                        one_thread)
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op thread count set to ``n`` inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _measure(case, device, repeats, budget_s, min_samples, slow_s, progress, verbose, one_thread):
    results: dict[str, Result] = {}
    runners: dict[str, Runner] = {}
    available = _memory.available_bytes(device)
    threads = torch.get_num_threads()
    for impl in case.impls:
        res = results[impl.name] = Result(impl.name, impl.ours, threads=threads)
        if impl.needs_bytes and impl.needs_bytes > available:
            res.status = (
                f"oom: needs about {impl.needs_bytes / 2**30:.1f} GiB, "
                f"{available / 2**30:.1f} GiB available (not run)"
            )
            continue
        progress(f"{case.op} [{case.problem}] {impl.name}: setup")
        runner = _guarded(res, impl.make, verbose)
        if runner is None:
            continue
        res.inputs_bytes = _memory.nbytes(runner.inputs)
        # warm-up: caches and lazy initialisation (JAX runners are compiled ahead)
        warm = runner.forward_backward if runner.differentiable else runner.forward
        seconds = _guarded(res, lambda f=warm: _memory.timed_call(f)[1], verbose)
        if seconds is None:
            if not (runner.differentiable and res.status.startswith("unsupported")):
                continue
            res.status = "ok"  # no gradient: the forward alone still counts
            runner.backward = runner.step = None
            seconds = _guarded(res, lambda r=runner: _memory.timed_call(r.forward)[1], verbose)
            if seconds is None:
                continue
        if seconds > slow_s and not impl.ours:
            (res.fwdbwd_s if runner.differentiable else res.fwd_s).append(seconds)
            res.note = (f"one call over {slow_s:g} s: timed by its warm-up call alone, "
                        "memory not measured")
            continue
        progress(f"{case.op} [{case.problem}] {impl.name}: memory")
        mem = _guarded(res, lambda r=runner: _memory.peaks(r, device), verbose)
        if mem is None:
            continue
        res.fwd_peak, res.bwd_peak, res.step_peak = mem.forward, mem.backward, mem.step
        res.memory_method = mem.method
        runners[impl.name] = runner

    # timing rounds (never the memory runs, whose allocator is slowed): while budgets last
    spent = {n: sum(results[n].fwd_s) + sum(results[n].fwdbwd_s) for n in runners}
    for r in range(repeats):
        wanted = [n for n in runners if len(results[n].fwd_s) < repeats]
        live = [n for n in wanted
                if len(results[n].fwd_s) < min_samples or spent[n] < budget_s]
        for name in set(wanted) - set(live):
            results[name].budget_hit = True
        if not live:
            break
        progress(f"{case.op} [{case.problem}]: timing round {r + 1}")
        for name in live:
            runner, res = runners[name], results[name]
            calls = [("fwd", runner.forward)]
            if runner.differentiable:
                calls.append(("fwdbwd", runner.forward_backward))
            for metric, call in calls:
                _, t = _memory.timed_call(call)
                getattr(res, f"{metric}_s").append(t)
                spent[name] += t
                if one_thread:
                    with torch_threads(1):
                        _, t = _memory.timed_call(call)
                    getattr(res, f"{metric}_1t_s").append(t)
                    spent[name] += t
    return results
