"""Run one case of a matrix operation ``op(A, B)`` in torch_api, jax_api and dense torch.

``run_case`` returns the three results (output, gradient per stored entry, gradient for B) as
NumPy float64 arrays and checks the bridge round trip of the inputs on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from .cases import DIRECT_RTOL, Case, Inputs, rel_err, torch_sparse

jax = pytest.importorskip("jax")
jnp = jax.numpy


@dataclass
class Result:
    out: np.ndarray
    grad_values: np.ndarray
    grad_B: np.ndarray | None  # None for operations without a dense operand


def run_torch(case: Case, inp: Inputs, fn: Callable) -> Result:
    values = inp.values.to(case.torch_dtype, copy=True).requires_grad_()
    B = inp.B.to(case.torch_dtype, copy=True).requires_grad_()
    A = torch_sparse(inp, case, values)
    before = (values.detach().clone(), B.detach().clone())
    out = fn(A, B)
    (out * inp.W.to(out.dtype)).sum().backward()
    torch.testing.assert_close(values.detach(), before[0], rtol=0, atol=0)  # inputs untouched
    torch.testing.assert_close(B.detach(), before[1], rtol=0, atol=0)
    gB = None if B.grad is None else B.grad.double().numpy()
    return Result(out.detach().double().numpy(), values.grad.double().numpy(), gB)


def with_data(A, data):
    """``A`` (BCOO/BCSR) with its stored values replaced by ``data``."""
    from jax.experimental.sparse import BCOO, BCSR

    if isinstance(A, BCSR):
        return BCSR((data, A.indices, A.indptr), shape=A.shape)
    assert isinstance(A, BCOO)
    return BCOO((data, A.indices), shape=A.shape)


def run_jax(case: Case, inp: Inputs, fn: Callable) -> Result:
    import bridge

    A_t = torch_sparse(inp, case, inp.values.to(case.torch_dtype))
    A = bridge.to_jax(A_t)
    try:  # where the bridge shares memory, the values really are shared
        shared = bridge.to_jax(A_t, copy=False)
    except ValueError:  # it may refuse (e.g. a misaligned buffer for JAX on CPU), never lie
        shared = None
    if shared is not None:
        values_t = A_t._values() if A_t.layout == torch.sparse_coo else A_t.values()
        assert shared.data.unsafe_buffer_pointer() == values_t.data_ptr()
    # the bridge round trip of the case's input is exact
    back = bridge.to_torch(A)
    assert back.layout == A_t.layout
    torch.testing.assert_close(back.to_dense(), A_t.to_dense(), rtol=0, atol=0)
    B = bridge.to_jax(inp.B.to(case.torch_dtype))
    W = jnp.asarray(inp.W.numpy(), dtype=B.dtype)

    def loss(data, B):
        return jnp.sum(W * fn(with_data(A, data), B))

    out = fn(A, B)
    g_data, g_B = jax.grad(loss, argnums=(0, 1), allow_int=True)(A.data, B)
    as_np = lambda x: np.asarray(x, dtype=np.float64)  # noqa: E731
    return Result(as_np(out), as_np(g_data).reshape(-1), as_np(g_B))


def run_dense(case: Case, inp: Inputs, fn: Callable) -> Result:
    D = inp.dense().detach().requires_grad_()
    B = inp.B.clone().requires_grad_()
    out = fn(D, B)
    (out * inp.W).sum().backward()
    gv = D.grad[tuple(inp.indices)]
    gB = None if B.grad is None else B.grad.numpy()
    return Result(out.detach().numpy(), gv.numpy(), gB)


def set_weights(case: Case, inp: Inputs, out_shape) -> None:
    g = torch.Generator().manual_seed(7)
    inp.W = torch.randn(*out_shape, generator=g, dtype=torch.float64)


def compare(case: Case, results: dict[str, Result], bound: float | None = None) -> None:
    """Every pair of frontends, and each against the dense reference, within ``bound``."""
    bound = DIRECT_RTOL[case.dtype] if bound is None else bound
    ref = results["dense"]
    for name, r in results.items():
        for field in ("out", "grad_values", "grad_B"):
            got, want = getattr(r, field), getattr(ref, field)
            if want is None:  # no dense operand: the jax gradient for it must be zero
                assert got is None or not np.any(got), (name, field)
                continue
            assert got.shape == want.shape, (name, field, got.shape, want.shape)
            err = rel_err(got, want)
            assert err <= bound, f"{name}.{field}: relative error {err:.2e} > {bound:.1e}"
    err = rel_err(results["torch"].grad_values, results["jax"].grad_values)
    assert err <= bound, f"torch vs jax gradient: relative error {err:.2e} > {bound:.1e}"
