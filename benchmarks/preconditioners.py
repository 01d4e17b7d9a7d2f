"""CG iterations and time with no preconditioner, ``jacobi`` and ``ic0``, torch_api and jax_api.

Problems: bcsstk13 (SuiteSparse, symmetrically scaled to a unit diagonal; from
``../shared/matrices``, skipped when absent) and the 7-point 3-D Poisson matrix of
:mod:`benchmarks._problems` (``k = 16`` quick, ``k = 50`` full). One right-hand side, float64,
relative tolerance 1e-8. Times include building the preconditioner; jax_api times are of a
second (compiled) call. Not plugged into the harness yet: run ``python -m benchmarks.preconditioners
[--full]``, which prints one table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

TOL = 1e-8
MATRICES = Path(__file__).resolve().parents[1].parent / "shared" / "matrices"


def _bcsstk13() -> torch.Tensor | None:
    path = MATRICES / "bcsstk13.mtx"
    if not path.is_file():
        return None
    import scipy.io
    import scipy.sparse as sp

    M = sp.csr_array(scipy.io.mmread(path), dtype=np.float64)
    d = sp.diags_array(1 / np.sqrt(M.diagonal()))
    M = sp.csr_array(d @ M @ d)
    M.sum_duplicates()
    M.sort_indices()
    return torch.sparse_csr_tensor(torch.from_numpy(M.indptr).long(),
                                   torch.from_numpy(M.indices).long(),
                                   torch.from_numpy(M.data), M.shape)


def _poisson(k: int) -> torch.Tensor:
    from benchmarks._problems import stencil

    return stencil(k, "spd", torch.float64).to_sparse_csr()


def _torch_rows(A: torch.Tensor, b: torch.Tensor):
    from torch_api.utils import ic0, jacobi, linear_cg

    for name, build in (("none", None), ("jacobi", jacobi), ("ic0", ic0)):
        t0 = time.perf_counter()
        P = None if build is None else build(A)
        t1 = time.perf_counter()
        _, info = linear_cg(A, b, preconditioner=P, tolerance=TOL, max_iter=20000,
                            return_info=True)
        t2 = time.perf_counter()
        yield name, info.iterations, t1 - t0, t2 - t1


def _jax_rows(A: torch.Tensor, b: torch.Tensor):
    import jax
    from jax.experimental.sparse import BCSR

    import jax_api
    from jax_api._preconditioners import ic0, jacobi

    with jax.enable_x64(True):
        C = A.to_sparse_csr()
        J = BCSR((jax.numpy.asarray(C.values().numpy()),
                  jax.numpy.asarray(C.col_indices().int().numpy()),
                  jax.numpy.asarray(C.crow_indices().int().numpy())), shape=tuple(A.shape))
        bj = jax.numpy.asarray(b.numpy())
        solve = jax.jit(lambda A, b, P: jax_api.cg(A, b, M=P, tol=TOL, maxiter=20000))
        for name, build in (("none", None), ("jacobi", jacobi), ("ic0", ic0)):
            t0 = time.perf_counter()
            P = None if build is None else build(J)
            t1 = time.perf_counter()
            jax.block_until_ready(solve(J, bj, P))  # compile
            t2 = time.perf_counter()
            x, info = jax.block_until_ready(solve(J, bj, P))
            t3 = time.perf_counter()
            # JAX's cg does not count iterations: count products of one more run
            calls = [0]

            def matvec(x, calls=calls):
                jax.debug.callback(lambda: calls.__setitem__(0, calls[0] + 1))
                return J @ x

            jax.block_until_ready(jax_api.cg(matvec, bj, M=P, tol=TOL, maxiter=20000))
            # products: one per iteration, plus the initial residual and the final check
            yield name, max(calls[0] - 2, 0), t1 - t0, t3 - t2


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="Poisson at 50^3 (default 16^3)")
    parser.add_argument("--no-jax", action="store_true")
    args = parser.parse_args(argv)
    k = 50 if args.full else 16
    problems = [("bcsstk13 (scaled)", _bcsstk13()), (f"Poisson {k}^3", _poisson(k))]
    print(f"{'problem':<20} {'frontend':<10} {'precond':<8} {'iterations':>10} "
          f"{'build s':>9} {'solve s':>9}")
    for label, A in problems:
        if A is None:
            print(f"{label:<20} skipped: {MATRICES} has no bcsstk13.mtx")
            continue
        b = torch.randn(A.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        frontends = [("torch_api", _torch_rows)] + ([] if args.no_jax else [("jax_api", _jax_rows)])
        for fe, rows in frontends:
            for name, its, tb, ts in rows(A, b):
                print(f"{label:<20} {fe:<10} {name:<8} {its:>10} {tb:>9.3f} {ts:>9.3f}")


if __name__ == "__main__":
    main()
