"""What a run leaves behind: the terminal tables, the CSV files, the plots, the README block.

Files, under ``benchmarks/results/<device>/`` (``<device>`` is ``cpu`` or ``cuda-<gpu name>``),
each prefixed by the run's tag (the suite, and the matrix file's stem with ``--matrix``):

- ``<tag>-results.csv``: one row per case and implementation: status, times (median, min, max,
  count) of the forward and of forward + backward, input bytes and peak memory, the machine and
  library versions;
- ``<tag>-ratios.csv``: every ours / baseline ratio (time and memory, and the time ratios at one
  torch thread), with the goal if an issue sets one, its limit and its verdict;
  ``<tag>-goals.csv``: the goals alone;
- ``<tag>-scaling.csv``: the memory-scaling run and its fitted slopes;
- ``<tag>-time.png``, ``<tag>-memory.png``, ``<tag>-scaling.png`` (with matplotlib installed);
- ``<tag>-summary.md``: the goal table and the machine, pasted into the README by ``--readme``.

A goal gets a verdict (``met`` / ``NOT MET``) only where one can be trusted: the run is at the
sizes the issues set the goals at (the full suite's built-in problems, see :func:`at_goal_sizes`),
and for a time goal every timing round falls on the same side of the limit as the median ratio
and neither side ran more than ``CONTENTION`` times slower at torch's default thread count than
at one thread. Otherwise the ratio is printed with ``indicative only (goals are set at full
sizes)`` or ``too noisy: ...`` saying why.
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

from benchmarks._harness import CONTENTION, ratio_spread, time_ratio

MB = 2**20
INDICATIVE = "indicative only (goals are set at full sizes)"


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
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{d: version(d) for d in ("torch", "jax", "jaxlib", "scipy", "numpy")},
        "torchsparsegradutils": version("torchsparsegradutils"),
        "sparsegradutils": version("sparsegradutils"),
    }


def at_goal_sizes(cfg) -> bool:
    """Whether ``cfg`` runs the problems the goals were set on: the full suite's built-in
    matrices at its default grid, right-hand sides and dtype."""
    full = type(cfg).for_suite("full")
    return (cfg.suite == "full" and cfg.matrix is None
            and (cfg.size, cfg.rhs, cfg.dtype) == (full.size, full.rhs, full.dtype))


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
                    "torch_threads": res.threads,
                    "fwd_1thread_ms_median": _ms(res.fwd_1t_s)[0],
                    "fwdbwd_1thread_ms_median": _ms(res.fwdbwd_1t_s)[0],
                    "contention": _contention(res),
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


def _contention(res) -> float | None:
    """The larger default-thread / one-thread slowdown over CONTENTION (fwd or fwd+bwd)."""
    return max(filter(None, (res.contention("fwd_s"), res.contention("fwdbwd_s"))), default=None)


def goal_row(goal, results, at_goal_sizes: bool) -> dict:
    """A goal's ratio, its spread over the rounds and one-thread value, and its verdict."""
    value, limit = goal.value(results), goal.limit
    row = {"value": value, "limit": limit}
    spread, contended = None, []
    if hasattr(goal.value, "timing"):
        ours, base, metric = goal.value.timing
        row["value_1thread"] = time_ratio(ours, base, metric.replace("_s", "_1t_s"))(results)
        spread = ratio_spread(results, ours, base, metric)
        if spread:
            row["ratio_min"], row["ratio_max"], row["rounds"] = spread
        contended = [(n, f) for n in dict.fromkeys((ours, base))
                     if n in results and (f := results[n].contention(metric))]
    met = None
    if value is None:
        verdict = "no data"
    elif not at_goal_sizes:
        verdict = INDICATIVE
    elif contended:
        verdict = "too noisy: " + ", ".join(
            f"{n} {f:.1f}x slower at {results[n].threads} threads than at 1" for n, f in contended
        ) + " (CPU contention)"
    elif spread and not (spread[1] <= limit if value <= limit else spread[0] > limit):
        verdict = (f"too noisy: min/max ratio {spread[0]:.3g}/{spread[1]:.3g} over "
                   f"{spread[2]} rounds, on both sides of the limit")
    else:
        met = value <= limit
        verdict = "met" if met else "NOT MET"
    return {**row, "met": met, "verdict": verdict}


