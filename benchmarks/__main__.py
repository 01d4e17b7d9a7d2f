"""``python -m benchmarks``: every operation of both frontends against the alternatives.

The quick suite (the default) runs the built-in problems at a small size in under 3 minutes on a
2-core CPU; ``--suite full`` runs them at the sizes the issues name (the 27-point stencil of a
50^3 grid, 3.3M nonzeros), random matrices at several densities and the memory-scaling run.
See ``--help`` for the options and ``benchmarks/_report.py`` for what is written where.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

import torch

MODULES = (
    "sparse_mm",
    "triangular_solve",
    "generic_solve",
    "generic_lstsq",
    "solve_bridges",
    "indexed_mm",
    "logsumexp",
    "encoder",
    "memory_scaling",
    "eager",
    "factorisations",
)
DTYPES = {"float32": torch.float32, "float64": torch.float64}
INDEX = {"int32": torch.int32, "int64": torch.int64}
ROOT = Path(__file__).resolve().parent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=("quick", "full"), default="quick")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--index-dtype", choices=tuple(INDEX), default="int32",
                   help="CSR index dtype (torch stores COO indices as int64)")
    p.add_argument("--layout", nargs="+", choices=("coo", "csr"), default=None,
                   help="sparse layouts to run (default: both)")
    p.add_argument("--rhs", type=int, default=None, help="right-hand sides / columns of B")
    p.add_argument("--size", type=int, default=None,
                   help="grid side k of the built-in matrices (quick 16, full 50)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per case")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds of timing per implementation and case before it stops repeating")
    p.add_argument("--min-samples", type=int, default=None,
                   help="timed samples per implementation and case even past the budget "
                        "(quick 1, full 3)")
    p.add_argument("--ops", nargs="+", choices=MODULES, default=None, help="benchmarks to run")
    p.add_argument("--matrix", type=Path, default=None,
                   help="a Matrix Market file (.mtx) to use instead of the built-in matrices")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default benchmarks/results/<device>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--readme", action="store_true",
                   help="paste this run's goal table and plots into README.md")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of failures")
    return p


def _child_env(args) -> dict | None:
    """The environment the measuring process needs, or None when this process already has it."""
    from benchmarks._memory import CPU_ENV

    want = dict(CPU_ENV) if args.device == "cpu" else {}
    if args.dtype == "float64":
        want["JAX_ENABLE_X64"] = "1"
    if all(os.environ.get(k) == v for k, v in want.items()):
        return None
    return {**os.environ, **want}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser().error("--device cuda: torch sees no CUDA device here")
    env = _child_env(args)
    if env is not None and sys.platform.startswith("linux"):
        # allocator settings take effect at process start: run the measurement in a child
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *argv], env)

    import warnings

    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
    warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors is in prototype")
    from benchmarks import _report
    from benchmarks._harness import measure
    from benchmarks._problems import Config
    from benchmarks._progress import Progress

    cfg = Config.for_suite(
        args.suite, device=args.device, dtype=DTYPES[args.dtype],
        index_dtype=INDEX[args.index_dtype], layouts=tuple(args.layout or ("coo", "csr")),
        rhs=args.rhs or 32, size=args.size, repeats=args.repeats, budget_s=args.budget,
        min_samples=args.min_samples, matrix=args.matrix, ops=tuple(args.ops or MODULES),
    )
    out = args.out or ROOT / "results" / _report.device_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    tag = cfg.suite + (f"-{args.matrix.stem}" if args.matrix else "")
    env_info = _report.environment(cfg)
    print(f"sparsegradutils benchmarks: suite {cfg.suite}, {cfg.device}, {args.dtype}, "
          f"grid {cfg.size}^3, rhs {cfg.rhs}; {env_info['cpu']}", flush=True)

    cases, scaling_mods = [], []
    for name in cfg.ops:
        mod = importlib.import_module(f"benchmarks.{name}")
        if hasattr(mod, "cases"):
            cases.extend(mod.cases(cfg))
        else:
            scaling_mods.append(mod)
    progress = Progress(len(cases) + len(scaling_mods))
    runs, failed = [], []
    for case in cases:
        results = measure(case, device=cfg.device, repeats=cfg.repeats, budget_s=cfg.budget_s,
                          min_samples=cfg.min_samples, slow_s=cfg.slow_s, progress=progress,
                          verbose=args.verbose)
        progress.step(f"{case.op} [{case.problem}]")
        _report.print_case(case, results)
        failed += [f"{case.op} [{case.problem}] {r.impl}: {r.status}"
                   for r in results.values() if r.ours and not r.ok]
        runs.append((case, results))
    scaling = []
    for mod in scaling_mods:
        scaling.extend(mod.run(cfg, progress))
        progress.step(mod.__name__)

    ratios = _report.ratio_rows(runs, at_goal_sizes=_report.at_goal_sizes(cfg))
    goals = [r for r in ratios if "limit" in r]
    _report.print_goals(goals, cfg.suite)
    _report.write_csv(out / f"{tag}-results.csv", _report.result_rows(runs), env_info)
    _report.write_csv(out / f"{tag}-ratios.csv", ratios)
    _report.write_csv(out / f"{tag}-goals.csv", goals)
    if scaling:
        _report.write_csv(out / f"{tag}-scaling.csv", scaling, env_info)
    summary = _report.summary_markdown(goals, env_info)
    plots = []
    if not args.no_plots:
        try:
            from benchmarks import _plots
        except ImportError as exc:
            print(f"no plots: {exc} (pip install -e '.[bench]' in a checkout)")
        else:
            plots = _plots.write_all(out, tag, runs, scaling)
    (out / f"{tag}-summary.md").write_text(summary)
    print(f"\nresults written to {out}/{tag}-*")
    if args.readme:
        rel = [p.relative_to(ROOT.parent) for p in plots]
        _report.update_readme(ROOT.parent / "README.md",
                              summary + "".join(f"\n![{p.stem}]({p.as_posix()})\n" for p in rel))
    if failed:
        print("FAILED (ours):\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
