"""PNG plots of a run (matplotlib, from the ``bench`` extra): time, memory, memory scaling.

Every implementation keeps one colour in all panels of a figure (ours are also marked ``*`` and
in bold); log axes are labelled at 1, 2 and 5 times powers of ten (powers of ten alone past two
decades), so that a panel spanning less than a decade still has readable ticks.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

MB = 2**20
# ours first in strong colours, then the baselines; tab20's light shades come last
PALETTE = [plt.get_cmap("tab10")(i) for i in range(10)] + [
    plt.get_cmap("tab20")(i) for i in range(1, 20, 2)]


def _colours(panels) -> dict:
    """A colour per implementation name, the same in every panel and never shared by two names
    of one panel (``panels``: the names of each panel), in order of first appearance."""
    beside: dict[str, set] = {}
    for names in panels:
        for name in names:
            beside.setdefault(name, set()).update(names)
    slot: dict[str, int] = {}
    for name in beside:
        taken = {slot[m] for m in beside[name] if m in slot}
        slot[name] = next(i for i in range(len(PALETTE) + len(taken)) if i not in taken)
    return {name: PALETTE[i % len(PALETTE)] for name, i in slot.items()}


def _log_ticks(axis, lo: float, hi: float) -> None:
    """Major ticks at 1-2-5 (or 1) times powers of ten, plain numbers, no minor labels."""
    subs = (1.0,) if hi / lo > 100 else (1.0, 2.0, 5.0)
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _bars(runs, title: str, value, unit: str, path: Path, single=None) -> Path:
    """One panel per case: a horizontal bar per implementation, failures named in place;
    ``single(result)``: a second value drawn as a black tick on the bar (the one-thread time)."""
    cols = min(3, len(runs)) or 1
    rows = math.ceil(len(runs) / cols) or 1
    slots = max((len(results) for _, results in runs), default=1)  # same bar height everywhere
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 0.42 * slots * rows + 1.2),
                             squeeze=False, layout="constrained")
    colours = _colours([list(results) for _, results in runs])
    for ax in axes.flat[len(runs):]:
        ax.axis("off")
    for ax, (case, results) in zip(axes.flat, runs, strict=False):
        names = list(results)
        vals = [value(r) if r.ok else None for r in results.values()]
        marks = [single(r) if single and r.ok else None for r in results.values()]
        known = [v for v in vals + marks if v]
        for i, (name, v) in enumerate(zip(names, vals, strict=False)):
            res = results[name]
            if v:
                ax.barh(i, v, color=colours[name], height=0.7)
                ax.text(max(v, marks[i] or 0), i, f" {v:.3g}", va="center", fontsize=7)
                if marks[i]:
                    ax.plot([marks[i]], [i], marker="|", color="black", markersize=11, mew=1.6)
            else:
                status = res.status.split(":")[0] if not res.ok else "n/a"
                ax.text(min(known, default=1), i, f" {status}", va="center", fontsize=7,
                        color="#b22222")
        fwd_only = [results[n].ok and not results[n].fwdbwd_s for n in names]
        labels = [n + (" (fwd)" if f else "") + (" *" if results[n].ours else "")
                  for n, f in zip(names, fwd_only, strict=True)]
        ax.set_yticks(range(len(names)), labels, fontsize=8)
        for label, name in zip(ax.get_yticklabels(), names, strict=True):
            label.set_fontweight("bold" if results[name].ours else "normal")
        ax.set_ylim(slots - 0.5, -0.5)  # top to bottom, empty slots below a short panel
        if known:
            lo, hi = min(known) / 2, max(known) * 6
            ax.set_xscale("log")
            ax.set_xlim(lo, hi)
            _log_ticks(ax.xaxis, lo, hi)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"{case.op}\n{case.problem}", fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _time(r):
    t = r.median("fwdbwd_s") or r.median("fwd_s")
    return t and t * 1e3


def _time_1thread(r):
    t = r.median("fwdbwd_1t_s") or r.median("fwd_1t_s")
    return t and t * 1e3


def _memory(r):
    peak = r.step_peak if r.step_peak is not None else r.fwd_peak
    return None if peak is None or r.inputs_bytes is None else (r.inputs_bytes + peak) / MB


def _scaling(rows: list[dict], path: Path) -> Path:
    ops = sorted({r["op"] for r in rows})
    fig, axes = plt.subplots(1, len(ops), figsize=(6 * len(ops), 4.5), squeeze=False,
                             layout="constrained")
    colours = _colours([[r["impl"] for r in rows if r["op"] == op] for op in ops])
    markers = dict(zip(colours, "osD^vP", strict=False))
    for ax, op in zip(axes.flat, ops, strict=False):
        # a baseline that did not run (not installed, out of memory) has no peak to plot
        points = [r for r in rows if r["op"] == op and r["kind"] == "point" and "peak_mb" in r]
        for impl in dict.fromkeys(r["impl"] for r in points):
            pts = [r for r in points if r["impl"] == impl]
            fit = next(
                (r for r in rows if r["op"] == op and r["impl"] == impl and r["kind"] == "fit"),
                {},
            )
            label = f"{impl}: {fit.get('bytes_per_unit', float('nan')):.3g} B per (nnz + n p)"
            ax.loglog([r["nnz"] for r in pts], [r["peak_mb"] for r in pts], "-", label=label,
                      color=colours[impl], marker=markers.get(impl, "o"))
        ax.set_xlabel("nnz of A")
        ax.set_ylabel("peak memory of the backward, inputs included (MB)")
        ax.set_title(f"{op}: backward peak vs nnz")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_all(out: Path, tag: str, runs, scaling: list[dict]) -> list[Path]:
    paths = []
    if runs:
        paths.append(_bars(runs, "forward + backward time (forward alone where no gradient); "
                                 "ours marked *; black tick: the same with torch at 1 thread",
                           _time, "ms", out / f"{tag}-time.png", single=_time_1thread))
        paths.append(_bars(runs, "peak memory of forward + backward, inputs included; "
                                 "ours marked *", _memory, "MB", out / f"{tag}-memory.png"))
    if scaling:
        paths.append(_scaling(scaling, out / f"{tag}-scaling.png"))
    return paths
