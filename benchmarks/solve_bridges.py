"""The cross-framework solves against calling their solver directly (issue 4).

- ``sparse_solve_j4t`` with JAX's BiCGSTAB on the SPD 7-point Poisson matrix (``spd``) against
  the same jitted ``jax.scipy.sparse.linalg.bicgstab`` called on a BCOO built once, outside the
  timing (j4t hands JAX a BCOO whatever the torch layout);
- ``sparse_solve_c4t`` with ``"spsolve_triangular"`` on the Poisson matrix's lower triangle
  (``spd_lower``) and with ``"cg"`` on the Poisson matrix, against SciPy (CPU) or CuPy (CUDA)
  called on a matrix built once.

One right-hand side ``b (n,)``, tolerance ``TOL``. What is compared is the forward solve: the
overhead of the bridge (conversion, compilation cache look-up, residual check) over the solver
itself; our forward + backward is timed too. Goals (issue 4): ours at most 1.1x the direct call,
for j4t everywhere and for c4t on the CPU.
"""

from __future__ import annotations

import torch

import bridge
from benchmarks._harness import Case, Goal, Impl, time_ratio
from benchmarks._runners import jax_runner, plain_runner, to_jax_sparse, torch_runner

TOL = 1e-6
LIMIT = 1.1


def _jax_bicgstab(A, b):
    from jax.scipy.sparse.linalg import bicgstab

    return bicgstab(A, b, tol=TOL)[0]


def _j4t(A, b):
    from torch_api import sparse_solve_j4t

    return sparse_solve_j4t(A, b, tol=TOL)


def _c4t(name: str, **kw):
    def solve(A, b):
        from torch_api import sparse_solve_c4t

        return sparse_solve_c4t(A, b, name, **kw)

    return solve


def _direct(cfg, name: str, A: torch.Tensor, b: torch.Tensor, **kw):
    """SciPy's (CPU) or CuPy's (CUDA) solver on a matrix converted once."""
    if cfg.device == "cuda":
        from bridge._optional import require

        lib = require("cupyx.scipy.sparse.linalg")
        M, rhs = bridge.to_cupy(A).tocsr(), bridge.to_cupy(b)
    else:
        import scipy.sparse.linalg as lib

        M, rhs = bridge.to_scipy(A).tocsr(), b.numpy()
    fn = getattr(lib, name)
    return plain_runner(lambda M, x: fn(M, x, **kw), (M, rhs))


def _case(cfg, op: str, what: str, kind: str, layout: str, ours, base_name: str, base) -> Case:
    A = cfg.matrix_for(kind, layout)
    b = cfg.dense(A.shape[0], 1)[:, 0]
    info = dict(n=A.shape[0], nnz=A._nnz(), rhs=1, layout=layout, tol=TOL,
                index_dtype=cfg.index_name(layout), dtype=cfg.dtype_name)
    impls = [
        Impl("torch_api", lambda: torch_runner(ours, (A, b), (0, 1)), ours=True),
        Impl(base_name, lambda: base(A, b)),
    ]
    goals = []
    if op == "sparse_solve_j4t" or cfg.device == "cpu":
        goals = [Goal(f"torch_api forward <= {LIMIT}x {base_name} called directly",
                      time_ratio("torch_api", base_name, "fwd_s"), LIMIT, "issue 4")]
    return Case(op, f"{cfg.name_of(kind)} {layout} {what}", impls, goals, info)


def cases(cfg) -> list[Case]:
    lib = "cupyx" if cfg.device == "cuda" else "scipy"
    cg_tol = {"tol": TOL} if cfg.device == "cuda" else {"rtol": TOL}
    out = []
    for layout in cfg.layouts:
        out += [
            _case(cfg, "sparse_solve_j4t", "bicgstab", "spd", layout, _j4t,
                  "jitted jax bicgstab BCOO",
                  lambda A, b: jax_runner(_jax_bicgstab, (to_jax_sparse(A.to_sparse_coo()),
                                                          bridge.to_jax(b)))),
            _case(cfg, "sparse_solve_c4t", "spsolve_triangular", "spd_lower", layout,
                  _c4t("spsolve_triangular", lower=True), f"{lib} spsolve_triangular",
                  lambda A, b: _direct(cfg, "spsolve_triangular", A, b, lower=True)),
            _case(cfg, "sparse_solve_c4t", "cg", "spd", layout, _c4t("cg", **cg_tol),
                  f"{lib} cg", lambda A, b: _direct(cfg, "cg", A, b, **cg_tol)),
        ]
    return out
