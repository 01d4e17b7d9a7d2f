"""jax_api's linear algebra against JAX's own sparse code and torch_api (issue 6), float32.

Problems (``benchmarks._problems``, converted with ``bridge.to_jax``): the 27-point-stencil
matrix of a ``k^3`` grid (k = 50: 125,000 rows, 3.3M nonzeros; ``quick``: k = 20), its lower
triangle with a dominant diagonal, and the SPD 7-point Poisson matrix; ``p = 32`` right-hand
sides. Every JAX variant runs under ``jax.jit``, forward + backward (``jax.value_and_grad`` of
``<G, op(A, B)>`` for A's data and B), with the index arrays passed as arguments (not closed
over: XLA would constant-fold them at compile time). Times are the minimum over interleaved
rounds (``benchmarks._timing.timeit_interleaved``; the machine may be shared).

1. ``jax_api.sparse_mm`` vs differentiating JAX's ``BCOO @ B`` and ``BCSR @ B``. Targets: time
   ratio <= 0.5 and a lower peak memory. Peak memory: each variant runs in a fresh subprocess
   (glibc serves blocks above 128 KiB by mmap, so the resident set follows live allocations);
   the step is compiled ahead (``lower().compile()``), the RSS high-water mark is reset, and
   its growth over the first execution is read: XLA's buffers, torch's and SciPy's alike.
2. ``jax_api.sparse_triangular_solve`` (lower, CSR) vs ``torch_api.sparse_triangular_solve``
   on the same factor (torch autograd). Target: ratio <= 1.5.
3. ``jax_api.sparse_generic_solve(A, B, jax_api.cg)`` on the Poisson matrix vs
   ``jax.scipy.sparse.linalg.cg`` with JAX's ``BCOO`` product differentiated by JAX (both solve
   the 32 columns as independent systems, ``vmap``, tol 1e-5). Target: ratio <= 1.2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks._problems import lower, poisson3d, stencil27
from benchmarks._timing import timeit_interleaved

P = 32
ROOT = Path(__file__).resolve().parent.parent


def _jax_matrices(A_torch):
    """``(BCSR, BCOO)`` of a torch CSR matrix (int32 indices; the BCOO sorted, unique)."""
    from jax.experimental.sparse import BCOO

    import bridge

    A = bridge.to_jax(A_torch)
    C = A.to_bcoo()
    return A, BCOO((C.data, C.indices), shape=C.shape, indices_sorted=True, unique_indices=True)


def _dense_pair(n: int):
    import jax

    kb, kg = jax.random.split(jax.random.key(1))
    return jax.random.normal(kb, (n, P)), jax.random.normal(kg, (n, P))


def _rebuild(A, data, idx):
    from jax.experimental.sparse import BCOO, BCSR

    if isinstance(A, BCSR):
        return BCSR((data, *idx), shape=A.shape)
    return BCOO((data, *idx), shape=A.shape, indices_sorted=True, unique_indices=True)


def _index_arrays(A):
    from jax.experimental.sparse import BCSR

    return (A.indices, A.indptr) if isinstance(A, BCSR) else (A.indices,)


def _grad_step(op, A):
    """jit(value_and_grad) of ``<G, op(A(data), B)>`` for (data, B): ``f(data, idx, B, G)``."""
    import jax
    import jax.numpy as jnp

    def loss(data, idx, B, G):
        return jnp.vdot(G, op(_rebuild(A, data, idx), B))

    # value_and_grad: a linear op's gradient does not need its output, and XLA would drop the
    # forward product from a grad-only program
    return jax.jit(jax.value_and_grad(loss, (0, 2)))


# ------------------------------------------------------------------------------- sparse_mm
def _mm_ops():
    import jax_api

    return {
        "jax_api_bcsr": ("bcsr", jax_api.sparse_mm),
        "jax_api_bcoo": ("bcoo", jax_api.sparse_mm),
        "jax_bcoo": ("bcoo", lambda A, B: A @ B),
        "jax_bcsr": ("bcsr", lambda A, B: A @ B),
    }


def _mm_setup(k: int, name: str):
    layout, op = _mm_ops()[name]
    bcsr, bcoo = _jax_matrices(stencil27(k, torch.float32, torch.sparse_csr, torch.int32))
    A = bcsr if layout == "bcsr" else bcoo
    B, G = _dense_pair(A.shape[0])
    f = _grad_step(op, A)
    args = (A.data, _index_arrays(A), B, G)
    return f, args, A


def _block(out):
    import jax

    return jax.block_until_ready(out)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _peak_growth(k: int, name: str) -> dict:
    """RSS high-water growth over the first execution of the compiled step (compiled ahead,
    so XLA's buffers are allocated inside the measured call, as torch's are)."""
    f, args, _ = _mm_setup(k, name)
    compiled = f.lower(*args).compile()
    _block(args)
    before = _rss_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    _block(compiled(*args))
    growth = (_rss_kib("VmHWM") - before) * 1024
    stats = compiled.memory_analysis()
    xla_temp = getattr(stats, "temp_size_in_bytes", None) if stats is not None else None
    return {"peak_growth_bytes": growth, "xla_temp_bytes": xla_temp}


def _memory_in_subprocess(k: int, name: str) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MKL_DISABLE_FAST_MM="1")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.jax_ops", "--memory", str(k), name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _bench_mm(k: int, repeat: int, device: str) -> list[dict]:
    fns, nnz = {}, None
    for name in _mm_ops():
        f, args, A = _mm_setup(k, name)
        fns[name] = lambda f=f, args=args: _block(f(*args))
        nnz = A.nse
    times = timeit_interleaved(fns, repeat=repeat, slow=("jax_bcsr",), slow_repeat=2)
    mem = {name: _memory_in_subprocess(k, name)["peak_growth_bytes"] for name in fns}
    rows = []
    case = f"sparse_mm jit fwd+bwd n={k**3} nnz={nnz} p={P} float32 ({device})"
    for ours, theirs in (
        ("jax_api_bcoo", "jax_bcoo"),
        ("jax_api_bcsr", "jax_bcsr"),
        ("jax_api_bcsr", "jax_bcoo"),
    ):
        ratio = times[ours] / times[theirs]
        mratio = mem[ours] / max(mem[theirs], 1)
        rows.append(
            {
                "case": case,
                "ours": ours,
                "baseline": theirs,
                "ours_ms": times[ours] * 1e3,
                "baseline_ms": times[theirs] * 1e3,
                "time_ratio": ratio,
                "target": "time_ratio <= 0.5 and peak_ratio < 1",
                "ours_peak_MB": mem[ours] / 2**20,
                "baseline_peak_MB": mem[theirs] / 2**20,
                "peak_ratio": mratio,
                "ok": ratio <= 0.5 and mratio < 1,
            }
        )
    return rows


# ------------------------------------------------------------------------- triangular solve
def _bench_trisolve(k: int, repeat: int, device: str) -> list[dict]:
    import jax_api
    import torch_api

    L_t = lower(stencil27(k, torch.float32, torch.sparse_csr, torch.int32))
    L, _ = _jax_matrices(L_t)
    B, G = _dense_pair(L.shape[0])
    f = _grad_step(lambda A, B: jax_api.sparse_triangular_solve(A, B, upper=False), L)
    args = (L.data, _index_arrays(L), B, G)

    Lt = L_t.detach().clone().requires_grad_()
    Bt = torch.from_dlpack(B).clone().requires_grad_()
    Gt = torch.from_dlpack(G).clone()

    def torch_step():
        X = torch_api.sparse_triangular_solve(Lt, Bt, upper=False)
        return torch.autograd.grad(X, (Lt, Bt), Gt)

    times = timeit_interleaved(
        {"jax_api": lambda: _block(f(*args)), "torch_api": torch_step}, repeat=repeat
    )
    ratio = times["jax_api"] / times["torch_api"]
    return [
        {
            "case": f"sparse_triangular_solve lower CSR fwd+bwd n={k**3} nnz={L.nse} p={P} float32 "
            f"({device})",
            "ours_ms": times["jax_api"] * 1e3,
            "baseline": "torch_api.sparse_triangular_solve",
            "baseline_ms": times["torch_api"] * 1e3,
            "time_ratio": ratio,
            "target": "time_ratio <= 1.5",
            "ok": ratio <= 1.5,
        }
    ]


# ---------------------------------------------------------------------------- generic solve
def _bench_cg(k: int, repeat: int, device: str) -> list[dict]:
    import jax

    import jax_api

    A, A_coo = _jax_matrices(poisson3d(k, torch.float32, torch.sparse_csr, torch.int32))
    B, G = _dense_pair(A.shape[0])
    tol = 1e-5

    def ours(A, B):
        return jax_api.sparse_generic_solve(A, B, jax_api.cg, tol=tol)

    def jax_cg(A, B):
        solve = lambda b: jax.scipy.sparse.linalg.cg(lambda x: A @ x, b, tol=tol)[0]
        return jax.vmap(solve, in_axes=1, out_axes=1)(B)

    f_ours = _grad_step(ours, A)
    f_jax = _grad_step(jax_cg, A_coo)
    a_ours = (A.data, _index_arrays(A), B, G)
    a_jax = (A_coo.data, _index_arrays(A_coo), B, G)
    times = timeit_interleaved(
        {"ours": lambda: _block(f_ours(*a_ours)), "jax": lambda: _block(f_jax(*a_jax))},
        repeat=repeat,
        slow=("jax",),
        slow_repeat=2,
    )
    g_ours, g_jax = f_ours(*a_ours), f_jax(*a_jax)
    import numpy as np

    agree = float(np.max(np.abs(np.asarray(g_ours[1][1]) - np.asarray(g_jax[1][1]))))
    ratio = times["ours"] / times["jax"]
    return [
        {
            "case": f"sparse_generic_solve cg Poisson fwd+bwd n={k**3} nnz={A.nse} p={P} tol={tol} "
            f"float32 ({device})",
            "ours_ms": times["ours"] * 1e3,
            "baseline": "jax.scipy.sparse.linalg.cg with BCOO @ x, differentiated by JAX",
            "baseline_ms": times["jax"] * 1e3,
            "time_ratio": ratio,
            "target": "time_ratio <= 1.2",
            "ok": ratio <= 1.2,
            "max_abs_diff_dB": agree,
        }
    ]


def run(device: str, quick: bool) -> list[dict]:
    import jax

    if device != "cpu" and jax.default_backend() != "gpu":
        # the runner reports an ImportError as "skipped"
        raise ImportError(f"benchmarks.jax_ops --device {device}: JAX has no GPU backend here")
    k = 20 if quick else 50
    repeat = 3 if quick else 5
    rows = []
    for bench in (_bench_mm, _bench_trisolve, _bench_cg):
        for row in bench(k, repeat, device):
            rows.append(row)
            print(
                f"   {row['case'].split(' n=')[0]} vs {row['baseline'][:45]}: time ratio "
                f"{row['time_ratio']:.3f} ({row['target']})",
                flush=True,
            )
    return rows


def _main(argv: list[str]) -> None:
    if argv[:1] != ["--memory"]:
        raise SystemExit("usage: python -m benchmarks.jax_ops --memory K NAME")
    print(json.dumps(_peak_growth(int(argv[1]), argv[2])))


if __name__ == "__main__":
    _main(sys.argv[1:])
