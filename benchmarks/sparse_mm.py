"""``sparse_mm``: ``Y = A @ B`` and its gradients for A (on A's pattern) and B.

Problem: the 27-point stencil (``general``), ``B`` dense ``(n, rhs)``; in the full suite also
random matrices at several densities. Goals (issue 3, issue 6): torch_api at least 10x faster
than torchsparsegradutils 0.2.7 (COO and CSR) and no slower than ``torch.sparse.mm``'s CSR
autograd, with a backward whose peak is at most 1.5x the bytes of A, B, dA and dB; jax_api at
most 0.5x the time of differentiating JAX's own ``BCOO @ B`` / ``BCSR @ B``, with a lower peak.
Issue 16: on the stencil, a Hessian-vector product of ``sum(sparse_mm(A, B)**2)`` w.r.t. A's
values costs at most 3x a fwd+bwd, in each frontend.
"""

from __future__ import annotations

import torch

import bridge
from benchmarks._harness import Case, Goal, Impl, Runner, memory_ratio, time_ratio
from benchmarks._memory import nbytes
from benchmarks._runners import jax_runner, on_cpu, plain_runner, to_jax_sparse, torch_runner, tsgu


def _jax_native(A, B):
    return A @ B


def impls(cfg, A: torch.Tensor, B: torch.Tensor, layout: str) -> list[Impl]:
    import torch_api

    n, m = A.shape
    item = A.values().element_size()

    def ours_jax():
        import jax_api

        return jax_runner(jax_api.sparse_mm, (to_jax_sparse(A), bridge.to_jax(B)), (0, 1))

    def scipy():
        on_cpu(cfg.device, "SciPy")
        return plain_runner(lambda S, X: S @ X, (bridge.to_scipy(A), B.numpy()))

    jax_name = "jax.sparse " + ("BCOO" if layout == "coo" else "BCSR")
    return [
        Impl("torch_api", lambda: torch_runner(torch_api.sparse_mm, (A, B), (0, 1)), ours=True),
        Impl("jax_api", ours_jax, ours=True),
        Impl(
            "torch.sparse.mm",
            lambda: torch_runner(torch.sparse.mm, (A, B), (0, 1)),
            # its COO backward forms the gradient of A as a dense n x m matrix
            needs_bytes=n * m * item if layout == "coo" else 0,
        ),
        Impl(
            "torch dense",
            lambda: torch_runner(torch.mm, (A.to_dense(), B), (0, 1)),
            needs_bytes=3 * n * m * item,
        ),
        Impl(
            jax_name,
            lambda: jax_runner(_jax_native, (to_jax_sparse(A), bridge.to_jax(B)), (0, 1)),
        ),
        Impl("scipy", scipy),
        Impl("tsgu 0.2.7", lambda: torch_runner(tsgu().sparse_mm, (A, B), (0, 1))),
    ]


def _backward_footprint(A: torch.Tensor, B: torch.Tensor):
    """(inputs + backward peak of torch_api) / bytes of A, B, dA and dB (dA shares A's indices)."""
    reference = nbytes((A, B)) + A.values().nbytes + B.nbytes

    def value(res):
        r = res.get("torch_api")
        if r is None or not r.ok or r.bwd_peak is None:
            return None
        return (r.inputs_bytes + r.bwd_peak) / reference

    return value


def cases(cfg) -> list[Case]:
    out = []
    for layout in cfg.layouts:
        problems = [("general", True)] + [(f"random:{d:g}", False) for d in cfg.densities]
        for kind, with_goals in problems:
            A = cfg.matrix_for(kind, layout)
            B = cfg.dense(A.shape[1])
            info = dict(
                n=A.shape[0], nnz=A._nnz(), rhs=cfg.rhs, layout=layout,
                index_dtype=cfg.index_name(layout), dtype=cfg.dtype_name,
            )
            goals = []
            if with_goals:
                jax_name = "jax.sparse " + ("BCOO" if layout == "coo" else "BCSR")
                goals = [
                    Goal("torch_api >= 10x faster than tsgu 0.2.7 (fwd+bwd)",
                         time_ratio("torch_api", "tsgu 0.2.7"), 0.1, "issue 3"),
                    Goal("torch_api backward peak <= 1.5x bytes(A, B, dA, dB)",
                         _backward_footprint(A, B), 1.5, "issue 3"),
                    Goal(f"jax_api <= 0.5x the time of {jax_name} autodiff (fwd+bwd)",
                         time_ratio("jax_api", jax_name), 0.5, "issue 6"),
                    Goal(f"jax_api peak memory below {jax_name}'s (fwd+bwd)",
                         memory_ratio("jax_api", jax_name), 1.0, "issue 6"),
                ]
                if layout == "csr":
                    goals.insert(1, Goal("torch_api no slower than torch.sparse.mm CSR autograd",
                                         time_ratio("torch_api", "torch.sparse.mm"), 1.0,
                                         "issue 3"))
            out.append(Case("sparse_mm", f"{cfg.name_of(kind)} {layout}", impls(cfg, A, B, layout),
                            goals, info))
            if with_goals:
                out.append(_hvp_case(cfg, A, B, kind, layout, info))
    return out


