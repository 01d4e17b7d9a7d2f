"""``sparse_generic_lstsq`` with LSMR: ``X = argmin ||A X - B||`` and its gradients for A and B.

Problem: ``tall``, the 27-point stencil stacked on the identity (``(2n, n)``, a damped least-squares
problem of full column rank), ``B`` dense ``(2n, rhs)``, COO and CSR, LSMR with its default
tolerances (``atol = btol = 1e-6``) everywhere. Implementations: torch_api and jax_api (their
LSMR), torchsparsegradutils 0.2.7 (its LSMR), dense ``torch.linalg.lstsq`` and
``jnp.linalg.lstsq`` differentiated by autograd (small problems only: JAX has no sparse least
squares, PyTorch neither), and SciPy's ``lsmr`` (forward only, one column at a time). No issue
sets a goal here: the ratios are reported.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

import bridge
from benchmarks import _runners
from benchmarks._harness import Case, Impl
from benchmarks._runners import jax_runner, on_cpu, plain_runner, to_jax_sparse, torch_runner, tsgu


def _ours_torch(A, B):
    from torch_api import sparse_generic_lstsq

    return sparse_generic_lstsq(A, B)


def _ours_jax(A, B):
    import jax_api

    return jax_api.sparse_generic_lstsq(A, B)


def _torch_dense(A, B):
    return torch.linalg.lstsq(A, B).solution


def _jax_dense(A, B):
    import jax.numpy as jnp

    return jnp.linalg.lstsq(A, B)[0]


def _scipy_lsmr(S, X):
    from scipy.sparse.linalg import lsmr

    with warnings.catch_warnings():  # its float32 condition estimate overflows: harmless
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([lsmr(S, x)[0] for x in X.T], axis=1)


def impls(cfg, A: torch.Tensor, B: torch.Tensor) -> list[Impl]:
    n = A.shape[1]

    def dense(fn, to):
        def make():
            _runners.dense_solve_cap(cfg, n)
            return fn((to(A.to_dense()), to(B)))

        return make

    def scipy():
        on_cpu(cfg.device, "SciPy")
        return plain_runner(_scipy_lsmr, (bridge.to_scipy(A).tocsr(), B.numpy()))

    return [
        Impl("torch_api", lambda: torch_runner(_ours_torch, (A, B), (0, 1)), ours=True),
        Impl("jax_api", lambda: jax_runner(_ours_jax, (to_jax_sparse(A), bridge.to_jax(B)),
                                           (0, 1)), ours=True),
        Impl("torch dense", dense(lambda xs: torch_runner(_torch_dense, xs, (0, 1)), lambda x: x)),
        Impl("jax dense", dense(lambda xs: jax_runner(_jax_dense, xs, (0, 1)), bridge.to_jax)),
        Impl("scipy lsmr", scipy),
        Impl("tsgu 0.2.7", lambda: torch_runner(tsgu().sparse_generic_lstsq, (A, B), (0, 1))),
    ]


def cases(cfg) -> list[Case]:
    out = []
    for layout, A, B, info in cfg.problems("tall"):
        out.append(Case("sparse_generic_lstsq", f"{cfg.name_of('tall')} {layout} lsmr",
                        impls(cfg, A, B), [], info))
    return out