def ratio_rows(runs, at_goal_sizes: bool = False) -> list[dict]:
    """Every ours / baseline ratio of a case, with the goals the issues set and their verdicts
    (``at_goal_sizes``: the run is at the sizes the goals were set at)."""
    rows = []
    for case, results in runs:
        for goal in case.goals:
            rows.append({"op": case.op, "problem": case.problem, "what": goal.text,
                         **goal_row(goal, results, at_goal_sizes), "source": goal.source})
        for ours in (r for r in results.values() if r.ours and r.ok):
            for base in (r for r in results.values() if not r.ours):
                row = {"op": case.op, "problem": case.problem,
                       "what": f"{ours.impl} / {base.impl}", "status": base.status}
                for metric in ("fwd_s", "fwdbwd_s", "fwd_1t_s", "fwdbwd_1t_s"):
                    a, b = ours.median(metric), base.median(metric) if base.ok else None
                    name = metric[:-2].replace("_1t", "")
                    row[f"{name}_time_ratio" + ("_1thread" if "_1t" in metric else "")] = (
                        a / b if a and b else None)
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


def _flags(res) -> str:
    """What makes a row's times suspect: contention, or a fwd+bwd faster than its forward."""
    flags = []
    if (c := _contention(res)) is not None:
        flags.append(f"contention: {c:.1f}x slower at {res.threads} threads than at 1")
    fwd, fb = res.median("fwd_s"), res.median("fwdbwd_s")
    if fwd and fb and fb < fwd:
        flags.append("fwd+bwd below fwd alone: noisy rounds")
    return "".join(f" [{f}]" for f in flags)


def print_case(case, results) -> None:
    print(f"\n{case.op}  [{case.problem}]  " + " ".join(f"{k}={v}" for k, v in case.info.items()))
    threads = max((r.threads for r in results.values()), default=1)
    one = any(r.fwd_1t_s for r in results.values())
    print(f"  {'implementation':<24}{'fwd ms':>10}{'fwd+bwd ms':>12}"
          + (f"{'1-thr ms':>10}" if one else "") + f"{'peak MB':>10}  status"
          + (f" (at {threads} torch threads; 1-thr: the same at 1)" if one else ""))
    for res in results.values():
        peak = res.step_peak if res.step_peak is not None else res.fwd_peak
        fwd, fb = res.median("fwd_s"), res.median("fwdbwd_s")
        single = res.median("fwdbwd_1t_s") or res.median("fwd_1t_s")
        print(
            f"  {res.impl + (' *' if res.ours else ''):<24}{_fmt(fwd and fwd * 1e3):>10}"
            f"{_fmt(fb and fb * 1e3):>12}" + (f"{_fmt(single and single * 1e3):>10}" if one else "")
            + f"{_fmt(_mb(peak)):>10}  {res.status}"
            + (f" ({res.note})" if res.note else "") + _flags(res)
        )


SIZE_NOTE = ("The issues set these goals at the full suite's sizes (`--suite full`); the quick "
             "suite's small problems weigh fixed per-call overheads more, so its ratios are "
             "indicative only and get no verdict.")
NOISE_NOTE = (f"A verdict needs every timing round on the same side of the limit and no "
              f"implementation more than {CONTENTION:g}x slower at torch's default thread count "
              f"than at 1 thread (CPU contention); otherwise: too noisy.")


def print_goals(goal_rows: list[dict], suite: str) -> None:
    print("\nGoals set by the issues (ratio = ours / baseline unless stated; met when <= limit)")
    print(SIZE_NOTE if suite != "full" else NOISE_NOTE)
    for r in goal_rows:
        single = r.get("value_1thread")
        extra = f"; at 1 thread {_fmt(single)}" if single is not None else ""
        print(f"  {r['op']} [{r['problem']}] {r['what']}\n"
              f"      {_fmt(r['value'])} (limit {r['limit']:g}{extra}): {r['verdict']}")


def summary_markdown(goal_rows: list[dict], env: dict) -> str:
    lines = [
        f"Measured {env['date']} on {env['gpu'] or env['cpu']}, torch {env['torch']}, "
        f"jax {env['jax']}, suite `{env['suite']}`."
        + ("" if env["suite"] == "full" else " " + SIZE_NOTE)
        + (" " + NOISE_NOTE if env["suite"] == "full" else ""),
        "",
        "| operation | problem | goal | measured | at 1 thread | limit | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in goal_rows:
        verdict = r["verdict"]
        verdict = {"met": "yes", "NOT MET": "**no**"}.get(verdict, verdict)
        lines.append(
            f"| {r['op']} | {r['problem']} | {r['what']} | {_fmt(r['value'])} | "
            f"{_fmt(r.get('value_1thread'))} | {r['limit']:g} | {verdict} |"
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
