"""``sparse_logsumexp``: row-wise log-sum-exp over the stored entries, gradient on A's pattern.

Problem: the 27-point stencil (``general``), COO and CSR, ``dim=1, include_zeros=False``: the
log-normaliser of a softmax over each voxel's neighbours (graph attention, a sparse Gibbs
distribution). Implementations: torch_api and jax_api, torchsparsegradutils 0.2.7, and the dense
way in torch and JAX: scatter the values into an ``n x n`` matrix of ``-inf`` and call
``logsumexp`` (recorded as ``oom`` ahead where the matrix does not fit). No issue sets a goal.
"""

from __future__ import annotations

import torch

import bridge
from benchmarks._harness import Case, Impl
from benchmarks._runners import jax_runner, to_jax_sparse, torch_runner, tsgu


def _coo_parts(A: torch.Tensor):
    C = A.detach().to_sparse_coo().coalesce()
    return C.indices()[0], C.indices()[1], C.values()


def _torch_dense(n: int, m: int):
    def fn(values, rows, cols):
        D = torch.full((n, m), float("-inf"), dtype=values.dtype, device=values.device)
        return torch.logsumexp(D.index_put((rows, cols), values), dim=1)

    return fn


def _jax_dense(n: int, m: int):
    def fn(values, rows, cols):
        import jax
        import jax.numpy as jnp

        D = jnp.full((n, m), -jnp.inf, values.dtype).at[rows, cols].set(values)
        return jax.nn.logsumexp(D, axis=1)

    return fn


def _ours_torch(A):
    from torch_api import sparse_logsumexp

    return sparse_logsumexp(A, dim=1, include_zeros=False)


def _ours_jax(A):
    import jax_api

    return jax_api.sparse_logsumexp(A, dim=1, include_zeros=False)


def _tsgu(A):
    return tsgu().sparse_logsumexp(A, dim=1, include_zeros=False)


def impls(cfg, A: torch.Tensor) -> list[Impl]:
    n, m = A.shape
    dense_bytes = 2 * n * m * A.values().element_size()  # the matrix and its gradient
    rows, cols, values = _coo_parts(A)

    def jax_dense():
        args = (bridge.to_jax(values), bridge.to_jax(rows.int()), bridge.to_jax(cols.int()))
        return jax_runner(_jax_dense(n, m), args, (0,))

    return [
        Impl("torch_api", lambda: torch_runner(_ours_torch, (A,), (0,)), ours=True),
        Impl("jax_api", lambda: jax_runner(_ours_jax, (to_jax_sparse(A),), (0,)), ours=True),
        Impl("torch dense -inf", lambda: torch_runner(_torch_dense(n, m), (values, rows, cols),
                                                      (0,)), needs_bytes=dense_bytes),
        Impl("jax dense -inf", jax_dense, needs_bytes=dense_bytes),
        Impl("tsgu 0.2.7", lambda: torch_runner(_tsgu, (A,), (0,))),
    ]


def cases(cfg) -> list[Case]:
    out = []
    for layout in cfg.layouts:
        A = cfg.matrix_for("general", layout)
        info = dict(n=A.shape[0], nnz=A._nnz(), layout=layout, dim=1, include_zeros=False,
                    index_dtype=cfg.index_name(layout), dtype=cfg.dtype_name)
        out.append(Case("sparse_logsumexp", f"{cfg.name_of('general')} {layout}",
                        impls(cfg, A), [], info))
    return out
