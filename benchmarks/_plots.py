"""PNG plots of a run (matplotlib, from the ``bench`` extra): time, memory, memory scaling."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402

OURS, BASE, MB = "#1f77b4", "#bbbbbb", 2**20


def _bars(runs, title: str, value, unit: str, path: Path) -> Path:
    """One panel per case: a horizontal bar per implementation, failures named in place."""
    cols = min(3, len(runs)) or 1
    rows = math.ceil(len(runs) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 0.42 * 8 * rows + 1), squeeze=False)
    for ax in axes.flat[len(runs):]:
        ax.axis("off")
    for ax, (case, results) in zip(axes.flat, runs, strict=False):
        names = list(results)
        vals = [value(r) if r.ok else None for r in results.values()]
        known = [v for v in vals if v]
        for i, (name, v) in enumerate(zip(names, vals, strict=False)):
            res = results[name]
            if v:
                ax.barh(i, v, color=OURS if res.ours else BASE)
                ax.text(v, i, f" {v:.3g}", va="center", fontsize=7)
            else:
                status = res.status.split(":")[0] if not res.ok else "n/a"
                ax.text(min(known, default=1), i, f" {status}", va="center", fontsize=7,
                        color="#b22222")
        fwd_only = [results[n].ok and not results[n].fwdbwd_s for n in names]
        labels = [n + (" (fwd)" if f else "") for n, f in zip(names, fwd_only, strict=True)]
        ax.set_yticks(range(len(names)), labels, fontsize=8)
        ax.invert_yaxis()
        if known:
            ax.set_xscale("log")
            ax.set_xlim(min(known) / 2, max(known) * 6)
        ax.set_title(f"{case.op}\n{case.problem}", fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _time(r):
    t = r.median("fwdbwd_s") or r.median("fwd_s")
    return t and t * 1e3


def _memory(r):
    peak = r.step_peak if r.step_peak is not None else r.fwd_peak
    return None if peak is None or r.inputs_bytes is None else (r.inputs_bytes + peak) / MB


def _scaling(rows: list[dict], path: Path) -> Path:
    ops = sorted({r["op"] for r in rows})
    fig, axes = plt.subplots(1, len(ops), figsize=(6 * len(ops), 4.5), squeeze=False)
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
            ax.loglog([r["nnz"] for r in pts], [r["peak_mb"] for r in pts], "o-", label=label,
                      color=OURS if impl == "torch_api" else None)
        ax.set_xlabel("nnz of A")
        ax.set_ylabel("peak memory of the backward, inputs included (MB)")
        ax.set_title(f"{op}: backward peak vs nnz")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_all(out: Path, tag: str, runs, scaling: list[dict]) -> list[Path]:
    paths = []
    if runs:
        paths.append(_bars(runs, "forward + backward time (forward alone where no gradient); "
                                 "ours in blue", _time, "ms", out / f"{tag}-time.png"))
        paths.append(_bars(runs, "peak memory of forward + backward, inputs included; "
                                 "ours in blue", _memory, "MB", out / f"{tag}-memory.png"))
    if scaling:
        paths.append(_scaling(scaling, out / f"{tag}-scaling.png"))
    return paths
