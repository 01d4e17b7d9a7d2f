"""``sparse_logdet`` and ``sparse_cholesky_solve``: direct factorisations with sparse gradients.

Problem: the SPD 7-point Poisson matrix (``spd``) in float64 (whatever ``--dtype``), CSR, at the
suite's size (the full suite also at 40^3, as issue 20 names). Implementations: torch_api and
jax_api (forward + gradient); SciPy's SuperLU factorisation alone in the same symmetric mode
(minimum-degree ordering of A + A^T, no pivoting), and factor + solve, forward only: the
library doing the work; the dense ``torch.logdet`` / ``torch.linalg.solve`` autograd where it fits.

Goals (issue 20): ``sparse_logdet`` forward + gradient within 3x of the factorisation alone;
``sparse_cholesky_solve`` forward + backward within 2.5x of factor + solve; and the peak bytes of
the fwd+bwd step per nonzero of the factor (``L`` and ``U`` as SuperLU stores them), reported to
show memory proportional to the factor (limit 64: eight float64/int64 words per factor entry).
"""

from __future__ import annotations

import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch

from benchmarks._harness import Case, Goal, Impl
from benchmarks._runners import (
    dense_solve_cap,
    jax_runner,
    plain_runner,
    to_jax_sparse,
    torch_runner,
)


def _scipy(A: torch.Tensor):
    C = A.detach().cpu().to_sparse_csr()
    M = sp.csr_matrix((C.values().numpy(), C.col_indices().numpy(), C.crow_indices().numpy()),
                      shape=C.shape).tocsc()
    M.sort_indices()
    return M


def _superlu(M):
    return sla.splu(M, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                    options=dict(SymmetricMode=True))


def _factor_nnz(M) -> int:
    lu = _superlu(M)
    return int(lu.L.nnz + lu.U.nnz)


def _ratio(ours: str, base: str):
    """Median fwd+bwd of ``ours`` over the median forward of ``base`` (forward only)."""

    def value(res):
        a, b = res.get(ours), res.get(base)
        if a is None or b is None or not (a.ok and b.ok):
            return None
        ta, tb = a.median("fwdbwd_s"), b.median("fwd_s")
        return None if ta is None or not tb else ta / tb

    return value


def _bytes_per_factor_entry(ours: str, entries: int):
    def value(res):
        r = res.get(ours)
        return None if r is None or not r.ok or not r.step_peak else r.step_peak / entries

    return value


def _logdet_torch(A):
    from torch_api import sparse_logdet

    return sparse_logdet(A)


def _logdet_jax(A):
    import jax_api

    return jax_api.sparse_logdet(A)


def _solve_torch(A, B):
    from torch_api import sparse_cholesky_solve

    return sparse_cholesky_solve(A, B)


def _solve_jax(A, B):
    import jax_api

    return jax_api.sparse_cholesky_solve(A, B)


def _jax64(fn, inputs, grad):
    """:func:`jax_runner` in JAX's 64-bit mode (a context: nothing global changes), the mode
    also entered around every call it returns."""
    import jax

    from benchmarks._harness import Runner
    from jax_api import _direct

    with jax.enable_x64(True):
        r = jax_runner(fn, tuple(to_jax_sparse(x) if isinstance(x, torch.Tensor) and x.is_sparse
                                 or getattr(x, "layout", None) == torch.sparse_csr
                                 else x for x in inputs), grad)

    def wrap(f):
        if f is None:
            return None

        def call(*a):
            # every timed call factors afresh, as a training step with new values does (the
            # cache only serves the backward of the same values)
            _direct.clear()
            with jax.enable_x64(True):
                return f(*a)

        return call

    return Runner(forward=wrap(r.forward), backward=wrap(r.backward), step=wrap(r.step),
                  inputs=r.inputs, xla_bytes=r.xla_bytes, cotangent=r.cotangent)


def _dense(cfg, A, fn, inputs, grad):
    dense_solve_cap(cfg, A.shape[0])
    return torch_runner(fn, inputs, grad)


def _cases_at(cfg, size: int | None) -> list[Case]:
    A = cfg.matrix_for("spd", "csr", size=size).to(torch.float64)
    if A.device.type != "cpu":
        A = A.cpu()  # the factorisations run on the host (SciPy)
    n = A.shape[0]
    M = _scipy(A)
    entries = _factor_nnz(M)
    B = cfg.dense(n).to(torch.float64).cpu()
    Bn = B.numpy()
    name = cfg.name_of("spd", size)
    info = dict(n=n, nnz=A._nnz(), factor_nnz=entries, layout="csr", dtype="float64",
                index_dtype="int64", rhs=B.shape[1], library="SciPy SuperLU (symmetric mode)")
    dense_bytes = 3 * n * n * 8
    Ad = lambda: A.to_dense()
    logdet = [
        Impl("torch_api", lambda: torch_runner(_logdet_torch, (A,), (0,)), ours=True),
        Impl("jax_api", lambda: _jax64(_logdet_jax, (A,), (0,)), ours=True),
        Impl("SuperLU factorisation", lambda: plain_runner(_superlu, (M,))),
        Impl("dense torch.logdet", lambda: _dense(cfg, A, torch.logdet, (Ad(),), (0,)),
             needs_bytes=dense_bytes),
    ]
    solve = [
        Impl("torch_api", lambda: torch_runner(_solve_torch, (A, B), (0, 1)), ours=True),
        Impl("jax_api", lambda: _jax64(_solve_jax, (A, B.numpy()), (0, 1)), ours=True),
        Impl("SuperLU factor + solve", lambda: plain_runner(lambda m, b: _superlu(m).solve(b),
                                                            (M, Bn))),
        Impl("dense torch.linalg.solve", lambda: _dense(cfg, A, torch.linalg.solve, (Ad(), B),
                                                        (0, 1)), needs_bytes=dense_bytes),
    ]
    goals_logdet = _goals("logdet fwd+grad", "fwd+grad", "SuperLU factorisation",
                          "SuperLU's factorisation alone", 3.0, entries)
    goals_solve = _goals("cholesky solve fwd+bwd", "fwd+bwd", "SuperLU factor + solve",
                         "SuperLU factor + solve", 2.5, entries)
    return [Case("sparse_logdet", f"{name} csr", logdet, goals_logdet, info),
            Case("sparse_cholesky_solve", f"{name} csr", solve, goals_solve, info)]


def _goals(what: str, passes: str, reference: str, described: str, ratio: float,
           entries: int) -> list[Goal]:
    """Both frontends' time against ``reference`` (at most ``ratio`` times it) and torch_api's
    peak bytes per factor nonzero (at most 64)."""
    return [
        *(Goal(f"{frontend} {what} <= {ratio:g}x {described}", _ratio(frontend, reference),
               ratio, "issue 20") for frontend in ("torch_api", "jax_api")),
        Goal(f"torch_api {passes} peak bytes per factor nonzero",
             _bytes_per_factor_entry("torch_api", entries), 64.0, "issue 20"),
    ]


def cases(cfg) -> list[Case]:
    full = cfg.suite == "full" and cfg.matrix is None
    sizes = [None] if not full or cfg.size == 40 else [40, None]
    return [c for size in sizes for c in _cases_at(cfg, size)]
