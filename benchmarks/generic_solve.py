"""``sparse_generic_solve`` with CG: ``X = A^{-1} B``, its gradients for A (on A's pattern) and B.

Problem: the SPD 7-point Poisson matrix (``spd``), ``B`` dense ``(n, rhs)``, COO and CSR, CG to a
relative residual of ``TOL``. Implementations: torch_api with :func:`torch_api.utils.linear_cg`,
jax_api with :func:`jax_api.cg`, torchsparsegradutils 0.2.7 with its own ``linear_cg`` at the same
tolerance, ``jax.scipy.sparse.linalg.cg`` on a BCOO/BCSR differentiated by JAX (vmapped over the
columns of ``B``), a dense ``torch.linalg.solve`` (small problems only) and SciPy's ``cg``
(forward only, one column at a time).

Goals: torch_api no slower than tsgu 0.2.7 (issue 3) and jax_api within 1.2x of JAX's own cg
(issue 6), forward + backward; and the gradients agree with a direct solve (issue 3): the
largest relative error of ``X``, ``dB = A^{-T} G`` and ``dA = -dB X^T`` (at A's nonzeros)
against a float64 direct solve stays below ``sqrt(TOL)``. The built-in Poisson matrix is solved
directly by the orthonormal 3-D type-I sine transform that diagonalises it; a ``--matrix`` file by
SciPy's sparse LU.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch

import bridge
from benchmarks import _runners
from benchmarks._harness import Case, Goal, Impl, time_ratio
from benchmarks._runners import jax_runner, on_cpu, plain_runner, to_jax_sparse, torch_runner, tsgu

TOL = 1e-5


def _ours_torch(A, B):
    from torch_api import sparse_generic_solve
    from torch_api.utils import LinearCGSettings, linear_cg

    return sparse_generic_solve(A, B, solve=linear_cg, settings=LinearCGSettings(cg_tolerance=TOL))


def _tsgu(A, B):
    from torchsparsegradutils.utils import LinearCGSettings, linear_cg

    with warnings.catch_warnings():  # its deprecation and beta warnings
        warnings.simplefilter("ignore")
        settings = LinearCGSettings(cg_tolerance=TOL)
        return tsgu().sparse_generic_solve(A, B, solve=linear_cg, settings=settings)


def _ours_jax(A, B):
    import jax_api

    return jax_api.sparse_generic_solve(A, B, solve=jax_api.cg, tol=TOL)


def _jax_native(A, B):
    import jax
    from jax.scipy.sparse.linalg import cg

    return jax.vmap(lambda b: cg(A, b, tol=TOL)[0], in_axes=1, out_axes=1)(B)


def _scipy_cg(S, X):
    from scipy.sparse.linalg import cg

    return np.stack([cg(S, x, rtol=TOL)[0] for x in X.T], axis=1)


def impls(cfg, A: torch.Tensor, B: torch.Tensor, layout: str) -> list[Impl]:
    def jax_args():
        return (to_jax_sparse(A), bridge.to_jax(B))

    def dense():
        _runners.dense_solve_cap(cfg, A.shape[0])
        return torch_runner(torch.linalg.solve, (A.to_dense(), B), (0, 1))

    def scipy():
        on_cpu(cfg.device, "SciPy")
        return plain_runner(_scipy_cg, (bridge.to_scipy(A).tocsr(), B.numpy()))

    jax_name = "jax.scipy cg " + ("BCOO" if layout == "coo" else "BCSR")
    return [
        Impl("torch_api", lambda: torch_runner(_ours_torch, (A, B), (0, 1)), ours=True),
        Impl("jax_api", lambda: jax_runner(_ours_jax, jax_args(), (0, 1)), ours=True),
        Impl(jax_name, lambda: jax_runner(_jax_native, jax_args(), (0, 1))),
        Impl("torch dense", dense),
        Impl("scipy cg", scipy),
        Impl("tsgu 0.2.7", lambda: torch_runner(_tsgu, (A, B), (0, 1))),
    ]


# --------------------------------------------------------------------------- the direct solve
def dst_poisson_solve(k: int, B: np.ndarray) -> np.ndarray:
    """``A^{-1} B`` for the 7-point Dirichlet Poisson matrix of a ``k^3`` grid, in float64.

    The orthonormal type-I sine transform ``S`` (its own inverse) diagonalises ``A``:
    ``A = S diag(lambda) S`` with ``lambda = sum over axes of 2 - 2 cos(pi j / (k + 1))``.
    """
    from scipy.fft import dstn

    lam1 = 2 - 2 * np.cos(np.pi * np.arange(1, k + 1) / (k + 1))
    lam = lam1[:, None, None] + lam1[None, :, None] + lam1[None, None, :]
    Y = dstn(B.reshape(k, k, k, -1), type=1, axes=(0, 1, 2), norm="ortho") / lam[..., None]
    return dstn(Y, type=1, axes=(0, 1, 2), norm="ortho").reshape(k**3, -1)


def _direct_solver(cfg, A: torch.Tensor):
    """``B -> A^{-1} B`` in float64 for this case's (symmetric) matrix."""
    if cfg.matrix is None:
        return functools.partial(dst_poisson_solve, cfg.size)
    from scipy.sparse.linalg import splu

    lu = splu(bridge.to_scipy(A.detach().cpu().to(torch.float64)).tocsc())
    return lambda B: lu.solve(B)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def gradient_error(cfg, A: torch.Tensor, B: torch.Tensor, layout: str, impl: str):
    """A goal's value: max relative error of ``X, dA, dB`` of ``impl`` against a direct solve."""

    def value(results):
        r = results.get(impl)
        if r is None or not r.ok:
            return None
        runner = next(i for i in impls(cfg, A, B, layout) if i.name == impl).make()
        X = runner.forward()
        grads = runner.step()[1] if runner.step is not None else runner.backward(X)
        X, dA, dB, G = (_host(t) for t in (X, *grads, runner.cotangent))
        solve = _direct_solver(cfg, A)
        Xd, dBd = solve(_host(B)), solve(G)  # A is symmetric: A^{-T} G = A^{-1} G
        rows, cols = _coordinates(A)
        dAd = -(dBd[rows] * Xd[cols]).sum(1)
        return max(_rel(X, Xd), _rel(dB, dBd), _rel(dA, dAd))

    return value


