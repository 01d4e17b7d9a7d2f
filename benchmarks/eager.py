"""``eager``: jax_api called eagerly (no ``jax.jit`` around the call) against the same call jitted.

Problems: ``sparse_mm`` on the 27-point stencil (``general``), ``sparse_triangular_solve`` on its
lower triangle (``lower``) and ``sparse_generic_solve`` with ``jax_api.cg`` on the 7-point
Poisson matrix (``spd``), ``B`` dense ``(n, rhs)``, CSR (BCSR). "jax_api jit" compiles the call
and its ``value_and_grad`` ahead (as every other benchmark does); "jax_api eager" calls the
public function as a notebook would, the gradient through an un-jitted ``jax.value_and_grad``.
Goal (issue 17): eager within 1.5x of jit, forward and forward + backward; eager calls reuse
the library's compiled programs, so what remains is Python dispatch and the eager checks.
"""

from __future__ import annotations

import bridge
from benchmarks._harness import Case, Goal, Impl, Runner, time_ratio
from benchmarks._runners import jax_runner, to_jax_sparse

TOL = 1e-5


def _mm(A, B):
    import jax_api

    return jax_api.sparse_mm(A, B)


def _tri(A, B):
    import jax_api

    return jax_api.sparse_triangular_solve(A, B, upper=False)


def _cg(A, B):
    import jax_api

    return jax_api.sparse_generic_solve(A, B, solve=jax_api.cg, tol=TOL)


def eager_runner(fn, inputs) -> Runner:
    """``fn(*inputs)`` and ``value_and_grad(<G, fn>)`` for every input, both called eagerly."""
    import jax
    import jax.numpy as jnp

    inputs = tuple(inputs)
    G = jax.random.normal(jax.random.key(2), jax.eval_shape(fn, *inputs).shape,
                          inputs[1].dtype)
    vg = jax.value_and_grad(lambda *xs: jnp.vdot(G, fn(*xs)), argnums=(0, 1), allow_int=True)
    return Runner(forward=lambda: fn(*inputs), step=lambda: vg(*inputs), inputs=inputs,
                  cotangent=G)


def cases(cfg) -> list[Case]:
    out = []
    for op, kind, fn in (("sparse_mm", "general", _mm),
                         ("sparse_triangular_solve", "lower", _tri),
                         ("sparse_generic_solve cg", "spd", _cg)):
        A = cfg.matrix_for(kind, "csr")
        B = cfg.dense(A.shape[1])
        args = lambda A=A, B=B: (to_jax_sparse(A), bridge.to_jax(B))
        impls = [
            Impl("jax_api eager", lambda fn=fn, args=args: eager_runner(fn, args()), ours=True),
            Impl("jax_api jit", lambda fn=fn, args=args: jax_runner(fn, args(), (0, 1)),
                 ours=True),
        ]
        goals = [
            Goal(f"{op}: jax_api eager within 1.5x of jit (fwd)",
                 time_ratio("jax_api eager", "jax_api jit", "fwd_s"), 1.5, "issue 17"),
            Goal(f"{op}: jax_api eager within 1.5x of jit (fwd+bwd)",
                 time_ratio("jax_api eager", "jax_api jit"), 1.5, "issue 17"),
        ]
        info = dict(n=A.shape[0], nnz=A._nnz(), rhs=cfg.rhs, layout="csr",
                    index_dtype=cfg.index_name("csr"), dtype=cfg.dtype_name)
        out.append(Case(f"eager {op}", f"{cfg.name_of(kind)} csr", impls, goals, info))
    return out
