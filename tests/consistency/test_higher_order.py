"""Second derivatives and forward mode agree across torch_api, jax_api and dense torch.

For each operation and case: the Hessian-vector product of ``sum(W * op(A, B)**2)`` in A's stored
values (a vector of length nnz: torch by double backward, JAX by ``jvp`` of ``grad``), the mixed
second derivative in B, and the JVP in B (``torch.func.jvp`` / ``jax.jvp``), each against dense
torch autograd in float64 read at the stored entries.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .cases import cases, make_inputs, make_matrix, rel_err, torch_sparse

jax = pytest.importorskip("jax")
jax_api = pytest.importorskip("jax_api")
import bridge  # noqa: E402
import torch_api  # noqa: E402
from torch_api._pattern import sparse_with_values  # noqa: E402

jnp = jax.numpy
N = 7
BOUND = 1e-8

OPS = {
    "sparse_mm": ("rect", torch_api.sparse_mm, jax_api.sparse_mm, torch.matmul),
    "triangular": (
        "lower",
        lambda A, B: torch_api.sparse_triangular_solve(A, B, upper=False),
        lambda A, B: jax_api.sparse_triangular_solve(A, B, upper=False),
        lambda D, B: torch.linalg.solve_triangular(D, B, upper=False),
    ),
    "triangular_upper_transposed": (
        "upper",
        lambda A, B: torch_api.sparse_triangular_solve(A, B, upper=True, transpose=True),
        lambda A, B: jax_api.sparse_triangular_solve(A, B, upper=True, transpose=True),
        lambda D, B: torch.linalg.solve_triangular(D.mT, B, upper=False),
    ),
    "generic_solve_cg": (
        "spd",
        lambda A, B: torch_api.sparse_generic_solve(
            A, B, solve=torch_api.utils.linear_cg,
            settings=torch_api.utils.LinearCGSettings(cg_tolerance=1e-13)),
        lambda A, B: jax_api.sparse_generic_solve(A, B, solve=jax_api.cg, tol=1e-13),
        torch.linalg.solve,
    ),
}


def _case_list():
    out = []
    for name in OPS:
        batches = (None,) if name.startswith("generic") else (None, 3)  # 2-D A only there
        for c in cases(name, square=name != "sparse_mm", batches=batches, rhs=(3,),
                       patterns=("random",)):
            if c.dtype == "float64":
                out.append(pytest.param(name, c, id=f"{name}-{c.id}"))
    return out


def _inputs(name, case):
    kind = OPS[name][0]
    D = make_matrix(case, N, N - 2 if kind == "rect" else N, kind)
    inp = make_inputs(case, D, D.shape[-1])
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        out = OPS[name][3](D, inp.B)
    W = torch.randn(*out.shape, generator=g, dtype=torch.float64)
    u = torch.randn(inp.values.shape, generator=g, dtype=torch.float64)  # direction in values
    dB = torch.randn(inp.B.shape, generator=g, dtype=torch.float64)  # direction in B
    return inp, W, u, dB


def _torch(name, case, inp, W, u, dB):
    op = OPS[name][1]
    S = torch_sparse(inp, case, inp.values.clone())
    v = S.values().detach().clone().requires_grad_() if case.layout == "csr" else \
        S._values().detach().clone().requires_grad_()
    B = inp.B.clone().requires_grad_()
    loss = (W * op(sparse_with_values(S, v), B) ** 2).sum()
    gv, gB = torch.autograd.grad(loss, (v, B), create_graph=True)
    hvp = torch.autograd.grad((gv * u.reshape(v.shape)).sum(), v, retain_graph=True)[0]
    mixed = torch.autograd.grad((gB * dB).sum(), v)[0]  # d/dv <grad_B, dB>
    A = sparse_with_values(S, v.detach())
    _, jvp = torch.func.jvp(lambda b: op(A, b), (inp.B,), (dB,))
    return hvp.reshape(-1).numpy(), mixed.reshape(-1).numpy(), jvp.numpy()


def _jax(name, case, inp, W, u, dB):
    op = OPS[name][2]
    A = bridge.to_jax(torch_sparse(inp, case, inp.values.clone()))
    B, Wj, uj, dBj = (jnp.asarray(x.numpy()) for x in (inp.B, W, u, dB))

    def loss(data, B):
        return jnp.sum(Wj * op(_with_data(A, data), B) ** 2)

    grad = jax.grad(loss, argnums=(0, 1))
    hvp = jax.jvp(lambda d: grad(d, B)[0], (A.data,), (uj.reshape(A.data.shape),))[1]
    mixed = jax.grad(lambda d: jnp.sum(grad(d, B)[1] * dBj))(A.data)
    jvp = jax.jvp(lambda b: op(A, b), (B,), (dBj,))[1]
    return tuple(np.asarray(x).reshape(-1 if i < 2 else x.shape)
                 for i, x in enumerate((hvp, mixed, jvp)))


def _with_data(A, data):
    from jax.experimental.sparse import BCOO, BCSR

    if isinstance(A, BCSR):
        return BCSR((data, A.indices, A.indptr), shape=A.shape)
    return BCOO((data, A.indices), shape=A.shape)


def _dense(name, inp, W, u, dB):
    op = OPS[name][3]
    idx = tuple(inp.indices)
    v = inp.values.clone().requires_grad_()
    B = inp.B.clone().requires_grad_()
    D = torch.zeros(inp.shape, dtype=torch.float64).index_put(idx, v, accumulate=True)
    loss = (W * op(D, B) ** 2).sum()
    gv, gB = torch.autograd.grad(loss, (v, B), create_graph=True)
    hvp = torch.autograd.grad((gv * u).sum(), v, retain_graph=True)[0]
    mixed = torch.autograd.grad((gB * dB).sum(), v)[0]
    _, jvp = torch.func.jvp(lambda b: op(D.detach(), b), (inp.B,), (dB,))
    return hvp.numpy(), mixed.numpy(), jvp.numpy()


@pytest.mark.parametrize(("name", "case"), _case_list())
def test_second_derivatives_and_jvp_agree(name, case):
    inp, W, u, dB = _inputs(name, case)
    want = _dense(name, inp, W, u, dB)
    with jax.enable_x64(True):
        got = {"torch": _torch(name, case, inp, W, u, dB), "jax": _jax(name, case, inp, W, u, dB)}
    for frontend, res in got.items():
        for what, g, w in zip(("hvp in values", "mixed (values, B)", "jvp in B"), res, want,
                              strict=True):
            assert g.shape == w.shape, (frontend, what, g.shape, w.shape)
            err = rel_err(g, w)
            assert err <= BOUND, f"{frontend} {what}: relative error {err:.2e} > {BOUND:.0e}"
