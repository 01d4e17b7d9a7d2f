"""``sparse_triangular_solve``: ``X = L^{-1} B`` and its gradients for L (on L's pattern) and B.

Problem: ``L`` the lower triangle of the 27-point stencil with a dominant diagonal (``lower``,
``upper=False``), ``B`` dense ``(n, rhs)``, COO and CSR. Goals: torch_api at least 2x faster than
torchsparsegradutils 0.2.7 (forward + backward; issue 3); jax_api within 1.5x of torch_api
(issue 6). Baselines: torch's own CSR ``torch.triangular_solve`` (its backward returns a dense
``n x n`` gradient for L), dense solves in torch and JAX, and SciPy's ``spsolve_triangular``
(forward only).
"""

from __future__ import annotations

import warnings

import torch

import bridge
from benchmarks._harness import Case, Goal, Impl, Unsupported, time_ratio
from benchmarks._runners import jax_runner, on_cpu, plain_runner, to_jax_sparse, torch_runner, tsgu


def _torch_native(A, B):
    with warnings.catch_warnings():  # torch.triangular_solve is deprecated, and the only sparse one
        warnings.simplefilter("ignore")
        return torch.triangular_solve(B, A, upper=False).solution


def _torch_dense(A, B):
    return torch.linalg.solve_triangular(A, B, upper=False)


def _jax_dense(A, B):
    import jax.scipy.linalg

    return jax.scipy.linalg.solve_triangular(A, B, lower=True)


def _ours_jax(A, B):
    import jax_api

    return jax_api.sparse_triangular_solve(A, B, upper=False)


def _tsgu(A, B):
    return tsgu().sparse_triangular_solve(A, B, upper=False)


def impls(cfg, A: torch.Tensor, B: torch.Tensor, layout: str) -> list[Impl]:
    import torch_api

    n = A.shape[0]
    item = A.values().element_size()

    def ours_torch(A, B):
        return torch_api.sparse_triangular_solve(A, B, upper=False)

    def native():
        if layout != "csr":
            raise Unsupported("torch.triangular_solve takes CSR only, not COO")
        return torch_runner(_torch_native, (A, B), (0, 1))

    def jax_dense():
        return jax_runner(_jax_dense, (bridge.to_jax(A.to_dense()), bridge.to_jax(B)), (0, 1))

    def scipy():
        on_cpu(cfg.device, "SciPy")
        from scipy.sparse.linalg import spsolve_triangular

        S = bridge.to_scipy(A).tocsr()
        return plain_runner(lambda S, X: spsolve_triangular(S, X, lower=True), (S, B.numpy()))

    return [
        Impl("torch_api", lambda: torch_runner(ours_torch, (A, B), (0, 1)), ours=True),
        Impl(
            "jax_api",
            lambda: jax_runner(_ours_jax, (to_jax_sparse(A), bridge.to_jax(B)), (0, 1)),
            ours=True,
        ),
        # its backward forms the gradient of L as a dense n x n matrix (and -dB X^T before it)
        Impl("torch native", native, needs_bytes=2 * n * n * item),
        Impl(
            "torch dense",
            lambda: torch_runner(_torch_dense, (A.to_dense(), B), (0, 1)),
            needs_bytes=3 * n * n * item,
        ),
        Impl("jax dense", jax_dense, needs_bytes=3 * n * n * item),
        Impl("scipy", scipy),
        Impl("tsgu 0.2.7", lambda: torch_runner(_tsgu, (A, B), (0, 1))),
    ]


def cases(cfg) -> list[Case]:
    out = []
    for layout, A, B, info in cfg.problems("lower"):
        goals = [
            Goal("torch_api >= 2x faster than tsgu 0.2.7 (fwd+bwd)",
                 time_ratio("torch_api", "tsgu 0.2.7"), 0.5, "issue 3"),
            Goal("jax_api within 1.5x of torch_api (fwd+bwd)",
                 time_ratio("jax_api", "torch_api"), 1.5, "issue 6"),
        ]
        out.append(Case("sparse_triangular_solve", f"{cfg.name_of('lower')} {layout}",
                        impls(cfg, A, B, layout), goals, info))
    return out
