"""Every public jax_api operation as a small eager call, for the compile-count and memory tests
(``test_eager.py``, ``test_memory_growth.py``). Importing this module builds nothing; ``cases()``
builds the inputs once (float32, JAX's default mode) and returns ``{name: call}``, where each
``call()`` runs one eager call (forward or gradient) and returns its result."""

from __future__ import annotations


def cases() -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental.sparse import BCOO, BCSR

    import jax_api as J

    rng = np.random.default_rng(0)
    n = 8
    D = np.tril(rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.4), -1) + 4 * np.eye(n)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    L, Lc = BCSR.fromdense(f32(D)), BCOO.fromdense(f32(D))
    S = BCSR.fromdense(f32(D @ D.T))
    T = BCOO.fromdense(f32(np.vstack([D, np.eye(n)])))  # tall, full column rank
    B, b = f32(rng.standard_normal((n, 2))), f32(rng.standard_normal(n))
    a, bb = f32(rng.standard_normal((6, 3))), f32(rng.standard_normal((2, 3, 4)))
    seg, idx = jnp.asarray([2, 4], jnp.int32), jnp.asarray([0, 1, 1, 0, 1, 0], jnp.int32)
    key = jax.random.PRNGKey(0)
    enc = J.PairwiseEncoder(1, (3, 3))
    enc_values = f32(rng.standard_normal((len(enc.offsets), 3, 3)))
    lower = dict(upper=False)
    mean = f32(rng.standard_normal((2, 3)))
    cov = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (2, 3, 3))

    def with_data(A, d):
        if isinstance(A, BCSR):
            return BCSR((d, A.indices, A.indptr), shape=A.shape)
        return BCOO((d, A.indices), shape=A.shape)

    def grad_of(op, A, *args, **kw):
        return lambda: jax.grad(lambda d: op(with_data(A, d), *args, **kw).sum())(A.data)

    dist = lambda **kw: J.SparseMultivariateNormal(jnp.zeros(n, jnp.float32), **kw)
    return {
        "sparse_mm": lambda: J.sparse_mm(L, B),
        "sparse_mm (BCOO)": lambda: J.sparse_mm(Lc, B),
        "sparse_mm grad": grad_of(J.sparse_mm, Lc, B),
        "sparse_triangular_solve": lambda: J.sparse_triangular_solve(L, B, **lower),
        "sparse_triangular_solve grad": grad_of(J.sparse_triangular_solve, L, B, **lower),
        "sparse_generic_solve": lambda: J.sparse_generic_solve(S, b, J.cg),
        "sparse_generic_solve grad": grad_of(J.sparse_generic_solve, S, b, J.cg),
        "sparse_generic_solve fresh lambda": lambda: J.sparse_generic_solve(
            S, b, lambda A, B: J.cg(A, B, tol=1e-6)),
        "sparse_generic_lstsq": lambda: J.sparse_generic_lstsq(T, f32(np.ones(2 * n))),
        "sparse_generic_lstsq grad": grad_of(J.sparse_generic_lstsq, T, f32(np.ones(2 * n))),
        "cg": lambda: J.cg(S, B),
        "bicgstab": lambda: J.bicgstab(S, b),
        "gmres": lambda: J.gmres(S, b),
        "minres": lambda: J.minres(S, b),
        "lsmr": lambda: J.lsmr(T, f32(np.ones(2 * n))),
        "segment_mm": lambda: J.segment_mm(a, bb, seg),
        "segment_mm grad": lambda: jax.grad(lambda x: J.segment_mm(x, bb, seg).sum())(a),
        "gather_mm": lambda: J.gather_mm(a, bb, idx),
        "gather_mm grad": lambda: jax.grad(lambda y: J.gather_mm(a, y, idx).sum())(bb),
        "sparse_logsumexp": lambda: J.sparse_logsumexp(S, 1),
        "sparse_logsumexp grad": grad_of(lambda A: J.sparse_logsumexp(A, 1), S),
        "sparse_bidir_logsumexp": lambda: J.sparse_bidir_logsumexp(S),
        "rand_sparse": lambda: J.rand_sparse(key, (n, n), 12),
        "rand_sparse_tri": lambda: J.rand_sparse_tri(key, (n, n), 12),
        "make_spd_sparse": lambda: J.make_spd_sparse(key, n),
        "PairwiseEncoder": lambda: enc(enc_values),
        "SparseMultivariateNormal.log_prob": lambda: dist(
            scale_tril=L, validate_args=True).log_prob(b),
        "SparseMultivariateNormal.sample": lambda: dist(precision_tril=L).sample(key, (2,)),
        "SparseMultivariateNormal.entropy, variance": lambda: (
            dist(scale_tril=L).entropy(), dist(scale_tril=L).variance),
        "sparse_cholesky_solve": lambda: J.sparse_cholesky_solve(S, B),
        "sparse_cholesky_solve grad": grad_of(J.sparse_cholesky_solve, S, B),
        "sparse_lu_solve": lambda: J.sparse_lu_solve(L, b),
        "sparse_lu_solve grad": grad_of(J.sparse_lu_solve, L, b),
        "sparse_logdet": lambda: J.sparse_logdet(S),
        "sparse_logdet grad": grad_of(J.sparse_logdet, S),
        "sparse_slogdet": lambda: J.sparse_slogdet(L),
        "jacobi": lambda: J.jacobi(S)(b),
        "ic0": lambda: J.ic0(S)(b),
        "ilu0": lambda: J.ilu0(L)(b),
        "SparseMultivariateNormal(precision_matrix).log_prob": lambda: dist(
            precision_matrix=S).log_prob(b),
        "mean_hotelling_t2_test": lambda: J.mean_hotelling_t2_test(mean, mean + 0.1, cov, 20),
        "cov_nagao_test": lambda: J.cov_nagao_test(cov, cov, 20),
    }