def _hvp_runner(A: torch.Tensor, B: torch.Tensor) -> Runner:
    """The Hessian-vector product of ``sum(sparse_mm(A, B)**2)`` w.r.t. A's values (``nnz``):
    a forward, a backward with ``create_graph=True`` and a second backward."""
    import torch_api
    from torch_api._pattern import sparse_with_values

    v = A.values().detach().clone().requires_grad_(True)
    u = torch.randn_like(v)

    def step():
        loss = torch_api.sparse_mm(sparse_with_values(A, v), B).square().sum()
        (g,) = torch.autograd.grad(loss, v, create_graph=True)
        return torch.autograd.grad(g, v, u)

    return Runner(forward=lambda: torch_api.sparse_mm(A, B), step=step, inputs=(A, B, u))


def _jax_hvp_runner(A: torch.Tensor, B: torch.Tensor) -> Runner:
    """jax_api's HVP of the same loss w.r.t. the BCOO/BCSR values: ``jvp`` of ``grad``
    (forward over reverse), compiled ahead; the index arrays are arguments, not constants."""
    import jax
    import jax.numpy as jnp

    import jax_api

    S, Bj = to_jax_sparse(A), bridge.to_jax(B)
    data, *rest = jax.tree_util.tree_leaves(S)
    treedef = jax.tree_util.tree_structure(S)
    u = jax.random.normal(jax.random.key(3), data.shape, data.dtype)

    def loss(data, rest, Bj):
        M = jax.tree_util.tree_unflatten(treedef, [data, *rest])
        return jnp.sum(jax_api.sparse_mm(M, Bj) ** 2)

    def hvp(data, rest, Bj, u):
        return jax.jvp(lambda d: jax.grad(loss)(d, rest, Bj), (data,), (u,))[1]

    step = jax.jit(hvp).lower(data, rest, Bj, u).compile()
    fwd = jax.jit(jax_api.sparse_mm).lower(S, Bj).compile()
    return Runner(forward=lambda: fwd(S, Bj), step=lambda: step(data, rest, Bj, u),
                  inputs=(S, Bj, u))


def _hvp_case(cfg, A: torch.Tensor, B: torch.Tensor, kind: str, layout: str, info) -> Case:
    """Second order (issue 16): an HVP w.r.t. A's values costs at most 3x a fwd+bwd."""
    import torch_api

    def jax_fwd_bwd():
        import jax_api

        return jax_runner(jax_api.sparse_mm, (to_jax_sparse(A), bridge.to_jax(B)), (0, 1))

    impls = [
        Impl("torch_api fwd+bwd", lambda: torch_runner(torch_api.sparse_mm, (A, B), (0, 1)),
             ours=True),
        Impl("torch_api HVP", lambda: _hvp_runner(A, B), ours=True),
        Impl("jax_api fwd+bwd", jax_fwd_bwd, ours=True),
        Impl("jax_api HVP", lambda: _jax_hvp_runner(A, B), ours=True),
    ]
    goals = [Goal(f"{name} HVP w.r.t. A's values <= 3x a fwd+bwd",
                  time_ratio(f"{name} HVP", f"{name} fwd+bwd"), 3.0, "issue 16")
             for name in ("torch_api", "jax_api")]
    return Case("sparse_mm", f"{cfg.name_of(kind)} {layout} HVP", impls, goals, info)
