"""SparseMultivariateNormal in torch_api and jax_api: the same log_prob, entropy, and rsample
driven by the same standard-normal draws, with the same gradients, against the dense law."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

from .cases import DIRECT_RTOL, cases, make_inputs, make_matrix, params, rel_err, torch_sparse
from .runner import with_data

jax = pytest.importorskip("jax")
jnp = jax.numpy
jax_api = pytest.importorskip("jax_api")
from torch_api.distributions import SparseMultivariateNormal  # noqa: E402

N = 6
PARAMS = {  # name: (factor keyword, LDL^T?)
    "scale-llt": ("scale_tril", False),
    "scale-ldlt": ("scale_tril", True),
    "precision-llt": ("precision_tril", False),
    "precision-ldlt": ("precision_tril", True),
}


def _dense_law(L, D, kind, ldlt):
    """Covariance and the sampling map ``eps -> x - loc`` of the dense parameters."""
    n = L.shape[-1]
    U = L + torch.eye(n, dtype=L.dtype) if ldlt else L
    S = torch.diag_embed(D.sqrt()) if ldlt else torch.eye(n, dtype=L.dtype)
    if kind == "scale_tril":
        F = U @ S
        return F @ F.mT, lambda e: (F @ e.unsqueeze(-1)).squeeze(-1)
    Sinv = torch.diag_embed(D.rsqrt()) if ldlt else torch.eye(n, dtype=L.dtype)
    Pf = U @ (torch.diag_embed(D.sqrt()) if ldlt else torch.eye(n, dtype=L.dtype))
    cov = torch.cholesky_inverse(torch.linalg.cholesky(Pf @ Pf.mT))
    return cov, lambda e: torch.linalg.solve_triangular(
        U.mT, (Sinv @ e.unsqueeze(-1)), upper=True
    ).squeeze(-1)


@pytest.mark.parametrize("param", sorted(PARAMS))
@pytest.mark.parametrize(
    "case", params(cases("mvn", square=True, rhs=("vector",), patterns=("random",)))
)
def test_sparse_multivariate_normal(case, param):
    kind, ldlt = PARAMS[param]
    D = make_matrix(case, N, N, "strict-lower" if ldlt else "lower", seed=3)
    if not ldlt:  # a positive diagonal
        idx = torch.arange(N)
        D[..., idx, idx] = D[..., idx, idx].abs()
    inp = make_inputs(case, D, N)
    g = torch.Generator().manual_seed(5)
    lead = (case.batch,) if case.batch else ()
    loc = torch.randn(*lead, N, generator=g, dtype=torch.float64)
    diag = 0.5 + torch.rand(*lead, N, generator=g, dtype=torch.float64) if ldlt else None
    value = torch.randn(4, *lead, N, generator=g, dtype=torch.float64)
    eps = torch.randn(5, *lead, N, generator=g, dtype=torch.float64)
    W = torch.randn(5, *lead, N, generator=g, dtype=torch.float64)
    dt = case.torch_dtype

    # ---- torch_api
    vals = inp.values.to(dt, copy=True).requires_grad_()
    loc_t = loc.to(dt, copy=True).requires_grad_()
    diag_t = None if diag is None else diag.to(dt, copy=True).requires_grad_()
    dist = SparseMultivariateNormal(loc_t, diagonal=diag_t, **{kind: torch_sparse(inp, case, vals)})
    with mock.patch("torch.randn", return_value=eps.to(dt)):
        x_t = dist.rsample((5,))
    lp_t, ent_t = dist.log_prob(value.to(dt)), dist.entropy()
    params_t = [vals, loc_t] + ([diag_t] if ldlt else [])
    grads_t = torch.autograd.grad((W.to(dt) * x_t).sum() + lp_t.sum() + ent_t.sum(), params_t)

    # ---- jax_api, on the bridge's conversion of the same factor
    import bridge

    with jax.enable_x64(True):
        A = bridge.to_jax(torch_sparse(inp, case, inp.values.to(dt)))
        jdt = jnp.dtype(case.dtype)
        loc_j = jnp.asarray(loc.numpy(), jdt)
        diag_j = None if diag is None else jnp.asarray(diag.numpy(), jdt)
        eps_j, W_j, value_j = (jnp.asarray(t.numpy(), jdt) for t in (eps, W, value))

        def run(data, loc_j, diag_j):
            factor = {kind: with_data(A, data)}
            d = jax_api.SparseMultivariateNormal(loc_j, diagonal=diag_j, **factor)
            with mock.patch("jax.random.normal", return_value=eps_j):
                x = d.sample(jax.random.key(0), (5,))
            lp, ent = d.log_prob(value_j), d.entropy()
            return jnp.sum(W_j * x) + lp.sum() + ent.sum(), (x, lp, ent)

        argnums = (0, 1, 2) if ldlt else (0, 1)
        grad_fn = jax.grad(run, argnums=argnums, has_aux=True)
        grads_j, (x_j, lp_j, ent_j) = grad_fn(A.data, loc_j, diag_j)

    # ---- dense float64 reference
    Ld = inp.dense().detach()
    vals_r, loc_r = inp.values.clone().requires_grad_(), loc.clone().requires_grad_()
    diag_r = None if diag is None else diag.clone().requires_grad_()
    L = torch.sparse_coo_tensor(inp.indices, vals_r, Ld.shape).to_dense()
    cov, sample_map = _dense_law(L, diag_r, kind, ldlt)
    mvn = torch.distributions.MultivariateNormal(loc_r, covariance_matrix=cov)
    x_r = loc_r + sample_map(eps)
    lp_r, ent_r = mvn.log_prob(value), mvn.entropy()
    params_r = [vals_r, loc_r] + ([diag_r] if ldlt else [])
    grads_r = torch.autograd.grad((W * x_r).sum() + lp_r.sum() + ent_r.sum(), params_r)

    bound = DIRECT_RTOL[case.dtype] * (100 if case.dtype == "float64" else 10)  # cond(cov) ~ 1e2
    as_np = lambda t: np.asarray(t.detach() if isinstance(t, torch.Tensor) else t, np.float64)  # noqa: E731
    for what, t_, j_, r_ in [("rsample", x_t, x_j, x_r), ("log_prob", lp_t, lp_j, lp_r),
                             ("entropy", ent_t, ent_j, ent_r)]:
        err_t, err_j = rel_err(as_np(t_), as_np(r_)), rel_err(as_np(j_), as_np(r_))
        assert err_t <= bound, (what, "torch", err_t)
        assert err_j <= bound, (what, "jax", err_j)
    for name, gt, gj, gr in zip(["factor", "loc", "diagonal"], grads_t, grads_j, grads_r,
                                strict=False):
        err_t = rel_err(as_np(gt), as_np(gr))
        assert err_t <= bound, (name, "torch", err_t)
        assert rel_err(as_np(gj).reshape(-1), as_np(gr).reshape(-1)) <= bound, (name, "jax")
