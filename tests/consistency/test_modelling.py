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
    "case",
    params(cases("logsumexp", square=False, rhs=("vector",),
                 patterns=("random", "empty_rows_cols", "single"))),
)
def test_sparse_logsumexp(case, dim, include_zeros):
    D = make_matrix(case, 8, 6, "rect")
    inp = make_inputs(case, D, 6)
    set_weights(case, inp, _dense_lse(inp.dense(), dim, include_zeros).shape)
    kw = dict(dim=dim, include_zeros=include_zeros)
    with jax.enable_x64(True):
        results = {
            "torch": run_torch(case, inp,
                               lambda A, B: _finite_t(torch_api.sparse_logsumexp(A, **kw))),
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


@pytest.mark.parametrize("output_layout", ["tuple", "padded"])
@pytest.mark.parametrize(
    "case", params(cases("bidir", square=False, rhs=("vector",), patterns=("random",)))
)
def test_sparse_bidir_logsumexp(case, output_layout):
    D = make_matrix(case, 8, 6, "rect")
    inp = make_inputs(case, D, 6)

    def t_fn(A, B):
        out = torch_api.sparse_bidir_logsumexp(A, output_layout=output_layout)
        if output_layout == "tuple":
            return torch.cat([o.reshape(-1) for o in out])
        return _finite_t(out)

    def j_fn(A, B):
        out = jax_api.sparse_bidir_logsumexp(A, output_layout=output_layout)
        if output_layout == "tuple":
            return jnp.concatenate([o.reshape(-1) for o in out])
        return _finite_j(out)

    def d_fn(Dd, B):
        cols, rows = torch.logsumexp(Dd, -2), torch.logsumexp(Dd, -1)
        if output_layout == "tuple":
            return torch.cat([cols.reshape(-1), rows.reshape(-1)])
        G = max(Dd.shape[-2:])
        pad = lambda v: torch.nn.functional.pad(v, (0, G - v.shape[-1]))  # noqa: E731
        return torch.stack([pad(cols), pad(rows)])

    with torch.no_grad():
        set_weights(case, inp, d_fn(inp.dense(), inp.B).shape)
    with jax.enable_x64(True):
        results = {
            "torch": run_torch(case, inp, t_fn),
            "jax": run_jax(case, inp, j_fn),
            "dense": run_dense(case, inp, d_fn),
        }
    compare(case, results)


@pytest.mark.parametrize("layout", ["coo", "csr"])
@pytest.mark.parametrize(
    ("radius", "shape", "relation", "upper", "diag"),
    [
        (1, (1, 5), "indep", None, False),
        (1.5, (2, 4, 3), "intra", False, True),
        (2, (3, 3, 4, 2), "inter", True, False),
    ],
)
def test_pairwise_encoder(layout, radius, shape, relation, upper, diag):
    """Identical offsets and identical matrices (indices and values) from both encoders."""
    import bridge
    from torch_api.encoders import PairwiseEncoder

    kw = dict(diag=diag, upper=upper, channel_voxel_relation=relation)
    enc_t = PairwiseEncoder(radius, shape, layout=getattr(torch, f"sparse_{layout}"), **kw)
    enc_j = jax_api.PairwiseEncoder(radius, shape, layout=layout, **kw)
    assert [tuple(o) for o in enc_t.offsets] == [tuple(o) for o in enc_j.offsets]
    g = torch.Generator().manual_seed(0)
    values = torch.randn(2, len(enc_t.offsets), *shape, generator=g)
    S_t = enc_t(values)
    with jax.enable_x64(True):
        S_j = bridge.to_torch(enc_j(jnp.asarray(values.numpy())))
    assert S_j.layout == S_t.layout
    if layout == "coo":
        torch.testing.assert_close(S_j._indices(), S_t._indices(), rtol=0, atol=0)
        torch.testing.assert_close(S_j._values(), S_t._values(), rtol=0, atol=0)
    else:
        for part in ("crow_indices", "col_indices", "values"):
            a, b = getattr(S_j, part)(), getattr(S_t, part)()
            torch.testing.assert_close(a.to(b.dtype), b, rtol=0, atol=0)


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_statistical_tests(shift):
    """Same statistics, thresholds and decisions from both frontends' Hotelling and Nagao tests."""
    from torch_api.utils import cov_nagao_test, mean_hotelling_t2_test

    g = torch.Generator().manual_seed(1)
    n, d = 300, 3
    X = torch.randn(2, n, d, generator=g, dtype=torch.float64)
    mean, cov = X.mean(1), torch.stack([torch.cov(x.T) for x in X])
    true_mean = torch.zeros(2, d, dtype=torch.float64) + shift
    true_cov = torch.eye(d, dtype=torch.float64).expand(2, d, d) * (1 + shift)
    with jax.enable_x64(True):
        J = lambda t: jnp.asarray(t.numpy())  # noqa: E731
        for fn_t, fn_j, args in [
            (mean_hotelling_t2_test, jax_api.mean_hotelling_t2_test, (mean, true_mean, cov)),
            (cov_nagao_test, jax_api.cov_nagao_test, (cov, true_cov)),
        ]:
            p_t, s_t, th_t = fn_t(*args, n, confidence_level=0.95)
            p_j, s_j, th_j = fn_j(*(J(a) for a in args), n, confidence_level=0.95)
            np.testing.assert_array_equal(np.asarray(p_j), p_t.numpy())
            assert rel_err(np.asarray(s_j), s_t.numpy()) <= 1e-10
            assert abs(float(th_j) - float(th_t)) <= 1e-10 * abs(float(th_t))
            if shift:
                assert not p_t.any()  # a shifted mean / scaled covariance is rejected
