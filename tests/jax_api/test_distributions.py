"""jax_api.SparseMultivariateNormal against the dense Gaussian, torch_api, and the stats tests."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402
from jax.experimental.sparse import BCOO  # noqa: E402
from jax.scipy.stats import multivariate_normal as mvn  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from jax_api import (  # noqa: E402
    SparseMultivariateNormal,
    cov_nagao_test,
    mean_hotelling_t2_test,
)
from tests.helpers import jax_sparse, jax_with_data  # noqa: E402

PARAMS = ["cov_llt", "cov_ldlt", "prec_llt", "prec_ldlt"]
KINDS = ["bcoo", "bcsr", "bcsr_padded"]


def _problem(param, kind, batch=None, n=6, seed=0):
    """Sparse parameters (float64, call under x64) and the dense covariance they define."""
    rng = np.random.default_rng(seed)
    shape = (n, n) if batch is None else (batch, n, n)
    strict = np.tril(rng.standard_normal(shape) * (rng.random(shape) < 0.5), -1)
    lead = () if batch is None else (batch,)
    d = rng.uniform(0.5, 1.5, (*lead, n))
    loc = jnp.asarray(rng.standard_normal((*lead, n)))
    ldlt = param.endswith("ldlt")
    factor_np = strict if ldlt else strict + d[..., :, None] * np.eye(n)
    factor = jax_sparse(factor_np, kind)
    kw = {"scale_tril" if param.startswith("cov") else "precision_tril": factor}
    if ldlt:
        kw["diagonal"] = jnp.asarray(d)
    return loc, kw, _dense_cov(param, jnp.asarray(factor_np), kw.get("diagonal"))


def _dense_cov(param, F, D):
    """Covariance from a dense factor (differentiable in F and D)."""
    n = F.shape[-1]
    if param.endswith("ldlt"):
        U = jnp.eye(n) + F
        M = U @ (D[..., :, None] * jnp.swapaxes(U, -1, -2))
    else:
        M = F @ jnp.swapaxes(F, -1, -2)
    return M if param.startswith("cov") else jnp.linalg.inv(M)


def _factor(dist):
    return dist.scale_tril if dist.scale_tril is not None else dist.precision_tril


@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [None, 2], ids=["unbatched", "batch2"])
def test_log_prob_entropy_variance_match_dense(x64, param, kind, batch):
    loc, kw, cov = _problem(param, kind, batch)
    dist = SparseMultivariateNormal(loc, **kw, validate_args=True)
    x = jax.random.normal(jax.random.key(1), (3, *loc.shape), jnp.float64)
    want = (
        mvn.logpdf(x, loc, cov)
        if batch is None
        else jax.vmap(lambda xb, lb, cb: mvn.logpdf(xb, lb, cb), in_axes=(1, 0, 0), out_axes=1)(
            x, loc, cov
        )
    )
    np.testing.assert_allclose(dist.log_prob(x), want, rtol=1e-10, atol=1e-10)
    n = loc.shape[-1]
    ent = 0.5 * n * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(np.asarray(cov))[1]
    np.testing.assert_allclose(dist.entropy(), ent, rtol=1e-10, atol=1e-10)
    assert dist.batch_shape == loc.shape[:-1] and dist.event_shape == (n,)
    np.testing.assert_array_equal(dist.mean, loc)
    assert dist.is_ldlt_parameterization == param.endswith("ldlt")
    if param.startswith("cov"):
        np.testing.assert_allclose(dist.variance, jnp.diagonal(cov, axis1=-2, axis2=-1), rtol=1e-12)
    else:
        with pytest.raises(NotImplementedError, match="variance: with a precision factor"):
            _ = dist.variance


@pytest.mark.parametrize("param", PARAMS)
def test_samples_pass_the_stats_tests(x64, param):
    loc, kw, cov = _problem(param, "bcsr", batch=2, n=4, seed=2)
    dist = SparseMultivariateNormal(loc, **kw)
    N = 4000
    s = eqx.filter_jit(lambda d, k: d.sample(k, (N,)))(dist, jax.random.key(3))
    assert s.shape == (N, 2, 4)
    mean = s.mean(0)
    c = s - mean
    S = jnp.einsum("nbi,nbj->bij", c, c) / (N - 1)
    assert bool(mean_hotelling_t2_test(mean, loc, S, N, 0.99)[0].all())
    assert bool(cov_nagao_test(S, cov, N, 0.99)[0].all())
    # and the tests can tell: a wrong covariance is rejected
    assert not bool(cov_nagao_test(S, 1.5 * cov, N, 0.99)[0].any())


@pytest.mark.parametrize("param", PARAMS)
@pytest.mark.parametrize("kind", ["bcoo", "bcsr_padded"])
def test_gradients_match_dense(x64, param, kind):
    loc, kw, _ = _problem(param, kind, batch=None, n=5, seed=4)
    dist = SparseMultivariateNormal(loc, **kw)
    A = _factor(dist)
    x = jax.random.normal(jax.random.key(5), (3, 5), jnp.float64)
    key = jax.random.key(6)

    def loss(d):
        return jnp.sum(d.log_prob(x)) + jnp.sum(jnp.sin(d.sample(key, (4,))))

    def dense_loss(loc, data, D):
        F = jax_with_data(A, data).todense()
        cov = _dense_cov(param, F, D)
        eps = jax.random.normal(key, (4, 5), jnp.float64)  # the same draw as sample()
        n = F.shape[-1]
        if param == "cov_llt":
            s = loc + eps @ F.T
        elif param == "cov_ldlt":
            s = loc + (jnp.sqrt(D) * eps) @ (jnp.eye(n) + F).T
        elif param == "prec_llt":
            s = loc + jax.scipy.linalg.solve_triangular(F, eps.T, lower=True, trans=1).T
        else:
            s = (
                loc
                + jax.scipy.linalg.solve_triangular(
                    jnp.eye(n) + F, (eps / jnp.sqrt(D)).T, lower=True, trans=1
                ).T
            )
        return jnp.sum(mvn.logpdf(x, loc, cov)) + jnp.sum(jnp.sin(s))

    g = eqx.filter_grad(loss)(dist)
    D = dist.diagonal
    want = jax.grad(dense_loss, argnums=(0, 1, 2) if D is not None else (0, 1))(loc, A.data, D)
    np.testing.assert_allclose(g.loc, want[0], rtol=1e-9, atol=1e-10)
    ga = _factor(g)
    assert ga.data.shape == A.data.shape  # a gradient on the stored values only
    np.testing.assert_allclose(ga.data, want[1], rtol=1e-9, atol=1e-10)
    if D is not None:
        np.testing.assert_allclose(g.diagonal, want[2], rtol=1e-9, atol=1e-10)
    name = "scale_tril" if param.startswith("cov") else "precision_tril"
    rebuild = lambda data: SparseMultivariateNormal(
        loc, **{**kw, name: jax_with_data(A, data)}
    ).log_prob(x)
    check_grads(rebuild, (A.data,), order=1, modes=["rev"])


def test_jit_and_vmap(x64):
    loc, kw, cov = _problem("prec_ldlt", "bcoo", n=5, seed=7)
    dist = SparseMultivariateNormal(loc, **kw)
    x = jax.random.normal(jax.random.key(8), (2, 5), jnp.float64)
    np.testing.assert_allclose(
        eqx.filter_jit(lambda d, x: d.log_prob(x))(dist, x), mvn.logpdf(x, loc, cov), rtol=1e-10
    )
    # vmap over the factor's data: a batch of distributions sharing one pattern
    A = kw["precision_tril"]
    datas = jnp.stack([A.data, 2 * A.data])
    f = lambda data: SparseMultivariateNormal(
        loc, diagonal=kw["diagonal"], precision_tril=jax_with_data(A, data)
    ).log_prob(x)
    out = jax.vmap(f)(datas)
    np.testing.assert_allclose(out[1], f(2 * A.data), rtol=1e-12)
    # vmap over sampling keys
    keys = jax.random.split(jax.random.key(0), 3)
    s = jax.vmap(lambda k: dist.sample(k, (2,)))(keys)
    assert s.shape == (3, 2, 5)
    np.testing.assert_array_equal(s[1], dist.sample(keys[1], (2,)))


def test_batch_broadcasting(x64):
    loc, kw, cov = _problem("cov_ldlt", "bcoo", n=4, seed=9)
    dist = SparseMultivariateNormal(jnp.stack([loc, loc + 1]), **kw)  # batched loc only
    assert dist.batch_shape == (2,)
    x = jnp.zeros((3, 2, 4))
    np.testing.assert_allclose(
        dist.log_prob(x)[:, 1], mvn.logpdf(x[:, 1], loc + 1, cov), rtol=1e-10
    )
    assert dist.sample(jax.random.key(0), (5,)).shape == (5, 2, 4)
    assert dist.entropy().shape == (2,) and dist.variance.shape == (2, 4)


def test_matches_torch_api(x64):
    torch = pytest.importorskip("torch")
    from torch_api.distributions import SparseMultivariateNormal as TorchSMVN

    for param in PARAMS:
        loc, kw, _ = _problem(param, "bcoo", batch=2, n=5, seed=10)
        dist = SparseMultivariateNormal(loc, **kw)
        name = "scale_tril" if param.startswith("cov") else "precision_tril"
        dense = np.array(kw[name].todense())
        T = lambda a: torch.from_numpy(np.array(a))
        tkw = {name: T(dense).to_sparse_coo()}
        if "diagonal" in kw:
            tkw["diagonal"] = T(kw["diagonal"])
        tdist = TorchSMVN(T(loc), **tkw)
        x = np.asarray(jax.random.normal(jax.random.key(11), (3, 2, 5), jnp.float64))
        np.testing.assert_allclose(
            dist.log_prob(jnp.asarray(x)), tdist.log_prob(T(x)).numpy(), rtol=1e-12
        )
        np.testing.assert_allclose(dist.entropy(), tdist.entropy().numpy(), rtol=1e-12)
        if param.startswith("cov"):
            np.testing.assert_allclose(dist.variance, tdist.variance.numpy(), rtol=1e-12)


def test_bad_inputs():
    L = BCOO.fromdense(jnp.array([[1.0, 0.0], [0.5, 2.0]]))
    loc = jnp.zeros(2)
    with pytest.raises(ValueError, match="scale_tril, precision_tril: expected exactly one"):
        SparseMultivariateNormal(loc)
    with pytest.raises(ValueError, match="expected exactly one of them, got both"):
        SparseMultivariateNormal(loc, scale_tril=L, precision_tril=L)
    with pytest.raises(TypeError, match="scale_tril: expected a jax.experimental.sparse"):
        SparseMultivariateNormal(loc, scale_tril=jnp.eye(2))
    with pytest.raises(ValueError, match=r"scale_tril: expected shape \(3, 3\)"):
        SparseMultivariateNormal(jnp.zeros(3), scale_tril=L)
    with pytest.raises(ValueError, match=r"diagonal: expected shape \(2,\)"):
        SparseMultivariateNormal(loc, diagonal=jnp.ones(3), scale_tril=L)
    with jax.enable_x64(True):
        L64 = BCOO.fromdense(jnp.eye(2, dtype=jnp.float64))
        with pytest.raises(ValueError, match="scale_tril: expected dtype float32 to match loc"):
            SparseMultivariateNormal(jnp.zeros(2, jnp.float32), scale_tril=L64)
    with pytest.raises(ValueError, match=r"batch shapes \[\(3,\), \(2,\)\] do not broadcast"):
        Lb = BCOO.fromdense(jnp.stack([jnp.eye(2)] * 2), n_batch=1)
        SparseMultivariateNormal(jnp.zeros((3, 2)), scale_tril=Lb)
    with pytest.raises(ValueError, match="scale_tril: expected a lower-triangular factor"):
        SparseMultivariateNormal(
            loc, scale_tril=BCOO.fromdense(jnp.array([[1.0, 1.0], [0, 1]])), validate_args=True
        )
    with pytest.raises(ValueError, match="precision_tril: expected a strictly lower factor"):
        SparseMultivariateNormal(loc, diagonal=jnp.ones(2), precision_tril=L, validate_args=True)
    with pytest.raises(ValueError, match="scale_tril: expected every diagonal entry stored"):
        SparseMultivariateNormal(
            loc, scale_tril=BCOO.fromdense(jnp.array([[1.0, 0], [1, -1]])), validate_args=True
        )
    strict = BCOO.fromdense(jnp.array([[0.0, 0.0], [0.5, 0.0]]))
    with pytest.raises(ValueError, match="diagonal: expected positive values"):
        SparseMultivariateNormal(
            loc, diagonal=jnp.array([1.0, 0.0]), scale_tril=strict, validate_args=True
        )


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_encoder_to_distribution_gradient(x64, layout):
    """PairwiseEncoder -> LL^T covariance factor -> sample + log_prob -> grad on the values."""
    from jax_api import PairwiseEncoder

    enc = PairwiseEncoder(
        1, (1, 3, 3), diag=True, upper=False, layout=layout, indices_dtype=jnp.int32
    )
    K, S = len(enc.offsets), enc.volume_numel
    rng = np.random.default_rng(12)
    v = rng.uniform(0.1, 0.3, (K, 1, 3, 3))
    v[0] += 1.0  # the diagonal offset comes first: a positive, dominant diagonal
    v = jnp.asarray(v)
    x = jax.random.normal(jax.random.key(13), (2, S), jnp.float64)
    key = jax.random.key(14)

    def loss(v):
        d = SparseMultivariateNormal(jnp.zeros(S), scale_tril=enc(v))
        return jnp.sum(d.log_prob(x)) + jnp.sum(d.sample(key, (3,)) ** 2)

    def dense_loss(v):
        L = enc(v).todense()
        eps = jax.random.normal(key, (3, S), jnp.float64)
        return jnp.sum(mvn.logpdf(x, jnp.zeros(S), L @ L.T)) + jnp.sum((eps @ L.T) ** 2)

    np.testing.assert_allclose(
        jax.jit(jax.grad(loss))(v), jax.grad(dense_loss)(v), rtol=1e-9, atol=1e-10
    )