def _host(x) -> np.ndarray:
    """A dense array or sparse gradient of either frontend as float64 NumPy (values if sparse,
    in row-major order: the order of A's values in both frontends here)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.layout != torch.strided:
            x = x.to_sparse_csr().values()
        return x.cpu().double().numpy()
    if hasattr(x, "data") and hasattr(x, "indices"):  # BCOO / BCSR gradient
        x = x.data
    return np.asarray(x, dtype=np.float64)


def _coordinates(A: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    C = A.detach().cpu().to_sparse_csr()
    crow = C.crow_indices().long()
    rows = torch.repeat_interleave(torch.arange(C.shape[0]), crow[1:] - crow[:-1])
    return rows.numpy(), C.col_indices().long().numpy()


def cases(cfg) -> list[Case]:
    out = []
    for layout, A, B, info in cfg.problems("spd", tol=TOL):
        jax_name = "jax.scipy cg " + ("BCOO" if layout == "coo" else "BCSR")
        limit = math.sqrt(TOL)
        goals = [
            Goal("torch_api no slower than tsgu 0.2.7 at the same tolerance (fwd+bwd)",
                 time_ratio("torch_api", "tsgu 0.2.7"), 1.0, "issue 3"),
            Goal(f"jax_api within 1.2x of {jax_name} autodiff (fwd+bwd)",
                 time_ratio("jax_api", jax_name), 1.2, "issue 6"),
            Goal("torch_api X, dA, dB vs a direct solve: max relative error",
                 gradient_error(cfg, A, B, layout, "torch_api"), limit, "issue 3"),
            Goal("jax_api X, dA, dB vs a direct solve: max relative error",
                 gradient_error(cfg, A, B, layout, "jax_api"), limit, "issue 6"),
        ]
        out.append(Case("sparse_generic_solve", f"{cfg.name_of('spd')} {layout} cg",
                        impls(cfg, A, B, layout), goals, info))
    return out
