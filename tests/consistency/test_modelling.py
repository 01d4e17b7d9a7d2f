"""torch_api and jax_api agree on log-sum-exp, grouped products, distributions, the encoder and
the statistical tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .cases import DIRECT_RTOL, cases, make_inputs, make_matrix, params, rel_err
from .runner import compare, run_dense, run_jax, run_torch, set_weights

jax = pytest.importorskip("jax")
jnp = jax.numpy
jax_api = pytest.importorskip("jax_api")
import torch_api  # noqa: E402


def _finite_t(x):
    return torch.where(torch.isinf(x), torch.zeros_like(x), x)


def _finite_j(x):
    return jnp.where(jnp.isinf(x), jnp.zeros_like(x), x)


def _dense_lse(D, dim, include_zeros):
    if include_zeros:
        return torch.logsumexp(D, dim)
    masked = torch.where(D != 0, D, torch.full_like(D, -torch.inf))
    return torch.logsumexp(masked, dim)


@pytest.mark.parametrize("include_zeros", [True, False])
@pytest.mark.parametrize("dim", [-1, -2])
@pytest.mark.parametrize(
    "case", params(cases("logsumexp", square=False, rhs=("vector",), patterns=("random", "empty_rows_cols", "single")))
)
def test_sparse_logsumexp(case, dim, include_zeros):
    D = make_matrix(case, 8, 6, "rect")
    inp = make_inputs(case, D, 6)
    set_weights(case, inp, _dense_lse(inp.dense(), dim, include_zeros).shape)
    kw = dict(dim=dim, include_zeros=include_zeros)
    with jax.enable_x64(True):
        results = {
            "torch": run_torch(case, inp, lambda A, B: _finite_t(torch_api.sparse_logsumexp(A, **kw))),
            "jax": run_jax(case, inp, lambda A, B: _finite_j(jax_api.sparse_logsumexp(A, **kw))),
            "dense": run_dense(case, inp, lambda A, B: _finite_t(_dense_lse(A, **kw))),
        }
    compare(case, results)


def _grouped_inputs(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    seglen = torch.tensor([3, 0, 5, 2])  # an empty segment included
    a = torch.randn(int(seglen.sum()), 4, generator=g, dtype=torch.float64)
    b = torch.randn(len(seglen), 4, 3, generator=g, dtype=torch.float64)
    idx = torch.tensor([2, 0, 0, 3, 1, 2, 2, 0, 3, 3])
    W = torch.randn(a.shape[0], 3, generator=g, dtype=torch.float64)
    return a, b, seglen, idx, W


def _grads_torch(fn, a, b, extra, W, dtype):
    a = a.to(dtype, copy=True).requires_grad_()
    b = b.to(dtype, copy=True).requires_grad_()
    out = fn(a, b, extra)
    (out * W.to(dtype)).sum().backward()
    return [t.detach().double().numpy() for t in (out, a.grad, b.grad)]


def _grads_jax(fn, a, b, extra, W, dtype):
    a, b = (jnp.asarray(t.numpy(), dtype=dtype) for t in (a, b))
    extra = jnp.asarray(extra.numpy().astype(np.int32))
    Wj = jnp.asarray(W.numpy(), dtype=dtype)
    out = fn(a, b, extra)
    ga, gb = jax.grad(lambda a, b: jnp.sum(Wj * fn(a, b, extra)), argnums=(0, 1))(a, b)
    return [np.asarray(t, dtype=np.float64) for t in (out, ga, gb)]


def _segment_ref(a, b, seglen):
    parts, start = [], 0
    for r, n in enumerate(seglen.tolist()):
        parts.append(a[start : start + n] @ b[r])
        start += n
    return torch.cat(parts)


def _gather_ref(a, b, idx):
    return torch.stack([a[i] @ b[j] for i, j in enumerate(idx.tolist())])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["segment_mm", "gather_mm"])
def test_grouped_products(op, dtype):
    a, b, seglen, idx, W = _grouped_inputs(torch.float64)
    extra = seglen if op == "segment_mm" else idx
    ref_fn = _segment_ref if op == "segment_mm" else _gather_ref
    with jax.enable_x64(True):
        got_t = _grads_torch(getattr(torch_api, op), a, b, extra, W, getattr(torch, dtype))
        got_j = _grads_jax(getattr(jax_api, op), a, b, extra, W, getattr(jnp, dtype))
    ref = _grads_torch(ref_fn, a, b, extra, W, torch.float64)
    for name, got in (("torch", got_t), ("jax", got_j)):
        for field, x, y in zip(("out", "grad_a", "grad_b"), got, ref, strict=True):
            assert rel_err(x, y) <= DIRECT_RTOL[dtype], (name, field, rel_err(x, y))
