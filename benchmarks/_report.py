"""What a run leaves behind: the terminal tables, the CSV files, the plots, the README block.

Files, under ``benchmarks/results/<device>/`` (``<device>`` is ``cpu`` or ``cuda-<gpu name>``),
each prefixed by the run's tag (the suite, and the matrix file's stem with ``--matrix``):

- ``<tag>-results.csv``: one row per case and implementation: status, times (median, min, max,
  count) of the forward and of forward + backward, input bytes and peak memory, the machine and
  library versions;
- ``<tag>-ratios.csv``: every ours / baseline ratio (time and memory), with the goal if an issue
  sets one, its limit and whether it is met; ``<tag>-goals.csv``: the goals alone;
- ``<tag>-scaling.csv``: the memory-scaling run and its fitted slopes;
- ``<tag>-time.png``, ``<tag>-memory.png``, ``<tag>-scaling.png`` (with matplotlib installed);
- ``<tag>-summary.md``: the goal table and the machine, pasted into the README by ``--readme``.
"""

from __future__ import annotations

import csv
import datetime
import importlib.metadata
import os
import platform
import re
from pathlib import Path

import torch

MB = 2**20


def environment(cfg) -> dict:
    def version(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.date.today().isoformat(),
        "suite": cfg.suite,
        "device": cfg.device,
        "gpu": torch.cuda.get_device_name() if cfg.device == "cuda" else "",
        "cpu": f"{cpu} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)",
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{d: version(d) for d in ("torch", "jax", "jaxlib", "scipy", "numpy")},
        "torchsparsegradutils": version("torchsparsegradutils"),
        "sparsegradutils": version("sparsegradutils"),
    }


def device_dir(cfg) -> str:
    if cfg.device != "cuda":
        return cfg.device
    return "cuda-" + re.sub(r"[^A-Za-z0-9.]+", "-", torch.cuda.get_device_name()).strip("-")


def _ms(xs):
    return (1e3 * sorted(xs)[len(xs) // 2], 1e3 * min(xs), 1e3 * max(xs)) if xs else (None,) * 3


def _mb(x):
    return None if x is None else x / MB


def result_rows(runs) -> list[dict]:
    rows = []
    for case, results in runs:
        for res in results.values():
            fwd, fb = _ms(res.fwd_s), _ms(res.fwdbwd_s)
            rows.append(
                {
                    "op": case.op,
                    "problem": case.problem,
                    **case.info,
                    "impl": res.impl,
                    "ours": res.ours,
                    "status": res.status,
                    "fwd_ms_median": res.median("fwd_s") and 1e3 * res.median("fwd_s"),
                    "fwd_ms_min": fwd[1],
                    "fwd_ms_max": fwd[2],
                    "fwd_n": len(res.fwd_s),
                    "fwdbwd_ms_median": res.median("fwdbwd_s") and 1e3 * res.median("fwdbwd_s"),
                    "fwdbwd_ms_min": fb[1],
                    "fwdbwd_ms_max": fb[2],
                    "fwdbwd_n": len(res.fwdbwd_s),
                    "budget_hit": res.budget_hit,
                    "note": res.note,
                    "inputs_mb": _mb(res.inputs_bytes),
                    "fwd_peak_mb": _mb(res.fwd_peak),
                    "bwd_peak_mb": _mb(res.bwd_peak),
                    "fwdbwd_peak_mb": _mb(res.step_peak),
                    "memory_method": res.memory_method,
                }
            )
    return rows


def ratio_rows(runs) -> list[dict]:
    """Every ours / baseline ratio of a case, with the goals the issues set."""
    rows = []
    for case, results in runs:
        for goal in case.goals:
            value = goal.value(results)
            rows.append(
                {
                    "op": case.op,
                    "problem": case.problem,
                    "what": goal.text,
                    "value": value,
                    "limit": goal.limit,
                    "met": None if value is None else value <= goal.limit,
                    "source": goal.source,
                }
            )
        for ours in (r for r in results.values() if r.ours and r.ok):
            for base in (r for r in results.values() if not r.ours):
                row = {"op": case.op, "problem": case.problem,
                       "what": f"{ours.impl} / {base.impl}", "status": base.status}
                for metric in ("fwd_s", "fwdbwd_s"):
                    a, b = ours.median(metric), base.median(metric) if base.ok else None
                    row[f"{metric[:-2]}_time_ratio"] = a / b if a and b else None
                a, b = ours.step_peak, base.step_peak if base.ok else None
                if a is not None and b is not None:
                    row["fwdbwd_memory_ratio"] = (ours.inputs_bytes + a) / max(
                        base.inputs_bytes + b, 1
                    )
                rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict], env: dict | None = None) -> None:
    if env:
        rows = [{**r, **{f"env_{k}": v for k, v in env.items()}} for r in rows]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})


def _cell(v):
    return f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)


# ------------------------------------------------------------------------------ terminal
def _fmt(v, spec=".3g"):
    return "-" if v is None else format(v, spec)


def print_case(case, results) -> None:
    print(f"\n{case.op}  [{case.problem}]  " + " ".join(f"{k}={v}" for k, v in case.info.items()))
    print(f"  {'implementation':<24}{'fwd ms':>10}{'fwd+bwd ms':>12}{'peak MB':>10}  status")
    for res in results.values():
        peak = res.step_peak if res.step_peak is not None else res.fwd_peak
        fwd, fb = res.median("fwd_s"), res.median("fwdbwd_s")
        print(
            f"  {res.impl + (' *' if res.ours else ''):<24}{_fmt(fwd and fwd * 1e3):>10}"
            f"{_fmt(fb and fb * 1e3):>12}{_fmt(_mb(peak)):>10}  {res.status}"
            + (f" ({res.note})" if res.note else "")
        )


SIZE_NOTE = ("The issues set these goals at the full suite's sizes (`--suite full`); the quick "
             "suite's small problems weigh fixed per-call overheads more.")


def print_goals(goal_rows: list[dict], suite: str) -> None:
    print("\nGoals set by the issues (ratio = ours / baseline unless stated; met when <= limit)")
    if suite != "full":
        print(SIZE_NOTE)
    width = max((len(r["what"]) + len(r["problem"]) for r in goal_rows), default=40) + 6
    for r in goal_rows:
        met = {True: "met", False: "NOT MET", None: "no data"}[r["met"]]
        label = f"{r['op']} [{r['problem']}] {r['what']}"
        print(f"  {label:<{width + 10}} {_fmt(r['value']):>8} <= {r['limit']:<6g} {met}")


def summary_markdown(goal_rows: list[dict], env: dict) -> str:
    lines = [
        f"Measured {env['date']} on {env['gpu'] or env['cpu']}, torch {env['torch']}, "
        f"jax {env['jax']}, suite `{env['suite']}`."
        + ("" if env["suite"] == "full" else " " + SIZE_NOTE),
        "",
        "| operation | problem | goal | measured | limit | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in goal_rows:
        met = {True: "yes", False: "**no**", None: "no data"}[r["met"]]
        lines.append(
            f"| {r['op']} | {r['problem']} | {r['what']} | {_fmt(r['value'])} | "
            f"{r['limit']:g} | {met} |"
        )
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, block: str) -> None:
    """Replace the text between the README's benchmark markers with ``block``."""
    start, end = "<!-- benchmark-results:start -->", "<!-- benchmark-results:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme}: no {start} ... {end} block to update")
    head, rest = text.split(start, 1)
    readme.write_text(head + start + "\n" + block + rest[rest.index(end):])
