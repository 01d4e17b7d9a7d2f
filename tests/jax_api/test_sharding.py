"""Batches of sparse products and solves placed over a 4-device mesh equal the one-device result.

The devices are 4 virtual CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``),
which only a fresh process can get: each test runs a script in a subprocess with that variable
in the subprocess's environment only.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from tests.helpers import run_python

pytest.importorskip("jax")

PRELUDE = """
import numpy as np
import jax, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jax.experimental.sparse import BCOO, BCSR
import jax_api

assert jax.device_count() == 4, jax.devices()
mesh = Mesh(np.array(jax.devices()), ("batch",))
rng = np.random.default_rng(0)
nb, n, p = 8, 10, 3

def tri_batch(shared):
    base = np.tril(rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.4), -1)
    mats = []
    for k in range(nb):
        if shared:
            L = base * (1 + 0.1 * k)
        else:
            L = np.tril(rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.4), -1)
        mats.append(L + np.eye(n) * (2 + np.abs(L).sum(1)))
    D = np.stack(mats).astype(np.float32)
    nse = int(max(np.count_nonzero(d) for d in D))
    As = [BCOO.fromdense(jnp.asarray(d), nse=nse) for d in D]
    return D, jnp.stack([a.data for a in As]), jnp.stack([a.indices for a in As])

def spd_batch(shared):
    D, _, _ = tri_batch(shared)
    S = D + np.swapaxes(D, 1, 2)  # symmetric, diagonally dominant, positive diagonal: SPD
    nse = int(max(np.count_nonzero(s) for s in S))
    As = [BCOO.fromdense(jnp.asarray(s), nse=nse) for s in S]
    return S, jnp.stack([a.data for a in As]), jnp.stack([a.indices for a in As])

def check(a, b, tol=1e-4):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)
"""


def _run(body: str) -> None:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    out = run_python(PRELUDE + textwrap.dedent(body) + "\nprint('SHARDING-OK')\n", env)
    assert out.returncode == 0 and "SHARDING-OK" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("shared", [True, False], ids=["shared_pattern", "own_patterns"])
def test_products_and_solves_with_shard_map(shared):
    _run(f"""
    D, data, idx = tri_batch({shared})
    S, sdata, sidx = spd_batch({shared})
    B = jnp.asarray(rng.standard_normal((nb, n, p)), jnp.float32)

    def ops(data, idx, sdata, sidx, B):
        A = BCOO((data, idx), shape=(n, n))
        Y = jax_api.sparse_mm(A, B)
        X = jax_api.sparse_triangular_solve(A, B, upper=False)
        S = BCOO((sdata, sidx), shape=(n, n))
        Z = jax_api.sparse_generic_solve(S, B, jax_api.minres, tol=1e-6)
        W = jax_api.sparse_generic_solve(S, B, jax_api.cg, tol=1e-6)
        return Y, X, Z, W

    def loss(data, idx, sdata, sidx, B):
        Y, X, Z, W = jax.vmap(ops)(data, idx, sdata, sidx, B)
        return jnp.sum(Y ** 2) + jnp.sum(X) + jnp.sum(Z) + jnp.sum(W ** 2)

    args = (data, idx, sdata, sidx, B)
    one = jax.jit(jax.vmap(ops))(*args)
    g_one = jax.jit(jax.grad(loss, (0, 2, 4)))(*args)
    sharded = jax.jit(jax.shard_map(jax.vmap(ops), mesh=mesh, in_specs=P("batch"),
                                    out_specs=P("batch")))
    many = sharded(*args)
    g_many = jax.jit(jax.shard_map(jax.grad(loss, (0, 2, 4)), mesh=mesh, in_specs=P("batch"),
                                   out_specs=P("batch")))(*args)
    for a, b in zip(one, many):
        check(a, b)
        assert len(b.sharding.device_set) == 4
    for a, b in zip(g_one, g_many):
        check(a, b)
    check(one[0], D @ np.asarray(B))
    check(one[1], np.linalg.solve(D, np.asarray(B)))
    check(one[2], np.linalg.solve(S, np.asarray(B)), tol=1e-3)
    check(one[3], np.linalg.solve(S, np.asarray(B)), tol=1e-3)
    """)


def test_sharded_inputs_under_jit_and_batched_matrix():
    _run("""
    D, data, idx = tri_batch(True)
    B = jnp.asarray(rng.standard_normal((nb, n, p)), jnp.float32)
    spec = NamedSharding(mesh, P("batch"))
    data_s, idx_s, B_s = (jax.device_put(x, spec) for x in (data, idx, B))
    assert len(data_s.sharding.device_set) == 4

    def f(data, idx, B):
        A = BCOO((data, idx), shape=(nb, n, n))  # one batch dimension
        return jax_api.sparse_mm(A, B), jax_api.sparse_triangular_solve(A, B, upper=False)

    one = jax.jit(f)(data, idx, B)
    many = jax.jit(f)(data_s, idx_s, B_s)
    for a, b in zip(one, many):
        check(a, b)
    check(one[0], D @ np.asarray(B))
    g_one = jax.grad(lambda d: jnp.sum(f(d, idx, B)[1]))(data)
    g_many = jax.jit(jax.grad(lambda d: jnp.sum(f(d, idx_s, B_s)[1])))(data_s)
    check(g_one, g_many)
    """)
