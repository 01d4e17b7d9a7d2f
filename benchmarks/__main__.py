"""Run the benchmark suite: ``python -m benchmarks [--device cpu|cuda] [--quick] [--only NAME ...]``.

Each benchmark module exposes ``run(device, quick) -> list[dict]``; every row names what was
measured and, where the issues set a target, the measured ratio and the target. Results are
printed as a table and written to ``benchmarks/results/<device>[-quick].json``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

MODULES = [
    "sparse_mm",
    "triangular_solve",
    "generic_solve",
    "solve_bridges",
    "indexed_mm",
    "encoder_memory",
    "jax_ops",
]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true", help="small problems (a smoke run)")
    p.add_argument("--only", nargs="*", choices=MODULES, help="run only these benchmarks")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")

    rows, failed = [], []
    for name in args.only or MODULES:
        start = time.perf_counter()
        print(f"== {name} ==", flush=True)
        try:
            mod = importlib.import_module(f"benchmarks.{name}")
            got = mod.run(args.device, args.quick)
        except ImportError as exc:  # an optional backend that is not installed
            print(f"   skipped: {exc}", flush=True)
            continue
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        for row in got:
            row.setdefault("benchmark", name)
            print("   " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items()), flush=True)
        rows.extend(got)
        print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)

    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    meta = {
        "device": args.device,
        "quick": args.quick,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
    }
    path = out / f"{args.device}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=str))
    print(f"results written to {path}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
